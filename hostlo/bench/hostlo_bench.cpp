// Benchmark (not a test): what a pod spread across VMs pays for talking over Hostlo, side by side
// in one run on one machine. Two containers of one pod talk over three paths:
//   same VM      - both in one VM, sharing the pod's network namespace: 127.0.0.1 (Docker's own
//                  localhost, what a pod has today when it fits in one VM);
//   Hostlo       - one container in each of two VMs, over the pod's Hostlo group (host OVS bridge);
//   nested NAT   - one container in each of two VMs on Docker's default bridge: SNAT out of the
//                  client's VM, the host's bridge (the VMs' primary NICs on host network lab), DNAT
//                  of a published port into the server's container (the path a pod split across
//                  VMs takes without brfusion).
// Per path and run: TCP and UDP request/response latency (sockperf ping-pong, 64-byte messages;
// sockperf reports half the round trip) and TCP throughput (iperf3, one stream). The table shows
// the median over the runs of each run's average / p50 / p99, then ratios against nested NAT.
//
//   hostlo_bench [SECONDS [RUNS]]     default: 5 seconds per measurement, 3 runs
//
// The VMs are emulated (DockerLab: a network + mount namespace each, with its own dockerd and
// brfusion-plugin); OVS runs its userspace datapath. Asserts nothing.

#include "brfusion/testing/command.hpp"
#include "brfusion/testing/docker_lab.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <fstream>
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

std::string docker_ok(const testing::EmulatedVm& vm, const std::string& args) {
    const auto result = vm.docker(args);
    if (result.exit_code != 0) throw std::runtime_error("docker " + args + " in " + vm.name() + ": " + result.output);
    return trim(result.output);
}

// Runs `command` in the network namespace of `container` (the host's binaries: sockperf, iperf3).
std::string in_container(const testing::EmulatedVm& vm, const std::string& container, const std::string& command) {
    return "nsenter -t " + docker_ok(vm, "inspect -f '{{.State.Pid}}' " + container) + " -n " + command;
}

// The VM's primary NIC, as a cloud VM has one: a veth into the host's br-int on host network lab
// (VLAN 100), with `address`/24 and a default route via the host's gateway.
void add_primary_nic(const testing::DockerLab& lab, const testing::EmulatedVm& vm, const std::string& port, const std::string& address) {
    testing::run_checked("ip -n " + lab.host.netns() + " link add " + port + " type veth peer name eth9 netns " + vm.name());
    testing::run_checked("ip -n " + lab.host.netns() + " link set " + port + " up");
    lab.host.vsctl("add-port br-int " + port + " tag=100");
    testing::run_checked("ip -n " + vm.name() + " addr add " + address + "/24 dev eth9 && ip -n " + vm.name() + " link set eth9 up && ip -n " +
                         vm.name() + " route add default via 198.51.100.1 && ip netns exec " + vm.name() + " ethtool -K eth9 tx off >/dev/null");
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
    const testing::EmulatedVm* server_vm;
    std::string server;
    const testing::EmulatedVm* client_vm;
    std::string client;
    std::string address;  // where the client reaches the server
    Latency tcp, udp;
    std::vector<double> gbits;
};

