#include "brfusion/shim/host_switch.hpp"

#include "brfusion/ovs/client.hpp"
#include "brfusion/shim/error.hpp"
#include "iproute.hpp"

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

void OvsHostSwitch::ensure_bridge() {
    translate([&] { client_.ensure_bridge({bridge_, "netdev", {{"brfusion-bridge", "integration"}}}); });
}

void OvsHostSwitch::add_port(const std::string& name, int tag, const Labels& labels) {
    translate([&] { client_.ensure_port({bridge_, name, ovs::PortType::System, tag, labels, ""}); });
}

void OvsHostSwitch::ensure_gateway(const std::string& port, int tag, const Labels& labels, const std::string& address_cidr, int mtu) {
    translate([&] { client_.ensure_port({bridge_, port, ovs::PortType::Internal, tag, labels, ""}); });
    iproute::ip(host_netns_, {"addr", "replace", address_cidr, "dev", port});
    iproute::ip(host_netns_, {"link", "set", port, "mtu", std::to_string(mtu), "up"});
    iproute::disable_tx_offload(host_netns_, port);
}

void OvsHostSwitch::remove_port(const std::string& name) {
    translate([&] { client_.remove_port(name); });
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
