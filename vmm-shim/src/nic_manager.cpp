#include "brfusion/shim/nic_manager.hpp"

#include "brfusion/hostlo/error.hpp"
#include "brfusion/shim/error.hpp"

#include <algorithm>
#include <cstdio>
#include <random>
#include <set>

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

// The OVS label of a warm-pool NIC that no container has claimed yet.
constexpr const char* kSpareLabel = "brfusion-spare";

// What a NIC's port may send: a spare, nothing.
PortSecurity security_of(const NicRecord& record) {
    return {record.mac, record.spare ? std::nullopt : std::optional<Ipv4>(record.ip)};
}

// Who holds a reserved address in the IPAM: the VM, not yet a NIC.
std::string reservation_of(const std::string& vm) { return vm + "/reserved"; }

// The Hostlo group of a NIC's network, if it is one ("hostlo:GROUP").
std::optional<std::string> group_of(const std::string& network) {
    static const std::string prefix = NicManager::hostlo_network("");
    if (!network.starts_with(prefix)) return std::nullopt;
    return network.substr(prefix.size());
}

// The Hostlo library's errors as the shim's (its messages already name the group).
template <typename F>
auto hostlo_call(F&& operation) {
    try {
        return operation();
    } catch (const hostlo::HostloError& e) {
        switch (e.kind()) {
        case hostlo::ErrorKind::BadRequest: throw ShimError(ErrorKind::BadRequest, e.what());
        case hostlo::ErrorKind::Conflict: throw ShimError(ErrorKind::Conflict, e.what());
        case hostlo::ErrorKind::Exhausted: throw ShimError(ErrorKind::Exhausted, e.what());
        case hostlo::ErrorKind::Backend: break;
        }
        throw ShimError(ErrorKind::Backend, e.what());
    }
}

std::string message_of(const std::exception_ptr& error) {
    try {
        std::rethrow_exception(error);
    } catch (const std::exception& e) {
        return e.what();
    }
}

}  // namespace

NicManager::NicManager(ShimConfig config, Journal& journal, HostSwitch& host, HostFirewall& firewall, hostlo::Segment& hostlo,
                       BackendFactory make_backend)
    : file_config_(std::move(config)),
      config_(file_config_),
      journal_(journal),
      host_(host),
      firewall_(firewall),
      segment_(hostlo),
      make_backend_(std::move(make_backend)) {}

std::string NicManager::gateway_port(const HostNetwork& network) { return "bfgw" + std::to_string(network.tag); }

NicDevice NicManager::device_of(const NicRecord& record) const {
    const auto network = network_of(record.network);
    return {record.host_if, guest_if_of(record.endpoint), record.mac, network ? network->mtu : 1500};
}

std::optional<HostNetwork> NicManager::network_of(const std::string& name) const {
    if (const auto group = group_of(name)) {
        const hostlo::Group* found = state_.hostlo.find(*group);
        return found ? std::optional(group_network(*found)) : std::nullopt;
    }
    const HostNetwork* network = config_.network(name);
    return network ? std::optional(*network) : std::nullopt;
}

HostNetwork NicManager::group_network(const hostlo::Group& group) const {
    HostNetwork network;
    network.name = hostlo_network(group.name);
    network.subnet = group.subnet;
    network.gateway = Ipv4{group.subnet.network.value + 1};
    network.nat = false;
    network.mtu = config_.hostlo.mtu;
    return network;
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
    config_ = file_config_;
    for (const auto& network : state_.added_networks) config_.networks.push_back(network);
    for (const auto& vm : state_.added_vms) config_.vms.push_back(vm);
    try {
        validate(config_);
    } catch (const ShimError& e) {
        throw ShimError(ErrorKind::BadRequest, std::string(e.what()) + " (the config file and the networks and VMs added at run time, in " +
                                                   journal_.path() + ", disagree; take it out of the config file)");
    }
    host_.ensure_bridge();
    for (const auto& network : config_.networks) ensure_network(network);
    for (const auto& [name, group] : state_.hostlo.groups()) hostlo_call([&] { segment_.ensure_group(name); });
    journal_.save(state_);
    ReconcileReport report = reconcile();
    // Members that are no longer configured leave their groups (reconcile removed their NICs).
    const auto groups = state_.hostlo.groups();  // a copy: leaving changes the table
    for (const auto& [name, group] : groups)
        for (const auto& member : group.members)
            if (!config_.vm(member) && state_.hostlo.leave(name, member)) remove_hostlo_group(name);
    reclaim_reservations();
    // Pools of networks that are gone from the config file, now that reconcile released their leases.
    for (const auto& network : state_.ipam.pools())
        if (!config_.network(network) && state_.ipam.leases(network).empty()) state_.ipam.remove_pool(network);
    save_and_apply_firewall();
    return report;
}

