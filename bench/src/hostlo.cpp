#include "brfusion/bench/lab_tools.hpp"
#include "brfusion/bench/sections.hpp"
#include "brfusion/bench/stats.hpp"

#include <cstdio>

namespace brfusion::bench {

namespace {

constexpr int kPingPongPort = 11111, kIperfPort = 5201, kNginxPort = 8080, kMemcachedPort = 11211;

struct PodPath {
    PodPath(std::string path_name, std::string plot_label, Place server_place, Place client_place, std::string server_address)
        : name(std::move(path_name)), label(std::move(plot_label)), server(server_place), client(client_place), address(std::move(server_address)) {}
    std::string name, label;  // label: the plot's
    Place server, client;
    std::string address;  // where the client reaches the server
    std::vector<double> udp, tcp, mbits, requests_per_s, ops_per_s, memcached_us;  // one per run
};

}  // namespace

void measure_hostlo(testing::Lab& lab, const BenchOptions& options, Report& report) {
    // Pod A over Hostlo: a1 in vm1 (with a1b in its network namespace), a2 in vm2.
    for (const char* vm : {"vm1", "vm2"})
        ok(lab, vm, "docker network create -d brfusion --ipam-driver brfusion --ipam-opt group=bench-pod -o mode=hostlo bench-pod");
    ok(lab, "vm1", "docker run -d --name bench-a1 --network bench-pod brfusion-test sleep 86400");
    ok(lab, "vm1", "docker run -d --name bench-a1b --network container:bench-a1 brfusion-test sleep 86400");
    ok(lab, "vm2", "docker run -d --name bench-a2 --network bench-pod brfusion-test sleep 86400");
    const std::string a1 = ok(lab, "vm1", "docker inspect -f '{{(index .NetworkSettings.Networks \"bench-pod\").IPAddress}}' bench-a1");
    // The nested path: Docker's bridge and NAT in each VM; vm1 publishes the servers on its primary
    // NIC (192.0.2.130), on host network mgmt with vm2's.
    ok(lab, "vm1", "docker run -d --name bench-n1" + published(kPingPongPort, "udp") + published(kPingPongPort) + published(kIperfPort) +
                       published(kNginxPort) + published(kMemcachedPort) + " brfusion-test sleep 86400");
    ok(lab, "vm2", "docker run -d --name bench-n2 brfusion-test sleep 86400");
    // Docker's other cross-VM path: an overlay network of a swarm of the two VMs (VXLAN between
    // their primary NICs), the paper's other baseline. Its networks (the overlay, swarm's ingress)
    // take their subnets from RFC 2544's benchmarking range.
    ok(lab, "vm1", "docker swarm init --advertise-addr " + testing::Lab::primary_address(1) +
                       " --default-addr-pool 198.18.8.0/22 --default-addr-pool-mask-length 24 >/dev/null");
    const std::string token = ok(lab, "vm1", "docker swarm join-token -q worker");
    ok(lab, "vm2", "docker swarm join --advertise-addr " + testing::Lab::primary_address(2) + " --token " + token + " " +
                       testing::Lab::primary_address(1) + ":2377 >/dev/null");
    ok(lab, "vm1", "docker network create -d overlay --attachable bench-overlay >/dev/null");
    ok(lab, "vm1", "docker run -d --name bench-o1 --network bench-overlay brfusion-test sleep 86400");
    ok(lab, "vm2", "docker run -d --name bench-o2 --network bench-overlay brfusion-test sleep 86400");
    const std::string o1 = ok(lab, "vm1", "docker inspect -f '{{(index .NetworkSettings.Networks \"bench-overlay\").IPAddress}}' bench-o1");
    const Place a1_place = container(lab, "vm1", "bench-a1"), n1_place = container(lab, "vm1", "bench-n1"), o1_place = container(lab, "vm1", "bench-o1");
    for (const auto& server : {a1_place, n1_place, o1_place}) {
        start_ping_pong_server(lab, server, kPingPongPort);
        start_nginx(lab, server, kNginxPort);
        start_memcached(lab, server, kMemcachedPort);
    }

    std::vector<PodPath> paths = {
        {"same VM: the pod's localhost", "same VM", a1_place, container(lab, "vm1", "bench-a1b"), "127.0.0.1"},
        {"across VMs: Hostlo", "Hostlo", a1_place, container(lab, "vm2", "bench-a2"), a1},
        {"across VMs: nested NAT (Docker bridge+NAT in both VMs)", "nested NAT", n1_place, container(lab, "vm2", "bench-n2"), testing::Lab::primary_address(1)},
        {"across VMs: Docker overlay (swarm of both VMs)", "overlay", o1_place, container(lab, "vm2", "bench-o2"), o1},
    };
    for (int run = 1; run <= options.runs; ++run)
        for (auto& path : paths) {
            progress("Hostlo run %d/%d: %s", run, options.runs, path.name.c_str());
            path.udp.push_back(rr_latency(lab, path.client, path.address, kPingPongPort, false, options.seconds).average);
            path.tcp.push_back(rr_latency(lab, path.client, path.address, kPingPongPort, true, options.seconds).average);
            path.mbits.push_back(iperf3_mbits(lab, path.client, {path.server, path.address, kIperfPort}, options.seconds, 0));
            path.requests_per_s.push_back(wrk(lab, path.client, path.address, kNginxPort, options.seconds).requests_per_s);
            const MemcaslapResult cache = memcaslap(lab, path.client, path.address, kMemcachedPort, options.seconds);
            path.ops_per_s.push_back(cache.ops_per_s);
            path.memcached_us.push_back(cache.average_us);
        }
    for (const char* server : {"ping-pong-server", kNginxPattern, kMemcachedPattern}) stop_servers(lab, "vm1", server);
    ok(lab, "vm1", "docker rm -f bench-a1b bench-a1 bench-n1 bench-o1 >/dev/null && docker network rm bench-pod >/dev/null");
    ok(lab, "vm2", "docker rm -f bench-a2 bench-n2 bench-o2 >/dev/null && docker network rm bench-pod >/dev/null && docker swarm leave >/dev/null");
    ok(lab, "vm1", "docker network rm bench-overlay >/dev/null && docker swarm leave --force >/dev/null");

    Table table{"Hostlo: two containers of one pod (latency in us, throughput in Mbit/s)",
                {"path", "UDP RR avg", "TCP RR avg", "TCP throughput", "latency vs nested NAT (UDP / TCP)", "throughput vs nested NAT",
                 "latency vs overlay (UDP / TCP)", "throughput vs overlay"},
                {},
                {"ping-pong (one 64-byte request at a time, half the round trip) and one iperf3 TCP stream between the pod's containers, " +
                 std::to_string(options.seconds) + " s each; median of " + std::to_string(options.runs) + " runs."}};
    const PodPath &nested = paths[2], &overlay = paths[3];
    const auto latency_vs = [](const PodPath& path, const PodPath& base) {
        return fixed(median(path.udp) / median(base.udp), 2) + "x / " + fixed(median(path.tcp) / median(base.tcp), 2) + "x";
    };
    const auto throughput_vs = [](const PodPath& path, const PodPath& base) { return fixed(median(path.mbits) / median(base.mbits), 2) + "x"; };
    std::string data = "# path udp_avg tcp_avg (us) mbits\n";
    for (const auto& path : paths) {
        table.rows.push_back({path.name, fixed(median(path.udp), 1), fixed(median(path.tcp), 1), fixed(median(path.mbits), 1), latency_vs(path, nested),
                              throughput_vs(path, nested), latency_vs(path, overlay), throughput_vs(path, overlay)});
        data += "\"" + path.label + "\" " + fixed(median(path.udp), 2) + " " + fixed(median(path.tcp), 2) + " " + fixed(median(path.mbits), 2) + "\n";
    }
    table.notes.push_back("Hostlo against the same pod inside one VM: UDP " + fixed(median(paths[1].udp) / median(paths[0].udp), 2) + "x, TCP " +
                          fixed(median(paths[1].tcp) / median(paths[0].tcp), 2) + "x the latency.");
    report.add(table);
    report.plot("hostlo", data, "Hostlo: request/response latency between two containers of one pod");

    Table apps{"Hostlo: NGINX and Memcached between two containers of one pod",
               {"path", "NGINX requests/s", "Memcached operations/s", "Memcached average latency (us)", "requests/s vs same VM",
                "operations/s vs same VM"},
               {},
               {"NGINX serving a 1 KiB file under wrk, Memcached under memcaslap (SET:GET 1:10), as in the applications tables, from the pod's "
                "other container to the first; " + std::to_string(options.seconds) + " s each; median of " + std::to_string(options.runs) +
                " runs; ratios: the median of each run's ratio, lowest and highest in brackets."}};
    const PodPath& same_vm = paths[0];
    for (const auto& path : paths)
        apps.rows.push_back({path.name, fixed(median(path.requests_per_s), 0), fixed(median(path.ops_per_s), 0), fixed(median(path.memcached_us), 0),
                             ratio_cell(spread(ratios(path.requests_per_s, same_vm.requests_per_s))),
                             ratio_cell(spread(ratios(path.ops_per_s, same_vm.ops_per_s)))});
    report.add(apps);
}

}  // namespace brfusion::bench
