// Benchmark (not a test): the time to add and remove N ports with OvsClient and with ovs-vsctl,
// side by side, against a private OVS sandbox (userspace datapath). Prints a table; asserts nothing.
//
//   ovs_port_bench [N...]        default: 10 100 1000
//
// Every port is an internal port with a VLAN tag, so ovs-vswitchd really creates a device for each.
// Two modes, per port:
//   committed - returns once ovsdb-server has committed the change (ovs-vsctl --no-wait; our
//               wait_for_vswitchd=false): the cost of the client and the database;
//   applied   - also waits until ovs-vswitchd has applied it (both tools' default): adds
//               ovs-vswitchd's reconfiguration, which grows with the number of ports it manages.

#include "brfusion/ovs/client.hpp"
#include "brfusion/testing/command.hpp"
#include "brfusion/testing/ovs_sandbox.hpp"

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <unistd.h>
#include <vector>

using namespace brfusion::ovs;
using brfusion::testing::OvsSandbox;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

std::string port_name(int i) { return "bench" + std::to_string(i); }

struct Timing {
    double add_ms_per_port;
    double remove_ms_per_port;
};

template <typename Add, typename Remove>
Timing measure(int n, Add add, Remove remove) {
    auto start = Clock::now();
    for (int i = 0; i < n; ++i) add(port_name(i));
    const double add_s = seconds_since(start);
    start = Clock::now();
    for (int i = 0; i < n; ++i) remove(port_name(i));
    return {add_s * 1000.0 / n, seconds_since(start) * 1000.0 / n};
}

Timing with_client(OvsClient& client, int n) {
    return measure(
        n, [&](const std::string& name) { client.ensure_port({"br-bench", name, PortType::Internal, 1, {{"brfusion-bench", "1"}}, ""}); },
        [&](const std::string& name) { client.remove_port(name); });
}

Timing with_vsctl(const OvsSandbox& sandbox, int n, bool wait) {
    const std::string options = wait ? "" : "--no-wait ";
    return measure(
        n,
        [&](const std::string& name) {
            sandbox.vsctl(options + "add-port br-bench " + name + " tag=1 -- set Interface " + name +
                          " type=internal external_ids:brfusion-bench=1");
        },
        [&](const std::string& name) { sandbox.vsctl(options + "del-port br-bench " + name); });
}

// Lets everything catch up with committed-only changes, so that runs do not overlap: ovs-vswitchd
// applies them (ovs-vsctl init waits for it), then the kernel finishes deleting the devices, which
// (ports are named benchN; "ip -o link" prints "7: bench3: ...") goes on after ovs-vswitchd is done and slows the next run down by up to 50x if not awaited.
void settle(const OvsSandbox& sandbox) {
    sandbox.vsctl("--timeout=600 init");
    for (int i = 0; i < 6000 && sandbox.in_netns("ip -o link show").find(": bench") != std::string::npos; ++i) ::usleep(20000);
}

std::string first_line(const std::string& path, const std::string& prefix) {
    std::ifstream file(path);
    for (std::string line; std::getline(file, line);)
        if (line.rfind(prefix, 0) == 0) return line.substr(line.find(':') + 2);
    return "?";
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<int> sizes;
    for (int i = 1; i < argc; ++i) sizes.push_back(std::stoi(argv[i]));
    if (sizes.empty()) sizes = {10, 100, 1000};
    if (auto why = brfusion::testing::missing_prerequisite({"root", "ovs", "netns"})) {
        std::printf("ovs_port_bench cannot run here: %s\n", why->c_str());
        return 77;
    }

    OvsSandbox sandbox;
    auto client_options = [&](bool wait) {
        ClientOptions options;
        options.socket_path = sandbox.db_socket();
        options.timeout = std::chrono::seconds(60);
        options.wait_for_vswitchd = wait;
        return options;
    };
    OvsClient applied(client_options(true));
    OvsClient committed(client_options(false));
    applied.ensure_bridge({"br-bench", "netdev", {}});
    committed.wait_ready();

    std::printf("# ovs-bridge port benchmark: milliseconds per port\n");
    std::printf("machine: %s, %ld cores, kernel %s", first_line("/proc/cpuinfo", "model name").c_str(), sysconf(_SC_NPROCESSORS_ONLN),
                brfusion::testing::run("uname -r").output.c_str());
    std::printf("OVS: %s; userspace datapath (netdev), internal ports with a VLAN tag, private sandbox\n\n",
                brfusion::testing::run("ovs-vsctl --version | head -1 | tr -d '\\n'").output.c_str());
    std::printf("%6s | %-31s | %-31s\n", "", "committed (ovsdb-server)", "applied (ovsdb-server + ovs-vswitchd)");
    std::printf("%6s | %7s %7s %7s %7s | %7s %7s %7s %7s\n", "N", "client", "client", "vsctl", "vsctl", "client", "client", "vsctl", "vsctl");
    std::printf("%6s | %7s %7s %7s %7s | %7s %7s %7s %7s\n", "", "add", "remove", "add", "remove", "add", "remove", "add", "remove");
    std::printf("-------+---------------------------------+--------------------------------\n");
    for (int n : sizes) {
        const Timing ours_applied = with_client(applied, n);
        const Timing theirs_applied = with_vsctl(sandbox, n, true);
        settle(sandbox);
        const Timing ours_committed = with_client(committed, n);
        settle(sandbox);
        const Timing theirs_committed = with_vsctl(sandbox, n, false);
        settle(sandbox);
        std::printf("%6d | %7.2f %7.2f %7.2f %7.2f | %7.2f %7.2f %7.2f %7.2f\n", n, ours_committed.add_ms_per_port,
                    ours_committed.remove_ms_per_port, theirs_committed.add_ms_per_port, theirs_committed.remove_ms_per_port,
                    ours_applied.add_ms_per_port, ours_applied.remove_ms_per_port, theirs_applied.add_ms_per_port,
                    theirs_applied.remove_ms_per_port);
        std::fflush(stdout);
    }
    return 0;
}
