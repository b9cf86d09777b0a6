// NicManager: construction, start, the state helpers every operation uses, and the views of the
// state the admin API and the guest channel read.

#include "internal.hpp"

#include <algorithm>
#include <chrono>
#include <random>

namespace brfusion::shim {

using namespace detail;

namespace detail {

std::string join(const std::vector<std::string>& items) {
    std::string joined;
    for (const auto& item : items) joined += (joined.empty() ? "" : ", ") + item;
    return joined.empty() ? "none" : joined;
}

std::string random_hex(std::size_t digits) {
    static std::mutex mutex;
    static std::mt19937_64 generator{std::random_device{}()};
    static const char* hex = "0123456789abcdef";
    std::lock_guard lock(mutex);
    std::string text;
    for (std::size_t i = 0; i < digits; ++i) text += hex[generator() % 16];
    return text;
}

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

std::int64_t now_seconds() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace detail

NicManager::NicManager(ShimConfig config, Journal& journal, HostServices host, BackendFactory make_backend)
    : file_config_(std::move(config)), journal_(journal), host_(host), make_backend_(std::move(make_backend)), config_(file_config_) {}

std::string NicManager::gateway_port(const HostNetwork& network) { return "bfgw" + std::to_string(network.tag); }

ReconcileReport NicManager::start() {
    {
        std::lock_guard lock(state_mutex_);
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
        for (const auto& network : config_.networks) state_.ipam.add_pool(network.name, network.subnet, network.gateway);
    }
    if (file_config_.userspace_tso && !host_.network.userspace_tso())
        throw ShimError(ErrorKind::BadRequest,
                        "userspace_tso is on, but Open vSwitch does not segment and checksum for guests: run 'ovs-vsctl set Open_vSwitch . "
                        "other_config:userspace-tso-enable=true' and restart ovs-vswitchd, or set userspace_tso to false");
    host_.network.ensure_bridge();
    for (const auto& network : config().networks) ensure_gateway(network);
    {
        std::lock_guard lock(state_mutex_);
        save();
    }
    ReconcileReport report = reconcile();
    // Members that are no longer configured leave their groups (reconcile removed their NICs).
    const ShimConfig configured = config();
    for (const auto& group : hostlo_groups())
        for (const auto& member : group.members)
            if (!configured.vm(member)) leave_hostlo(member, group.name);
    {
        std::lock_guard lock(state_mutex_);
        reclaim_reservations();
        // Pools of networks that are gone from the config file, now that reconcile released their leases.
        for (const auto& pool : state_.ipam.pools()) {
            const auto ref = NetworkRef::parse(pool);
            if (ref && !ref->is_hostlo() && !config_.network(pool) && state_.ipam.leases(pool).empty()) state_.ipam.remove_pool(pool);
        }
        save();
    }
    apply_firewall();
    const std::string generation = host_.network.generation();
    std::lock_guard lock(state_mutex_);
    switch_generation_ = generation;  // reconcile left every rule in place
    return report;
}

void NicManager::ensure_gateway(const HostNetwork& network) {
    host_.network.ensure_gateway(gateway_port(network), network.tag, {{"brfusion-network", network.name}, {"brfusion-gateway", network.gateway.str()}},
                                 network.gateway.str() + "/" + std::to_string(network.subnet.length), network.mtu);
}

// --- state helpers (state_mutex_ held) ----------------------------------------------------------

void NicManager::save() { journal_.save(state_); }

const VmConfig& NicManager::configured_vm(const std::string& name) const {
    const VmConfig* vm = config_.vm(name);
    if (!vm) throw ShimError(ErrorKind::NotFound, "VM " + name + " is not configured on this host");
    if (removing_vms_.count(name)) throw ShimError(ErrorKind::NotFound, "VM " + name + " is being removed from this host");
    return *vm;
}

void NicManager::require_quota(const std::string& vm, const char* quota, int limit, std::size_t held, std::size_t more) const {
    if (held + more <= static_cast<std::size_t>(limit)) return;
    throw ShimError(ErrorKind::Exhausted, "VM " + vm + " holds " + std::to_string(held) + " of its " + std::to_string(limit) + " " + quota +
                                              (more > 1 ? " and asked for " + std::to_string(more) + " more" : "") +
                                              " (quota vms[].quotas." + quota + "); give some back, or ask the host's admin to raise it");
}

std::optional<HostNetwork> NicManager::network_of(const NetworkRef& ref) const {
    if (ref.is_hostlo()) {
        const hostlo::Group* found = state_.hostlo.find(ref.name);
        return found ? std::optional(group_network(*found)) : std::nullopt;
    }
    const HostNetwork* network = config_.network(ref.name);
    return network ? std::optional(*network) : std::nullopt;
}

HostNetwork NicManager::group_network(const hostlo::Group& group) const {
    HostNetwork network;
    network.name = hostlo_network(group.name).wire();
    network.subnet = group.subnet;
    network.gateway = Ipv4{group.subnet.network.value + 1};
    network.nat = false;
    network.mtu = config_.hostlo.mtu;
    return network;
}

HostNetwork NicManager::allowed(const std::string& vm_name, const NetworkRef& ref) const {
    const VmConfig& vm = configured_vm(vm_name);
    if (ref.is_hostlo()) {
        const hostlo::Group* found = state_.hostlo.find(ref.name);
        if (!found || !found->members.count(vm_name))
            throw ShimError(ErrorKind::NotAllowed, "VM " + vm_name + " is not a member of Hostlo group " + ref.name +
                                                       "; it joins with docker network create -d brfusion --ipam-driver brfusion --ipam-opt group=" +
                                                       ref.name + " -o mode=hostlo NAME");
        if (dissolving_groups_.count(ref.name))
            throw ShimError(ErrorKind::Conflict, "Hostlo group " + ref.name + " is being removed with its last member; join it again once that is done");
        return group_network(*found);
    }
    const HostNetwork* network = config_.network(ref.name);
    if (!network || std::find(vm.networks.begin(), vm.networks.end(), ref.name) == vm.networks.end())
        throw ShimError(network ? ErrorKind::NotAllowed : ErrorKind::NotFound,
                        "network " + ref.name + (network ? " is not allowed" : " does not exist") + " for VM " + vm_name + "; allowed: " + join(vm.networks));
    return *network;
}

std::shared_ptr<NicManager::VmLane> NicManager::lane(const std::string& vm) {
    auto found = lanes_.find(vm);
    if (found != lanes_.end()) return found->second;
    const VmConfig* config = config_.vm(vm);
    if (!config) throw ShimError(ErrorKind::NotFound, "VM " + vm + " is not configured");
    auto made = std::make_shared<VmLane>();
    made->backend = make_backend_(*config);  // builds an object: no I/O until it is used
    return lanes_.emplace(vm, std::move(made)).first->second;
}

NicRecord NicManager::new_record(const std::string& vm, const NetworkRef& network) const {
    NicRecord record;
    do record.endpoint = random_hex(guest::kEndpointIdLength);
    while (state_.nics.count(record.endpoint));
    record.vm = vm;
    record.network = network;
    record.host_if = host_if_of(record.endpoint);
    record.mac = random_mac();
    record.phase = NicPhase::Attaching;
    return record;
}

void NicManager::wait_for_upkeep(std::unique_lock<std::mutex>& lock, const std::string& endpoint) {
    idle_.wait(lock, [&] {
        const auto found = busy_.find(endpoint);
        return found == busy_.end() || found->second != BusyHolder::Upkeep;
    });
}

NicRecord& NicManager::own_record(const std::string& vm, const std::string& endpoint) {
    auto found = state_.nics.find(endpoint);
    if (found == state_.nics.end() || found->second.spare) throw ShimError(ErrorKind::NotFound, "VM " + vm + " has no NIC with endpoint " + endpoint);
    if (found->second.vm != vm) throw ShimError(ErrorKind::NotAllowed, "endpoint " + endpoint + " is not a NIC of VM " + vm);
    return found->second;
}

NicManager::BusyEndpoint::BusyEndpoint(NicManager& manager, std::string endpoint, BusyHolder holder)
    : manager_(manager), endpoint_(std::move(endpoint)) {
    if (!manager_.busy_.emplace(endpoint_, holder).second)
        throw ShimError(ErrorKind::Conflict, "endpoint " + endpoint_ + " is being attached or detached by another request; retry when it is done");
}

NicManager::BusyEndpoint::~BusyEndpoint() {
    {
        std::lock_guard lock(manager_.state_mutex_);
        manager_.busy_.erase(endpoint_);
    }
    manager_.idle_.notify_all();
}

// --- views --------------------------------------------------------------------------------------

ShimConfig NicManager::config() const {
    std::lock_guard lock(state_mutex_);
    return config_;
}

bool NicManager::from_config_file(const std::string& name) const { return file_config_.network(name) || file_config_.vm(name); }

HostNetwork NicManager::allowed_network(const std::string& vm, const NetworkRef& network) const {
    std::lock_guard lock(state_mutex_);
    return allowed(vm, network);
}

std::vector<HostNetwork> NicManager::allowed_networks(const std::string& vm_name) const {
    std::lock_guard lock(state_mutex_);
    const VmConfig& vm = configured_vm(vm_name);
    std::vector<HostNetwork> result;
    for (const auto& name : vm.networks) result.push_back(allowed(vm_name, NetworkRef::host_network(name)));
    for (const auto& [name, group] : state_.hostlo.groups())
        if (group.members.count(vm_name)) result.push_back(group_network(group));
    return result;
}

std::vector<Lease> NicManager::leases(const NetworkRef& network) const {
    std::lock_guard lock(state_mutex_);
    return state_.ipam.has_pool(network.wire()) ? state_.ipam.leases(network.wire()) : std::vector<Lease>{};
}

std::vector<NicRecord> NicManager::nics(const std::string& vm) const {
    std::lock_guard lock(state_mutex_);
    std::vector<NicRecord> result;
    for (const auto& [endpoint, record] : state_.nics)
        if (vm.empty() || record.vm == vm) result.push_back(record);
    return result;
}

}  // namespace brfusion::shim