void NicManager::save_and_apply_firewall() {
    journal_.save(state_);
    firewall_.apply(rules());
}

FirewallRules NicManager::rules() const {
    FirewallRules rules;
    rules.uplink = config_.uplink;
    for (const auto& network : config_.networks) {
        FirewallRules::Network entry{gateway_port(network), network.subnet, network.nat, {}};
        for (const auto& peer : network.forward_to) entry.forward_to.push_back(gateway_port(*config_.network(peer)));
        rules.networks.push_back(std::move(entry));
    }
    for (const auto& [endpoint, record] : state_.nics)
        for (const auto& port : record.published) rules.published.push_back({port, record.ip});
    return rules;
}

FirewallRules NicManager::firewall_rules() const {
    std::lock_guard lock(mutex_);
    return rules();
}

ShimConfig NicManager::config() const {
    std::lock_guard lock(mutex_);
    return config_;
}

bool NicManager::from_config_file(const std::string& name) const { return file_config_.network(name) || file_config_.vm(name); }

void NicManager::ensure_network(const HostNetwork& network) {
    state_.ipam.add_pool(network.name, network.subnet, network.gateway);
    host_.ensure_gateway(gateway_port(network), network.tag, {{"brfusion-network", network.name}, {"brfusion-gateway", network.gateway.str()}},
                          network.gateway.str() + "/" + std::to_string(network.subnet.length), network.mtu);
}

void NicManager::add_port(const NicRecord& record, const HostNetwork& network) {
    Labels labels{{"brfusion-vm", record.vm},
                  {"brfusion-network", record.network},
                  {"brfusion-endpoint", record.endpoint},
                  {"brfusion-mac", record.mac},
                  {"attached-mac", record.mac}};  // the OVS convention for "the VM's MAC on this port"
    if (record.spare) labels[kSpareLabel] = "true";
    if (const auto group = group_of(record.network)) hostlo_call([&] { segment_.add_member(*group, record.host_if, labels); });
    else host_.add_port(record.host_if, network.tag, labels);
}

void NicManager::remove_port(const NicRecord& record) {
    if (group_of(record.network)) {
        hostlo_call([&] { segment_.remove_member(record.host_if); });
        return;
    }
    host_.unsecure_port(record.host_if);
    host_.remove_port(record.host_if);
}

HostNetwork NicManager::allowed_network(const std::string& vm, const std::string& network) const {
    std::lock_guard lock(mutex_);
    return allowed(vm, network);
}

std::vector<HostNetwork> NicManager::allowed_networks(const std::string& vm_name) const {
    std::lock_guard lock(mutex_);
    const VmConfig* vm = config_.vm(vm_name);
    if (!vm) throw ShimError(ErrorKind::NotFound, "VM " + vm_name + " is not configured on this host");
    std::vector<HostNetwork> result;
    for (const auto& name : vm->networks) result.push_back(allowed(vm_name, name));
    for (const auto& [name, group] : state_.hostlo.groups())
        if (group.members.count(vm_name)) result.push_back(group_network(group));
    return result;
}

HostNetwork NicManager::allowed(const std::string& vm_name, const std::string& network_name) const {
    const VmConfig* vm = config_.vm(vm_name);
    if (!vm) throw ShimError(ErrorKind::NotFound, "VM " + vm_name + " is not configured on this host");
    if (const auto group = group_of(network_name)) {
        const hostlo::Group* found = state_.hostlo.find(*group);
        if (!found || !found->members.count(vm_name))
            throw ShimError(ErrorKind::NotAllowed, "VM " + vm_name + " is not a member of Hostlo group " + *group +
                                                       "; it joins with docker network create -d brfusion --ipam-driver brfusion --ipam-opt group=" +
                                                       *group + " -o mode=hostlo NAME");
        return group_network(*found);
    }
    const HostNetwork* network = config_.network(network_name);
    if (!network || std::find(vm->networks.begin(), vm->networks.end(), network_name) == vm->networks.end())
        throw ShimError(network ? ErrorKind::NotAllowed : ErrorKind::NotFound,
                        "network " + network_name + (network ? " is not allowed" : " does not exist") + " for VM " + vm_name +
                            "; allowed: " + join(vm->networks));
    return *network;
}

