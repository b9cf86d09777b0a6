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

constexpr std::array kWriteSizes = {64, 128, 256, 512, 1024, 1280};
constexpr int kPingPongPort = 11111, kIperfPort = 5202;  // the lab's own iperf3 server has 5201

}  // namespace

void measure_paths_to_outside(testing::Lab& lab, const BenchOptions& options, Report& report) {
    const std::string outside = testing::Lab::kOutsideAddress;
    ok(lab, "vm1", "docker network create -d brfusion --ipam-driver brfusion --ipam-opt network=lab bench-web");
    ok(lab, "vm1", "docker run -d --name bench-brfusion --network bench-web brfusion-test sleep 86400");
    ok(lab, "vm1", "docker run -d --name bench-nat brfusion-test sleep 86400");
    // The baselines first: a process in the VM (the ceiling) and Docker's nested bridge+NAT.
    const std::vector<PathToOutside> paths = {
        {"no container (process in the VM)", "no container", {"vm1", 0}},
        {"brfusion (container on a host NIC)", "brfusion", container(lab, "vm1", "bench-brfusion")},
        {"nested NAT (Docker bridge+NAT in the VM)", "nested NAT", container(lab, "vm1", "bench-nat")},
    };

    // 1. Throughput by write size: runs x sizes x paths, interleaved so drift hits every path alike.
    std::vector<std::array<std::vector<double>, kWriteSizes.size()>> mbits(paths.size());
    for (int run = 1; run <= options.runs; ++run)
        for (std::size_t size = 0; size < kWriteSizes.size(); ++size)
            for (std::size_t path = 0; path < paths.size(); ++path) {
                progress("throughput run %d/%d, %d B: %s", run, options.runs, kWriteSizes[size], paths[path].name.c_str());
                mbits[path][size].push_back(iperf3_mbits(lab, paths[path].client, {{"outside", 0}, outside, kIperfPort}, options.seconds, kWriteSizes[size]));
            }
    Table throughput{"TCP throughput to the outside by write size (Mbit/s)",
                     {"write size (B)", paths[0].name, paths[1].name, paths[2].name, "brfusion / no container", "brfusion / nested NAT"},
                     {},
                     {"iperf3, one TCP stream from vm1 to a server outside (192.0.2.2) through the host's NAT, `-l SIZE`, " +
                          std::to_string(options.seconds) + " s; median of " + std::to_string(options.runs) + " runs.",
                      "Ratios: the median of each run's ratio (a run measures the three paths back to back), with the lowest and "
                      "highest in brackets."}};
    std::string data = "# write_size no_container brfusion nested_nat (Mbit/s, medians)\n";
    for (std::size_t size = 0; size < kWriteSizes.size(); ++size) {
        const double none = median(mbits[0][size]), brfusion = median(mbits[1][size]), nested = median(mbits[2][size]);
        throughput.rows.push_back({std::to_string(kWriteSizes[size]), fixed(none, 1), fixed(brfusion, 1), fixed(nested, 1),
                                   ratio_cell(spread(ratios(mbits[1][size], mbits[0][size]))),
                                   ratio_cell(spread(ratios(mbits[1][size], mbits[2][size])))});
        data += std::to_string(kWriteSizes[size]) + " " + fixed(none, 2) + " " + fixed(brfusion, 2) + " " + fixed(nested, 2) + "\n";
    }
    report.add(throughput);
    report.plot("throughput", data, "TCP throughput to the outside by write size");

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

    ok(lab, "vm1", "docker rm -f bench-brfusion bench-nat >/dev/null && docker network rm bench-web >/dev/null");
}

}  // namespace brfusion::bench
