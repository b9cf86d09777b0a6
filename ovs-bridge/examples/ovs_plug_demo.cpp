// ovs_plug_demo: what brfusion-shim will do on OVS for each container, shown with ovs-bridge alone
// (the quickstart runs it until the shim exists). It plugs one port per container of two "VMs"
// into the integration bridge, tagged with its network's VLAN and labelled with brfusion-*
// external_ids, prints what OVS reports, and removes it all again with `unplug`.
//
//   ovs_plug_demo DB_SOCKET plug|unplug

#include "brfusion/ovs/client.hpp"

#include <cstdio>
#include <string>

using namespace brfusion::ovs;

namespace {
struct Container {
    const char* vm;
    const char* network;
    int tag;
    const char* endpoint;
};
constexpr Container kContainers[] = {{"vm1", "web", 100, "ep-web-1"}, {"vm2", "web", 100, "ep-web-2"}, {"vm1", "db", 200, "ep-db-1"}};

std::string port_name(const Container& c) { return std::string("bf-") + c.endpoint; }
}  // namespace

int main(int argc, char** argv) {
    if (argc != 3 || (std::string(argv[2]) != "plug" && std::string(argv[2]) != "unplug")) {
        std::fprintf(stderr, "usage: %s DB_SOCKET plug|unplug\n", argv[0]);
        return 2;
    }
    ClientOptions options;
    options.socket_path = argv[1];
    try {
        OvsClient ovs(options);
        if (std::string(argv[2]) == "unplug") {
            for (const auto& c : kContainers) ovs.remove_port(port_name(c));
            ovs.remove_bridge("br-int");
            std::printf("unplugged; brfusion-owned ports left: %zu\n", ovs.list_owned().ports.size());
            return 0;
        }
        ovs.ensure_bridge({"br-int", "netdev", {{"brfusion-bridge", "integration"}}});
        std::printf("%-14s %-4s %-8s %-5s %-7s %s\n", "PORT", "VM", "NETWORK", "VLAN", "OFPORT", "MAC");
        for (const auto& c : kContainers) {
            const InterfaceRow iface = ovs.ensure_port(
                {"br-int", port_name(c), PortType::Internal, c.tag,
                 {{"brfusion-vm", c.vm}, {"brfusion-network", c.network}, {"brfusion-endpoint", c.endpoint}}, ""});
            std::printf("%-14s %-4s %-8s %-5d %-7lld %s\n", iface.name.c_str(), c.vm, c.network, c.tag,
                        static_cast<long long>(iface.ofport.value_or(-1)), iface.mac_in_use.value_or("?").c_str());
        }
        return 0;
    } catch (const OvsError& e) {
        std::fprintf(stderr, "ovs_plug_demo: %s\n", e.what());
        return 1;
    }
}
