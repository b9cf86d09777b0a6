#include "brfusion/bench/lab_tools.hpp"
#include "brfusion/bench/sections.hpp"
#include "brfusion/bench/stats.hpp"
#include "brfusion/common/http_client.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <future>
#include <sstream>
#include <vector>

namespace brfusion::bench {

using nlohmann::json;

namespace {

constexpr const char* kPluginSocket = "/run/docker/plugins/brfusion.sock";
constexpr int kWarmPerStep = 10;    // warm attaches measured at each row
constexpr int kAtOnce = 8;          // attaches started together at each row
constexpr int kWarmFirst = 1 << 24;    // their endpoints' indexes, apart from the cold ones
constexpr int kAtOnceFirst = 1 << 25;  // and from those started together
// Docker's IDs are 64 hex digits.
std::string docker_id(const char* prefix, int index) {
    char id[65];
    std::snprintf(id, sizeof id, "%s%0*x", prefix, 64 - static_cast<int>(std::strlen(prefix)), index);
    return id;
}

json plugin_call(const std::string& socket, const std::string& method, const json& body) {
    const HttpReply reply = http_call(socket, "brfusion-plugin", "POST", "/" + method, body.dump());
    const json answer = json::parse(reply.body, nullptr, false);
    if (reply.status != 200 || answer.is_discarded() || (answer.contains("Err") && !answer["Err"].get<std::string>().empty()))
        throw std::runtime_error(method + " " + body.dump() + ": " + std::to_string(reply.status) + " " + reply.body);
    return answer;
}

double ms_between(std::chrono::steady_clock::time_point start, std::chrono::steady_clock::time_point end) {
    return std::chrono::duration<double, std::milli>(end - start).count();
}

// The brfusion network `network_id` on `host_network`, as dockerd makes it (idempotent).
void create_network(const std::string& plugin_socket, const std::string& host_network, const std::string& network_id) {
    const json pool = plugin_call(plugin_socket, "IpamDriver.RequestPool", {{"AddressSpace", "brfusion"}, {"Options", {{"network", host_network}}}});
    plugin_call(plugin_socket, "NetworkDriver.CreateNetwork",
                {{"NetworkID", network_id}, {"Options", json::object()}, {"IPv4Data", {{{"AddressSpace", "brfusion"}, {"Pool", pool["Pool"]}}}}});
}

// One endpoint as dockerd makes a container's: CreateEndpoint, then Join.
void attach_endpoint(const std::string& plugin_socket, const std::string& network_id, int index) {
    plugin_call(plugin_socket, "NetworkDriver.CreateEndpoint", {{"NetworkID", network_id}, {"EndpointID", docker_id("be", index)}, {"Interface", json::object()}});
    plugin_call(plugin_socket, "NetworkDriver.Join", {{"NetworkID", network_id}, {"EndpointID", docker_id("be", index)}, {"SandboxKey", ""}});
}

}  // namespace

void attach_endpoints(const std::string& plugin_socket, const std::string& host_network, const std::string& network_id, int first, int count) {
    create_network(plugin_socket, host_network, network_id);
    const int plugin = pid_serving(plugin_socket);
    const double plugin_cpu_before = cpu_ms(plugin);
    for (int index = first; index < first + count; ++index) {
        const auto start = std::chrono::steady_clock::now();
        attach_endpoint(plugin_socket, network_id, index);
        std::printf("%.3f\n", ms_between(start, std::chrono::steady_clock::now()));
    }
    std::printf("plugin_rss_mib %.2f\nplugin_cpu_ms %.1f\n", rss_mib(plugin), cpu_ms(plugin) - plugin_cpu_before);
}

void attach_endpoints_at_once(const std::string& plugin_socket, const std::string& host_network, const std::string& network_id, int first, int count) {
    create_network(plugin_socket, host_network, network_id);
    std::vector<std::future<void>> attaches;
    const auto start = std::chrono::steady_clock::now();
    for (int index = first; index < first + count; ++index)
        attaches.push_back(std::async(std::launch::async, [&plugin_socket, &network_id, index] { attach_endpoint(plugin_socket, network_id, index); }));
    for (auto& attach : attaches) attach.get();  // rethrows the first failure
    std::printf("at_once_ms %.3f\n", ms_between(start, std::chrono::steady_clock::now()));
}

namespace {

// Attaches on host network lab2 in vm1, one at a time, each claiming a spare the warm pool made
// ready beforehand; their milliseconds. The pool is full again when it returns.
std::vector<double> warm_attaches(testing::Lab& lab, int& attached, int count) {
    const int spares = lab.options().warm_pool;
    std::vector<double> attach_ms;
    for (int i = 0; i < count; ++i) {
        wait_for_warm_pool(lab, spares);
        attach_ms.push_back(std::stod(ok(lab, "vm1", this_binary() + " attach-endpoints " + kPluginSocket + " lab2 " + docker_id("3a2a", 0) + " " +
                                                         std::to_string(kWarmFirst + attached++) + " 1")));
    }
    wait_for_warm_pool(lab, spares);
    return attach_ms;
}

}  // namespace

int scale_nics(const std::vector<int>& steps) { return steps.back() + (kWarmPerStep + kAtOnce) * static_cast<int>(steps.size()); }

void measure_scale(testing::Lab& lab, const std::string& node, const std::vector<int>& steps, std::vector<ScaleStep>& results) {
    const std::string vms = lab.options().backend == "netns" ? "emulated (netns)" : "QEMU TCG (" + lab.options().backend + ")";
    const bool warm = node == "vm1" && lab.options().warm_pool > 0;
    int warm_attached = 0, at_once_attached = 0;
    const int shim = pid_serving(lab.options().dir + "/run/shim.sock");
    const int vswitchd = pid_in(lab.host().dir() + "/ovs-vswitchd.pid"), ovsdb = pid_in(lab.host().dir() + "/ovsdb-server.pid");
    int endpoints = 0;
    for (const int step : steps) {
        progress("scale, %s: %d endpoints", vms.c_str(), step);
        const double shim_cpu_before = cpu_ms(shim), ovs_cpu_before = cpu_ms(vswitchd) + cpu_ms(ovsdb);
        std::istringstream lines(ok(lab, node, this_binary() + " attach-endpoints " + kPluginSocket + " lab " + docker_id("5ca1e", 0) + " " + std::to_string(endpoints) + " " +
                                                    std::to_string(step - endpoints)));
        ScaleStep result;
        result.vms = vms;
        result.endpoints = step;
        std::vector<double> attach_ms;
        double plugin_cpu_ms = 0;
        for (std::string word; lines >> word;) {
            if (word == "plugin_rss_mib") lines >> result.plugin_mib;
            else if (word == "plugin_cpu_ms") lines >> plugin_cpu_ms;
            else attach_ms.push_back(std::stod(word));
        }
        const double attached = static_cast<double>(step - endpoints);
        result.attach_p50_ms = median(attach_ms);
        result.attach_p90_ms = percentile(attach_ms, 0.9);
        result.brfusion_cpu_ms = (cpu_ms(shim) - shim_cpu_before + plugin_cpu_ms) / attached;
        result.ovs_cpu_ms = (cpu_ms(vswitchd) + cpu_ms(ovsdb) - ovs_cpu_before) / attached;
        result.shim_mib = rss_mib(shim);
        result.vswitchd_mib = rss_mib(vswitchd);
        if (warm) {
            result.warm_attach_p50_ms = median(warm_attaches(lab, warm_attached, kWarmPerStep));
            // Together, on network lab as the row's own; they count towards the next row.
            const std::string printed = ok(lab, node, this_binary() + " attach-endpoints " + kPluginSocket + " lab " + docker_id("5ca1e", 0) + " " +
                                                          std::to_string(kAtOnceFirst + at_once_attached) + " " + std::to_string(kAtOnce) + " --at-once");
            at_once_attached += kAtOnce;
            result.at_once_ms_per_attach = std::stod(printed.substr(printed.find(' ') + 1)) / kAtOnce;
        }
        results.push_back(result);
        endpoints = step;
    }
}

void report_scale(const std::vector<ScaleStep>& steps, Report& report) {
    Table table{"Scale: endpoints on one host",
                {"VMs", "endpoints", "attach p50 (ms)", "attach p90 (ms)", "warm attach p50 (ms)", "8 at once, per attach (ms)", "brfusion CPU per attach (ms)", "OVS CPU per attach (ms)",
                 "brfusion-shim (MiB)", "brfusion-plugin (MiB)", "ovs-vswitchd (MiB)"},
                {},
                {"Endpoints are made in one VM through brfusion-plugin's socket the way dockerd makes them (CreateEndpoint, then Join, "
                 "which returns once the NIC is in the VM), without containers; attach = those two calls, over the endpoints added "
                 "since the previous row. Memory: resident set (VmRSS) at that row. A QEMU VM takes one NIC per PCIe root port.",
                 "Warm attach: " + std::to_string(kWarmPerStep) + " more attaches at that row, on host network lab2, each claiming a spare NIC "
                 "the warm pool had ready (it is plugged and on the switch already; the pool's refill, which adds the next spare's port, "
                 "is waited for between them and not counted); emulated VMs only.",
                 "8 at once: " + std::to_string(kAtOnce) + " more attaches on network lab started together (as concurrent docker runs), "
                 "the time until the last was done divided by " + std::to_string(kAtOnce) + "; emulated VMs only. They count towards the next row.",
                 "CPU per attach: user and system time over the row's endpoints divided by their number. brfusion: brfusion-shim "
                 "and brfusion-plugin, with the commands they ran (ip, ethtool, ovs-ofctl) and their background work; OVS: "
                 "ovs-vswitchd and ovsdb-server. On QEMU VMs the plugin's share is the guest's CPU time."}};
    // One block per kind of VM (gnuplot's index), its name heading the first column.
    std::string data, vms;
    for (const auto& step : steps) {
        table.rows.push_back({step.vms, std::to_string(step.endpoints), fixed(step.attach_p50_ms, 1), fixed(step.attach_p90_ms, 1),
                              step.warm_attach_p50_ms ? fixed(*step.warm_attach_p50_ms, 1) : "-",
                              step.at_once_ms_per_attach ? fixed(*step.at_once_ms_per_attach, 1) : "-", fixed(step.brfusion_cpu_ms, 1), fixed(step.ovs_cpu_ms, 1), fixed(step.shim_mib, 1), fixed(step.plugin_mib, 1), fixed(step.vswitchd_mib, 1)});
        if (step.vms != vms)
            data += (vms.empty() ? "" : "\n\n") +
                    ("\"" + step.vms + "\" attach_p50_ms attach_p90_ms shim_mib plugin_mib vswitchd_mib brfusion_cpu_ms ovs_cpu_ms warm_attach_p50_ms at_once_ms_per_attach\n");
        vms = step.vms;
        data += std::to_string(step.endpoints) + " " + fixed(step.attach_p50_ms, 2) + " " + fixed(step.attach_p90_ms, 2) + " " + fixed(step.shim_mib, 2) +
                " " + fixed(step.plugin_mib, 2) + " " + fixed(step.vswitchd_mib, 2) + " " + fixed(step.brfusion_cpu_ms, 2) + " " + fixed(step.ovs_cpu_ms, 2) + " " +
                (step.warm_attach_p50_ms ? fixed(*step.warm_attach_p50_ms, 2) : "NaN") + " " +
                (step.at_once_ms_per_attach ? fixed(*step.at_once_ms_per_attach, 2) : "NaN") + "\n";
    }
    report.add(table);
    report.plot("scale", data, "Attach latency, CPU per attach and memory as endpoints grow");
}

}  // namespace brfusion::bench
