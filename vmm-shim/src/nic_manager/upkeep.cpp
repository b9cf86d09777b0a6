// What drifts while the shim runs: Open vSwitch losing port rules (ovs-vswitchd restarted, a
// bridge made again), reservations nobody took, the host's own addresses.

#include "internal.hpp"

#include <list>

namespace brfusion::shim {

using namespace detail;

namespace {
constexpr std::int64_t kRulesAuditSeconds = 30;   // every port's rules checked, whatever happened
constexpr std::int64_t kAddressCheckSeconds = 5;  // the host's publish addresses compared
}  // namespace

MaintenanceReport NicManager::maintain(std::int64_t now) {
    MaintenanceReport report;
    const std::string generation = host_.network.generation();
    bool audit = false;
    {
        std::lock_guard lock(state_mutex_);
        report.switch_restarted = generation != switch_generation_;
        audit = report.switch_restarted || now >= next_rules_audit_;
    }
    if (audit) {
        if (report.switch_restarted) {  // a bridge made again lost its gateways and segments too
            host_.network.ensure_bridge();
            for (const auto& network : config().networks) ensure_gateway(network);
            std::lock_guard serial(hostlo_mutex_);  // a group's last leave must not slip in between reading the groups and making them
            for (const auto& group : hostlo_groups()) hostlo_call([&] { host_.hostlo.ensure_group(group); });
        }
        report.rules_restored = restore_switch_ports();
        std::lock_guard lock(state_mutex_);
        switch_generation_ = generation;
        next_rules_audit_ = now + kRulesAuditSeconds;
    }
    report.reservations_expired = expire_reservations(now);
    bool check_addresses = false;
    {
        std::lock_guard lock(state_mutex_);
        check_addresses = now >= next_address_check_;
        if (check_addresses) next_address_check_ = now + kAddressCheckSeconds;
    }
    if (check_addresses) {  // the host's addresses changed, or a write failed (the table kept the rules before it)
        std::string applied;
        {
            std::lock_guard serial(firewall_mutex_);
            applied = applied_firewall_;
        }
        if (render_nftables(firewall_rules()) != applied) {
            apply_firewall();
            report.firewall_rewritten = true;
        }
    }
    return report;
}

UnfinishedReport NicManager::finish_unfinished(std::int64_t now) {
    constexpr std::int64_t kFirstPause = 5, kLongestPause = 300;
    std::vector<std::string> due;
    {
        std::lock_guard lock(state_mutex_);
        for (auto retry = unfinished_retries_.begin(); retry != unfinished_retries_.end();) {  // NICs gone meanwhile
            const auto nic = state_.nics.find(retry->first);
            retry = nic == state_.nics.end() || nic->second.phase == NicPhase::Attached ? unfinished_retries_.erase(retry) : std::next(retry);
        }
        for (const auto& [endpoint, record] : state_.nics) {
            if (record.phase == NicPhase::Attached || busy_.count(endpoint)) continue;
            auto [retry, first] = unfinished_retries_.try_emplace(endpoint, Retry{now + kFirstPause, kFirstPause});
            if (first || retry->second.at > now) continue;  // first seen: its operation failed just now
            retry->second = {now + retry->second.pause, std::min(retry->second.pause * 2, kLongestPause)};
            due.push_back(endpoint);
        }
    }
    UnfinishedReport report;
    for (const auto& endpoint : due) {
        try {
            NicRecord record;
            std::optional<BusyEndpoint> busy;
            {
                std::lock_guard lock(state_mutex_);
                const auto nic = state_.nics.find(endpoint);
                if (nic == state_.nics.end() || nic->second.phase == NicPhase::Attached || busy_.count(endpoint)) continue;
                record = nic->second;
                busy.emplace(*this, endpoint);
            }
            tear_down(record);
            report.finished.push_back(endpoint);
        } catch (const std::exception& e) {
            report.failed.push_back(endpoint + ": " + e.what());
        }
    }
    return report;
}

int NicManager::restore_switch_ports() {
    const SwitchView view = switch_view();
    std::vector<std::pair<NicRecord, HostNetwork>> records;  // attached NICs no operation works on
    // Busy until their rules are back: a detach or publish waits, a warm-pool claim takes another
    // spare (a detach in between would see its port made again, a claim its rules overwritten).
    std::list<BusyEndpoint> restoring;
    {
        std::lock_guard lock(state_mutex_);
        for (const auto& [endpoint, record] : state_.nics) {
            if (record.phase != NicPhase::Attached || busy_.count(endpoint)) continue;
            if (view.ports.count(record.host_if) && view.secured.count(record.host_if)) continue;
            if (const auto network = network_of(record.network)) {
                records.emplace_back(record, *network);
                restoring.emplace_back(*this, endpoint, BusyHolder::Upkeep);
            }
        }
    }
    std::map<std::string, PortSecurity> rules;                             // integration bridge
    std::map<std::string, std::map<std::string, PortSecurity>> members;  // by Hostlo group
    for (auto& [record, network] : records) {
        if (!view.ports.count(record.host_if)) {  // no VM backend call: the host device and plug are untouched
            std::shared_ptr<VmLane> vm_lane;
            {
                std::lock_guard lock(state_mutex_);
                vm_lane = lane(record.vm);
            }
            make_step(NicStep::SwitchPort, record, *vm_lane->backend, network);
        }
        if (record.network.is_hostlo()) members[record.network.name][record.host_if] = security_of(record);
        else rules[record.host_if] = security_of(record);
    }
    if (!rules.empty()) host_.network.secure_ports(rules);
    for (const auto& entry : members) {
        const hostlo::Group current = group_now(entry.first);
        hostlo_call([&] { host_.hostlo.secure_members(current, entry.second); });  // named, not bound: clang captures no bindings
    }
    return static_cast<int>(records.size());
}

int NicManager::expire_reservations(std::int64_t now) {
    std::lock_guard lock(state_mutex_);
    int expired = 0;
    bool changed = false;
    for (const auto& [pool, lease] : state_.ipam.reservations()) {
        if (lease.owner.reserved_at == 0) {  // saved by an earlier version, without a time: its grace starts now
            state_.ipam.release(pool, lease.address);
            state_.ipam.allocate(pool, LeaseOwner::reservation(lease.owner.vm, now), lease.address);
            changed = true;
        } else if (lease.owner.reserved_at + config_.reservation_grace_seconds <= now) {
            state_.ipam.release(pool, lease.address);
            ++expired;
            changed = true;
        }
    }
    if (changed) save();
    return expired;
}

}  // namespace brfusion::shim