NicRecord NicManager::new_record(const std::string& vm, const std::string& network) const {
    NicRecord record;
    do record.endpoint = random_hex(12);
    while (state_.nics.count(record.endpoint));
    record.vm = vm;
    record.network = network;
    record.host_if = host_if_of(record.endpoint);
    record.mac = random_mac();
    record.phase = NicPhase::Attaching;
    return record;
}

void NicManager::build(NicRecord& record, const HostNetwork& network) {
    VmmBackend& vmm = backend(record.vm);
    const NicDevice device = device_of(record);
    vmm.create_host_device(device);
    add_port(record, network);
    if (!group_of(record.network)) host_.secure_port(record.host_if, security_of(record));
    record.pci = vmm.plug(device);
}

void NicManager::undo_attach(const NicRecord& record, const std::exception_ptr& failure) {
    try {
        tear_down(record);
    } catch (const std::exception& cleanup) {
        throw ShimError(ErrorKind::Backend, "attaching a NIC for VM " + record.vm + " to " + record.network + " failed: " + message_of(failure) +
                                                "; undoing it failed too (" + cleanup.what() + "); the next start of brfusion-shim retries");
    }
}

std::optional<NicRecord> NicManager::ready_spare(const std::string& vm, const std::string& network) const {
    for (const auto& [endpoint, record] : state_.nics)
        if (record.spare && record.phase == NicPhase::Attached && record.vm == vm && record.network == network) return record;
    return std::nullopt;
}

AttachedNic NicManager::attach(const std::string& vm_name, const std::string& network_name, std::optional<Ipv4> requested_ip) {
    std::lock_guard lock(mutex_);
    const HostNetwork network = allowed(vm_name, network_name);
    if (const auto group = group_of(network_name))
        for (const auto& [endpoint, other] : state_.nics)
            if (other.vm == vm_name && other.network == network_name)
                throw ShimError(ErrorKind::Conflict, "VM " + vm_name + " has its NIC on Hostlo group " + *group + " already (endpoint " + endpoint +
                                                         "); the containers of one pod in one VM share it: docker run --network container:NAME");

    const std::optional<NicRecord> spare = ready_spare(vm_name, network_name);
    NicRecord record = spare ? *spare : new_record(vm_name, network_name);
    record.spare = false;
    record.phase = NicPhase::Attaching;
    const auto lease = requested_ip ? state_.ipam.lease(network_name, *requested_ip) : std::nullopt;
    const bool reserved = lease && lease->owner == reservation_of(vm_name);
    if (reserved) state_.ipam.release(network_name, *requested_ip);  // taken over just below
    try {
        record.ip = state_.ipam.allocate(network_name, vm_name + "/" + record.endpoint, requested_ip);
    } catch (...) {
        if (reserved) state_.ipam.allocate(network_name, reservation_of(vm_name), *requested_ip);
        throw;
    }
    state_.nics[record.endpoint] = record;
    try {
        journal_.save(state_);
    } catch (...) {
        if (spare) state_.nics[record.endpoint] = *spare;
        else state_.nics.erase(record.endpoint);
        state_.ipam.release(network_name, record.ip);
        if (reserved) state_.ipam.allocate(network_name, reservation_of(vm_name), record.ip);
        throw;
    }

    try {
        if (spare) {  // already plugged: it only gets its address, and stops being a spare
            host_.secure_port(record.host_if, security_of(record));
            host_.remove_label(record.host_if, kSpareLabel);
        } else {
            build(record, network);
        }
        record.phase = NicPhase::Attached;
        state_.nics[record.endpoint] = record;
        journal_.save(state_);
    } catch (...) {
        undo_attach(record, std::current_exception());
        if (reserved) {  // the VM still holds the address it reserved
            state_.ipam.allocate(network_name, reservation_of(vm_name), record.ip);
            journal_.save(state_);
        }
        throw;
    }
    if (spare && spare_claimed_) spare_claimed_();
    return {record.endpoint, record.mac, guest_if_of(record.endpoint), record.ip, network.subnet.length, network.gateway, network.mtu, record.pci};
}

