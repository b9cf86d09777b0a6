#include "brfusion/shim/host_switch.hpp"

#include "brfusion/ovs/client.hpp"
#include "brfusion/shim/error.hpp"
#include "host_tools.hpp"

#include <sys/stat.h>

namespace brfusion::shim {

namespace {
// OVS failures are backend failures for the shim; OVS's message already says what to do.
template <typename F>
auto translate(F&& operation) {
    try {
        return operation();
    } catch (const ovs::OvsError& e) {
        throw ShimError(ErrorKind::Backend, std::string("Open vSwitch: ") + e.what());
    }
}
}  // namespace

OvsHostSwitch::OvsHostSwitch(ovs::OvsClient& client, std::string bridge, std::string host_netns, const std::string& ovsdb_socket)
    : client_(client),
      bridge_(std::move(bridge)),
      host_netns_(std::move(host_netns)),
      management_socket_(ovs::PortRules::socket_of(ovsdb_socket, bridge_).substr(5)),  // without "unix:"
      rules_(client, ovsdb_socket, bridge_),
      ports_(client),
      rules_changes_([this](const std::vector<PortRulesChange>& changes) { return secure_together(changes); }) {}

void OvsHostSwitch::secure_ports(const std::map<std::string, PortSecurity>& ports) {
    translate([&] { rules_changes_.run(ports); });
}

// One flow-table change for all (a later call's rules for a port replace an earlier one's, as
// they would one after the other); if it fails, each alone, so that each caller hears its own.
std::vector<std::exception_ptr> OvsHostSwitch::secure_together(const std::vector<PortRulesChange>& changes) {
    if (changes.size() > 1) {
        PortRulesChange all;
        for (const auto& change : changes)
            for (const auto& [port, rules] : change) all.insert_or_assign(port, rules);
        try {
            rules_.secure(all);
            return std::vector<std::exception_ptr>(changes.size());
        } catch (...) {  // one port may be at fault
        }
    }
    return run_each_alone(changes, [&](const PortRulesChange& change) { rules_.secure(change); });
}

void OvsHostSwitch::unsecure_port(const std::string& port) {
    translate([&] { rules_.unsecure(port); });
}

std::set<std::string> OvsHostSwitch::secured_ports(const std::set<std::string>& ports) {
    return translate([&] { return rules_.secured(ports); });
}

int OvsHostSwitch::prune_port_security(const std::set<std::string>& keep) {
    return translate([&] { return rules_.prune(keep); });
}

std::string OvsHostSwitch::generation() {
    // ovs-vswitchd makes BRIDGE.mgmt anew whenever it starts or makes the bridge; the bridge's row
    // is new when an admin made the bridge again.
    struct stat socket {};
    const std::string made = ::stat(management_socket_.c_str(), &socket) == 0
                                 ? std::to_string(socket.st_ino) + "." + std::to_string(socket.st_ctim.tv_sec) + "." + std::to_string(socket.st_ctim.tv_nsec)
                                 : "none";
    const auto row = client_.bridge(bridge_);
    return made + "/" + (row ? row->uuid : std::string("none"));
}

bool OvsHostSwitch::userspace_tso() {
    translate([&] { client_.wait_ready(); });  // the client connects in the background
    bool enabled = false;
    client_.read([&](const ovs::Replica& replica) {
        const auto root = replica.root();
        if (!root) return;
        const auto setting = root->other_config.find("userspace-tso-enable");
        enabled = setting != root->other_config.end() && setting->second == "true";
    });
    return enabled;
}

void OvsHostSwitch::ensure_bridge() {
    translate([&] { client_.ensure_bridge({bridge_, "netdev", {{"brfusion-bridge", "integration"}}}); });
}

void OvsHostSwitch::add_port(const std::string& name, int tag, const Labels& labels) {
    translate([&] { ports_.ensure_port({bridge_, name, ovs::PortType::System, tag, labels, ""}); });
}

void OvsHostSwitch::ensure_gateway(const std::string& port, int tag, const Labels& labels, const std::string& address_cidr, int mtu) {
    translate([&] { client_.ensure_port({bridge_, port, ovs::PortType::Internal, tag, labels, ""}); });
    tools::ip(host_netns_, {"addr", "replace", address_cidr, "dev", port});
    tools::ip(host_netns_, {"link", "set", port, "mtu", std::to_string(mtu), "up"});
    tools::disable_tx_offload(host_netns_, port);
}

void OvsHostSwitch::remove_port(const std::string& name) {
    translate([&] { client_.remove_port(name); });
}

void OvsHostSwitch::remove_label(const std::string& port, const std::string& key) {
    translate([&] {
        client_.clear_external_ids(ovs::Table::Port, port, {key});
        client_.clear_external_ids(ovs::Table::Interface, port, {key});
    });
}

std::map<std::string, std::string> OvsHostSwitch::ports_labelled(const std::string& key) {
    return translate([&] {
        std::map<std::string, std::string> result;
        for (const auto& info : client_.list_owned().ports)
            if (auto label = info.port.external_ids.find(key); label != info.port.external_ids.end()) result[info.port.name] = label->second;
        return result;
    });
}

}  // namespace brfusion::shim
