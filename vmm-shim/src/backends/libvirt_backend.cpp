#include "brfusion/shim/backends/libvirt_backend.hpp"

#include "../host_tools.hpp"
#include "brfusion/shim/backends/libvirt_xml.hpp"
#include "brfusion/shim/error.hpp"

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include <thread>

namespace brfusion::shim {

namespace {

void quiet_libvirt_errors() {
    virSetErrorFunc(nullptr, [](void*, virErrorPtr) {});  // libvirt would print them; we throw them instead
}

// One event loop for the process.
void start_event_loop() {
    static std::once_flag started;
    std::call_once(started, [] {
        quiet_libvirt_errors();
        if (virEventRegisterDefaultImpl() < 0) throw ShimError(ErrorKind::Backend, "libvirt: cannot set up its event loop");
        std::thread([] {
            for (;;)
                if (virEventRunDefaultImpl() < 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }).detach();
    });
}

std::string last_error() {
    const char* message = virGetLastErrorMessage();
    return message ? message : "unknown libvirt error";
}

void on_device_removed(virConnectPtr, virDomainPtr domain, const char* alias, void* backend) {
    static_cast<LibvirtBackend*>(backend)->device_removed(virDomainGetName(domain), alias ? alias : "");
}

using Domain = std::unique_ptr<virDomain, decltype(&virDomainFree)>;

// The domain's XML: live (flags 0) or its persistent definition (VIR_DOMAIN_XML_INACTIVE).
// `who` names the domain in the error.
std::string xml_of(virDomainPtr domain, unsigned flags, const std::string& who) {
    char* xml = virDomainGetXMLDesc(domain, flags);
    if (!xml) throw ShimError(ErrorKind::Backend, who + ": cannot read its XML: " + last_error());
    std::string text(xml);
    free(xml);
    return text;
}

}  // namespace

libvirt_xml::DomainLayout prepare_libvirt_domain(const std::string& uri, const std::string& domain_name, int spare_ports, const std::string& channel_path) {
    quiet_libvirt_errors();
    std::unique_ptr<virConnect, decltype(&virConnectClose)> connection(virConnectOpen(uri.c_str()), &virConnectClose);
    if (!connection) throw ShimError(ErrorKind::Backend, "cannot connect to libvirt at " + uri + ": " + last_error());
    Domain domain(virDomainLookupByName(connection.get(), domain_name.c_str()), &virDomainFree);
    if (!domain) throw ShimError(ErrorKind::Backend, last_error());
    const std::string who = "domain " + domain_name;
    // libvirt places controllers it adds itself (the virtio-serial one a channel needs) behind
    // free root ports, so count again after each definition.
    for (int round = 0;; ++round) {
        const std::string prepared = libvirt_xml::prepare_domain(xml_of(domain.get(), VIR_DOMAIN_XML_INACTIVE, who), spare_ports, channel_path);
        Domain defined(virDomainDefineXML(connection.get(), prepared.c_str()), &virDomainFree);
        if (!defined) throw ShimError(ErrorKind::Backend, "libvirt refused the prepared definition of domain " + domain_name + ": " + last_error());
        const auto layout = libvirt_xml::read_layout(xml_of(domain.get(), VIR_DOMAIN_XML_INACTIVE, who));
        if (static_cast<int>(layout.free_root_ports().size()) >= spare_ports || round == 3) return layout;
    }
}

struct LibvirtBackend::Connection {
    virConnectPtr handle = nullptr;
    int callback = -1;
    ~Connection() {
        if (callback >= 0) virConnectDomainEventDeregisterAny(handle, callback);
        if (handle) virConnectClose(handle);
    }
};

LibvirtBackend::LibvirtBackend(std::string vm, std::string uri, std::string domain, std::string host_netns, std::chrono::milliseconds release)
    : vm_(std::move(vm)), uri_(std::move(uri)), domain_(std::move(domain)), host_netns_(std::move(host_netns)), release_(release) {}

LibvirtBackend::~LibvirtBackend() = default;

std::string LibvirtBackend::describe() const { return "VM " + vm_ + " (libvirt domain " + domain_ + " at " + uri_ + ")"; }

void LibvirtBackend::device_removed(const std::string& domain, const std::string& alias) {
    if (domain != domain_) return;
    {
        std::lock_guard lock(removed_mutex_);
        removed_.insert(alias);
    }
    removed_changed_.notify_all();
}

std::unique_ptr<virDomain, void (*)(virDomainPtr)> LibvirtBackend::running_domain() {
    start_event_loop();
    if (connection_ && virConnectIsAlive(connection_->handle) != 1) connection_.reset();  // libvirtd restarted
    if (!connection_) {
        auto connection = std::make_unique<Connection>();
        connection->handle = virConnectOpen(uri_.c_str());
        if (!connection->handle)
            throw ShimError(ErrorKind::Backend, describe() + ": cannot connect to libvirt: " + last_error() + "; is libvirtd running?");
        connection->callback = virConnectDomainEventRegisterAny(connection->handle, nullptr, VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED,
                                                                VIR_DOMAIN_EVENT_CALLBACK(on_device_removed), this, nullptr);
        if (connection->callback < 0) throw ShimError(ErrorKind::Backend, describe() + ": cannot watch device removals: " + last_error());
        connection_ = std::move(connection);
    }
    Domain domain(virDomainLookupByName(connection_->handle, domain_.c_str()), &virDomainFree);
    if (!domain) throw ShimError(ErrorKind::Backend, describe() + ": " + last_error());
    if (virDomainIsActive(domain.get()) != 1) throw ShimError(ErrorKind::Backend, describe() + " is not running; start it (virsh start " + domain_ + ")");
    return {domain.release(), [](virDomainPtr d) { virDomainFree(d); }};
}

libvirt_xml::DomainLayout LibvirtBackend::layout() { return libvirt_xml::read_layout(xml_of(running_domain().get(), 0, describe())); }

void LibvirtBackend::create_host_device(const NicDevice& nic) { tools::ensure_tap(host_netns_, nic.host_if, nic.mtu); }

std::string LibvirtBackend::plug(const NicDevice& nic) {
    const auto domain = running_domain();
    const auto layout = libvirt_xml::read_layout(xml_of(domain.get(), 0, describe()));
    if (auto present = layout.interfaces.find(libvirt_xml::nic_alias(nic.host_if)); present != layout.interfaces.end())
        return pci_address_behind_port(present->second);  // plugged already
    const auto free = layout.free_root_ports();
    if (free.empty())
        throw ShimError(ErrorKind::Exhausted, describe() + " has no free PCIe root port for another NIC: all " + std::to_string(layout.root_ports.size()) +
                                                  " of its root ports hold a device. Add spare ports (brfusionctl vm prepare " + domain_ +
                                                  " --ports N) and restart the domain, or detach a NIC first");
    const std::string xml = libvirt_xml::interface_xml(nic, free.front());
    if (virDomainAttachDeviceFlags(domain.get(), xml.c_str(), VIR_DOMAIN_AFFECT_LIVE) < 0)
        throw ShimError(ErrorKind::Backend, describe() + ": libvirt did not attach NIC " + nic.host_if + ": " + last_error());
    return pci_address_behind_port(free.front());
}

void LibvirtBackend::unplug(const NicDevice& nic) {
    if (!plugged(nic)) return;
    const std::string alias = libvirt_xml::nic_alias(nic.host_if);
    {
        std::lock_guard lock(removed_mutex_);
        removed_.erase(alias);
    }
    std::string refusal;
    if (virDomainDetachDeviceAlias(running_domain().get(), alias.c_str(), VIR_DOMAIN_AFFECT_LIVE) < 0) {
        const std::string said = last_error();  // before plugged() asks libvirt again and resets it
        if (!plugged(nic)) return;              // gone meanwhile
        refusal = " (libvirt said: " + said + ")";  // e.g. an unplug already under way, asked before a restart
    }
    // The guest's ACPI handler releases the device; libvirt then reports DEVICE_REMOVED. After a
    // restart the event may have come and gone, so between short waits look at the domain.
    const auto deadline = std::chrono::steady_clock::now() + release_;
    for (;;) {
        std::unique_lock lock(removed_mutex_);
        const auto slice = std::min(deadline, std::chrono::steady_clock::now() + std::chrono::milliseconds(250));
        if (removed_changed_.wait_until(lock, slice, [&] { return removed_.count(alias) != 0; })) return;
        lock.unlock();
        if (!plugged(nic)) return;
        if (std::chrono::steady_clock::now() >= deadline)
            throw ShimError(ErrorKind::Backend, describe() + " did not release NIC " + nic.host_if + " (" + nic.mac + ") within " +
                                                    std::to_string(release_.count()) + " ms of the detach" + refusal +
                                                    ": is the guest running, with ACPI? The NIC stays until a retry or the next start of brfusion-shim removes it");
    }
}

void LibvirtBackend::delete_host_device(const NicDevice& nic) { tools::delete_link(host_netns_, nic.host_if); }

bool LibvirtBackend::host_device_exists(const NicDevice& nic) { return tools::link_exists(host_netns_, nic.host_if); }

bool LibvirtBackend::plugged(const NicDevice& nic) { return layout().interfaces.count(libvirt_xml::nic_alias(nic.host_if)) != 0; }

std::vector<std::string> LibvirtBackend::plugged_nics() {
    std::vector<std::string> nics;
    for (const auto& [alias, bus] : layout().interfaces)
        if (auto host_if = libvirt_xml::host_if_of_alias(alias); !host_if.empty()) nics.push_back(host_if);
    return nics;
}

}  // namespace brfusion::shim