void NicManager::add_spare(const std::string& vm, const HostNetwork& network) {
    NicRecord record = new_record(vm, network.name);
    record.spare = true;
    state_.nics[record.endpoint] = record;
    try {
        journal_.save(state_);
    } catch (...) {
        state_.nics.erase(record.endpoint);
        throw;
    }
    try {
        build(record, network);
        record.phase = NicPhase::Attached;
        state_.nics[record.endpoint] = record;
        journal_.save(state_);
    } catch (...) {
        undo_attach(record, std::current_exception());
        throw;
    }
}

bool NicManager::balance_warm_pool() {
    std::lock_guard lock(mutex_);
    std::map<std::pair<std::string, std::string>, std::vector<NicRecord>> spares;  // (VM, network) -> its spares
    for (const auto& [endpoint, record] : state_.nics) {
        if (!record.spare) continue;
        if (record.phase != NicPhase::Attached) {  // one whose undo failed: finish it before making more
            tear_down(record);
            return true;
        }
        spares[{record.vm, record.network}].push_back(record);
    }
    // Too many first: their slots may be what a missing spare needs.
    for (const auto& [pool, records] : spares) {
        const VmConfig* vm = config_.vm(pool.first);
        const std::size_t wanted = vm && vm->warm_pool.count(pool.second) ? vm->warm_pool.at(pool.second) : 0;
        if (records.size() > wanted) {
            tear_down(records.back());
            return true;
        }
    }
    for (const auto& vm : config_.vms)
        for (const auto& [network, wanted] : vm.warm_pool)
            if (spares[{vm.name, network}].size() < static_cast<std::size_t>(wanted)) {
                add_spare(vm.name, allowed(vm.name, network));
                return true;
            }
    return false;
}

void NicManager::on_spare_claimed(std::function<void()> listener) {
    std::lock_guard lock(mutex_);
    spare_claimed_ = std::move(listener);
}

Ipv4 NicManager::reserve_address(const std::string& vm, const std::string& network, std::optional<Ipv4> requested) {
    std::lock_guard lock(mutex_);
    allowed(vm, network);
    const Ipv4 address = state_.ipam.allocate(network, reservation_of(vm), requested);
    try {
        journal_.save(state_);
    } catch (...) {
        state_.ipam.release(network, address);
        throw;
    }
    return address;
}

void NicManager::release_address(const std::string& vm, const std::string& network, Ipv4 address) {
    std::lock_guard lock(mutex_);
    if (!state_.ipam.has_pool(network)) return;
    const auto lease = state_.ipam.lease(network, address);
    if (!lease || lease->owner != reservation_of(vm)) return;
    state_.ipam.release(network, address);
    journal_.save(state_);
}

// Addresses reserved by VMs that are no longer configured go back to the pools.
void NicManager::reclaim_reservations() {
    for (const auto& network : state_.ipam.pools())
        for (const auto& lease : state_.ipam.leases(network)) {
            const auto slash = lease.owner.rfind('/');
            const std::string vm = lease.owner.substr(0, slash);
            if (lease.owner == reservation_of(vm) && !config_.vm(vm)) state_.ipam.release(network, lease.address);
        }
}

void NicManager::detach(const std::string& vm, const std::string& endpoint) {
    std::lock_guard lock(mutex_);
    const auto found = state_.nics.find(endpoint);
    if (found == state_.nics.end() || found->second.spare) return;
    tear_down(own_record(vm, endpoint));
}

NicRecord& NicManager::own_record(const std::string& vm, const std::string& endpoint) {
    auto found = state_.nics.find(endpoint);
    if (found == state_.nics.end() || found->second.spare) throw ShimError(ErrorKind::NotFound, "VM " + vm + " has no NIC with endpoint " + endpoint);
    if (found->second.vm != vm) throw ShimError(ErrorKind::NotAllowed, "endpoint " + endpoint + " is not a NIC of VM " + vm);
    return found->second;
}

