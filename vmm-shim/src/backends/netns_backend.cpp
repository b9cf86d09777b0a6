#include "brfusion/shim/backends/netns_backend.hpp"

#include "../host_tools.hpp"
#include "brfusion/shim/error.hpp"

namespace brfusion::shim {

NetnsBackend::NetnsBackend(std::string vm_netns, std::string host_netns, bool checksum_offload)
    : vm_netns_(std::move(vm_netns)), host_netns_(std::move(host_netns)), checksum_offload_(checksum_offload) {}

void NetnsBackend::create_host_device(const NicDevice& nic) {
    if (!tools::link_exists(host_netns_, nic.host_if)) {
        const std::string mtu = std::to_string(nic.mtu);
        tools::ip(host_netns_, {"link", "add", nic.host_if, "mtu", mtu, "type", "veth", "peer", "name", nic.guest_if, "mtu", mtu,
                                  "address", nic.mac});
    }
    tools::keep_out_of_host_stack(host_netns_, nic.host_if);
    tools::ip(host_netns_, {"link", "set", nic.host_if, "up"});
}

std::string NetnsBackend::plug(const NicDevice& nic) {
    if (tools::link_exists(vm_netns_, nic.guest_if)) return "";
    if (!tools::link_exists(host_netns_, nic.guest_if)) {
        if (tools::link_exists(host_netns_, nic.host_if)) return "";  // the peer was moved on inside the VM
        throw ShimError(ErrorKind::Backend, "cannot plug " + nic.guest_if + " into netns " + vm_netns_ + ": its host side " + nic.host_if +
                                                " does not exist");
    }
    tools::ip(host_netns_, {"link", "set", nic.guest_if, "netns", vm_netns_});
    if (!checksum_offload_) tools::disable_tx_offload(vm_netns_, nic.guest_if);
    return "";
}

void NetnsBackend::unplug(const NicDevice& nic) {
    tools::delete_link(host_netns_, nic.host_if);
}

void NetnsBackend::delete_host_device(const NicDevice& nic) {
    unplug(nic);
    // A peer never moved (crash between create and plug) survives only if host_if is gone already.
    tools::delete_link(host_netns_, nic.guest_if);
}

bool NetnsBackend::host_device_exists(const NicDevice& nic) { return tools::link_exists(host_netns_, nic.host_if); }

bool NetnsBackend::plugged(const NicDevice& nic) {
    return tools::link_exists(host_netns_, nic.host_if) && !tools::link_exists(host_netns_, nic.guest_if);
}

}  // namespace brfusion::shim
