// Addresses a VM reserves before its NIC exists (Docker's RequestAddress comes before
// CreateEndpoint): the VM's alone until an attach takes one over or the VM gives it back.

#include "internal.hpp"

namespace brfusion::shim {

using namespace detail;

Ipv4 NicManager::reserve_address(const std::string& vm, const NetworkRef& network, std::optional<Ipv4> requested) {
    std::lock_guard lock(state_mutex_);
    allowed(vm, network);
    std::size_t held = 0;
    for (const auto& [pool, lease] : state_.ipam.reservations())
        if (lease.owner.vm == vm) ++held;
    require_quota(vm, "reservations", config_.vm(vm)->quotas.reservations, held, 1);
    const Ipv4 address = state_.ipam.allocate(network.wire(), LeaseOwner::reservation(vm, now_seconds()), requested);
    try {
        save();
    } catch (...) {
        state_.ipam.release(network.wire(), address);
        throw;
    }
    return address;
}

void NicManager::release_address(const std::string& vm, const NetworkRef& network, Ipv4 address) {
    std::lock_guard lock(state_mutex_);
    if (!state_.ipam.has_pool(network.wire())) return;
    const auto lease = state_.ipam.lease(network.wire(), address);
    if (!lease || !lease->owner.is_reservation() || lease->owner.vm != vm) return;
    state_.ipam.release(network.wire(), address);
    save();
}

// Addresses reserved by VMs that are no longer configured go back to the pools.
void NicManager::reclaim_reservations() {
    for (const auto& [pool, lease] : state_.ipam.reservations())
        if (!config_.vm(lease.owner.vm)) state_.ipam.release(pool, lease.address);
}

}  // namespace brfusion::shim
