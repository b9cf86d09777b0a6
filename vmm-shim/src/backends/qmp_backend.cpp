#include "brfusion/shim/backends/qmp_backend.hpp"

#include "../host_tools.hpp"
#include "brfusion/shim/error.hpp"

#include <unistd.h>


namespace brfusion::shim {

using nlohmann::json;

namespace {

const std::string kDevicePrefix = "bf-nic-";
std::string device_id(const NicDevice& nic) { return kDevicePrefix + nic.host_if; }
std::string netdev_id(const std::string& host_if) { return "bf-net-" + host_if; }
std::string fd_name(const std::string& host_if) { return "bf-fd-" + host_if; }

bool is_not_found(const QmpError& error) { return error.error_class() == "DeviceNotFound" || std::string(error.what()).find("not found") != std::string::npos; }

}  // namespace

std::vector<RootPort> root_ports(const json& query_pci) {
    std::vector<RootPort> ports;
    for (const auto& bus : query_pci) {
        if (bus.value("bus", -1) != 0) continue;
        for (const auto& device : bus.value("devices", json::array())) {
            if (!device.contains("pci_bridge") || device.value("qdev_id", "").empty()) continue;
            RootPort port{device["qdev_id"].get<std::string>(), device["pci_bridge"]["bus"].value("secondary", 0), {}};
            for (const auto& child : device["pci_bridge"].value("devices", json::array()))
                port.devices.push_back(child.value("qdev_id", ""));
            ports.push_back(std::move(port));
        }
    }
    return ports;
}

QmpBackend::QmpBackend(std::string vm, std::string qmp_socket, std::string host_netns, QmpTimeouts timeouts)
    : vm_(vm), host_netns_(std::move(host_netns)), timeouts_(timeouts), qmp_(std::move(vm), std::move(qmp_socket), timeouts.reply) {}

void QmpBackend::create_host_device(const NicDevice& nic) { tools::ensure_tap(host_netns_, nic.host_if, nic.mtu); }

std::string QmpBackend::plug(const NicDevice& nic) {
    const auto ports = root_ports(qmp_.execute("query-pci"));
    for (const auto& port : ports)
        for (const auto& device : port.devices)
            if (device == device_id(nic)) return pci_address_behind_port(port.bus);  // plugged already
    const RootPort* free = nullptr;
    for (const auto& port : ports)
        if (port.devices.empty()) {
            free = &port;
            break;
        }
    if (!free)
        throw ShimError(ErrorKind::Exhausted,
                        "VM " + vm_ + " has no free PCIe root port for another NIC: all " + std::to_string(ports.size()) +
                            " of its hot-plug ports hold a device. Start it with more spare ports (-device "
                            "pcie-root-port,id=ID,chassis=N,bus=pcie.0,addr=SLOT.FN), or detach a NIC first");

    forget_netdev(nic.host_if);  // one left by a crash between netdev_add and device_add
    const int tap = tools::open_tap(host_netns_, nic.host_if);
    try {
        qmp_.execute("getfd", {{"fdname", fd_name(nic.host_if)}}, tap);
    } catch (...) {
        ::close(tap);
        throw;
    }
    ::close(tap);  // QEMU holds its own copy now
    qmp_.execute("netdev_add", {{"type", "tap"}, {"id", netdev_id(nic.host_if)}, {"fd", fd_name(nic.host_if)}});
    try {
        qmp_.execute("device_add", {{"driver", "virtio-net-pci"},
                                    {"id", device_id(nic)},
                                    {"netdev", netdev_id(nic.host_if)},
                                    {"mac", nic.mac},
                                    {"host_mtu", nic.mtu},
                                    {"bus", free->id},
                                    {"addr", "0x0"}});
    } catch (...) {
        forget_netdev(nic.host_if);
        throw;
    }
    return pci_address_behind_port(free->bus);
}

void QmpBackend::unplug(const NicDevice& nic) {
    const std::string id = device_id(nic);
    if (plugged(nic)) {
        qmp_.clear_events();
        std::string refusal;
        try {
            qmp_.execute("device_del", {{"id", id}});
        } catch (const QmpError& error) {
            if (is_not_found(error)) return forget_netdev(nic.host_if);  // gone meanwhile
            refusal = std::string(" (QEMU said: ") + error.what() + ")";  // e.g. an unplug already under way, sent before a restart
        }
        // The guest's ACPI handler releases the device; QEMU then says DEVICE_DELETED. After a
        // restart the event may have come and gone, so between short waits look for the device.
        const auto deadline = QmpClient::Clock::now() + timeouts_.release;
        for (;;) {
            const auto slice = std::min(deadline, QmpClient::Clock::now() + std::chrono::milliseconds(250));
            try {
                qmp_.wait_event("DEVICE_DELETED", [&](const json& data) { return data.value("device", "") == id; }, slice);
                break;
            } catch (const ShimError&) {
                if (!plugged(nic)) break;
                if (QmpClient::Clock::now() >= deadline)
                    throw ShimError(ErrorKind::Backend, "VM " + vm_ + " did not release NIC " + nic.host_if + " (" + nic.mac + ") within " +
                                                            std::to_string(timeouts_.release.count()) +
                                                            " ms of device_del" + refusal + ": is the guest running, with ACPI hot-plug? The NIC stays "
                                                            "until a retry or the next start of brfusion-shim removes it");
            }
        }
    }
    forget_netdev(nic.host_if);
}

void QmpBackend::forget_netdev(const std::string& host_if) {
    try {
        qmp_.execute("netdev_del", {{"id", netdev_id(host_if)}});
    } catch (const QmpError& error) {
        if (!is_not_found(error)) throw;
    }
    try {
        qmp_.execute("closefd", {{"fdname", fd_name(host_if)}});  // a getfd that netdev_add never took
    } catch (const QmpError&) {
        // Not there: the usual case, netdev_add took it.
    }
}

void QmpBackend::delete_host_device(const NicDevice& nic) { tools::delete_link(host_netns_, nic.host_if); }

bool QmpBackend::host_device_exists(const NicDevice& nic) { return tools::link_exists(host_netns_, nic.host_if); }

bool QmpBackend::plugged(const NicDevice& nic) {
    for (const auto& device : peripherals())
        if (device == device_id(nic)) return true;
    return false;
}

std::vector<std::string> QmpBackend::plugged_nics() {
    std::vector<std::string> nics;
    for (const auto& device : peripherals())
        if (device.starts_with(kDevicePrefix)) nics.push_back(device.substr(kDevicePrefix.size()));
    return nics;
}

std::vector<std::string> QmpBackend::peripherals() {
    std::vector<std::string> ids;
    for (const auto& entry : qmp_.execute("qom-list", {{"path", "/machine/peripheral"}}))
        if (entry.value("type", "").starts_with("child<")) ids.push_back(entry.value("name", ""));
    return ids;
}

}  // namespace brfusion::shim
