// Benchmark (not a test): what a pod spread across VMs pays for talking over Hostlo, side by side
// in one run on one machine. Two containers of one pod talk over three paths:
//   same VM      - both in one VM, sharing the pod's network namespace: 127.0.0.1 (Docker's own
//                  localhost, what a pod has today when it fits in one VM);
//   Hostlo       - one container in each of two VMs, over the pod's Hostlo group (host OVS bridge);
//   nested NAT   - one container in each of two VMs on Docker's default bridge: SNAT out of the
//                  client's VM, the host's bridge (the VMs' primary NICs on host network mgmt), DNAT
//                  of a published port into the server's container (the path a pod split across
//                  VMs takes without brfusion).
// Per path and run: TCP and UDP request/response latency (sockperf ping-pong, 64-byte messages;
// sockperf reports half the round trip) and TCP throughput (iperf3, one stream). The table shows
// the median over the runs of each run's average / p50 / p99, then ratios against nested NAT.
// The tools run in the containers' network namespaces from the VM's own root (nsenter).
//
//   hostlo_bench [--backend netns|qmp|libvirt] [SECONDS [RUNS]]   default: netns, 5 s, 3 runs
//
// On integration/lab's Lab (its fixed facts: README, "The lab"); OVS runs its userspace datapath,
// QEMU runs under TCG. Asserts nothing.

#include "brfusion/testing/command.hpp"
#include "brfusion/testing/lab.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <regex>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

using namespace brfusion;
using nlohmann::json;

namespace {

std::string trim(std::string text) {
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
    return text;
}

// CMD on NODE of the lab, which must succeed; its output.
std::string ok(testing::Lab& lab, const std::string& node, const std::string& command) {
    const auto result = lab.exec(node, command);
    if (result.exit_code != 0) throw std::runtime_error(node + "$ " + command + ": " + result.output);
    return trim(result.output);
}

double median(std::vector<double> values) {
    std::sort(values.begin(), values.end());
    return values.empty() ? 0 : values[values.size() / 2];
}

double number_after(const std::string& text, const std::string& label) {
    std::smatch match;
    if (!std::regex_search(text, match, std::regex(label + R"(\s*=?\s*([0-9.]+))"))) throw std::runtime_error("no '" + label + "' in:\n" + text);
    return std::stod(match[1]);
}

struct Latency {
    std::vector<double> average, p50, p99;  // microseconds, one per run
};

struct Path {
    std::string name;
    std::string server_vm, server;  // node and container
    std::string client_vm, client;
    std::string address;            // where the client reaches the server
    Latency tcp, udp;
    std::vector<double> gbits;
};

// `command` in `container`'s network namespace, run from its VM's root (where the tools are).
std::string in_container(testing::Lab& lab, const std::string& vm, const std::string& container, const std::string& command) {
    return "nsenter -t " + ok(lab, vm, "docker inspect -f '{{.State.Pid}}' " + container) + " -n " + command;
}

void measure(testing::Lab& lab, Path& path, int seconds) {
    const auto on_server = [&](const std::string& command) { return lab.exec(path.server_vm, in_container(lab, path.server_vm, path.server, command)); };
    const auto on_client = [&](const std::string& command) { return lab.exec(path.client_vm, in_container(lab, path.client_vm, path.client, command)); };
    for (const bool tcp : {true, false}) {
        const std::string proto = tcp ? " --tcp" : "";
        on_server("sockperf server -i 0.0.0.0 -p 11111" + proto + " >/dev/null 2>&1 &");
        std::this_thread::sleep_for(std::chrono::seconds(1));
        const auto result = on_client("sockperf ping-pong -m 64 -i " + path.address + " -p 11111" + proto + " -t " + std::to_string(seconds));
        lab.exec(path.server_vm, "pkill -f 'sockperf server'");
        if (result.exit_code != 0) throw std::runtime_error(path.name + ": sockperf failed:\n" + result.output);
        Latency& latency = tcp ? path.tcp : path.udp;
        latency.average.push_back(number_after(result.output, "avg-latency"));
        latency.p50.push_back(number_after(result.output, "percentile 50.000"));
        latency.p99.push_back(number_after(result.output, "percentile 99.000"));
    }
    on_server("iperf3 -s -1 -D");
    std::this_thread::sleep_for(std::chrono::seconds(1));
    const auto result = on_client("iperf3 -J -t " + std::to_string(seconds) + " -c " + path.address);
    const json report = json::parse(result.output, nullptr, false);
    if (result.exit_code != 0 || report.is_discarded()) throw std::runtime_error(path.name + ": iperf3 failed:\n" + result.output);
    path.gbits.push_back(report["end"]["sum_received"]["bits_per_second"].get<double>() / 1e9);
}

std::string first_line(const std::string& command) {
    const std::string output = testing::run(command).output;
    const std::string line = trim(output.substr(0, output.find('\n')));
    return line.substr(std::min(line.size(), line.find_first_not_of(' ')));
}

}  // namespace

