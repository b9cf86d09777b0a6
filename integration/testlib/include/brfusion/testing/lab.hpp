#pragma once
// Lab: brfusion's whole path on this machine, with fixed facts that scenarios, the quickstart and
// the benchmarks rely on (docs/lab.md). Every namespace and VM it makes has its name in
// theirs. Constructed = everything answering; destroyed = everything gone.
//
//   host     netns NAME-host: a private OVS (userspace datapath) and brfusion-shim. Uplink up0,
//            192.0.2.1/25, to the outside. Host networks, NATed out of up0: lab 198.51.100.0/24
//            (every VM), lab2 203.0.113.0/24 (vm1 only), mgmt 192.0.2.128/26 (the VMs' primary
//            NICs; no container may use it). Hostlo groups: any name, subnets from 192.0.2.192/26.
//   outside  netns NAME-outside: 192.0.2.2/25, reachable only through the host's uplink; an HTTP
//            server on port 80 (the page "brfusion-outside-page") and an iperf3 server.
//   vmN      backend netns: a network + mount namespace NAME-vmN (EmulatedVm); qmp / libvirt: a
//            QEMU VM (TCG) NAME-vmN. Each runs dockerd with its default bridge and NAT (the
//            nested-NAT baseline), brfusion-plugin on its guest channel, the image
//            brfusion-test:latest (busybox and iperf3), and has a primary NIC eth0 on mgmt,
//            192.0.2.(129+N)/26, default route via the host (192.0.2.129), like a cloud VM.

#include "brfusion/testing/command.hpp"
#include "brfusion/testing/daemon.hpp"
#include "brfusion/testing/ovs_sandbox.hpp"

#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <vector>

namespace brfusion::testing {

struct LabBinaries {
    std::string shim, ctl, plugin;
};

struct LabOptions {
    std::string name = "lab";
    int vms = 2;                    // 1-9
    std::string backend = "netns";  // netns | qmp | libvirt
    LabBinaries binaries;
    std::string dir;                // default /tmp/brfusion-lab/NAME (sockets, logs, state; a QEMU guest sees /tmp)
    // What benchmarks vary; the defaults are the lab's fixed facts.
    int root_ports = 4;                        // QEMU VMs: PCIe root ports, one per hot-plugged NIC (1-112)
    int warm_pool = 0;                         // spare NICs the shim keeps plugged into vm1 on lab2 (0-32)
    std::string lab_subnet = "198.51.100.0/24";  // network lab's subnet
    int nic_quota = 64;                        // container NICs each VM may hold (the shim's vms[].quotas.nics)
    // Open vSwitch segments and checksums for the guests (other_config:userspace-tso-enable; the
    // shim's userspace_tso): every VM NIC, primary and container, keeps TX checksum offload and
    // TSO. Off: they turn TX checksum offload off, as the userspace datapath otherwise needs.
    bool userspace_tso = false;
    // The VMs' dockerd keeps containers running across its restarts (--live-restore). Off: it may
    // form a swarm (Docker refuses swarm mode with --live-restore), the benchmark's overlay
    // baseline; restart_dockerd then stops the VM's containers.
    bool docker_live_restore = true;
};

// One VM of the lab, whatever its backend.
class LabVm {
public:
    virtual ~LabVm() = default;
    // Runs `command` with sh in the VM's root network namespace, `docker` talking to its dockerd.
    virtual CommandResult exec(const std::string& command) = 0;
    // Stops with `signal` (SIGTERM: a clean stop; SIGKILL: a crash), then starts again.
    virtual void restart_plugin(int signal) = 0;
    virtual void restart_dockerd(int signal) = 0;  // containers keep running (LabOptions::docker_live_restore)
    virtual nlohmann::json status() = 0;
};

class Lab {
public:
    // Throws std::runtime_error saying what did not come up; what was made is removed again.
    explicit Lab(LabOptions options);
    ~Lab();
    Lab(const Lab&) = delete;
    Lab& operator=(const Lab&) = delete;

    // Runs `command` with sh on `node`: host (in the host netns; ovs-vsctl and brfusionctl reach
    // the lab's OVS and shim), outside, or vm1..vmN. Throws std::invalid_argument for an unknown node.
    CommandResult exec(const std::string& node, const std::string& command);
    // Restarts one component with everything else running: plugin | dockerd on a VM, shim | ovs
    // (ovsdb-server and ovs-vswitchd) | ovsdb-server | ovs-vswitchd on the host. A plugin, dockerd
    // or shim stops cleanly (SIGTERM); OVS's daemons are always killed (SIGKILL). Throws
    // std::invalid_argument for an unknown node or component, std::runtime_error if it does not
    // come back.
    void restart(const std::string& node, const std::string& component);
    // The same with SIGKILL for every component: a crash, then a start as systemd would do.
    void crash(const std::string& node, const std::string& component);
    nlohmann::json status();

    const LabOptions& options() const { return options_; }
    const OvsSandbox& host() const { return *host_; }
    // `brfusionctl ARGS` against the lab's shim; throws on failure.
    std::string ctl(const std::string& args) const;
    // The shim's journal as one document (`brfusionctl journal`: what its next start loads).
    nlohmann::json shim_journal() const;
    int shim_pid() const { return shim_.pid(); }
    // The unix socket the shim serves `vm`'s guest channel on (whoever connects speaks as `vm`).
    std::string guest_channel(const std::string& vm) const { return options_.dir + "/run/vm-" + vm + ".sock"; }

    static constexpr const char* kOutsideAddress = "192.0.2.2";
    static constexpr const char* kHostUplinkAddress = "192.0.2.1";
    // vmN's primary NIC's address on mgmt, 192.0.2.(129+N).
    static std::string primary_address(int vm) { return "192.0.2." + std::to_string(129 + vm); }

private:
    void start_shim();
    void restart(const std::string& node, const std::string& component, int signal);
    LabVm& vm(const std::string& node);

    LabOptions options_;
    std::unique_ptr<OvsSandbox> host_;
    std::unique_ptr<Netns> outside_;
    Daemon outside_http_, outside_iperf_, shim_;
    struct Backing;  // what QEMU VMs need on the host (libvirtd)
    std::unique_ptr<Backing> backing_;
    std::vector<std::unique_ptr<LabVm>> vms_;
};

}  // namespace brfusion::testing