std::vector<PublishedPort> NicManager::publish(const std::string& vm, const std::string& endpoint, std::vector<PublishedPort> ports) {
    std::lock_guard lock(mutex_);
    NicRecord& record = own_record(vm, endpoint);
    if (record.phase != NicPhase::Attached)
        throw ShimError(ErrorKind::Conflict, "endpoint " + endpoint + " is " + phase_name(record.phase) + "; publish its ports once it is attached");
    if (group_of(record.network))
        throw ShimError(ErrorKind::BadRequest, "endpoint " + endpoint + " is on " + record.network +
                                                   ", which has no gateway and no NAT: publish ports on the container's other, regular brfusion network");
    // Two mappings clash when they take the same protocol and port on a common host address.
    const auto clash = [](const PublishedPort& a, const PublishedPort& b) {
        return a.protocol == b.protocol && a.host_port == b.host_port && (!a.host_ip || !b.host_ip || *a.host_ip == *b.host_ip);
    };
    std::vector<std::pair<PublishedPort, const NicRecord*>> taken;  // by other endpoints
    for (const auto& [other_endpoint, other] : state_.nics)
        if (other_endpoint != endpoint)
            for (const auto& port : other.published) taken.emplace_back(port, &other);
    for (std::size_t i = 0; i < ports.size(); ++i) {
        PublishedPort& port = ports[i];
        const auto holder = [&](const PublishedPort& candidate) -> std::string {
            for (const auto& [used, owner] : taken)
                if (clash(used, candidate)) return "endpoint " + owner->endpoint + " of VM " + owner->vm + " (" + describe(used) + ")";
            for (std::size_t j = 0; j < ports.size(); ++j)
                if (j != i && ports[j].host_port != 0 && clash(ports[j], candidate)) return "this request (" + describe(ports[j]) + ")";
            return "";
        };
        if (port.host_port == 0) {
            for (port.host_port = 49153; port.host_port <= 65535 && !holder(port).empty(); ++port.host_port) {
            }
            if (port.host_port > 65535) throw ShimError(ErrorKind::Exhausted, "no free host port in 49153-65535 for " + port.protocol);
        } else if (const std::string owner = holder(port); !owner.empty()) {
            throw ShimError(owner.rfind("this", 0) == 0 ? ErrorKind::BadRequest : ErrorKind::Conflict,
                            describe(port) + ": host port " + std::to_string(port.host_port) + "/" + port.protocol + " is already published by " + owner);
        }
    }
    const std::vector<PublishedPort> before = record.published;
    record.published = ports;
    try {
        save_and_apply_firewall();
    } catch (...) {
        record.published = before;
        try {
            save_and_apply_firewall();
        } catch (...) {  // reconcile rewrites the table from the journal at the next start
        }
        throw;
    }
    return ports;
}

void NicManager::unpublish(const std::string& vm, const std::string& endpoint) {
    std::lock_guard lock(mutex_);
    const auto found = state_.nics.find(endpoint);
    if (found == state_.nics.end() || found->second.spare) return;
    NicRecord& record = own_record(vm, endpoint);
    if (record.published.empty()) return;
    record.published.clear();
    save_and_apply_firewall();
}

void NicManager::tear_down(NicRecord record) {
    // A detach being resumed may have failed to withdraw its published ports from the table.
    const bool resumed = record.phase == NicPhase::Detaching;
    if (record.phase == NicPhase::Attached) {
        record.phase = NicPhase::Detaching;
        state_.nics[record.endpoint] = record;
        journal_.save(state_);
    }
    if (!record.published.empty() || resumed) {
        // Before the address goes back to the pool: a later NIC may get it.
        record.published.clear();
        state_.nics[record.endpoint] = record;
        save_and_apply_firewall();
    }
    const NicDevice device = device_of(record);
    if (config_.vm(record.vm)) backend(record.vm).unplug(device);  // else the VM is gone from the config: its side went with it
    remove_port(record);
    if (config_.vm(record.vm)) backend(record.vm).delete_host_device(device);
    if (!record.spare) state_.ipam.release(record.network, record.ip);
    state_.nics.erase(record.endpoint);
    journal_.save(state_);
}

void NicManager::reconcile_nic(const NicRecord& record, const std::set<std::string>& ports, const std::set<std::string>& secured,
                               ReconcileReport& report) {
    if (record.phase != NicPhase::Attached) {
        tear_down(record);
        (record.phase == NicPhase::Attaching ? report.undone : report.finished).push_back(record.endpoint);
        return;
    }
    const auto network = network_of(record.network);
    const bool hostlo = group_of(record.network).has_value();
    if (!config_.vm(record.vm) || !network) {
        tear_down(record);  // its VM, network or Hostlo group was removed: reclaim
        report.finished.push_back(record.endpoint);
        return;
    }
    VmmBackend& vmm = backend(record.vm);
    const NicDevice device = device_of(record);
    const bool intact = vmm.host_device_exists(device) && vmm.plugged(device) && ports.count(record.host_if) && (hostlo || secured.count(record.host_if));
    if (intact) return;
    vmm.create_host_device(device);
    add_port(record, *network);
    if (!hostlo) host_.secure_port(record.host_if, security_of(record));
    state_.nics[record.endpoint].pci = vmm.plug(device);
    report.repaired.push_back(record.endpoint);
}

