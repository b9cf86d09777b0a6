#pragma once
// The libvirt backend: the VM is a running libvirt domain (QEMU, q35, with ACPI and spare
// pcie-root-ports: `brfusionctl vm prepare` adds them), driven through the libvirt C API.
//
// A NIC is a persistent TAP the shim makes (host_if; it joins OVS), live-attached as
// <interface type='ethernet'><target dev=TAP managed='no'/> with the NIC's MAC and MTU, the alias
// ua-bf-nic-HOST_IF and a PCI address at slot 0 behind a free root port. libvirt opens the TAP by
// name, so libvirtd must run in the network namespace of the TAPs (the host netns). unplug detaches
// by alias and waits for libvirt's DEVICE_REMOVED event for that alias; only then may the TAP go.
// Reconcile reads the live domain XML: the aliases say which NICs are brfusion's.
// The PCI address reported is 0000:<root port index>:00.0: libvirt's root-port index is the bus
// number the guest's firmware gives that port when the ports sit on pcie.0 in index order
// (libvirt's q35 layout).
//
// libvirt events need an event loop: the first LibvirtBackend starts one thread running
// virEventRunDefaultImpl for the whole process.

#include "brfusion/shim/backend.hpp"
#include "brfusion/shim/backends/libvirt_xml.hpp"

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <set>
#include <string>

struct _virDomain;
using virDomain = _virDomain;
using virDomainPtr = _virDomain*;

namespace brfusion::shim {

// `brfusionctl vm prepare`: makes the persistent definition of `domain` ready for brfusion (at
// least `spare_ports` free pcie-root-ports, the guest channel connecting to `channel_path`; see
// libvirt_xml::prepare_domain) and redefines it; it takes effect at the domain's next start.
// Returns the layout libvirt defined. ShimError(Backend) with libvirt's message on failure.
libvirt_xml::DomainLayout prepare_libvirt_domain(const std::string& uri, const std::string& domain, int spare_ports, const std::string& channel_path);

class LibvirtBackend final : public VmmBackend {
public:
    // `uri`: libvirt's connection URI (qemu:///system); `domain`: the domain's name.
    // `release`: how long unplug waits for the guest to let the device go.
    LibvirtBackend(std::string vm, std::string uri, std::string domain, std::string host_netns,
                   std::chrono::milliseconds release = std::chrono::seconds(10));
    ~LibvirtBackend() override;

    void create_host_device(const NicDevice& nic) override;
    // ShimError(Exhausted) naming the ports and `brfusionctl vm prepare` when every root port holds
    // a device; ShimError(Backend) with libvirt's message when the domain is not running or refuses.
    std::string plug(const NicDevice& nic) override;
    // ShimError(Backend) if the guest does not release the device within `release`; the NIC then
    // stays as it is (the TAP too) for a later retry.
    void unplug(const NicDevice& nic) override;
    void delete_host_device(const NicDevice& nic) override;
    bool host_device_exists(const NicDevice& nic) override;
    bool plugged(const NicDevice& nic) override;
    std::vector<std::string> plugged_nics() override;

    // libvirt calls this (on its event thread) for every DEVICE_REMOVED of any domain.
    void device_removed(const std::string& domain, const std::string& alias);

private:
    struct Connection;
    // The domain, on the one connection (opened, or opened again if libvirtd restarted); throws
    // when libvirt cannot be reached or the domain is not running.
    std::unique_ptr<virDomain, void (*)(virDomainPtr)> running_domain();
    // What the running domain's live XML says.
    libvirt_xml::DomainLayout layout();
    std::string describe() const;  // "VM vm1 (libvirt domain d1)"

    std::string vm_;
    std::string uri_;
    std::string domain_;
    std::string host_netns_;
    std::chrono::milliseconds release_;
    std::unique_ptr<Connection> connection_;  // opened on first use, again if it dies
    std::mutex removed_mutex_;
    std::condition_variable removed_changed_;
    std::set<std::string> removed_;  // aliases libvirt said are gone, since each detach began
};

}  // namespace brfusion::shim
