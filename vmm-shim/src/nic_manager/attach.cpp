// A container's NIC: attach (a warm-pool spare claimed, or a new NIC made) and detach.

#include "internal.hpp"

namespace brfusion::shim {

using namespace detail;

AttachedNic NicManager::attach(const std::string& vm_name, const NetworkRef& ref, std::optional<Ipv4> requested_ip) {
    HostNetwork network;
    NicRecord record;
    std::optional<NicRecord> spare;
    std::optional<LeaseOwner> reservation;  // the VM's reservation of requested_ip, taken over
    std::optional<BusyEndpoint> busy;
    {
        std::lock_guard lock(state_mutex_);
        network = allowed(vm_name, ref);
        std::size_t held = 0;
        for (const auto& [endpoint, other] : state_.nics) {
            if (other.vm != vm_name || other.spare) continue;
            ++held;
            if (ref.is_hostlo() && other.network == ref)
                throw ShimError(ErrorKind::Conflict, "VM " + vm_name + " has its NIC on Hostlo group " + ref.name + " already (endpoint " + endpoint +
                                                         "); the containers of one pod in one VM share it: docker run --network container:NAME");
        }
        require_quota(vm_name, "nics", config_.vm(vm_name)->quotas.nics, held, 1);

        spare = ready_spare(vm_name, ref);
        record = spare ? *spare : new_record(vm_name, ref);
        record.spare = false;
        record.phase = NicPhase::Attaching;
        const std::string pool = ref.wire();
        if (const auto lease = requested_ip ? state_.ipam.lease(pool, *requested_ip) : std::nullopt;
            lease && lease->owner.is_reservation() && lease->owner.vm == vm_name) {
            reservation = lease->owner;
            state_.ipam.release(pool, *requested_ip);  // taken over just below
        }
        try {
            record.ip = state_.ipam.allocate(pool, LeaseOwner::nic(vm_name, record.endpoint), requested_ip);
        } catch (...) {
            if (reservation) state_.ipam.allocate(pool, *reservation, requested_ip);
            throw;
        }
        busy.emplace(*this, record.endpoint);
        state_.nics[record.endpoint] = record;
        try {
            save();
        } catch (...) {
            if (spare) state_.nics[record.endpoint] = *spare;
            else state_.nics.erase(record.endpoint);
            state_.ipam.release(pool, record.ip);
            if (reservation) state_.ipam.allocate(pool, *reservation, record.ip);
            throw;
        }
    }

    try {
        if (spare) {  // already plugged: it only gets its address, and stops being a spare
            host_.network.secure_ports({{record.host_if, security_of(record)}});
            host_.network.remove_label(record.host_if, kSpareLabel);
        } else {
            build(record, network);
        }
        mark_attached(record);
    } catch (...) {
        undo_attach(record, std::current_exception());  // throws when the undo fails too
        if (reservation) {  // the VM still holds the address it reserved
            std::lock_guard lock(state_mutex_);
            state_.ipam.allocate(ref.wire(), *reservation, record.ip);
            save();
        }
        throw;
    }
    if (spare) {
        std::lock_guard lock(state_mutex_);  // held: on_spare_claimed(nullptr) must not return while the listener runs
        if (spare_claimed_) spare_claimed_();
    }
    return {record.endpoint, record.mac, guest_if_of(record.endpoint), record.ip, network.subnet.length, network.gateway, network.mtu, record.pci,
            file_config_.userspace_tso};  // file_config_: constant, read without the lock
}

void NicManager::detach(const std::string& vm, const std::string& endpoint) {
    NicRecord record;
    std::optional<BusyEndpoint> busy;
    {
        std::unique_lock lock(state_mutex_);
        wait_for_upkeep(lock, endpoint);  // else its restore could make the port again once removed
        const auto found = state_.nics.find(endpoint);
        if (found == state_.nics.end() || found->second.spare) return;
        record = own_record(vm, endpoint);
        busy.emplace(*this, endpoint);
    }
    tear_down(record);
}

}  // namespace brfusion::shim
