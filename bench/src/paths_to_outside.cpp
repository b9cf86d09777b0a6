#include "brfusion/bench/lab_tools.hpp"
#include "brfusion/bench/sections.hpp"
#include "brfusion/bench/stats.hpp"

#include <array>
#include <cstdio>

namespace brfusion::bench {

namespace {

struct PathToOutside {
    std::string name, label;  // label: the plot's
    Place client;
};

// One TCP stream of a throughput table: iperf3 from `client` to a server at `target`.
struct Flow {
    Place client;
    Iperf3Target target;
};

const std::vector<int> kWriteSizes = {64, 128, 256, 512, 1024, 1280};
const std::vector<int> kIngressWriteSizes = {64, 512, 1280};  // the range's ends and middle: the run stays under 25 min
constexpr int kPingPongPort = 11111, kIperfPort = 5202;  // the lab's own iperf3 server has 5201
// Ingress: the host port that reaches vm1's own process, the brfusion container and the nested-NAT
// container; each server listens on the same port number inside.
constexpr int kIngressToVm = 5211, kIngressToBrfusion = 5212, kIngressToNestedNat = 5213;

// Throughput (Mbit/s) of each flow at each write size: runs x sizes x flows, interleaved so that
// drift hits every flow alike. [flow][size] holds one figure per run.
std::vector<std::vector<std::vector<double>>> measure_throughput(testing::Lab& lab, const BenchOptions& options, const std::vector<Flow>& flows,
                                                                 const std::vector<PathToOutside>& paths, const std::vector<int>& sizes,
                                                                 const std::string& direction) {
    std::vector<std::vector<std::vector<double>>> mbits(flows.size(), std::vector<std::vector<double>>(sizes.size()));
    for (int run = 1; run <= options.runs; ++run)
        for (std::size_t size = 0; size < sizes.size(); ++size)
            for (std::size_t flow = 0; flow < flows.size(); ++flow) {
                progress("%s throughput run %d/%d, %d B: %s", direction.c_str(), run, options.runs, sizes[size], paths[flow].name.c_str());
                mbits[flow][size].push_back(iperf3_mbits(lab, flows[flow].client, flows[flow].target, options.seconds, sizes[size]));
            }
    return mbits;
}

// The table of measure_throughput's figures for the three paths (no container, brfusion, nested
// NAT, in that order), with brfusion's ratios to the other two; `data` gets the plot's columns.
Table throughput_table(const std::string& title, const std::vector<PathToOutside>& paths, const std::vector<int>& sizes,
                       const std::vector<std::vector<std::vector<double>>>& mbits, const std::string& what, std::string& data) {
    Table table{title,
                {"write size (B)", paths[0].name, paths[1].name, paths[2].name, "brfusion / no container", "brfusion / nested NAT"},
                {},
                {what + ", `-l SIZE`, one TCP stream; median of " + std::to_string(mbits[0][0].size()) + " runs.",
                 "Ratios: the median of each run's ratio (a run measures the three paths back to back), with the lowest and highest in "
                 "brackets."}};
    data = "# write_size no_container brfusion nested_nat (Mbit/s, medians)\n";
    for (std::size_t size = 0; size < sizes.size(); ++size) {
        const double none = median(mbits[0][size]), brfusion = median(mbits[1][size]), nested = median(mbits[2][size]);
        table.rows.push_back({std::to_string(sizes[size]), fixed(none, 1), fixed(brfusion, 1), fixed(nested, 1),
                              ratio_cell(spread(ratios(mbits[1][size], mbits[0][size]))), ratio_cell(spread(ratios(mbits[1][size], mbits[2][size])))});
        data += std::to_string(sizes[size]) + " " + fixed(none, 2) + " " + fixed(brfusion, 2) + " " + fixed(nested, 2) + "\n";
    }
    return table;
}

}  // namespace

void measure_paths_to_outside(testing::Lab& lab, const BenchOptions& options, Report& report) {
    const std::string outside = testing::Lab::kOutsideAddress, uplink = testing::Lab::kHostUplinkAddress;
    ok(lab, "vm1", "docker network create -d brfusion --ipam-driver brfusion --ipam-opt network=lab bench-web");
    // Each container publishes its ingress port: brfusion's on the host, Docker's on the VM.
    ok(lab, "vm1", "docker run -d --name bench-brfusion --network bench-web" + published(kIngressToBrfusion) + " brfusion-test sleep 86400");
    ok(lab, "vm1", "docker run -d --name bench-nat" + published(kIngressToNestedNat) + " brfusion-test sleep 86400");
    // The baselines first: a process in the VM (the ceiling) and Docker's nested bridge+NAT.
    const std::vector<PathToOutside> paths = {
        {kNoContainerPath, "no container", {"vm1", 0}},
        {kBrfusionPath, "brfusion", container(lab, "vm1", "bench-brfusion")},
        {kNestedNatPath, "nested NAT", container(lab, "vm1", "bench-nat")},
    };

    // 1. Throughput by write size, egress: from vm1 to a server outside.
    std::vector<Flow> egress;
    for (const auto& path : paths) egress.push_back({path.client, {{"outside", 0}, outside, kIperfPort}});
    std::string data;
    report.add(throughput_table("TCP throughput to the outside by write size (Mbit/s)", paths, kWriteSizes,
                                measure_throughput(lab, options, egress, paths, kWriteSizes, "egress"),
                                "iperf3 from vm1 to a server outside (192.0.2.2) through the host's NAT, " + std::to_string(options.seconds) + " s",
                                data));
    report.plot("throughput", data, "TCP throughput to the outside by write size");

    // Ingress: from the outside to a port of the host's address, to a server in each path.
    std::vector<std::vector<std::vector<double>>> ingress_mbits;
    {
        const HostForwards forwards(lab, "brfusion_bench", {kIngressToVm, kIngressToNestedNat});
        const std::vector<Flow> ingress = {
            {{"outside", 0}, {paths[0].client, uplink, kIngressToVm}},
            {{"outside", 0}, {paths[1].client, uplink, kIngressToBrfusion}},
            {{"outside", 0}, {paths[2].client, uplink, kIngressToNestedNat}},
        };
        ingress_mbits = measure_throughput(lab, options, ingress, paths, kIngressWriteSizes, "ingress");
    }
    auto ingress_table = throughput_table("TCP throughput from the outside to a published port by write size (Mbit/s)", paths, kIngressWriteSizes,
                                          ingress_mbits, "iperf3 from the outside to a port of the host's address (192.0.2.1), " + std::to_string(options.seconds) + " s",
                                          data);
    ingress_table.notes.push_back(
        "brfusion's container publishes its port on the host (`docker run -p`: the shim's DNAT). The VM's process and Docker's container "
        "(published in the VM by `docker run -p`) are reached through a DNAT on the host to vm1's address, as an operator forwards a port "
        "to a VM today.");
    report.add(ingress_table);
    report.plot("ingress", data, "TCP throughput from the outside to a published port by write size");

    // 2. Request/response latency, UDP and TCP, against a ping-pong server outside.
    start_ping_pong_server(lab, {"outside", 0}, kPingPongPort);
    std::vector<std::array<std::vector<RrLatency>, 2>> latencies(paths.size());  // [path][tcp]
    for (int run = 1; run <= options.runs; ++run)
        for (std::size_t path = 0; path < paths.size(); ++path)
            for (const bool tcp : {false, true}) {
                progress("latency run %d/%d, %s: %s", run, options.runs, tcp ? "TCP" : "UDP", paths[path].name.c_str());
                latencies[path][tcp].push_back(rr_latency(lab, paths[path].client, outside, kPingPongPort, tcp, options.seconds));
            }
    stop_servers(lab, "outside", "ping-pong-server");
    const auto summary = [&](std::size_t path, bool tcp, double RrLatency::*field) {
        std::vector<double> values;
        for (const auto& latency : latencies[path][tcp]) values.push_back(latency.*field);
        return median(values);
    };
    Table latency{"Request/response latency to the outside (us)",
                  {"path", "UDP avg", "UDP p50", "UDP p99", "TCP avg", "TCP p50", "TCP p99"},
                  {},
                  {"ping-pong (one 64-byte request at a time, as sockperf ping-pong; brfusion-bench's own) from vm1 to a server outside, " +
                   std::to_string(options.seconds) + " s after 0.2 s of warm-up; half the round trip; median over " + std::to_string(options.runs) +
                   " runs of each run's figure."}};
    data = "# path udp_avg udp_p50 udp_p99 tcp_avg tcp_p50 tcp_p99 (us)\n";
    for (std::size_t path = 0; path < paths.size(); ++path) {
        std::vector<std::string> row = {paths[path].name};
        data += "\"" + paths[path].label + "\"";
        for (const bool tcp : {false, true})
            for (const auto field : {&RrLatency::average, &RrLatency::p50, &RrLatency::p99}) {
                row.push_back(fixed(summary(path, tcp, field), 1));
                data += " " + fixed(summary(path, tcp, field), 2);
            }
        latency.rows.push_back(row);
        data += "\n";
    }
    for (const bool tcp : {false, true}) {
        const double none = summary(0, tcp, &RrLatency::average), brfusion = summary(1, tcp, &RrLatency::average),
                     nested = summary(2, tcp, &RrLatency::average);
        latency.notes.push_back(std::string(tcp ? "TCP" : "UDP") + " average: brfusion " + fixed(brfusion / none, 2) + "x no container, " +
                                fixed(brfusion / nested, 2) + "x nested NAT (lower is better).");
    }
    report.add(latency);
    report.plot("latency", data, "Request/response latency to the outside");

    // 3. Where the CPU goes while each path sends to the outside.
    constexpr int kCpuWriteSize = 1280;
    std::vector<std::vector<StreamCpu>> cpu(paths.size());
    for (int run = 1; run <= options.runs; ++run)
        for (std::size_t path = 0; path < paths.size(); ++path) {
            progress("CPU run %d/%d: %s", run, options.runs, paths[path].name.c_str());
            cpu[path].push_back(cpu_during_stream(lab, paths[path].client, {{"outside", 0}, outside, kIperfPort}, options.seconds, kCpuWriteSize));
        }
    Table breakdown{"CPU while sending to the outside (% of all CPU time; " + std::to_string(kCpuWriteSize) + "-B writes)",
                    {"path", "Mbit/s", "VM usr", "VM sys", "VM soft", "host usr", "host sys", "host soft", "host guest"},
                    {},
                    {"One iperf3 stream from vm1 to the outside; /proc/stat read in vm1 and on the host " + std::to_string(options.seconds) +
                         " s apart, 1 s into the stream; median of " + std::to_string(options.runs) + " runs.",
                     "usr without the guests' time (the kernel counts it as user too), sys with hardware interrupts, soft: softirq (the "
                     "network stack's receive and transmit work), guest: virtual CPUs running. The VM's shares are of its virtual CPUs, "
                     "the host's of all its cores; emulated VMs share the host's kernel, so their two readings are of one machine."}};
    for (std::size_t path = 0; path < paths.size(); ++path) {
        std::vector<double> mbits;
        for (const auto& sample : cpu[path]) mbits.push_back(sample.mbits);
        const auto cpu_share = [&](CpuShares StreamCpu::*where, double CpuShares::*kind) {
            std::vector<double> values;
            for (const auto& sample : cpu[path]) values.push_back(sample.*where.*kind);
            return fixed(median(values), 1);
        };
        breakdown.rows.push_back({paths[path].name, fixed(median(mbits), 1), cpu_share(&StreamCpu::vm, &CpuShares::user),
                                  cpu_share(&StreamCpu::vm, &CpuShares::system), cpu_share(&StreamCpu::vm, &CpuShares::softirq),
                                  cpu_share(&StreamCpu::host, &CpuShares::user), cpu_share(&StreamCpu::host, &CpuShares::system),
                                  cpu_share(&StreamCpu::host, &CpuShares::softirq), cpu_share(&StreamCpu::host, &CpuShares::guest)});
    }
    report.add(breakdown);

    ok(lab, "vm1", "docker rm -f bench-brfusion bench-nat >/dev/null && docker network rm bench-web >/dev/null");
}

}  // namespace brfusion::bench
