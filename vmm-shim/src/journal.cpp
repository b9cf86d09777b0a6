#include "brfusion/shim/journal.hpp"

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

// The records' sections.
constexpr const char* kNic = "nic";          // endpoint -> the NIC
constexpr const char* kPool = "pool";        // network -> its subnet, gateway and cursor
constexpr const char* kLease = "lease";      // NETWORK/ADDRESS -> its owner
constexpr const char* kNetwork = "network";  // name -> a network added at run time
constexpr const char* kVm = "vm";            // name -> a VM added at run time
constexpr const char* kHostlo = "hostlo";    // group -> the group

NicPhase parse_phase(const std::string& name) {
    if (name == "attaching") return NicPhase::Attaching;
    if (name == "attached") return NicPhase::Attached;
    if (name == "detaching") return NicPhase::Detaching;
    throw std::invalid_argument("unknown NIC phase " + name);
}

json nic_json(const NicRecord& nic) {
    return {{"endpoint", nic.endpoint}, {"vm", nic.vm}, {"network", nic.network.wire()}, {"mac", nic.mac}, {"ip", nic.ip.str()},
            {"host_if", nic.host_if}, {"pci", nic.pci}, {"phase", phase_name(nic.phase)}, {"published", nic.published}, {"spare", nic.spare}};
}

NicRecord parse_nic(const json& nic) {
    auto ip = Ipv4::parse(nic.at("ip").get<std::string>());
    if (!ip) throw std::invalid_argument("bad address " + nic.at("ip").dump());
    auto network = guest::NetworkRef::parse(nic.at("network").get<std::string>());
    if (!network) throw std::invalid_argument("bad network " + nic.at("network").dump());
    if (!guest::is_endpoint_id(nic.at("endpoint").get<std::string>())) throw std::invalid_argument("bad endpoint " + nic.at("endpoint").dump());
    return NicRecord{nic.at("endpoint"), nic.at("vm"), *network, nic.at("mac"), *ip, nic.at("host_if"), nic.value("pci", ""),
                     parse_phase(nic.at("phase")), nic.value("published", json::array()).get<std::vector<PublishedPort>>(),
                     nic.value("spare", false)};
}

json pool_json(const Ipam::Pool& pool) {
    return {{"subnet", pool.subnet.str()}, {"gateway", pool.gateway.str()}, {"cursor", Ipv4{pool.cursor}.str()}};
}

std::string lease_key(const std::string& network, std::uint32_t address) { return network + "/" + Ipv4{address}.str(); }

// Appends to `changes` what turns the keyed list `saved` into `current` (small lists, compared
// whole first: they change only when an admin adds or removes one).
template <typename T>
void diff_list(const char* section, const std::vector<T>& saved, const std::vector<T>& current, std::vector<RecordChange>& changes) {
    if (saved == current) return;
    for (const auto& item : saved) changes.push_back({section, item.name, std::nullopt});
    for (const auto& item : current) changes.push_back({section, item.name, to_json(item)});
}

// The changes from `saved` to `state`, and what makes `saved` equal to `state` once they are saved.
std::pair<std::vector<RecordChange>, std::function<void()>> changes_since(Journal::Saved& saved, const ShimState& state) {
    std::vector<RecordChange> changes;
    const auto nics = diff_section(kNic, saved.nics, state.nics, [](const auto& e) { return e.first; }, [](const auto& e) { return nic_json(e.second); },
                                   changes);
    // Pools: their settings, then their leases.
    using Leases = std::map<std::uint32_t, LeaseOwner>;
    static const Leases kNone;
    std::vector<std::pair<std::string, SectionDiff<Leases>>> leases;
    std::vector<std::string> pools_gone;
    const auto& pools = state.ipam.pool_table();
    for (const auto& entry : pools) {
        const std::string& network = entry.first;  // a name, not a structured binding: the lambda below captures it
        const Ipam::Pool& pool = entry.second;
        const auto before = saved.pools.find(network);
        const bool known = before != saved.pools.end();
        if (!known || before->second.subnet != pool.subnet || before->second.gateway != pool.gateway || before->second.cursor != pool.cursor)
            changes.push_back({kPool, network, pool_json(pool)});
        leases.emplace_back(network, diff_section(kLease, known ? before->second.leases : kNone, pool.leases,
                                                  [&network](const auto& e) { return lease_key(network, e.first); },
                                                  [](const auto& e) { return to_json(e.second); }, changes));
    }
    for (const auto& [network, pool] : saved.pools) {
        if (pools.count(network)) continue;
        changes.push_back({kPool, network, std::nullopt});
        for (const auto& [address, owner] : pool.leases) changes.push_back({kLease, lease_key(network, address), std::nullopt});
        pools_gone.push_back(network);
    }
    diff_list(kNetwork, saved.added_networks, state.added_networks, changes);
    diff_list(kVm, saved.added_vms, state.added_vms, changes);
    const auto groups = diff_section(kHostlo, saved.hostlo, state.hostlo.groups(), [](const auto& e) { return e.first; },
                                     [](const auto& e) { return hostlo::GroupTable::to_json(e.second); }, changes);

    auto sync = [&saved, &state, nics, leases = std::move(leases), pools_gone = std::move(pools_gone), groups] {
        sync_section(saved.nics, nics);
        for (const auto& network : pools_gone) saved.pools.erase(network);
        for (const auto& [network, diff] : leases) {
            const Ipam::Pool& pool = state.ipam.pool_table().at(network);
            Ipam::Pool& copy = saved.pools[network];
            copy.subnet = pool.subnet, copy.gateway = pool.gateway, copy.cursor = pool.cursor;
            sync_section(copy.leases, diff);
        }
        if (saved.added_networks != state.added_networks) saved.added_networks = state.added_networks;
        if (saved.added_vms != state.added_vms) saved.added_vms = state.added_vms;
        sync_section(saved.hostlo, groups);
    };
    return {std::move(changes), std::move(sync)};
}