ReconcileReport NicManager::reconcile() {
    ReconcileReport report;
    std::set<std::string> ports;  // container and group member ports, before any repair
    for (const auto& [port, endpoint] : host_.ports_labelled("brfusion-endpoint")) ports.insert(port);
    for (const auto& [group, members] : hostlo_call([&] { return segment_.groups(); })) ports.insert(members.begin(), members.end());
    std::vector<NicRecord> records;
    std::set<std::string> attached_ports;
    for (const auto& [endpoint, record] : state_.nics) {
        records.push_back(record);
        if (record.phase == NicPhase::Attached) attached_ports.insert(record.host_if);
    }
    const auto secured = host_.secured_ports(attached_ports);
    for (const auto& record : records) {
        try {
            reconcile_nic(record, ports, secured, report);
        } catch (const ShimError& error) {
            report.deferred.push_back("NIC " + record.endpoint + " of VM " + record.vm + ": " + error.what());
        }
    }
    journal_.save(state_);
    // NICs the VMs hold that no record knows (a crash before the journal said so, or a journal
    // moved away): unplugged first, then their port and host side.
    std::set<std::string> known;
    for (const auto& [endpoint, record] : state_.nics) known.insert(record.host_if);
    for (const auto& vm : config_.vms) {
        try {
            for (const auto& host_if : backend(vm.name).plugged_nics()) {
                if (known.count(host_if)) continue;
                const NicDevice orphan{host_if, "", "", 1500};
                backend(vm.name).unplug(orphan);
                host_.unsecure_port(host_if);
                host_.remove_port(host_if);
                hostlo_call([&] { segment_.remove_member(host_if); });
                backend(vm.name).delete_host_device(orphan);
                report.orphans.push_back(host_if);
            }
        } catch (const ShimError& error) {
            report.deferred.push_back(error.what());  // backends name the VM
        }
    }
    const auto vms = host_.ports_labelled("brfusion-vm");
    // Read again: the loops above removed the ports of the NICs they tore down or unplugged.
    for (const auto& [port, endpoint] : host_.ports_labelled("brfusion-endpoint")) {
        if (state_.nics.count(endpoint)) continue;
        host_.remove_port(port);
        if (auto vm = vms.find(port); vm != vms.end() && config_.vm(vm->second))
            backend(vm->second).delete_host_device({port, guest_if_of(endpoint), "", 1500});  // the port that exists
        report.orphans.push_back(port);
    }
    reconcile_hostlo(report);
    // Gateways of networks that are gone (removed from the file, or a removal cut short).
    const auto networks = host_.ports_labelled("brfusion-network");
    for (const auto& [port, gateway] : host_.ports_labelled("brfusion-gateway")) {
        const HostNetwork* network = config_.network(networks.count(port) ? networks.at(port) : "");
        if (network && gateway_port(*network) == port) continue;
        host_.remove_port(port);
        report.orphans.push_back(port);
    }
    std::set<std::string> kept;
    for (const auto& [endpoint, record] : state_.nics) kept.insert(record.host_if);
    report.stale_port_rules = host_.prune_port_security(kept);
    return report;
}

void NicManager::reconcile_hostlo(ReconcileReport& report) {
    std::set<std::string> known;
    for (const auto& [endpoint, record] : state_.nics)
        if (group_of(record.network)) known.insert(record.host_if);
    for (const auto& [group, members] : hostlo_call([&] { return segment_.groups(); })) {
        if (!state_.hostlo.find(group)) {
            hostlo_call([&] { segment_.remove_group(group); });
            report.orphans.push_back("Hostlo group " + group);
            continue;
        }
        for (const auto& port : members) {
            if (known.count(port)) continue;
            hostlo_call([&] { segment_.remove_member(port); });
            report.orphans.push_back(port);
        }
    }
}

