#pragma once
// The libvirt domain XML the libvirt backend and `brfusionctl vm prepare` read and write. Pure
// functions over XML text (libxml2), unit-tested without libvirt; each throws
// ShimError(BadRequest) naming the problem when the XML cannot be parsed.

#include "brfusion/shim/backend.hpp"

#include <map>
#include <set>
#include <string>
#include <vector>

namespace brfusion::shim::libvirt_xml {

// The guest-channel port the plugin looks for in the guest.
inline constexpr const char* kChannelName = "org.brfusion.shim.0";

// The alias a brfusion NIC gets in the domain ("ua-" is libvirt's prefix for user aliases).
std::string nic_alias(const std::string& host_if);
// The host_if of a brfusion NIC alias; "" for any other alias.
std::string host_if_of_alias(const std::string& alias);

// What a domain's XML says about hot-plug.
struct DomainLayout {
    std::vector<int> root_ports;  // index of every pcie-root-port controller (= the bus behind it)
    std::set<int> used_buses;     // buses some device's PCI address is on
    std::map<std::string, int> interfaces;  // alias -> bus, of every <interface> on a PCI address
    bool acpi = false;                 // <features><acpi/>: without it QEMU hot-plugs natively (5 s per unplug)
    std::string channel;               // the unix path of the org.brfusion.shim.0 channel, "" if none

    // Root ports with no device behind them, lowest first.
    std::vector<int> free_root_ports() const;
};
DomainLayout read_layout(const std::string& domain_xml);

// <interface type='ethernet'> on the existing TAP nic.host_if (managed='no': libvirt neither
// makes nor removes it), virtio with nic.mac and nic.mtu, aliased, at slot 0 behind root port
// `bus`. libvirt opens a virtio NIC's TAP with a vnet header, so the guest is offered checksum
// offload; whether it may use it, the attach answer says (AttachResult::checksum_offload).
std::string interface_xml(const NicDevice& nic, int bus);

// `domain_xml` (a domain's persistent XML) with at least `spare_ports` free pcie-root-ports and the
// guest channel org.brfusion.shim.0 connecting (reconnecting every second) to `channel_path`;
// existing ports and an existing brfusion channel are kept (its path updated). Idempotent.
std::string prepare_domain(const std::string& domain_xml, int spare_ports, const std::string& channel_path);

}  // namespace brfusion::shim::libvirt_xml