int main(int argc, char** argv) try {
    std::vector<std::string> args(argv + 1, argv + argc);
    std::string backend = "netns";
    if (args.size() >= 2 && args[0] == "--backend") {
        backend = args[1];
        args.erase(args.begin(), args.begin() + 2);
    }
    const int seconds = !args.empty() ? std::stoi(args[0]) : 5;
    const int runs = args.size() > 1 ? std::stoi(args[1]) : 3;
    std::vector<std::string> needs = {"root", "ovs", "netns", "nft", "docker"};
    if (backend != "netns") needs.push_back("qemu");
    if (backend == "libvirt") needs.push_back("libvirt");
    if (const auto missing = testing::missing_prerequisite(needs)) {
        std::printf("hostlo_bench: skipped: %s\n", missing->c_str());
        return 0;
    }
    for (const char* tool : {"sockperf", "iperf3", "nsenter"})
        if (testing::run(std::string("command -v ") + tool).exit_code != 0) {
            std::printf("hostlo_bench: skipped: needs %s: run packaging/install-deps.sh\n", tool);
            return 0;
        }
    std::fprintf(stderr, "hostlo_bench: bringing up a 2-VM %s lab\n", backend.c_str());
    testing::Lab lab({"bfb" + std::to_string(::getpid() % 100000), 2, backend, {BRFUSION_SHIM_BINARY, BRFUSION_CTL_BINARY, BRFUSION_PLUGIN_BINARY}, ""});

    // Pod A over Hostlo: a1 in vm1 (with a1b in its network namespace), a2 in vm2.
    for (const char* vm : {"vm1", "vm2"}) ok(lab, vm, "docker network create -d brfusion --ipam-driver brfusion --ipam-opt group=podA -o mode=hostlo pod");
    ok(lab, "vm1", "docker run -d --name a1 --network pod brfusion-test sleep 3600");
    ok(lab, "vm1", "docker run -d --name a1b --network container:a1 brfusion-test sleep 3600");
    ok(lab, "vm2", "docker run -d --name a2 --network pod brfusion-test sleep 3600");
    const std::string a1 = ok(lab, "vm1", "docker inspect -f '{{.NetworkSettings.Networks.pod.IPAddress}}' a1");
    // The nested path: Docker's default bridge and NAT in each VM, vm1's primary NIC (192.0.2.130).
    ok(lab, "vm1", "docker run -d --name n1 -p 11111:11111/tcp -p 11111:11111/udp -p 5201:5201 brfusion-test sleep 3600");
    ok(lab, "vm2", "docker run -d --name n2 brfusion-test sleep 3600");

    std::vector<Path> paths = {
        {"same VM: pod localhost (127.0.0.1)", "vm1", "a1", "vm1", "a1b", "127.0.0.1", {}, {}, {}},
        {"across VMs: Hostlo", "vm1", "a1", "vm2", "a2", a1, {}, {}, {}},
        {"across VMs: nested NAT (Docker bridge+NAT in both)", "vm1", "n1", "vm2", "n2", "192.0.2.130", {}, {}, {}},
    };
    for (int run = 0; run < runs; ++run)
        for (auto& path : paths) {
            std::fprintf(stderr, "hostlo_bench: run %d/%d: %s\n", run + 1, runs, path.name.c_str());
            measure(lab, path, seconds);
        }

    std::printf("hostlo_bench: %s, %s cores, kernel %s; VMs: %s with dockerd; OVS %s userspace datapath; "
                "%d runs of %d s per measurement, medians\n\n",
                first_line("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2").c_str(), first_line("nproc").c_str(), first_line("uname -r").c_str(),
                backend == "netns" ? "emulated (netns)" : ("QEMU under TCG (" + backend + ")").c_str(),
                first_line("ovs-vswitchd --version | grep -o '[0-9.]*$'").c_str(), runs, seconds);
    std::printf("| path | TCP RR avg / p50 / p99 (us) | UDP RR avg / p50 / p99 (us) | TCP throughput (Gbit/s) |\n|---|---|---|---|\n");
    for (const auto& path : paths)
        std::printf("| %s | %.1f / %.1f / %.1f | %.1f / %.1f / %.1f | %.2f |\n", path.name.c_str(), median(path.tcp.average), median(path.tcp.p50),
                    median(path.tcp.p99), median(path.udp.average), median(path.udp.p50), median(path.udp.p99), median(path.gbits));
    const Path& nested = paths.back();
    std::printf("\nAgainst nested NAT (latency: lower is better; throughput: higher is better):\n");
    for (std::size_t i = 0; i + 1 < paths.size(); ++i)
        std::printf("  %-36s TCP RR %.2fx, UDP RR %.2fx, throughput %.2fx\n", paths[i].name.c_str(), median(paths[i].tcp.average) / median(nested.tcp.average),
                    median(paths[i].udp.average) / median(nested.udp.average), median(paths[i].gbits) / median(nested.gbits));
    std::printf("  Hostlo against same VM: TCP RR %.2fx, UDP RR %.2fx\n", median(paths[1].tcp.average) / median(paths[0].tcp.average),
                median(paths[1].udp.average) / median(paths[0].udp.average));
    return 0;
} catch (const std::exception& e) {
    std::fprintf(stderr, "hostlo_bench: %s\n", e.what());
    return 1;
}