HostNetwork NicManager::join_hostlo(const std::string& vm_name, const std::string& group, std::optional<Ipv4Prefix> subnet) {
    std::lock_guard lock(mutex_);
    const VmConfig* vm = config_.vm(vm_name);
    if (!vm) throw ShimError(ErrorKind::NotFound, "VM " + vm_name + " is not configured on this host");
    if (!vm->may_join_hostlo(group))
        throw ShimError(ErrorKind::NotAllowed, "VM " + vm_name + " may not join Hostlo group " + group + "; its hostlo_groups allow: " +
                                                   join(vm->hostlo_groups) + " (the host's admin adds the group, or a prefix ending in '*', there)");
    const hostlo::GroupTable before = state_.hostlo;
    const bool created = before.find(group) == nullptr;
    const hostlo::Group joined = hostlo_call([&] { return state_.hostlo.join(group, vm_name, subnet, config_.hostlo.subnets); });
    const HostNetwork network = group_network(joined);
    try {
        if (created) state_.ipam.add_pool(network.name, network.subnet, network.gateway);
        journal_.save(state_);  // before the segment: a crash leaves a group the next start completes
        hostlo_call([&] { segment_.ensure_group(group); });  // also for a member joining again: completes a removal cut short
    } catch (...) {
        state_.hostlo = before;
        if (created) state_.ipam.remove_pool(network.name);
        try {
            if (created) hostlo_call([&] { segment_.remove_group(group); });
            journal_.save(state_);
        } catch (...) {  // the next start removes a segment the journal does not know
        }
        throw;
    }
    return network;
}

void NicManager::leave_hostlo(const std::string& vm, const std::string& group) {
    std::lock_guard lock(mutex_);
    const hostlo::Group* found = state_.hostlo.find(group);
    if (!found || !found->members.count(vm)) return;
    const std::string network = hostlo_network(group);
    for (const auto& [endpoint, record] : state_.nics)
        if (record.vm == vm && record.network == network)
            throw ShimError(ErrorKind::Conflict, "VM " + vm + " still has its NIC on Hostlo group " + group + " (endpoint " + endpoint +
                                                     "); remove the container using it first");
    const ShimState before = state_;
    if (found->members.size() == 1) {
        remove_hostlo_group(group);  // its segment first: if that fails, the VM is still a member and a retry finishes it
    } else {
        for (const auto& lease : state_.ipam.leases(network))
            if (lease.owner == reservation_of(vm)) state_.ipam.release(network, lease.address);
    }
    state_.hostlo.leave(group, vm);
    try {
        journal_.save(state_);
    } catch (...) {
        state_ = before;  // still a member; its next join or the next start makes the segment again
        throw;
    }
}

void NicManager::remove_hostlo_group(const std::string& group) {
    hostlo_call([&] { segment_.remove_group(group); });
    const std::string network = hostlo_network(group);
    for (const auto& lease : state_.ipam.leases(network)) state_.ipam.release(network, lease.address);  // members' reservations: no NIC is left
    state_.ipam.remove_pool(network);
}

std::vector<hostlo::Group> NicManager::hostlo_groups() const {
    std::lock_guard lock(mutex_);
    std::vector<hostlo::Group> result;
    for (const auto& [name, group] : state_.hostlo.groups()) result.push_back(group);
    return result;
}

void NicManager::add_network(HostNetwork network) {
    std::lock_guard lock(mutex_);
    if (config_.network(network.name)) throw ShimError(ErrorKind::Conflict, "network " + network.name + " already exists");
    for (const auto& other : config_.networks) {
        if (other.tag == network.tag)
            throw ShimError(ErrorKind::Conflict, "VLAN tag " + std::to_string(network.tag) + " is taken by network " + other.name + "; choose another tag");
        if (other.subnet.overlaps(network.subnet))
            throw ShimError(ErrorKind::Conflict, "subnet " + network.subnet.str() + " overlaps " + other.subnet.str() + " of network " + other.name);
    }
    if (network.subnet.overlaps(config_.hostlo.subnets.range))
        throw ShimError(ErrorKind::Conflict, "subnet " + network.subnet.str() + " overlaps the Hostlo range " + config_.hostlo.subnets.range.str());
    for (const auto& peer : network.forward_to)
        if (!config_.network(peer)) throw ShimError(ErrorKind::NotFound, "network " + network.name + " forwards to " + peer + ", which does not exist");
    state_.ipam.add_pool(network.name, network.subnet, network.gateway);
    state_.added_networks.push_back(network);
    config_.networks.push_back(network);
    try {
        journal_.save(state_);
        ensure_network(network);
        firewall_.apply(rules());
    } catch (...) {
        config_.networks.pop_back();
        state_.added_networks.pop_back();
        state_.ipam.remove_pool(network.name);
        try {
            host_.remove_port(gateway_port(network));
            save_and_apply_firewall();
        } catch (...) {  // the next start finds the gateway port unknown and the table rewritten
        }
        throw;
    }
}