// A state.json of version 1: the whole state in one document.
ShimState parse_version1(const json& state) {
    ShimState result;
    result.ipam = Ipam::from_json(state.at("ipam"));
    for (const auto& nic : state.at("nics")) {
        NicRecord record = parse_nic(nic);
        result.nics[record.endpoint] = std::move(record);
    }
    for (const auto& network : state.value("added_networks", json::array())) result.added_networks.push_back(parse_network(network));
    for (const auto& vm : state.value("added_vms", json::array())) result.added_vms.push_back(parse_vm(vm));
    result.hostlo = hostlo::GroupTable::from_json(state.value("hostlo_groups", json::array()));
    return result;
}

ShimState parse_records(const Records& records) {
    ShimState result;
    for (const auto& [endpoint, nic] : section_of(records, kNic)) {
        NicRecord record = parse_nic(nic);
        if (record.endpoint != endpoint) throw std::invalid_argument("NIC record " + endpoint + " holds endpoint " + record.endpoint);
        result.nics[endpoint] = std::move(record);
    }
    json ipam = json::object();
    for (const auto& [network, pool] : section_of(records, kPool)) (ipam[network] = pool)["leases"] = json::object();
    for (const auto& [key, owner] : section_of(records, kLease)) {
        const auto slash = key.rfind('/');
        if (slash == std::string::npos || !ipam.contains(key.substr(0, slash))) throw std::invalid_argument("lease " + key + " of no pool");
        ipam[key.substr(0, slash)]["leases"][key.substr(slash + 1)] = owner;
    }
    result.ipam = Ipam::from_json(ipam);  // validates every address and owner
    for (const auto& [name, network] : section_of(records, kNetwork)) result.added_networks.push_back(parse_network(network));
    for (const auto& [name, vm] : section_of(records, kVm)) result.added_vms.push_back(parse_vm(vm));
    json groups = json::array();
    for (const auto& [name, group] : section_of(records, kHostlo)) groups.push_back(group);
    result.hostlo = hostlo::GroupTable::from_json(groups);
    return result;
}

}  // namespace

json to_json(const ShimState& state) {
    json nics = json::array(), networks = json::array(), vms = json::array();
    for (const auto& [endpoint, nic] : state.nics) nics.push_back(nic_json(nic));
    for (const auto& network : state.added_networks) networks.push_back(to_json(network));
    for (const auto& vm : state.added_vms) vms.push_back(to_json(vm));
    return {{"version", 1}, {"ipam", state.ipam.to_json()}, {"nics", nics}, {"added_networks", networks}, {"added_vms", vms},
            {"hostlo_groups", state.hostlo.to_json()}};
}

Journal::Journal(std::string directory) : records_(directory + "/state.json") {}

ShimState Journal::load() {
    ShimState result;
    try {
        const auto records = records_.load([](const json& document) {
            Journal::Saved none;
            Records converted;
            for (const auto& change : changes_since(none, parse_version1(document)).first) converted[change.section][change.key] = *change.value;
            return converted;
        });
        if (records) {
            try {
                result = parse_records(*records);
            } catch (const std::exception& e) {
                throw std::runtime_error("the state file " + path() + " is corrupt (" + e.what() + ")");
            }
        }
    } catch (const std::exception& e) {
        throw ShimError(ErrorKind::Backend, std::string(e.what()) + "; move it away to start from scratch, then let reconcile remove what it finds in OVS");
    }
    saved_ = Saved{};
    changes_since(saved_, result).second();
    return result;
}

void Journal::save(const ShimState& state) {
    auto [changes, sync] = changes_since(saved_, state);
    try {
        records_.save(changes);
    } catch (const std::exception& e) {
        throw ShimError(ErrorKind::Backend, e.what());
    }
    sync();
}

}  // namespace brfusion::shim
