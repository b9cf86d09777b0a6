// Benchmark (not a test): how long a container NIC takes to attach and detach, per backend, with
// the shim's core against a private OVS sandbox (userspace datapath). Prints a table; asserts
// nothing.
//
//   hotplug_bench [ROUNDS]       default: 20
//
// Columns, per backend (netns: the VM is a network namespace; qmp: a real QEMU VM under TCG;
// libvirt: a QEMU domain under TCG on a libvirtd the benchmark runs in its host netns):
//   attach  - NicManager::attach: lease, journal, host device, OVS port, port security, plug;
//             for qmp and libvirt it returns when QEMU has added the device;
//   visible - from the start of attach until the guest's kernel shows the NIC (polled: through
//             the exec agent for qmp, so it includes one agent round trip, ~50-100 ms here);
//   detach  - NicManager::detach, including waiting for DEVICE_DELETED (qmp) / DEVICE_REMOVED (libvirt);
//   refill  - (warm rows) making one spare NIC, the warm pool's background work after a claim.
// Each backend runs cold (no warm pool: every attach hot-plugs) and warm (a warm pool of one
// spare, refilled before each round, untimed, as the background thread would: every attach claims).

#include "brfusion/testing/command.hpp"
#include "brfusion/testing/libvirtd.hpp"
#include "brfusion/testing/ovs_sandbox.hpp"
#include "brfusion/testing/qemu_vm.hpp"
#include "shim_core.hpp"  // vmm-shim/tests: the core as brfusion-shim wires it

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

using namespace brfusion;
using namespace brfusion::shim;
using brfusion::shim::test::net;
using Clock = std::chrono::steady_clock;

namespace {

double ms_since(Clock::time_point start) { return std::chrono::duration<double, std::milli>(Clock::now() - start).count(); }

double percentile(std::vector<double> values, double p) {
    std::sort(values.begin(), values.end());
    return values[static_cast<size_t>(p * static_cast<double>(values.size() - 1) + 0.5)];
}

struct Samples {
    std::vector<double> attach, visible, detach, refill;
};

// `vm` is the backend's VM config (with a warm_pool for the warm rows); `guest_has(mac)` says
// whether the guest shows the NIC.
Samples measure(const testing::OvsSandbox& host, const nlohmann::json& vm, int rounds, const std::function<bool(const std::string&)>& guest_has) {
    const std::string state_dir = "/tmp/brfusion-hotplug-bench-" + std::to_string(::getpid());
    std::filesystem::remove_all(state_dir);
    test::ShimCore core;
    core.config = parse_config({{"ovsdb", host.db_socket()},
                                {"host_netns", host.netns()},
                                {"state_dir", state_dir},
                                {"networks", {{{"name", "lab"}, {"subnet", "198.51.100.0/24"}, {"tag", 100}, {"nat", false}}}},
                                {"vms", {vm}}});
    core.start_shim();
    NicManager& shim = *core.shim;
    Samples samples;
    for (int round = 0; round < rounds; ++round) {
        const auto refill_start = Clock::now();
        if (shim.balance_warm_pool()) samples.refill.push_back(ms_since(refill_start));
        const auto start = Clock::now();
        const AttachedNic nic = shim.attach(vm["name"], net("lab"));
        samples.attach.push_back(ms_since(start));
        while (!guest_has(nic.mac)) std::this_thread::sleep_for(std::chrono::milliseconds(2));
        samples.visible.push_back(ms_since(start));
        const auto detach_start = Clock::now();
        shim.detach(vm["name"], nic.endpoint);
        samples.detach.push_back(ms_since(detach_start));
    }
    core.stop_shim();
    std::filesystem::remove_all(state_dir);
    return samples;
}

void print_row(const char* backend, const char* what, const std::vector<double>& values) {
    std::printf("| %-16s | %-7s | %8.1f | %8.1f | %8.1f | %8.1f |\n", backend, what, percentile(values, 0.5), percentile(values, 0.9),
                *std::min_element(values.begin(), values.end()), *std::max_element(values.begin(), values.end()));
}

void print_samples(const std::string& backend, const Samples& samples) {
    print_row(backend.c_str(), "attach", samples.attach);
    print_row(backend.c_str(), "visible", samples.visible);
    print_row(backend.c_str(), "detach", samples.detach);
    if (!samples.refill.empty()) print_row(backend.c_str(), "refill", samples.refill);
    std::fflush(stdout);
}

// Cold, then with a warm pool of one spare.
void measure_both(const std::string& backend, const testing::OvsSandbox& host, nlohmann::json vm, int rounds,
                  const std::function<bool(const std::string&)>& guest_has) {
    print_samples(backend + " cold", measure(host, vm, rounds, guest_has));
    vm["warm_pool"] = {{"lab", 1}};
    print_samples(backend + " warm", measure(host, vm, rounds, guest_has));
}

}  // namespace