void NicManager::remove_network(const std::string& name) {
    std::lock_guard lock(mutex_);
    const HostNetwork* network = config_.network(name);
    if (!network) throw ShimError(ErrorKind::NotFound, "network " + name + " does not exist");
    if (file_config_.network(name))
        throw ShimError(ErrorKind::NotAllowed, "network " + name + " comes from the config file; remove it there and restart brfusion-shim");
    std::vector<std::string> users;
    for (const auto& [endpoint, record] : state_.nics)
        if (record.network == name) users.push_back((record.spare ? "spare NIC " : "NIC ") + endpoint + " of VM " + record.vm);
    for (const auto& vm : config_.vms)
        if (std::find(vm.networks.begin(), vm.networks.end(), name) != vm.networks.end()) users.push_back("VM " + vm.name + " is allowed it");
    for (const auto& other : config_.networks)
        if (std::find(other.forward_to.begin(), other.forward_to.end(), name) != other.forward_to.end())
            users.push_back("network " + other.name + " forwards to it");
    if (!users.empty()) throw ShimError(ErrorKind::Conflict, "network " + name + " is in use: " + join(users) + "; remove those first");
    const HostNetwork removed = *network;
    std::erase_if(config_.networks, [&](const HostNetwork& n) { return n.name == name; });
    std::erase_if(state_.added_networks, [&](const HostNetwork& n) { return n.name == name; });
    state_.ipam.remove_pool(name);
    save_and_apply_firewall();
    host_.remove_port(gateway_port(removed));  // if this fails, the next start removes the unknown port
}

void NicManager::add_vm(VmConfig vm) {
    std::lock_guard lock(mutex_);
    if (config_.vm(vm.name)) throw ShimError(ErrorKind::Conflict, "VM " + vm.name + " already exists");
    for (const auto& network : vm.networks)
        if (!config_.network(network)) throw ShimError(ErrorKind::NotFound, "VM " + vm.name + " allows network " + network + ", which does not exist");
    if (vm.channel.empty()) vm.channel = default_channel(config_.run_dir, vm.name);
    for (const auto& other : config_.vms)
        if (other.channel == vm.channel) throw ShimError(ErrorKind::Conflict, "VM " + other.name + " already uses the channel " + vm.channel);
    state_.added_vms.push_back(vm);
    config_.vms.push_back(vm);
    try {
        journal_.save(state_);
    } catch (...) {
        state_.added_vms.pop_back();
        config_.vms.pop_back();
        throw;
    }
}

void NicManager::remove_vm(const std::string& name) {
    std::lock_guard lock(mutex_);
    if (!config_.vm(name)) throw ShimError(ErrorKind::NotFound, "VM " + name + " is not configured on this host");
    if (file_config_.vm(name))
        throw ShimError(ErrorKind::NotAllowed, "VM " + name + " comes from the config file; remove it there and restart brfusion-shim");
    std::vector<NicRecord> records;
    for (const auto& [endpoint, record] : state_.nics)
        if (record.vm == name) records.push_back(record);
    for (const auto& record : records) tear_down(record);  // a failure leaves the VM, with the NICs not yet removed
    const auto groups = state_.hostlo.groups();  // a copy: leaving changes the table
    for (const auto& [group_name, group] : groups)
        if (group.members.count(name)) {
            if (group.members.size() == 1) remove_hostlo_group(group_name);  // a failure leaves the VM a member: retry
            state_.hostlo.leave(group_name, name);
        }
    std::erase_if(config_.vms, [&](const VmConfig& v) { return v.name == name; });
    reclaim_reservations();
    std::erase_if(state_.added_vms, [&](const VmConfig& v) { return v.name == name; });
    backends_.erase(name);
    journal_.save(state_);
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
