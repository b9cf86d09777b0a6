#pragma once
// ShimCore: the shim's core (NicManager) over the real OVS, nftables and VMM backends, wired as
// brfusion-shim's main wires it, and restartable within one test or benchmark. A fixture sets
// `config`, then start_shim(); stop_shim() drops everything the core holds, including the OVS
// client's thread (a fork must not inherit one). A fixture deriving from it calls stop_shim() in
// its own destructor, before the OVS sandbox it owns goes away.

#include "brfusion/ovs/client.hpp"
#include "brfusion/shim/firewall.hpp"
#include "brfusion/shim/nic_manager.hpp"
#include "net.hpp"

#include <memory>

namespace brfusion::shim::test {

struct ShimCore {
    ShimConfig config;
    std::unique_ptr<ovs::OvsClient> ovs;
    std::unique_ptr<OvsHostSwitch> host_switch;
    std::unique_ptr<NftHostFirewall> firewall;
    std::unique_ptr<ProcHostStack> stack;
    std::unique_ptr<hostlo::Segment> hostlo;
    std::unique_ptr<Journal> journal;
    std::unique_ptr<NicManager> shim;

    ~ShimCore() { stop_shim(); }

    void stop_shim() {
        shim.reset();
        stack.reset();
        hostlo.reset();
        journal.reset();
        firewall.reset();
        host_switch.reset();
        ovs.reset();
    }
    // A fresh core over `config`, started (reconciled); returns what reconcile did.
    ReconcileReport start_shim() {
        stop_shim();
        ovs::ClientOptions options;
        options.socket_path = config.ovsdb;
        ovs = std::make_unique<ovs::OvsClient>(options);
        host_switch = std::make_unique<OvsHostSwitch>(*ovs, config.bridge, config.host_netns, config.ovsdb);
        firewall = std::make_unique<NftHostFirewall>(config.host_netns);
        stack = std::make_unique<ProcHostStack>(config.host_netns);
        journal = std::make_unique<Journal>(config.state_dir);
        hostlo = hostlo::make_segment(config.hostlo.backend, *ovs, config.ovsdb);
        shim = std::make_unique<NicManager>(config, *journal, HostServices{*host_switch, *firewall, *hostlo, *stack},
                                            [this](const VmConfig& vm) { return make_backend(vm, {config.host_netns, config.userspace_tso}); });
        return shim->start();
    }
};

}  // namespace brfusion::shim::test
