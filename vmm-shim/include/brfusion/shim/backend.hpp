#pragma once
// VmmBackend: how NICs reach one VM. One instance per VM, made by make_backend() from its config.
// Backends: netns (the "VM" is a network namespace), qmp (a QEMU VM driven over its monitor),
// libvirt (a libvirt domain, through the libvirt C API).
//
// Contract for every method: idempotent (the state asked for may already be there, partly or
// wholly, after a crash); blocks until done; throws ShimError(Backend) saying what failed.

#include "brfusion/shim/config.hpp"

#include <memory>
#include <string>
#include <vector>

namespace brfusion::shim {

struct NicDevice {
    std::string host_if;   // host-side device, also the OVS port name (<= 15 characters)
    std::string guest_if;  // the name the NIC gets in the VM where the backend picks it
    std::string mac;       // what the guest sees
    int mtu = 1500;
};

class VmmBackend {
public:
    virtual ~VmmBackend() = default;

    // Creates the host side of the NIC (veth end, TAP, ...), up, so that it can join OVS; the host's
    // own IP stack ignores it (it is only a switch port: no ARP answers, no IPv4, no IPv6 there).
    // Idempotent: on an existing one, it makes sure of the rest.
    virtual void create_host_device(const NicDevice& nic) = 0;
    // Plugs the NIC into the VM: on return the VM has (netns) or is being given (a real VM's
    // kernel sees a hot-plugged device within a fraction of a second) a NIC with nic.mac and
    // nic.mtu, down. Returns where the guest finds it: its PCI address ("0000:01:00.0") in a real
    // VM, "" in a netns. ShimError(Exhausted) when the VM has no room for another NIC.
    virtual std::string plug(const NicDevice& nic) = 0;
    // On return the VM no longer has the NIC, wherever inside the VM it was moved to.
    virtual void unplug(const NicDevice& nic) = 0;
    // Removes the host side.
    virtual void delete_host_device(const NicDevice& nic) = 0;

    // For reconcile: what exists now.
    virtual bool host_device_exists(const NicDevice& nic) = 0;
    virtual bool plugged(const NicDevice& nic) = 0;
    // The host_if of every NIC brfusion plugged into the VM that is there now, as far as the VM
    // itself tells (reconcile unplugs those the journal does not know). A backend whose NICs are
    // found only through their host side (netns) returns none.
    virtual std::vector<std::string> plugged_nics() = 0;
};

// "0000:BB:00.0": where the guest finds the device at slot 0 behind the PCIe root port whose
// secondary bus is `bus` (how the qmp and libvirt backends plug NICs).
std::string pci_address_behind_port(int bus);

struct BackendContext {
    std::string host_netns;  // where OVS and host devices live ("" = the shim's own)
    bool checksum_offload = false;  // guests keep TX checksum offload (ShimConfig::userspace_tso)
};

// Throws ShimError(BadRequest) for a backend this build does not have.
std::unique_ptr<VmmBackend> make_backend(const VmConfig& vm, const BackendContext& context);

}  // namespace brfusion::shim
