#include "brfusion/shim/journal.hpp"

#include "brfusion/common/durable_file.hpp"
#include "brfusion/shim/error.hpp"

namespace brfusion::shim {

using nlohmann::json;

const char* phase_name(NicPhase phase) {
    switch (phase) {
    case NicPhase::Attaching: return "attaching";
    case NicPhase::Attached: return "attached";
    case NicPhase::Detaching: return "detaching";
    }
    return "?";
}

namespace {

NicPhase parse_phase(const std::string& name) {
    if (name == "attaching") return NicPhase::Attaching;
    if (name == "attached") return NicPhase::Attached;
    if (name == "detaching") return NicPhase::Detaching;
    throw std::invalid_argument("unknown NIC phase " + name);
}

}  // namespace

Journal::Journal(std::string directory) : directory_(std::move(directory)), path_(directory_ + "/state.json") {}

ShimState Journal::load() const {
    std::optional<std::string> text;
    try {
        text = read_file_if_exists(path_);
    } catch (const std::exception& e) {
        throw ShimError(ErrorKind::Backend, e.what());
    }
    if (!text) return {};
    try {
        const json state = json::parse(*text);
        ShimState result;
        result.ipam = Ipam::from_json(state.at("ipam"));
        for (const auto& nic : state.at("nics")) {
            auto ip = Ipv4::parse(nic.at("ip").get<std::string>());
            if (!ip) throw std::invalid_argument("bad address " + nic.at("ip").dump());
            auto network = guest::NetworkRef::parse(nic.at("network").get<std::string>());
            if (!network) throw std::invalid_argument("bad network " + nic.at("network").dump());
            if (!guest::is_endpoint_id(nic.at("endpoint").get<std::string>())) throw std::invalid_argument("bad endpoint " + nic.at("endpoint").dump());
            NicRecord record{nic.at("endpoint"), nic.at("vm"), *network, nic.at("mac"), *ip, nic.at("host_if"), nic.value("pci", ""),
                             parse_phase(nic.at("phase")), nic.value("published", json::array()).get<std::vector<PublishedPort>>(),
                             nic.value("spare", false)};
            result.nics[record.endpoint] = std::move(record);
        }
        for (const auto& network : state.value("added_networks", json::array())) result.added_networks.push_back(parse_network(network));
        for (const auto& vm : state.value("added_vms", json::array())) result.added_vms.push_back(parse_vm(vm));
        result.hostlo = hostlo::GroupTable::from_json(state.value("hostlo_groups", json::array()));
        return result;
    } catch (const std::exception& e) {
        throw ShimError(ErrorKind::Backend, "the state file " + path_ + " is corrupt (" + e.what() +
                                                "); move it away to start from scratch, then let reconcile remove what it finds in OVS");
    }
}

void Journal::save(const ShimState& state) {
    json nics = json::array();
    for (const auto& [endpoint, nic] : state.nics)
        nics.push_back({{"endpoint", nic.endpoint}, {"vm", nic.vm}, {"network", nic.network.wire()}, {"mac", nic.mac}, {"ip", nic.ip.str()},
                        {"host_if", nic.host_if}, {"pci", nic.pci}, {"phase", phase_name(nic.phase)}, {"published", nic.published}, {"spare", nic.spare}});
    json networks = json::array(), vms = json::array();
    for (const auto& network : state.added_networks) networks.push_back(to_json(network));
    for (const auto& vm : state.added_vms) vms.push_back(to_json(vm));
    const json document = {{"version", 1}, {"ipam", state.ipam.to_json()}, {"nics", nics}, {"added_networks", networks}, {"added_vms", vms},
                          {"hostlo_groups", state.hostlo.to_json()}};
    try {
        replace_file_durably(path_, document.dump(1));
    } catch (const std::exception& e) {
        throw ShimError(ErrorKind::Backend, e.what());
    }
}

}  // namespace brfusion::shim
