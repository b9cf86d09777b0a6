// Host networks and VMs added and removed at run time (the admin API), persisted in the journal.

#include "internal.hpp"

#include <algorithm>

namespace brfusion::shim {

using namespace detail;

void NicManager::add_network(HostNetwork network) {
    std::lock_guard serial(admin_mutex_);
    const auto forget = [&] {
        std::erase_if(config_.networks, [&](const HostNetwork& n) { return n.name == network.name; });
        std::erase_if(state_.added_networks, [&](const HostNetwork& n) { return n.name == network.name; });
        state_.ipam.remove_pool(network.name);
    };
    {
        std::lock_guard lock(state_mutex_);
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
            save();
        } catch (...) {
            forget();
            throw;
        }
    }
    try {
        ensure_gateway(network);
        apply_firewall();
    } catch (...) {
        {
            std::lock_guard lock(state_mutex_);
            forget();
            try {
                save();
            } catch (...) {  // the next start finds the gateway port unknown and the table rewritten
            }
        }
        try {
            host_.network.remove_port(gateway_port(network));
            apply_firewall();
        } catch (...) {
        }
        throw;
    }
}

void NicManager::remove_network(const std::string& name) {
    std::lock_guard serial(admin_mutex_);
    HostNetwork removed;
    {
        std::lock_guard lock(state_mutex_);
        const HostNetwork* network = config_.network(name);
        if (!network) throw ShimError(ErrorKind::NotFound, "network " + name + " does not exist");
        if (file_config_.network(name))
            throw ShimError(ErrorKind::NotAllowed, "network " + name + " comes from the config file; remove it there and restart brfusion-shim");
        std::vector<std::string> users;
        for (const auto& [endpoint, record] : state_.nics)
            if (record.network == NetworkRef::host_network(name)) users.push_back((record.spare ? "spare NIC " : "NIC ") + endpoint + " of VM " + record.vm);
        for (const auto& vm : config_.vms)
            if (std::find(vm.networks.begin(), vm.networks.end(), name) != vm.networks.end()) users.push_back("VM " + vm.name + " is allowed it");
        for (const auto& other : config_.networks)
            if (std::find(other.forward_to.begin(), other.forward_to.end(), name) != other.forward_to.end())
                users.push_back("network " + other.name + " forwards to it");
        if (!users.empty()) throw ShimError(ErrorKind::Conflict, "network " + name + " is in use: " + join(users) + "; remove those first");
        removed = *network;
        std::erase_if(config_.networks, [&](const HostNetwork& n) { return n.name == name; });
        std::erase_if(state_.added_networks, [&](const HostNetwork& n) { return n.name == name; });
        state_.ipam.remove_pool(name);
        save();
    }
    apply_firewall();
    host_.network.remove_port(gateway_port(removed));  // if this fails, the next start removes the unknown port
}

void NicManager::add_vm(VmConfig vm) {
    std::lock_guard serial(admin_mutex_);
    std::lock_guard lock(state_mutex_);
    if (config_.vm(vm.name)) throw ShimError(ErrorKind::Conflict, "VM " + vm.name + " already exists");
    for (const auto& network : vm.networks)
        if (!config_.network(network)) throw ShimError(ErrorKind::NotFound, "VM " + vm.name + " allows network " + network + ", which does not exist");
    if (vm.channel.empty()) vm.channel = default_channel(config_.run_dir, vm.name);
    for (const auto& other : config_.vms)
        if (other.channel == vm.channel) throw ShimError(ErrorKind::Conflict, "VM " + other.name + " already uses the channel " + vm.channel);
    state_.added_vms.push_back(vm);
    config_.vms.push_back(vm);
    try {
        save();
    } catch (...) {
        state_.added_vms.pop_back();
        config_.vms.pop_back();
        throw;
    }
}

void NicManager::remove_vm(const std::string& name) {
    std::lock_guard serial(admin_mutex_);
    {
        std::lock_guard lock(state_mutex_);
        configured_vm(name);
        if (file_config_.vm(name))
            throw ShimError(ErrorKind::NotAllowed, "VM " + name + " comes from the config file; remove it there and restart brfusion-shim");
        removing_vms_.insert(name);  // from here on its requests are refused
    }
    try {
        // Its NICs, once the operations in progress on them are done (a failure leaves the VM,
        // with the NICs not yet removed: retry).
        for (;;) {
            NicRecord record;
            std::optional<BusyEndpoint> busy;
            {
                std::unique_lock lock(state_mutex_);
                idle_.wait(lock, [&] {
                    return std::none_of(busy_.begin(), busy_.end(), [&](const auto& entry) {
                        const auto found = state_.nics.find(entry.first);
                        return found != state_.nics.end() && found->second.vm == name;
                    });
                });
                const auto found = std::find_if(state_.nics.begin(), state_.nics.end(), [&](const auto& entry) { return entry.second.vm == name; });
                if (found == state_.nics.end()) break;
                record = found->second;
                busy.emplace(*this, record.endpoint);
            }
            tear_down(record);
        }
        for (const auto& group : hostlo_groups())
            if (group.members.count(name)) leave_hostlo(name, group.name);  // a failure leaves the VM a member: retry
        std::lock_guard lock(state_mutex_);
        std::erase_if(config_.vms, [&](const VmConfig& v) { return v.name == name; });
        reclaim_reservations();
        std::erase_if(state_.added_vms, [&](const VmConfig& v) { return v.name == name; });
        lanes_.erase(name);
        removing_vms_.erase(name);
        save();
    } catch (...) {
        std::lock_guard lock(state_mutex_);
        removing_vms_.erase(name);
        throw;
    }
}

}  // namespace brfusion::shim
