#include "brfusion/shim/nic_manager.hpp"

#include "brfusion/shim/error.hpp"

#include <algorithm>
#include <cstdio>
#include <random>

namespace brfusion::shim {

namespace {

std::string join(const std::vector<std::string>& items) {
    std::string joined;
    for (const auto& item : items) joined += (joined.empty() ? "" : ", ") + item;
    return joined.empty() ? "none" : joined;
}

std::string random_hex(std::size_t digits) {
    static std::mt19937_64 generator{std::random_device{}()};
    static const char* hex = "0123456789abcdef";
    std::string text;
    for (std::size_t i = 0; i < digits; ++i) text += hex[generator() % 16];
    return text;
}

// A NIC's names: its host device and OVS port, and its name in the VM where the backend picks it
// (both within Linux's 15 characters for a 12-digit endpoint).
std::string host_if_of(const std::string& endpoint) { return "bf" + endpoint; }
std::string guest_if_of(const std::string& endpoint) { return "bfg" + endpoint; }

// Locally administered, unicast.
std::string random_mac() {
    std::string mac = "02";
    const std::string bytes = random_hex(10);
    for (std::size_t i = 0; i < bytes.size(); i += 2) mac += ":" + bytes.substr(i, 2);
    return mac;
}

std::string message_of(const std::exception_ptr& error) {
    try {
        std::rethrow_exception(error);
    } catch (const std::exception& e) {
        return e.what();
    }
}

}  // namespace

NicManager::NicManager(ShimConfig config, Journal& journal, HostSwitch& host, BackendFactory make_backend)
    : config_(std::move(config)), journal_(journal), host_(host), make_backend_(std::move(make_backend)) {}

std::string NicManager::gateway_port(const HostNetwork& network) { return "bfgw" + std::to_string(network.tag); }

NicDevice NicManager::device_of(const NicRecord& record) const {
    const HostNetwork* network = config_.network(record.network);
    return {record.host_if, guest_if_of(record.endpoint), record.mac, network ? network->mtu : 1500};
}

VmmBackend& NicManager::backend(const std::string& vm) {
    auto found = backends_.find(vm);
    if (found != backends_.end()) return *found->second;
    const VmConfig* config = config_.vm(vm);
    if (!config) throw ShimError(ErrorKind::NotFound, "VM " + vm + " is not configured");
    return *backends_.emplace(vm, make_backend_(*config)).first->second;
}

ReconcileReport NicManager::start() {
    std::lock_guard lock(mutex_);
    state_ = journal_.load();
    host_.ensure_bridge();
    for (const auto& network : config_.networks) ensure_network(network);
    journal_.save(state_);
    return reconcile();
}

void NicManager::ensure_network(const HostNetwork& network) {
    state_.ipam.add_pool(network.name, network.subnet, network.gateway);
    host_.ensure_gateway(gateway_port(network), network.tag, {{"brfusion-network", network.name}, {"brfusion-gateway", network.gateway.str()}},
                          network.gateway.str() + "/" + std::to_string(network.subnet.length), network.mtu);
}

void NicManager::add_port(const NicRecord& record, const HostNetwork& network) {
    host_.add_port(record.host_if, network.tag,
                    {{"brfusion-vm", record.vm},
                     {"brfusion-network", record.network},
                     {"brfusion-endpoint", record.endpoint},
                     {"brfusion-mac", record.mac},
                     {"attached-mac", record.mac}});  // the OVS convention for "the VM's MAC on this port"
}

const HostNetwork& NicManager::allowed_network(const std::string& vm_name, const std::string& network_name) const {
    const VmConfig* vm = config_.vm(vm_name);
    if (!vm) throw ShimError(ErrorKind::NotFound, "VM " + vm_name + " is not configured on this host");
    const HostNetwork* network = config_.network(network_name);
    if (!network || std::find(vm->networks.begin(), vm->networks.end(), network_name) == vm->networks.end())
        throw ShimError(network ? ErrorKind::NotAllowed : ErrorKind::NotFound,
                        "network " + network_name + (network ? " is not allowed" : " does not exist") + " for VM " + vm_name +
                            "; allowed: " + join(vm->networks));
    return *network;
}

AttachedNic NicManager::attach(const std::string& vm_name, const std::string& network_name, std::optional<Ipv4> requested_ip) {
    std::lock_guard lock(mutex_);
    const HostNetwork* network = &allowed_network(vm_name, network_name);

    NicRecord record;
    do record.endpoint = random_hex(12);
    while (state_.nics.count(record.endpoint));
    record.vm = vm_name;
    record.network = network_name;
    record.host_if = host_if_of(record.endpoint);
    record.mac = random_mac();
    record.ip = state_.ipam.allocate(network_name, vm_name + "/" + record.endpoint, requested_ip);
    record.phase = NicPhase::Attaching;
    state_.nics[record.endpoint] = record;
    try {
        journal_.save(state_);
    } catch (...) {
        state_.nics.erase(record.endpoint);
        state_.ipam.release(network_name, record.ip);
        throw;
    }

    const NicDevice device = device_of(record);
    try {
        VmmBackend& vmm = backend(vm_name);
        vmm.create_host_device(device);
        add_port(record, *network);
        vmm.plug(device);
        record.phase = NicPhase::Attached;
        state_.nics[record.endpoint] = record;
        journal_.save(state_);
    } catch (...) {
        const std::exception_ptr failure = std::current_exception();
        try {
            tear_down(record);
        } catch (const std::exception& cleanup) {
            throw ShimError(ErrorKind::Backend, "attaching a NIC for VM " + vm_name + " to " + network_name + " failed: " + message_of(failure) +
                                                    "; undoing it failed too (" + cleanup.what() + "); the next start of brfusion-shim retries");
        }
        std::rethrow_exception(failure);
    }
    return {record.endpoint, record.mac, device.guest_if, record.ip, network->subnet.length, network->gateway, network->mtu};
}

void NicManager::detach(const std::string& vm, const std::string& endpoint) {
    std::lock_guard lock(mutex_);
    auto found = state_.nics.find(endpoint);
    if (found == state_.nics.end()) return;
    if (found->second.vm != vm) throw ShimError(ErrorKind::NotAllowed, "endpoint " + endpoint + " is not a NIC of VM " + vm);
    tear_down(found->second);
}

void NicManager::tear_down(NicRecord record) {
    if (record.phase == NicPhase::Attached) {
        record.phase = NicPhase::Detaching;
        state_.nics[record.endpoint] = record;
        journal_.save(state_);
    }
    const NicDevice device = device_of(record);
    if (config_.vm(record.vm)) {
        VmmBackend& vmm = backend(record.vm);
        vmm.unplug(device);
        host_.remove_port(record.host_if);
        vmm.delete_host_device(device);
    } else {
        host_.remove_port(record.host_if);  // the VM is gone from the config: its side went with it
    }
    state_.ipam.release(record.network, record.ip);
    state_.nics.erase(record.endpoint);
    journal_.save(state_);
}

ReconcileReport NicManager::reconcile() {
    ReconcileReport report;
    const auto endpoint_ports = host_.ports_labelled("brfusion-endpoint");  // port -> endpoint, before any repair
    std::vector<NicRecord> records;
    for (const auto& [endpoint, record] : state_.nics) records.push_back(record);
    for (const auto& record : records) {
        if (record.phase != NicPhase::Attached) {
            tear_down(record);
            (record.phase == NicPhase::Attaching ? report.undone : report.finished).push_back(record.endpoint);
            continue;
        }
        const HostNetwork* network = config_.network(record.network);
        if (!config_.vm(record.vm) || !network) {
            tear_down(record);  // its VM or network was removed from the config: reclaim
            report.finished.push_back(record.endpoint);
            continue;
        }
        VmmBackend& vmm = backend(record.vm);
        const NicDevice device = device_of(record);
        const bool intact = vmm.host_device_exists(device) && vmm.plugged(device) && endpoint_ports.count(record.host_if);
        if (intact) continue;
        vmm.create_host_device(device);
        add_port(record, *network);
        vmm.plug(device);
        report.repaired.push_back(record.endpoint);
    }
    const auto vms = host_.ports_labelled("brfusion-vm");
    // Read again: the loop above removed the ports of the NICs it tore down.
    for (const auto& [port, endpoint] : host_.ports_labelled("brfusion-endpoint")) {
        if (state_.nics.count(endpoint)) continue;
        host_.remove_port(port);
        if (auto vm = vms.find(port); vm != vms.end() && config_.vm(vm->second))
            backend(vm->second).delete_host_device({port, guest_if_of(endpoint), "", 1500});  // the port that exists
        report.orphans.push_back(port);
    }
    return report;
}

std::vector<Lease> NicManager::leases(const std::string& network) const {
    std::lock_guard lock(mutex_);
    return state_.ipam.has_pool(network) ? state_.ipam.leases(network) : std::vector<Lease>{};
}

std::vector<NicRecord> NicManager::nics(const std::string& vm) const {
    std::lock_guard lock(mutex_);
    std::vector<NicRecord> result;
    for (const auto& [endpoint, record] : state_.nics)
        if (vm.empty() || record.vm == vm) result.push_back(record);
    return result;
}

}  // namespace brfusion::shim
