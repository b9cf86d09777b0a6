// Benchmark (not a test): time to add and remove N ports with OvsClient and with ovs-vsctl, side by
// side, against a private OVS sandbox (userspace datapath). Prints a table; asserts nothing.
//
//   ovs_port_bench [N...]        default: 10 100 1000
//
// Every port is an internal port, so ovs-vswitchd really creates a device for each one; both
// sides wait for ovs-vswitchd to apply each change (ovs-vsctl's default, our client's too).

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
    double add_s;
    double remove_s;
};

Timing with_client(OvsClient& client, int n) {
    auto start = Clock::now();
    for (int i = 0; i < n; ++i) client.ensure_port({"br-bench", port_name(i), PortType::Internal, 1, {{"brfusion-bench", "1"}}, ""});
    const double add = seconds_since(start);
    start = Clock::now();
    for (int i = 0; i < n; ++i) client.remove_port(port_name(i));
    return {add, seconds_since(start)};
}

Timing with_vsctl(const OvsSandbox& sandbox, int n) {
    auto start = Clock::now();
    for (int i = 0; i < n; ++i)
        sandbox.vsctl("add-port br-bench " + port_name(i) + " tag=1 -- set Interface " + port_name(i) +
                      " type=internal external_ids:brfusion-bench=1");
    const double add = seconds_since(start);
    start = Clock::now();
    for (int i = 0; i < n; ++i) sandbox.vsctl("del-port br-bench " + port_name(i));
    return {add, seconds_since(start)};
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
    ClientOptions options;
    options.socket_path = sandbox.db_socket();
    options.timeout = std::chrono::seconds(30);
    OvsClient client(options);
    client.ensure_bridge({"br-bench", "netdev", {}});

    std::printf("# ovs-bridge port benchmark\n");
    std::printf("machine: %s, %ld cores, kernel %s\n", first_line("/proc/cpuinfo", "model name").c_str(), sysconf(_SC_NPROCESSORS_ONLN),
                brfusion::testing::run("uname -r").output.c_str() /* ends in a newline */);
    std::printf("OVS: %s; userspace datapath (netdev), internal ports with a VLAN tag, private sandbox\n\n",
                brfusion::testing::run("ovs-vsctl --version | head -1 | tr -d '\\n'").output.c_str());
    std::printf("%6s | %14s %14s | %14s %14s | %8s\n", "N", "client add/port", "client del/port", "vsctl add/port", "vsctl del/port",
                "speed-up");
    std::printf("-------+-------------------------------+-------------------------------+---------\n");
    for (int n : sizes) {
        const Timing ours = with_client(client, n);
        const Timing theirs = with_vsctl(sandbox, n);
        auto per_port_ms = [n](double total_s) { return total_s * 1000.0 / n; };
        std::printf("%6d | %12.2f ms %12.2f ms | %12.2f ms %12.2f ms | %7.1fx\n", n, per_port_ms(ours.add_s), per_port_ms(ours.remove_s),
                    per_port_ms(theirs.add_s), per_port_ms(theirs.remove_s),
                    (theirs.add_s + theirs.remove_s) / (ours.add_s + ours.remove_s));
        std::fflush(stdout);
    }
    return 0;
}
