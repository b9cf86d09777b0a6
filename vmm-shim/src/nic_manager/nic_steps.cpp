// The pieces of a NIC, one step list for every path: attach and warm-pool spares make them,
// reconcile checks and repairs them, detach, undo and the orphan sweep remove them.

#include "internal.hpp"

namespace brfusion::shim {

using namespace detail;

void NicManager::make_step(NicStep step, NicRecord& record, VmmBackend& vmm, const HostNetwork& network) {
    const NicDevice device = device_of(record, network.mtu);
    switch (step) {
    case NicStep::HostDevice:
        vmm.create_host_device(device);
        return;
    case NicStep::SwitchPort: {
        Labels labels{{"brfusion-vm", record.vm},
                      {"brfusion-network", record.network.wire()},
                      {"brfusion-endpoint", record.endpoint},
                      {"brfusion-mac", record.mac},
                      {"attached-mac", record.mac}};  // the OVS convention for "the VM's MAC on this port"
        if (record.spare) labels[kSpareLabel] = "true";
        if (!record.network.is_hostlo()) return host_.network.add_port(record.host_if, network.tag, labels);
        const hostlo::Group group = group_now(record.network.name);
        hostlo_call([&] { host_.hostlo.add_member(group, record.host_if, labels); });
        return;
    }
    case NicStep::PortSecurity: {
        const std::map<std::string, PortSecurity> rules{{record.host_if, security_of(record)}};
        if (!record.network.is_hostlo()) return host_.network.secure_ports(rules);
        const hostlo::Group group = group_now(record.network.name);
        hostlo_call([&] { host_.hostlo.secure_members(group, rules); });
        return;
    }
    case NicStep::Plug:
        record.pci = vmm.plug(device);
        return;
    }
}

bool NicManager::step_exists(NicStep step, const NicRecord& record, VmmBackend& vmm, const SwitchView& view) {
    switch (step) {
    case NicStep::HostDevice: return vmm.host_device_exists(device_of(record, 0));
    case NicStep::SwitchPort: return view.ports.count(record.host_if) != 0;
    case NicStep::PortSecurity: return view.secured.count(record.host_if) != 0;
    case NicStep::Plug: return vmm.plugged(device_of(record, 0));
    }
    return false;
}

void NicManager::remove_step(NicStep step, const NicRecord& record, VmmBackend* vmm) {
    const NicDevice device = device_of(record, 0);
    switch (step) {
    case NicStep::Plug:
        if (vmm) vmm->unplug(device);
        return;
    case NicStep::PortSecurity:
        // Before the port: OVS keeps a removed port's flows, and a later port may get its number.
        // (A group member's rules go with its port: Segment::remove_member.)
        if (!record.network.is_hostlo()) host_.network.unsecure_port(record.host_if);
        return;
    case NicStep::SwitchPort:
        if (record.network.is_hostlo()) hostlo_call([&] { host_.hostlo.remove_member(record.network.name, record.host_if); });
        else host_.network.remove_port(record.host_if);
        return;
    case NicStep::HostDevice:
        if (vmm) vmm->delete_host_device(device);
        return;
    }
}

hostlo::Group NicManager::group_now(const std::string& name) {
    std::lock_guard lock(state_mutex_);
    const hostlo::Group* found = state_.hostlo.find(name);
    if (!found) throw ShimError(ErrorKind::NotFound, "Hostlo group " + name + " no longer exists");
    return *found;
}

void NicManager::build(NicRecord& record, const HostNetwork& network) {
    std::shared_ptr<VmLane> vm_lane;
    {
        std::lock_guard lock(state_mutex_);
        vm_lane = lane(record.vm);
    }
    // The backend's steps in the VM's lane; the switch's outside it, so that attaches running at
    // once in one VM reach the switch together (HostSwitch::add_port shares their transaction).
    for (const NicStep step : kNicSteps) {
        std::unique_lock<std::mutex> serial;
        if (step == NicStep::HostDevice || step == NicStep::Plug) serial = std::unique_lock(vm_lane->mutex);
        make_step(step, record, *vm_lane->backend, network);
    }
}

void NicManager::tear_down(NicRecord record) {
    bool withdraw = false;
    std::shared_ptr<VmLane> vm_lane;
    {
        std::lock_guard lock(state_mutex_);
        // A detach being resumed may have failed to withdraw its published ports from the table.
        withdraw = !record.published.empty() || record.phase == NicPhase::Detaching;
        const bool changed = withdraw || record.phase == NicPhase::Attached;
        if (record.phase == NicPhase::Attached) record.phase = NicPhase::Detaching;
        record.published.clear();
        state_.nics[record.endpoint] = record;
        if (changed) save();
        if (config_.vm(record.vm)) vm_lane = lane(record.vm);  // else the VM is gone from the config: its side went with it
    }
    // Before the address goes back to the pool: a later NIC may get it.
    if (withdraw) apply_firewall();
    {
        std::unique_lock<std::mutex> serial;
        if (vm_lane) serial = std::unique_lock(vm_lane->mutex);
        for (auto step = kNicSteps.rbegin(); step != kNicSteps.rend(); ++step)
            remove_step(*step, record, vm_lane ? vm_lane->backend.get() : nullptr);
    }
    std::lock_guard lock(state_mutex_);
    if (!record.spare) state_.ipam.release(record.network.wire(), record.ip);
    state_.nics.erase(record.endpoint);
    save();
}

void NicManager::mark_attached(NicRecord& record) {
    std::lock_guard lock(state_mutex_);
    record.phase = NicPhase::Attached;
    state_.nics[record.endpoint] = record;
    save();
}

void NicManager::undo_attach(const NicRecord& record, const std::exception_ptr& failure) {
    try {
        tear_down(record);
    } catch (const std::exception& cleanup) {
        throw ShimError(ErrorKind::Backend, "attaching a NIC for VM " + record.vm + " to " + record.network.wire() + " failed: " + message_of(failure) +
                                                "; undoing it failed too (" + cleanup.what() + "); the next start of brfusion-shim retries");
    }
}

}  // namespace brfusion::shim
