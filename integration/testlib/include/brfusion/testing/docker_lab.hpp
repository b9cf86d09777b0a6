#pragma once
// DockerLab: brfusion's whole path on one machine. A "host" (private OVS in its own netns, and
// brfusion-shim serving host networks lab 198.51.100.0/24 and lab2 203.0.113.0/24) and two emulated
// VMs running dockerd and brfusion-plugin: vm1 may use lab and lab2, vm2 lab only; both may join
// Hostlo groups named pod*, whose subnets are /28s of 192.0.2.128/25. The host's uplink up0 has
// 192.0.2.1/25 (nothing beyond it): published ports are published there.
// Constructed = everything answering; destroyed = everything gone.

#include "brfusion/testing/daemon.hpp"
#include "brfusion/testing/emulated_vm.hpp"
#include "brfusion/testing/lab.hpp"
#include "brfusion/testing/ovs_sandbox.hpp"

#include <memory>
#include <string>

namespace brfusion::testing {

class DockerLab {
public:
    // `vm1_spares`: vm1's warm pool on lab (spare NICs kept plugged). Throws std::runtime_error
    // with the failing daemon's log.
    DockerLab(LabBinaries binaries, std::string dir, int vm1_spares = 0);
    ~DockerLab();
    DockerLab(const DockerLab&) = delete;
    DockerLab& operator=(const DockerLab&) = delete;

    static constexpr const char* kUplinkAddress = "192.0.2.1";

    void start_shim();  // returns once its admin socket exists
    void stop_shim() { shim.stop(15); }
    void start_plugin(EmulatedVm& vm);  // on the VM's guest channel
    // `brfusionctl ARGS` against the lab's shim; throws on failure.
    std::string ctl(const std::string& args) const;
    // The shim's journal as one document (`brfusionctl journal`: what its next start loads).
    nlohmann::json shim_journal() const;

    const LabBinaries binaries;
    const std::string dir;
    OvsSandbox host;
    Daemon shim;
    std::unique_ptr<EmulatedVm> vm1, vm2;
};

}  // namespace brfusion::testing
