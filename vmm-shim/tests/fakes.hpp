#pragma once
// Fakes of the shim's outside world for unit tests: a host switch and VMM backends that keep
// what exists in memory and throw at a chosen step, so that a test can fail every step in turn.

#include "brfusion/shim/backend.hpp"
#include "brfusion/shim/error.hpp"
#include "brfusion/shim/firewall.hpp"
#include "brfusion/shim/host_stack.hpp"
#include "brfusion/shim/host_switch.hpp"
#include "brfusion/shim/nic_manager.hpp"
#include "net.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <unistd.h>

namespace brfusion::shim::test {

// Counts the steps taken against the fakes and fails those numbered in `failing`. Its lock is
// the fakes' own: every fake holds it while it works, so that the shim may call them from
// several threads (each VM's backend calls run on the thread of the request).
struct FaultPlan {
    int steps = 0;
    std::set<int> failing;
    std::recursive_mutex mutex;
    std::unique_lock<std::recursive_mutex> hold() { return std::unique_lock(mutex); }
    void fail(std::set<int> steps_to_fail) {
        auto held = hold();
        steps = 0;
        failing = std::move(steps_to_fail);
    }
    void step(const std::string& what) {
        auto held = hold();
        if (failing.count(++steps)) throw ShimError(ErrorKind::Backend, "injected failure at step " + std::to_string(steps) + " (" + what + ")");
    }
};

struct FakeHostSwitch : HostSwitch {
    explicit FakeHostSwitch(FaultPlan& faults) : plan(faults) {}
    void ensure_bridge() override { plan.step("ensure_bridge"); }
    void add_port(const std::string& name, int tag, const Labels& labels) override {
        if (auto hook = std::exchange(before_add_port, nullptr)) hook(name);
        auto held = plan.hold();
        plan.step("add_port " + name);
        ports[name] = labels;
        tags[name] = tag;
    }
    void remove_port(const std::string& name) override {
        auto held = plan.hold();
        plan.step("remove_port " + name);
        ports.erase(name);
        gateways.erase(name);
    }
    void remove_label(const std::string& port, const std::string& key) override {
        auto held = plan.hold();
        plan.step("remove_label " + port);
        if (ports.count(port)) ports[port].erase(key);
    }
    std::map<std::string, std::string> ports_labelled(const std::string& key) override {
        auto held = plan.hold();
        std::map<std::string, std::string> result;
        for (const auto& [name, labels] : ports)
            if (labels.count(key)) result[name] = labels.at(key);
        for (const auto& [name, labels] : gateway_labels)
            if (gateways.count(name) && labels.count(key)) result[name] = labels.at(key);
        return result;
    }
    void ensure_gateway(const std::string& port, int, const Labels& labels, const std::string& address, int) override {
        auto held = plan.hold();
        plan.step("ensure_gateway " + port);
        gateways[port] = address;
        gateway_labels[port] = labels;
    }
    void secure_ports(const std::map<std::string, PortSecurity>& rules) override {
        auto held = plan.hold();
        plan.step("secure_ports");
        for (const auto& [port, allowed] : rules)
            if (!ports.count(port)) throw ShimError(ErrorKind::Backend, "secure_ports on a missing port");
        for (const auto& [port, allowed] : rules) security[port] = allowed.mac + " " + (allowed.ip ? allowed.ip->str() : "nothing");
    }
    void unsecure_port(const std::string& port) override {
        auto held = plan.hold();
        plan.step("unsecure_port " + port);
        security.erase(port);
    }
    std::set<std::string> secured_ports(const std::set<std::string>& among) override {
        auto held = plan.hold();
        std::set<std::string> result;
        for (const auto& port : among)
            if (security.count(port)) result.insert(port);
        return result;
    }
    int prune_port_security(const std::set<std::string>& keep) override {
        auto held = plan.hold();
        return static_cast<int>(std::erase_if(security, [&](const auto& entry) { return !keep.count(entry.first); }));
    }
    std::string generation() override {
        auto held = plan.hold();
        return switch_generation;
    }
    // An ovs-vswitchd restart: every rule is gone, and the generation changes.
    void restart_switch() {
        auto held = plan.hold();
        security.clear();
        switch_generation += "+";
    }
    bool userspace_tso() override { return tso; }
    std::string switch_generation = "1";
    bool tso = false;  // Open vSwitch's other_config:userspace-tso-enable
    // Runs once, first in the next add_port, without the plan's lock: where a test lets another
    // request in.
    std::function<void(const std::string& port)> before_add_port;
    FaultPlan& plan;
    std::map<std::string, Labels> ports;  // container ports; gateways are kept apart
    std::map<std::string, int> tags;
    std::map<std::string, std::string> gateways;  // port -> address
    std::map<std::string, Labels> gateway_labels;
    std::map<std::string, std::string> security;  // port -> "MAC IP", or "MAC nothing" for a spare
};

// Hostlo segments in memory: group -> member port -> its labels, and the name of each segment
// ("seg-SLOT"), so that a segment made for another slot shows.
struct FakeSegment : hostlo::Segment {
    explicit FakeSegment(FaultPlan& faults) : plan(faults) {}
    void ensure_group(const hostlo::Group& group) override {
        if (auto hook = std::exchange(before_ensure_group, nullptr)) hook(group);
        auto held = plan.hold();
        plan.step("ensure_group " + group.name);
        if (names.count(group.name) && names[group.name] != segment_name(group)) throw ShimError(ErrorKind::Backend, "ensure_group: another segment");
        names[group.name] = segment_name(group);
        segments[group.name];
    }
    void remove_group(const std::string& group) override {
        auto held = plan.hold();
        plan.step("remove_group " + group);
        for (const auto& [port, labels] : segments[group]) security.erase(port);
        segments.erase(group);
        names.erase(group);
    }
    void add_member(const hostlo::Group& group, const std::string& port, const hostlo::Labels& labels) override {
        auto held = plan.hold();
        plan.step("add_member " + port);
        if (!segments.count(group.name)) throw ShimError(ErrorKind::Backend, "add_member to a missing segment");
        segments[group.name][port] = labels;
    }
    void remove_member(const std::string& group, const std::string& port) override {
        auto held = plan.hold();
        plan.step("remove_member " + port);
        for (const auto& [other, members] : segments)
            if (other != group && members.count(port)) throw ShimError(ErrorKind::Conflict, "remove_member: " + port + " is " + other + "'s");
        if (segments.count(group)) segments[group].erase(port);
        security.erase(port);
    }
    void secure_members(const hostlo::Group& group, const std::map<std::string, PortSecurity>& rules) override {
        auto held = plan.hold();
        plan.step("secure_members " + group.name);
        for (const auto& [port, allowed] : rules)
            if (!segments[group.name].count(port)) throw ShimError(ErrorKind::Backend, "secure_members on a missing port");
        for (const auto& [port, allowed] : rules) security[port] = allowed.mac + " " + (allowed.ip ? allowed.ip->str() : "nothing");
    }
    std::set<std::string> secured_members(const hostlo::Group&, const std::set<std::string>& among) override {
        auto held = plan.hold();
        std::set<std::string> result;
        for (const auto& port : among)
            if (security.count(port)) result.insert(port);
        return result;
    }
    std::map<std::string, hostlo::SegmentState> groups() override {
        auto held = plan.hold();
        std::map<std::string, hostlo::SegmentState> result;
        for (const auto& [group, members] : segments) {
            auto& entry = result[group];
            entry.name = names[group];
            for (const auto& [port, labels] : members) entry.members.insert(port);
        }
        return result;
    }
    std::string segment_name(const hostlo::Group& group) const override { return "seg-" + std::to_string(group.slot); }
    // Runs once, first in the next ensure_group, without the plan's lock: where a test lets
    // another request in.
    std::function<void(const hostlo::Group& group)> before_ensure_group;
    FaultPlan& plan;
    std::map<std::string, std::map<std::string, hostlo::Labels>> segments;
    std::map<std::string, std::string> names;  // group -> its segment's name
    std::map<std::string, std::string> security;  // member port -> "MAC IP"
};

// Keeps the last rules applied; an injected failure keeps the previous ones (nft is atomic).
struct FakeFirewall : HostFirewall {
    explicit FakeFirewall(FaultPlan& faults) : plan(faults) {}
    void apply(const FirewallRules& next) override {
        auto held = plan.hold();
        plan.step("firewall apply");
        rules = next;
        ++applied;
    }
    FaultPlan& plan;
    FirewallRules rules;
    int applied = 0;
};

// The host's own stack: its addresses (eth0 192.0.2.1 by default) and the ports its processes use.
struct FakeHostStack : HostStack {
    std::vector<InterfaceAddress> addresses = {{"eth0", *Ipv4::parse("192.0.2.1")}};
    std::multimap<int, PortUse> tcp, udp;
    std::set<int> reserved;
    std::vector<InterfaceAddress> publish_addresses(const std::vector<std::string>&, const std::set<std::string>&) override { return addresses; }
    std::multimap<int, PortUse> used_ports(const std::string& protocol) override { return protocol == "tcp" ? tcp : udp; }
    std::set<int> reserved_ports() override { return reserved; }
};

// What exists in all fake VMs and on the fake host.
struct FakeWorld {
    std::set<std::string> host_devices;
    std::map<std::string, std::string> plugged;  // host_if -> VM
    std::atomic<int> slots{64};                  // NICs each VM can hold (a test may change it from its thread)

