#pragma once
// The benchmark's sections (docs/performance.md). Each one sets up what it measures on the lab it
// is given, measures its baselines in the same run, interleaved with what they are compared to,
// adds its tables and plots to the report, and removes its containers and networks again. None
// asserts anything about a time. Each throws std::runtime_error when a step fails.

#include "brfusion/bench/report.hpp"
#include "brfusion/testing/lab.hpp"

#include <optional>
#include <string>
#include <vector>

namespace brfusion::bench {

// The three paths the traffic sections compare, as their tables name them: a process in vm1 (the
// ceiling), a container on a brfusion network, a container on Docker's default bridge.
inline constexpr const char* kNoContainerPath = "no container (process in the VM)";
inline constexpr const char* kBrfusionPath = "brfusion (container on a host NIC)";
inline constexpr const char* kNestedNatPath = "nested NAT (Docker bridge+NAT in the VM)";

struct BenchOptions {
    int seconds = 2;    // one traffic measurement
    int runs = 5;       // repetitions of each traffic measurement; the tables show medians
    int startups = 50;  // container starts per start-up mode
};

// Throughput and latency: a process in vm1, a container on a brfusion network and a container on Docker's default
// bridge, each to the outside server: TCP throughput by write size (iperf3 -l) both ways (egress:
// vm1 sends; ingress: the outside sends to a port of the host's address, published by brfusion on
// the host, forwarded by a DNAT of the benchmark's own to vm1 for the other two), then UDP and TCP
// request/response latency (ping-pong, ping_pong.hpp).
void measure_paths_to_outside(testing::Lab& lab, const BenchOptions& options, Report& report);

// Applications, the paper's: NGINX serving a 1 KiB file under wrk, and Memcached under memcaslap
// (SET:GET 1:10), each in the three paths, loaded from the outside through a port of the host's
// address (published by brfusion on the host; forwarded to vm1 for the other two, as for ingress).
void measure_applications(testing::Lab& lab, const BenchOptions& options, Report& report);

// Start-up: `docker run` until the container's first request reached the outside server, in vm1: on
// Docker's default bridge, on a brfusion network with every NIC hot-plugged (host network lab), and
// on one served from the warm pool (lab2; the lab needs LabOptions::warm_pool > 0).
void measure_startup(testing::Lab& lab, const BenchOptions& options, Report& report);

// Hostlo: two containers of one pod: both in vm1 (the pod's localhost), across vm1 and vm2 over
// Hostlo, across them over Docker's bridge and NAT in both VMs, and over Docker's overlay network
// (the VMs form a swarm: the lab needs LabOptions::docker_live_restore off). Latency, throughput,
// NGINX and Memcached.
void measure_hostlo(testing::Lab& lab, const BenchOptions& options, Report& report);

// Scale: endpoints on VM `node` of `lab`, created through brfusion-plugin's socket the way dockerd
// does (CreateEndpoint, then Join) by this binary's attach-endpoints, run in the VM, up to
// each of `steps` in turn; per step, the attach latency of the endpoints added since the previous
// step, and the resident memory of brfusion-shim, brfusion-plugin and ovs-vswitchd, appended to
// `results` as each step completes (a failure keeps the steps before it).
struct ScaleStep {
    std::string vms;  // "emulated (netns)", "QEMU TCG (qmp)"
    int endpoints = 0;
    double attach_p50_ms = 0, attach_p90_ms = 0, shim_mib = 0, plugin_mib = 0, vswitchd_mib = 0;
    // CPU per attach over the row's endpoints: brfusion-shim and brfusion-plugin with the commands
    // they ran; ovs-vswitchd and ovsdb-server.
    double brfusion_cpu_ms = 0, ovs_cpu_ms = 0;
    // Attaches that claim a spare of the warm pool (vm1 of a lab with one), at this row.
    std::optional<double> warm_attach_p50_ms;
    // kAtOnce attaches started together at this row: the time until the last was done, per attach.
    std::optional<double> at_once_ms_per_attach;
};
// One row per step (endpoints in all). On vm1 of a lab with a warm pool, each row also measures
// warm attaches: scale_nics(steps) is then what the VM holds at the end.
void measure_scale(testing::Lab& lab, const std::string& node, const std::vector<int>& steps, std::vector<ScaleStep>& results);
int scale_nics(const std::vector<int>& steps);
void report_scale(const std::vector<ScaleStep>& steps, Report& report);

// The driver's side, in the VM: makes brfusion network `network_id` on host network
// `host_network` through the plugin at `plugin_socket` (RequestPool, CreateNetwork; idempotent),
// then creates and joins endpoints first..first+count-1. Prints one line per endpoint, its
// milliseconds from CreateEndpoint to Join's answer, then "plugin_rss_mib N" and "plugin_cpu_ms N"
// (the plugin's CPU over these endpoints).
void attach_endpoints(const std::string& plugin_socket, const std::string& host_network, const std::string& network_id, int first, int count);
// Like attach_endpoints, but the endpoints' attaches all start at once (a thread each, as dockerd
// serves concurrent `docker run`s); prints "at_once_ms N": the milliseconds until the last Join
// answered.
void attach_endpoints_at_once(const std::string& plugin_socket, const std::string& host_network, const std::string& network_id, int first, int count);

}  // namespace brfusion::bench
