// brfusion-bench: the founding paper's measurements, side by side in one run on integration/lab
// (docs/performance.md). A benchmark, not a test: it prints tables and draws plots, and fails
// only when a measurement could not be made.
//
//   brfusion-bench [--backend qmp|libvirt|netns] [--out DIR] [--only SECTION,...] [--quick] [--userspace-tso]
//       SECTION: outside (throughput by write size both ways, request/response latency), apps
//       (NGINX and Memcached), startup, hostlo, scale; default all. --quick: 1 run of 1 s, 3 starts, scale steps 5 and
//       10 (a smoke run: its numbers mean little). --userspace-tso: the main lab's OVS segments
//       and checksums for the guests, whose NICs keep their offloads (LabOptions::userspace_tso).
//   brfusion-bench attach-endpoints SOCKET HOST_NETWORK NETWORK_ID FIRST COUNT [--at-once]
//       the scale section's driver, run inside a VM (see sections.hpp)
//   brfusion-bench ping-pong-server PORT
//   brfusion-bench ping-pong ADDRESS PORT udp|tcp SECONDS
//       the latency tool, run in the lab's namespaces (see ping_pong.hpp)
//
// Labs: the main one (2 VMs of the backend, warm pool of 2 on vm1's lab2) for outside, startup,
// hostlo and, unless the backend is netns, scale on QEMU (vm2, with all the root ports it takes);
// then a 1-VM netns lab of its own for scale with 10/100/500/1000 endpoints (network lab on
// 198.18.0.0/22, RFC 2544's benchmarking range: no documentation range holds 1000 addresses, and
// no packet is sent). Writes DIR/results.md, DIR/*.dat and DIR/*.png (default DIR: ./bench-results).

#include "brfusion/bench/lab_tools.hpp"
#include "brfusion/bench/ping_pong.hpp"
#include "brfusion/bench/sections.hpp"
#include "brfusion/testing/command.hpp"

#include <atomic>
#include <cstdio>
#include <ctime>
#include <functional>
#include <set>
#include <sstream>
#include <string>
#include <unistd.h>
#include <vector>

using namespace brfusion;
using namespace brfusion::bench;

namespace {

constexpr const char* kUsage =
    "usage: brfusion-bench [--backend qmp|libvirt|netns] [--out DIR] [--only outside,apps,startup,scale,hostlo] [--quick] [--userspace-tso]\n"
    "       brfusion-bench attach-endpoints SOCKET HOST_NETWORK NETWORK_ID FIRST COUNT [--at-once]\n"
    "       brfusion-bench ping-pong-server PORT\n"
    "       brfusion-bench ping-pong ADDRESS PORT udp|tcp SECONDS\n";
// One hot-plugged NIC each. The scale section fills vm2's: with more (QemuVm takes up to 112),
// NICs behind the 33rd and later ports never appeared in the guest here.
constexpr int kQemuRootPorts = 32;

testing::LabOptions lab_options(const std::string& kind, int vms, const std::string& backend) {
    testing::LabOptions options;
    options.name = "bf" + kind + std::to_string(::getpid() % 100000);
    options.vms = vms;
    options.backend = backend;
    options.binaries = {BRFUSION_SHIM_BINARY, BRFUSION_CTL_BINARY, BRFUSION_PLUGIN_BINARY};
    return options;
}

std::string today() {
    char text[32];
    const std::time_t now = std::time(nullptr);
    std::strftime(text, sizeof text, "%Y-%m-%d %H:%M UTC", std::gmtime(&now));
    return text;
}

std::string joined(const std::vector<int>& numbers) {
    std::string text;
    for (const int n : numbers) text += (text.empty() ? "" : "/") + std::to_string(n);
    return text;
}

}  // namespace

