#pragma once
// The qmp backend: the VM is a QEMU (q35) started with spare pcie-root-ports and a QMP socket
// (`-qmp unix:PATH,server=on,wait=off`). PCI hot-plug stays on ACPI (q35's default): native PCIe
// hot-plug costs 5 s per unplug here.
//
// A NIC is a persistent TAP the shim makes in the host netns (host_if; it joins OVS). plug opens
// it and hands the fd to QEMU (getfd, netdev_add tap fd=NAME: QEMU never needs a name, privilege
// or netns of its own), then adds a virtio-net-pci with the NIC's MAC and MTU on a free root port
// at addr 0x0 (without it QEMU would take a second device on a busy port that the guest never
// sees). The fd has a vnet header (QEMU reads that from the fd; it refuses vnet_hdr= with fd=),
// so QEMU offers the guest checksum offload, without which the guest's virtio-net turns off
// scatter-gather and GSO and copies every byte it sends; whether the guest may use the offload,
// the attach answer says (AttachResult::checksum_offload). unplug is device_del, then
// waiting for DEVICE_DELETED of that device, then netdev_del; only then may the TAP go.
//
// QEMU ids: device bf-nic-HOST_IF, netdev bf-net-HOST_IF, fd bf-fd-HOST_IF; so the VM itself
// says which NICs are brfusion's (plugged_nics), also after a shim restart.
// Slots: one NIC per root port; the free ports are read from QEMU (query-pci) at each plug.

#include "brfusion/shim/backend.hpp"
#include "brfusion/shim/backends/qmp_client.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <string>
#include <vector>

namespace brfusion::shim {

// A pcie-root-port as QEMU reports it: the port's id (for device_add bus=), the bus behind it,
// and the ids of the devices on that bus.
struct RootPort {
    std::string id;
    int bus = 0;
    std::vector<std::string> devices;
};

// The hot-pluggable ports in a query-pci answer: bridges with an id on the root bus. Pure.
std::vector<RootPort> root_ports(const nlohmann::json& query_pci);

struct QmpTimeouts {
    std::chrono::milliseconds reply{5000};    // each QMP command
    std::chrono::milliseconds release{10000}; // device_del until the guest lets the device go
};

class QmpBackend final : public VmmBackend {
public:
    QmpBackend(std::string vm, std::string qmp_socket, std::string host_netns, QmpTimeouts timeouts = {});

    void create_host_device(const NicDevice& nic) override;
    // ShimError(Exhausted) naming the number of ports and how to add more, when every root port
    // holds a device; QmpError when QEMU refuses (the netdev it added is removed again).
    std::string plug(const NicDevice& nic) override;
    // ShimError(Backend) if the guest does not release the device within timeouts.release; the
    // NIC then stays as it is (the TAP too) for a later retry.
    void unplug(const NicDevice& nic) override;
    void delete_host_device(const NicDevice& nic) override;
    bool host_device_exists(const NicDevice& nic) override;
    bool plugged(const NicDevice& nic) override;
    std::vector<std::string> plugged_nics() override;

private:
    // The ids of the devices QEMU's command line and device_add created.
    std::vector<std::string> peripherals();
    void forget_netdev(const std::string& host_if);

    std::string vm_;
    std::string host_netns_;
    QmpTimeouts timeouts_;
    QmpClient qmp_;
};

}  // namespace brfusion::shim