void measure(Path& path, int seconds) {
    const std::string server = in_container(*path.server_vm, path.server, "");
    const std::string client = in_container(*path.client_vm, path.client, "");
    for (const bool tcp : {true, false}) {
        const std::string proto = tcp ? " --tcp" : "";
        testing::run_checked(server + "sockperf server -i 0.0.0.0 -p 11111" + proto + " >/dev/null 2>&1 &");
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
        const auto result = testing::run(client + "sockperf ping-pong -m 64 -i " + path.address + " -p 11111" + proto + " -t " + std::to_string(seconds));
        testing::run(server + "pkill -f 'sockperf server'");
        if (result.exit_code != 0) throw std::runtime_error(path.name + ": sockperf failed:\n" + result.output);
        Latency& latency = tcp ? path.tcp : path.udp;
        latency.average.push_back(number_after(result.output, "avg-latency"));
        latency.p50.push_back(number_after(result.output, "percentile 50.000"));
        latency.p99.push_back(number_after(result.output, "percentile 99.000"));
    }
    testing::run_checked(server + "iperf3 -s -1 -D");
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    const auto result = testing::run(client + "iperf3 -J -t " + std::to_string(seconds) + " -c " + path.address);
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
    const int seconds = argc > 1 ? std::stoi(argv[1]) : 5;
    const int runs = argc > 2 ? std::stoi(argv[2]) : 3;
    if (const auto missing = testing::missing_prerequisite({"root", "ovs", "netns", "nft", "docker"})) {
        std::printf("hostlo_bench: skipped: %s\n", missing->c_str());
        return 0;
    }
    for (const char* tool : {"sockperf", "iperf3", "ethtool"})
        if (testing::run(std::string("command -v ") + tool).exit_code != 0) {
            std::printf("hostlo_bench: skipped: needs %s: run packaging/install-deps.sh\n", tool);
            return 0;
        }
    testing::DockerLab lab({BRFUSION_SHIM_BINARY, BRFUSION_CTL_BINARY, BRFUSION_PLUGIN_BINARY}, "/tmp/bfbench-hostlo-" + std::to_string(::getpid()));
    auto& vm1 = *lab.vm1;
    auto& vm2 = *lab.vm2;

    // Pod A over Hostlo: a1 in vm1 (with a1b in its network namespace), a2 in vm2.
    for (auto* vm : {&vm1, &vm2}) docker_ok(*vm, "network create -d brfusion --ipam-driver brfusion --ipam-opt group=podA -o mode=hostlo pod");
    docker_ok(vm1, "run -d --name a1 --network pod brfusion-test sleep 3600");
    docker_ok(vm1, "run -d --name a1b --network container:a1 brfusion-test sleep 3600");
    docker_ok(vm2, "run -d --name a2 --network pod brfusion-test sleep 3600");
    const std::string a1 = docker_ok(vm1, "inspect -f '{{.NetworkSettings.Networks.pod.IPAddress}}' a1");

    // The nested path: primary NICs on host network lab, Docker's default bridge and NAT in each VM.
    add_primary_nic(lab, vm1, "bfbp1", "198.51.100.201");
    add_primary_nic(lab, vm2, "bfbp2", "198.51.100.202");
    docker_ok(vm1, "run -d --name n1 -p 11111:11111/tcp -p 11111:11111/udp -p 5201:5201 brfusion-test sleep 3600");
    docker_ok(vm2, "run -d --name n2 brfusion-test sleep 3600");
    // The userspace datapath needs real checksums: no TX checksum offload on the containers' veths.
    for (const auto& [vm, container] : {std::pair{&vm1, "n1"}, std::pair{&vm2, "n2"}})
        testing::run_checked(in_container(*vm, container, "ethtool -K eth0 tx off >/dev/null"));

    std::vector<Path> paths = {
        {"same VM: pod localhost (127.0.0.1)", &vm1, "a1", &vm1, "a1b", "127.0.0.1", {}, {}, {}},
        {"across VMs: Hostlo", &vm1, "a1", &vm2, "a2", a1, {}, {}, {}},
        {"across VMs: nested NAT (Docker bridge+NAT in both)", &vm1, "n1", &vm2, "n2", "198.51.100.201", {}, {}, {}},
    };
    for (int run = 0; run < runs; ++run)
        for (auto& path : paths) {
            std::fprintf(stderr, "hostlo_bench: run %d/%d: %s\n", run + 1, runs, path.name.c_str());
            measure(path, seconds);
        }

    std::printf("hostlo_bench: %s, %s cores, kernel %s; emulated VMs (netns) with dockerd, OVS %s userspace datapath; "
                "%d runs of %d s per measurement, medians\n\n",
                first_line("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2").c_str(), first_line("nproc").c_str(), first_line("uname -r").c_str(),
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