int main(int argc, char** argv) try {
    std::vector<std::string> args(argv + 1, argv + argc);
    if (!args.empty() && args[0] == "attach-endpoints") {
        if (args.size() != 6 && (args.size() != 7 || args[6] != "--at-once")) throw std::invalid_argument(kUsage);
        if (args.size() == 7) attach_endpoints_at_once(args[1], args[2], args[3], std::stoi(args[4]), std::stoi(args[5]));
        else attach_endpoints(args[1], args[2], args[3], std::stoi(args[4]), std::stoi(args[5]));
        return 0;
    }
    if (!args.empty() && args[0] == "ping-pong-server") {
        if (args.size() != 2) throw std::invalid_argument(kUsage);
        const std::atomic<bool> never(false);  // it serves until killed
        PingPongServer(std::stoi(args[1])).serve(never);
        return 0;
    }
    if (!args.empty() && args[0] == "ping-pong") {
        if (args.size() != 5 || (args[3] != "udp" && args[3] != "tcp")) throw std::invalid_argument(kUsage);
        std::printf("%s\n", to_string(ping_pong(args[1], std::stoi(args[2]), args[3] == "tcp", std::stod(args[4]))).c_str());
        return 0;
    }
    std::string backend = "qmp", out = "bench-results";
    bool userspace_tso = false;
    std::set<std::string> sections = {"outside", "apps", "startup", "scale", "hostlo"};
    BenchOptions options;
    std::vector<int> netns_steps = {10, 100, 500, 1000}, qemu_steps = {10, 20, kQemuRootPorts};
    for (std::size_t i = 0; i < args.size(); ++i) {
        const auto value = [&] {
            if (i + 1 >= args.size()) throw std::invalid_argument(args[i] + " needs a value\n" + kUsage);
            return args[++i];
        };
        if (args[i] == "--backend") backend = value();
        else if (args[i] == "--out") out = value();
        else if (args[i] == "--userspace-tso") userspace_tso = true;
        else if (args[i] == "--quick") {
            options = {1, 1, 3};
            netns_steps = {5, 10};
            qemu_steps = {2, 4};
        } else if (args[i] == "--only") {
            std::set<std::string> chosen;
            std::istringstream list(value());
            for (std::string name; std::getline(list, name, ',');) {
                if (!sections.contains(name)) throw std::invalid_argument("no section " + name + "\n" + kUsage);
                chosen.insert(name);
            }
            sections = chosen;
        } else if (args[i] == "--help") {
            std::printf("%s", kUsage);
            return 0;
        } else throw std::invalid_argument("unknown argument " + args[i] + "\n" + kUsage);
    }
    if (backend != "qmp" && backend != "libvirt" && backend != "netns") throw std::invalid_argument("backend " + backend + " is not one of qmp, libvirt, netns");
    std::vector<std::string> needs = {"root", "ovs", "netns", "nft", "docker"};
    if (backend != "netns") needs.push_back("qemu");
    if (backend == "libvirt") needs.push_back("libvirt");
    if (const auto missing = testing::missing_prerequisite(needs)) throw std::runtime_error(*missing);
    for (const char* tool : {"iperf3", "nsenter", "gnuplot", "nginx", "wrk", "memcached", "memcaslap"})
        if (testing::run(std::string("command -v ") + tool).exit_code != 0) throw std::runtime_error(std::string("needs ") + tool + ": run packaging/install-deps.sh");

    stop_on_signals();
    // The repetitions of the sections this run measures.
    std::vector<std::string> repetitions;
    if (sections.contains("outside") || sections.contains("apps") || sections.contains("hostlo"))
        repetitions.push_back("traffic " + std::to_string(options.runs) + " runs of " + std::to_string(options.seconds) + " s per figure (medians)");
    if (sections.contains("startup")) repetitions.push_back("start-up " + std::to_string(options.startups) + " runs per mode");
    if (sections.contains("scale"))
        repetitions.push_back("scale steps " + joined(netns_steps) + " endpoints (netns)" + (backend == "netns" ? "" : " and " + joined(qemu_steps) + " (QEMU)"));
    std::string repetition_text;
    for (const auto& part : repetitions) repetition_text += (repetition_text.empty() ? "" : "; ") + part;
    Report report(out, BRFUSION_BENCH_PLOTS_DIR,
                  "# brfusion benchmark, " + today() + "\n\n- Machine: " + machine_description() + "\n- VMs: " + vm_description(backend) +
                      "\n- Open vSwitch: userspace datapath, " +
                      (userspace_tso ? "userspace TSO on (guests keep TX checksum offload and TSO)" : "userspace TSO off (guests send complete checksums)") +
                      "\n- Repetitions: " + repetition_text + "\n- Baselines measured in the same run, interleaved with what they are compared to.");
    int failed = 0;
    std::string timeline;  // when each part of the run ended: where the time goes
    const auto mark = [&](const std::string& what) { timeline += "- " + what + ": " + elapsed() + "\n"; };
    // Runs `part` of section `name` unless --only left it out; a failure is reported and counted, and the run goes on.
    const auto section = [&](const std::string& name, const std::string& part, const std::function<void()>& measure) {
        if (!sections.contains(name) || stopping()) return;
        try {
            measure();
            mark(part + " measured");
        } catch (const std::exception& e) {
            progress("%s failed: %s", part.c_str(), e.what());
            mark(part + " failed");
            ++failed;
        }
    };
    // Scale's rows: QEMU's on the main lab's vm2, which has no warm pool (the main lab's VMs get all
    // the root ports that scale fills); the emulated VMs' on a 1-VM netns lab of its own, whose
    // network holds 1000 addresses and whose VM may hold them all, with a warm pool of one on lab2.
    std::vector<ScaleStep> scale_steps;
    const bool scale_on_qemu = sections.contains("scale") && backend != "netns";
    if (sections.contains("outside") || sections.contains("apps") || sections.contains("startup") || sections.contains("hostlo") || scale_on_qemu) {
        progress("bringing up a 2-VM %s lab", backend.c_str());
        auto main_lab = lab_options("b", 2, backend);
        main_lab.warm_pool = 2;
        main_lab.userspace_tso = userspace_tso;
        main_lab.docker_live_restore = false;  // the VMs form a swarm for hostlo's overlay baseline
        if (scale_on_qemu) main_lab.root_ports = kQemuRootPorts;
        testing::Lab lab(main_lab);
        mark("2-VM lab up");
        section("outside", "outside", [&] { measure_paths_to_outside(lab, options, report); });
        section("apps", "applications", [&] { measure_applications(lab, options, report); });
        section("startup", "startup", [&] { measure_startup(lab, options, report); });
        section("hostlo", "hostlo", [&] { measure_hostlo(lab, options, report); });
        if (scale_on_qemu) section("scale", "scale on QEMU", [&] { measure_scale(lab, "vm2", qemu_steps, scale_steps); });
    }
    section("scale", "scale on emulated VMs", [&] {
        progress("bringing up a 1-VM netns lab for scale");
        auto netns_lab = lab_options("s", 1, "netns");
        netns_lab.lab_subnet = "198.18.0.0/21";  // the rows' endpoints and those started together
        netns_lab.nic_quota = scale_nics(netns_steps);  // above the shim's default quota of 64, as an operator would raise it
        netns_lab.warm_pool = 1;                         // on lab2, for the warm attaches
        testing::Lab lab(netns_lab);
        mark("1-VM netns lab for scale up");
        measure_scale(lab, "vm1", netns_steps, scale_steps);
    });
    if (!scale_steps.empty()) report_scale(scale_steps, report);  // what was measured, also when a step failed
    report.add_text("### Run time\n\nTime since the run began, lab boots included:\n\n" + timeline);
    std::printf("\nbench: results in %s/results.md%s\n", out.c_str(), failed ? " (some sections failed: see above)" : "");
    return failed ? 1 : 0;
} catch (const std::exception& e) {
    std::fprintf(stderr, "brfusion-bench: %s\n", e.what());
    return 1;
}