int main(int argc, char** argv) {
    const int rounds = argc > 1 ? std::max(1, std::atoi(argv[1])) : 20;
    if (auto missing = testing::missing_prerequisite({"root", "ovs", "netns", "nft"})) {
        std::fprintf(stderr, "hotplug_bench: %s\n", missing->c_str());
        return 77;
    }
    std::printf("machine: %s, %s cores, kernel %s\n", testing::run("sed -n 's/^model name\\s*: //p' /proc/cpuinfo | head -1 | tr -d '\\n'").output.c_str(),
                testing::run("nproc | tr -d '\\n'").output.c_str(), testing::run("uname -r | tr -d '\\n'").output.c_str());
    std::printf("OVS userspace datapath (private sandbox); %d rounds of attach + detach per backend, cold and from a warm pool\n\n", rounds);
    std::printf("| %-16s | %-7s | %8s | %8s | %8s | %8s |\n", "backend", "step", "p50 ms", "p90 ms", "min ms", "max ms");
    std::printf("|%s|%s|%s|%s|%s|%s|\n", std::string(18, '-').c_str(), std::string(9, '-').c_str(), std::string(10, '-').c_str(),
                std::string(10, '-').c_str(), std::string(10, '-').c_str(), std::string(10, '-').c_str());
    testing::OvsSandbox host;
    {
        testing::Netns vm;
        measure_both("netns", host, {{"name", "vm1"}, {"netns", vm.name()}, {"networks", {"lab"}}}, rounds,
                     [&](const std::string& mac) { return vm.exec("ip -o link | grep -q " + mac).exit_code == 0; });
    }
    if (auto missing = testing::missing_prerequisite({"qemu"})) {
        std::printf("| %-16s | skipped: %s\n", "qmp TCG", missing->c_str());
        return 0;
    }
    const std::string dir = "/tmp/brfusion-hotplug-bench-vm-" + std::to_string(::getpid());
    const auto guest_has = [](testing::QemuVm& vm) {
        return [&vm](const std::string& mac) { return vm.exec("grep -qs " + mac + " /sys/class/net/*/address").exit_code == 0; };
    };
    {
        testing::QemuVm vm({"vm1", dir + "/qmp", 2, 1024, "", "", {}});
        measure_both("qmp TCG", host, {{"name", "vm1"}, {"backend", "qmp"}, {"qmp", vm.qmp_socket()}, {"networks", {"lab"}}}, rounds, guest_has(vm));
        std::vector<double> round_trips;
        for (int i = 0; i < rounds; ++i) {
            const auto start = Clock::now();
            vm.exec("true");
            round_trips.push_back(ms_since(start));
        }
        std::printf("\n'visible' for QEMU VMs includes one exec-agent round trip: p50 %.1f ms here. QEMU VM booted in %.1f s (TCG; until its exec agent answered)\n",
                    percentile(round_trips, 0.5), static_cast<double>(vm.boot_time().count()) / 1000.0);
    }
    if (auto missing = testing::missing_prerequisite({"libvirt"})) {
        std::printf("| %-16s | skipped: %s\n", "libvirt TCG", missing->c_str());
    } else {
        testing::Libvirtd libvirtd(host.netns(), dir + "/libvirtd");
        const std::string domain = "bf-bench-" + std::to_string(::getpid());
        testing::QemuVm vm({domain, dir + "/libvirt", 2, 1024, "", testing::Libvirtd::kUri, {}});
        std::printf("\n");
        measure_both("libvirt TCG", host,
                     {{"name", "vm1"}, {"backend", "libvirt"}, {"domain", domain}, {"libvirt_uri", testing::Libvirtd::kUri}, {"networks", {"lab"}}}, rounds,
                     guest_has(vm));
    }
    std::filesystem::remove_all(dir);
    return 0;
}