    // A VM whose guest does not acknowledge unplugs: its unplug waits until release().
    void hang(const std::string& vm) {
        std::lock_guard lock(gate);
        hung.insert(vm);
    }
    void release(const std::string& vm) {
        {
            std::lock_guard lock(gate);
            hung.erase(vm);
        }
        released.notify_all();
    }
    void wait_while_hung(const std::string& vm) {
        std::unique_lock lock(gate);
        ++waiting;
        released.wait(lock, [&] { return !hung.count(vm); });
        --waiting;
    }
    std::mutex gate;
    std::condition_variable released;
    std::set<std::string> hung;
    int waiting = 0;  // unplugs waiting now (under gate)
};

struct FakeBackend : VmmBackend {
    FakeBackend(std::string vm_name, FaultPlan& faults, FakeWorld& shared) : vm(std::move(vm_name)), plan(faults), world(shared) {}
    void create_host_device(const NicDevice& nic) override {
        auto held = plan.hold();
        plan.step("create_host_device " + nic.host_if);
        world.host_devices.insert(nic.host_if);
    }
    // Like a real VM: the NIC has an address, and the VM lists the NICs it holds.
    std::string plug(const NicDevice& nic) override {
        auto held = plan.hold();
        plan.step("plug " + nic.host_if);
        if (!world.host_devices.count(nic.host_if)) throw ShimError(ErrorKind::Backend, "plug without a host device");
        if (static_cast<int>(plugged_nics().size()) >= world.slots) throw ShimError(ErrorKind::Exhausted, "VM " + vm + " has no free slot");
        world.plugged[nic.host_if] = vm;
        return "pci-of-" + nic.host_if;
    }
    void unplug(const NicDevice& nic) override {
        world.wait_while_hung(vm);  // outside the fakes' lock, like a real guest that takes its time
        auto held = plan.hold();
        plan.step("unplug " + nic.host_if);
        world.plugged.erase(nic.host_if);
    }
    void delete_host_device(const NicDevice& nic) override {
        auto held = plan.hold();
        plan.step("delete_host_device " + nic.host_if);
        world.host_devices.erase(nic.host_if);
    }
    bool host_device_exists(const NicDevice& nic) override {
        auto held = plan.hold();
        return world.host_devices.count(nic.host_if) != 0;
    }
    bool plugged(const NicDevice& nic) override {
        auto held = plan.hold();
        return world.plugged.count(nic.host_if) != 0;
    }
    std::vector<std::string> plugged_nics() override {
        auto held = plan.hold();
        std::vector<std::string> nics;
        for (const auto& [host_if, holder] : world.plugged)
            if (holder == vm) nics.push_back(host_if);
        return nics;
    }
    std::string vm;
    FaultPlan& plan;
    FakeWorld& world;
};

// Two networks (lab: vm1 and vm2; lab2: vm1 only) and two VMs.
inline ShimConfig test_config(const std::string& state_dir) {
    return parse_config(nlohmann::json{
        {"state_dir", state_dir},
        {"networks", {{{"name", "lab"}, {"subnet", "198.51.100.0/24"}, {"tag", 100}}, {{"name", "lab2"}, {"subnet", "203.0.113.0/24"}, {"tag", 200}}}},
        {"vms", {{{"name", "vm1"}, {"netns", "ns1"}, {"networks", {"lab", "lab2"}}}, {{"name", "vm2"}, {"netns", "ns2"}, {"networks", {"lab"}}}}}});
}

// A shim over fakes, restartable over the same journal and "outside world".
struct Rig {
    std::string dir;  // the journal's
    FaultPlan plan;
    FakeHostSwitch host{plan};
    FakeFirewall firewall{plan};
    FakeSegment segment{plan};
    FakeHostStack stack;
    FakeWorld world;
    ShimConfig config;  // what restart() starts with
    std::unique_ptr<Journal> journal;
    std::unique_ptr<NicManager> manager;

