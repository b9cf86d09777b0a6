// Reconcile (on start): the journal against what OVS, the port rules and the VMs actually hold.
// Deletions before additions; nothing is replayed.

#include "internal.hpp"

namespace brfusion::shim {

using namespace detail;

ReconcileReport NicManager::reconcile() {
    ReconcileReport report;
    reconcile_segments(report);
    const SwitchView view = switch_view();  // before any repair
    for (const auto& record : nics()) {
        try {
            reconcile_nic(record, view, report);
        } catch (const ShimError& error) {
            report.deferred.push_back("NIC " + record.endpoint + " of VM " + record.vm + ": " + error.what());
        }
    }
    remove_orphans(report);
    remove_orphan_members(report);
    // Gateways of networks that are gone (removed from the file, or a removal cut short).
    const auto networks = host_.network.ports_labelled("brfusion-network");
    const ShimConfig current = config();
    for (const auto& [port, gateway] : host_.network.ports_labelled("brfusion-gateway")) {
        const HostNetwork* network = current.network(networks.count(port) ? networks.at(port) : "");
        if (network && gateway_port(*network) == port) continue;
        host_.network.remove_port(port);
        report.orphans.push_back(port);
    }
    std::set<std::string> kept;
    for (const auto& record : nics()) kept.insert(record.host_if);
    report.stale_port_rules = host_.network.prune_port_security(kept);
    return report;
}

NicManager::SwitchView NicManager::switch_view() {
    SwitchView view;
    for (const auto& [port, endpoint] : host_.network.ports_labelled("brfusion-endpoint")) view.ports.insert(port);
    const auto segments = hostlo_call([&] { return host_.hostlo.groups(); });
    for (const auto& [group, segment] : segments) view.ports.insert(segment.members.begin(), segment.members.end());
    std::set<std::string> attached;
    std::map<std::string, std::set<std::string>> members;  // by group
    for (const auto& record : nics()) {
        if (record.phase != NicPhase::Attached) continue;
        if (record.network.is_hostlo()) members[record.network.name].insert(record.host_if);
        else attached.insert(record.host_if);
    }
    view.secured = host_.network.secured_ports(attached);
    for (const auto& group : hostlo_groups()) {
        if (!members.count(group.name) || !segments.count(group.name)) continue;
        for (const auto& port : hostlo_call([&] { return host_.hostlo.secured_members(group, members[group.name]); })) view.secured.insert(port);
    }
    return view;
}

void NicManager::reconcile_nic(const NicRecord& record, const SwitchView& view, ReconcileReport& report) {
    if (record.phase != NicPhase::Attached) {
        tear_down(record);
        (record.phase == NicPhase::Attaching ? report.undone : report.finished).push_back(record.endpoint);
        return;
    }
    std::optional<HostNetwork> network;
    std::shared_ptr<VmLane> vm_lane;
    {
        std::lock_guard lock(state_mutex_);
        network = network_of(record.network);
        if (config_.vm(record.vm)) vm_lane = lane(record.vm);
    }
    if (!vm_lane || !network) {
        tear_down(record);  // its VM, network or Hostlo group was removed: reclaim
        report.finished.push_back(record.endpoint);
        return;
    }
    NicRecord repaired = record;
    {
        std::lock_guard serial(vm_lane->mutex);
        bool intact = true;
        for (const NicStep step : kNicSteps) intact = intact && step_exists(step, record, *vm_lane->backend, view);
        if (intact) return;
        for (const NicStep step : kNicSteps) make_step(step, repaired, *vm_lane->backend, *network);  // each idempotent
    }
    std::lock_guard lock(state_mutex_);
    state_.nics[record.endpoint].pci = repaired.pci;
    save();
    report.repaired.push_back(record.endpoint);
}

void NicManager::remove_orphans(ReconcileReport& report) {
    std::set<std::string> known;
    for (const auto& record : nics()) known.insert(record.host_if);
    const auto network_labels = host_.network.ports_labelled("brfusion-network");
    // The pieces of a NIC that `port` names, on whatever network its labels say.
    const auto orphan = [&](const std::string& port, const std::string& vm) {
        NicRecord record;
        record.host_if = port;
        record.vm = vm;
        const auto label = network_labels.find(port);
        const auto network = label == network_labels.end() ? std::nullopt : NetworkRef::parse(label->second);
        record.network = network.value_or(NetworkRef::host_network("unknown"));
        return record;
    };
    // NICs the VMs hold that no record knows (a crash before the journal said so, or a journal
    // moved away): every piece, unplug first.
    for (const auto& vm : config().vms) {
        try {
            std::shared_ptr<VmLane> vm_lane;
            {
                std::lock_guard lock(state_mutex_);
                vm_lane = lane(vm.name);
            }
            std::lock_guard serial(vm_lane->mutex);
            for (const auto& host_if : vm_lane->backend->plugged_nics()) {
                if (known.count(host_if)) continue;
                const NicRecord record = orphan(host_if, vm.name);
                for (auto step = kNicSteps.rbegin(); step != kNicSteps.rend(); ++step) remove_step(*step, record, vm_lane->backend.get());
                report.orphans.push_back(host_if);
            }
        } catch (const ShimError& error) {
            report.deferred.push_back(error.what());  // backends name the VM
        }
    }
    // Labelled ports no record knows (read again: the loop above removed some).
    const auto vms = host_.network.ports_labelled("brfusion-vm");
    for (const auto& [port, endpoint] : host_.network.ports_labelled("brfusion-endpoint")) {
        if (known.count(port)) continue;
        const auto vm = vms.find(port);
        const NicRecord record = orphan(port, vm == vms.end() ? "" : vm->second);
        std::shared_ptr<VmLane> vm_lane;
        {
            std::lock_guard lock(state_mutex_);
            if (config_.vm(record.vm)) vm_lane = lane(record.vm);
        }
        std::unique_lock<std::mutex> serial;
        if (vm_lane) serial = std::unique_lock(vm_lane->mutex);
        for (const NicStep step : {NicStep::PortSecurity, NicStep::SwitchPort, NicStep::HostDevice})  // not plugged: the VM said so above
            remove_step(step, record, vm_lane ? vm_lane->backend.get() : nullptr);
        report.orphans.push_back(port);
    }
}

void NicManager::reconcile_segments(ReconcileReport& report) {
    const std::vector<hostlo::Group> groups = hostlo_groups();
    const auto known = [&](const std::string& name) -> const hostlo::Group* {
        for (const auto& group : groups)
            if (group.name == name) return &group;
        return nullptr;
    };
    for (const auto& entry : hostlo_call([&] { return host_.hostlo.groups(); })) {
        const std::string& group = entry.first;  // named, not bound: the lambda below captures it
        const hostlo::Group* journaled = known(group);
        if (journaled && entry.second.name == host_.hostlo.segment_name(*journaled)) continue;
        hostlo_call([&] { host_.hostlo.remove_group(group); });
        report.orphans.push_back("Hostlo segment " + entry.second.name + " of group " + group);
    }
    for (const auto& group : groups) hostlo_call([&] { host_.hostlo.ensure_group(group); });
}

void NicManager::remove_orphan_members(ReconcileReport& report) {
    std::set<std::string> known;
    for (const auto& record : nics())
        if (record.network.is_hostlo()) known.insert(record.host_if);
    for (const auto& entry : hostlo_call([&] { return host_.hostlo.groups(); })) {
        const std::string& group = entry.first;
        for (const auto& port : entry.second.members) {
            if (known.count(port)) continue;
            hostlo_call([&] { host_.hostlo.remove_member(group, port); });
            report.orphans.push_back(port);
        }
    }
}

}  // namespace brfusion::shim
