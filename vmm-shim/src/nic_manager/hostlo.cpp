// Hostlo: VMs join and leave the groups that hold one pod's localhost segment across VMs.

#include "internal.hpp"

namespace brfusion::shim {

using namespace detail;

std::string NicManager::hostlo_segment(const std::string& group) const {
    std::lock_guard lock(state_mutex_);
    const hostlo::Group* found = state_.hostlo.find(group);
    return found ? host_.hostlo.segment_name(*found) : "";
}

HostNetwork NicManager::join_hostlo(const std::string& vm_name, const std::string& group, std::optional<Ipv4Prefix> subnet) {
    std::lock_guard serial(hostlo_mutex_);  // one join or leave at a time: each may change a segment
    hostlo::GroupTable before;
    bool created = false;
    HostNetwork network;
    hostlo::Group joined;
    {
        std::lock_guard lock(state_mutex_);
        const VmConfig& vm = configured_vm(vm_name);
        if (!vm.may_join_hostlo(group))
            throw ShimError(ErrorKind::NotAllowed, "VM " + vm_name + " may not join Hostlo group " + group + "; its hostlo_groups allow: " +
                                                       join(vm.hostlo_groups) + " (the host's admin adds the group, or a prefix ending in '*', there)");
        std::size_t held = 0;
        bool member = false;
        for (const auto& [name, existing] : state_.hostlo.groups())
            if (existing.members.count(vm_name)) ++held, member = member || name == group;
        require_quota(vm_name, "hostlo_groups", vm.quotas.hostlo_groups, held, member ? 0 : 1);
        before = state_.hostlo;
        created = before.find(group) == nullptr;
        joined = hostlo_call([&] { return state_.hostlo.join(group, vm_name, subnet, config_.hostlo.subnets); });
        network = group_network(joined);
        try {
            if (created) state_.ipam.add_pool(network.name, network.subnet, network.gateway);
            save();  // before the segment: a crash leaves a group the next start completes
        } catch (...) {
            state_.hostlo = before;
            if (created) state_.ipam.remove_pool(network.name);
            throw;
        }
    }
    try {
        hostlo_call([&] { host_.hostlo.ensure_group(joined); });  // also for a member joining again: completes a removal cut short
    } catch (...) {
        {
            std::lock_guard lock(state_mutex_);
            state_.hostlo = before;  // joins and leaves are serialized: nothing else changed the table
            if (created) state_.ipam.remove_pool(network.name);
            try {
                save();
            } catch (...) {  // the next start removes a segment the journal does not know
            }
        }
        try {
            if (created) hostlo_call([&] { host_.hostlo.remove_group(group); });
        } catch (...) {
        }
        throw;
    }
    return network;
}

void NicManager::leave_hostlo(const std::string& vm, const std::string& group) {
    std::lock_guard serial(hostlo_mutex_);
    const std::string pool = hostlo_network(group).wire();
    {
        std::lock_guard lock(state_mutex_);
        const hostlo::Group* found = state_.hostlo.find(group);
        if (!found || !found->members.count(vm)) return;
        for (const auto& [endpoint, record] : state_.nics)
            if (record.vm == vm && record.network == hostlo_network(group))
                throw ShimError(ErrorKind::Conflict, "VM " + vm + " still has its NIC on Hostlo group " + group + " (endpoint " + endpoint +
                                                         "); remove the container using it first");
        if (found->members.size() > 1) {
            const ShimState before = state_;
            for (const auto& lease : state_.ipam.leases(pool))
                if (lease.owner.is_reservation() && lease.owner.vm == vm) state_.ipam.release(pool, lease.address);
            state_.hostlo.leave(group, vm);
            try {
                save();
            } catch (...) {
                state_ = before;  // still a member
                throw;
            }
            return;
        }
        dissolving_groups_.insert(group);  // the last member: no NIC may join the segment while it goes
    }
    // The segment first: if that fails, the VM is still a member and a retry finishes it.
    try {
        hostlo_call([&] { host_.hostlo.remove_group(group); });
    } catch (...) {
        std::lock_guard lock(state_mutex_);
        dissolving_groups_.erase(group);
        throw;
    }
    std::lock_guard lock(state_mutex_);
    dissolving_groups_.erase(group);
    const ShimState before = state_;
    for (const auto& lease : state_.ipam.leases(pool)) state_.ipam.release(pool, lease.address);  // members' reservations: no NIC is left
    state_.ipam.remove_pool(pool);
    state_.hostlo.leave(group, vm);
    try {
        save();
    } catch (...) {
        state_ = before;  // still a member; its next join or the next start makes the segment again
        throw;
    }
}

std::vector<hostlo::Group> NicManager::hostlo_groups() const {
    std::lock_guard lock(state_mutex_);
    std::vector<hostlo::Group> result;
    for (const auto& [name, group] : state_.hostlo.groups()) result.push_back(group);
    return result;
}

}  // namespace brfusion::shim