    // `adjust` changes test_config() before the first start; `directory` holds the journal.
    explicit Rig(const std::function<void(ShimConfig&)>& adjust = {}, std::string directory = "/tmp/brfusion-nic-test-" + std::to_string(::getpid()))
        : Rig(adjusted(test_config(directory), adjust)) {}
    // A shim started with `prepared` as it is; its journal goes to prepared.state_dir.
    explicit Rig(ShimConfig prepared) : dir(prepared.state_dir), config(std::move(prepared)) {
        std::filesystem::remove_all(dir);
        host.tso = config.userspace_tso;  // a switch as the config needs it (a test of the refusal unsets it)
        restart();
    }
    static ShimConfig adjusted(ShimConfig config, const std::function<void(ShimConfig&)>& adjust) {
        if (adjust) adjust(config);
        return config;
    }
    ~Rig() { std::filesystem::remove_all(dir); }
    ReconcileReport restart() {
        journal = std::make_unique<Journal>(dir);
        manager = std::make_unique<NicManager>(config, *journal, HostServices{host, firewall, segment, stack}, [this](const VmConfig& vm) {
            return std::make_unique<FakeBackend>(vm.name, plan, world);
        });
        return manager->start();
    }
    // Nothing of any NIC exists anywhere: no device, plug, container port, lease or record.
    void require_clean() const {
        CHECK(world.host_devices.empty());
        CHECK(world.plugged.empty());
        CHECK(host.ports.empty());
        CHECK(host.security.empty());
        CHECK(firewall.rules.published.empty());
        CHECK(manager->nics().empty());
        const ShimState saved = Journal(dir).load();
        CHECK(saved.nics.empty());
        CHECK(saved.ipam.leases("lab").empty());
    }
};

}  // namespace brfusion::shim::test
