#include "brfusion/bench/lab_tools.hpp"
#include "brfusion/bench/sections.hpp"
#include "brfusion/bench/stats.hpp"

#include <string>
#include <vector>

namespace brfusion::bench {

namespace {

// One path's servers and the host ports the outside reaches them at (the same port inside).
struct AppPath {
    AppPath(std::string path_name, int http, int memcached) : name(std::move(path_name)), http_port(http), memcached_port(memcached) {}
    std::string name;
    Place server;
    int http_port, memcached_port;
    std::vector<double> requests_per_s, p50_ms, p99_ms, ops_per_s, average_us;  // one per run
    long socket_errors = 0;
};

// Path `path`'s ratios of `field` to the no-container and to the nested-NAT path, run by run.
std::vector<std::string> figure_cells(const std::vector<AppPath>& paths, std::size_t path, const std::vector<double> AppPath::*field) {
    return {ratio_cell(spread(ratios(paths[path].*field, paths[0].*field))), ratio_cell(spread(ratios(paths[path].*field, paths[2].*field)))};
}

}  // namespace

void measure_applications(testing::Lab& lab, const BenchOptions& options, Report& report) {
    const std::string uplink = testing::Lab::kHostUplinkAddress;
    std::vector<AppPath> paths = {{kNoContainerPath, 8090, 11290}, {kBrfusionPath, 8091, 11291}, {kNestedNatPath, 8092, 11292}};
    paths[0].server = {"vm1", 0};
    ok(lab, "vm1", "docker network create -d brfusion --ipam-driver brfusion --ipam-opt network=lab bench-apps");
    ok(lab, "vm1", "docker run -d --name bench-app-brfusion --network bench-apps" + published(paths[1].http_port) + published(paths[1].memcached_port) +
                       " brfusion-test sleep 86400");
    ok(lab, "vm1", "docker run -d --name bench-app-nat" + published(paths[2].http_port) + published(paths[2].memcached_port) + " brfusion-test sleep 86400");
    paths[1].server = container(lab, "vm1", "bench-app-brfusion");
    paths[2].server = container(lab, "vm1", "bench-app-nat");
    {
        const HostForwards forwards(lab, "brfusion_bench_apps", {paths[0].http_port, paths[0].memcached_port, paths[2].http_port, paths[2].memcached_port});
        for (const auto& path : paths) {
            start_nginx(lab, path.server, path.http_port);
            start_memcached(lab, path.server, path.memcached_port);
        }
        const Place outside{"outside", 0};
        for (int run = 1; run <= options.runs; ++run)
            for (auto& path : paths) {
                progress("applications run %d/%d: %s", run, options.runs, path.name.c_str());
                const WrkResult web = wrk(lab, outside, uplink, path.http_port, options.seconds);
                path.requests_per_s.push_back(web.requests_per_s);
                path.p50_ms.push_back(web.p50_ms);
                path.p99_ms.push_back(web.p99_ms);
                path.socket_errors += web.socket_errors;
                const MemcaslapResult cache = memcaslap(lab, outside, uplink, path.memcached_port, options.seconds);
                path.ops_per_s.push_back(cache.ops_per_s);
                path.average_us.push_back(cache.average_us);
            }
        stop_servers(lab, "vm1", kNginxPattern);
        stop_servers(lab, "vm1", kMemcachedPattern);
    }
    ok(lab, "vm1", "docker rm -f bench-app-brfusion bench-app-nat >/dev/null && docker network rm bench-apps >/dev/null");

    const std::string how = "From the outside to a port of the host's address (192.0.2.1): brfusion's container publishes it on the host; the "
                            "VM's process and Docker's container (published in the VM) are reached through a DNAT on the host to vm1. " +
                            std::to_string(options.seconds) + " s each; median of " + std::to_string(options.runs) +
                            " runs; ratios: the median of each run's ratio, lowest and highest in brackets.";
    Table web{"NGINX: a 1 KiB file under wrk from the outside",
              {"path", "requests/s", "p50 latency (ms)", "p99 latency (ms)", "requests/s vs no container", "requests/s vs nested NAT"},
              {},
              {"nginx-light (one worker) serving /1k.html; wrk, one thread, 16 connections. " + how}};
    Table cache{"Memcached under memcaslap from the outside",
                {"path", "operations/s", "average latency (us)", "operations/s vs no container", "operations/s vs nested NAT"},
                {},
                {"memcached (one thread, 64 MiB); memcaslap, one thread, 16 concurrent clients, 64-byte keys, 1 KiB values, SET:GET 1:10 "
                 "(the paper's mix). " + how}};
    long socket_errors = 0;
    for (std::size_t path = 0; path < paths.size(); ++path) {
        std::vector<std::string> row = {paths[path].name, fixed(median(paths[path].requests_per_s), 0), fixed(median(paths[path].p50_ms), 2),
                                        fixed(median(paths[path].p99_ms), 2)};
        for (auto& cell : figure_cells(paths, path, &AppPath::requests_per_s)) row.push_back(std::move(cell));
        web.rows.push_back(row);
        row = {paths[path].name, fixed(median(paths[path].ops_per_s), 0), fixed(median(paths[path].average_us), 0)};
        for (auto& cell : figure_cells(paths, path, &AppPath::ops_per_s)) row.push_back(std::move(cell));
        cache.rows.push_back(row);
        socket_errors += paths[path].socket_errors;
    }
    if (socket_errors > 0) web.notes.push_back("wrk counted " + std::to_string(socket_errors) + " socket errors (connect, read, write or timeout) over all runs.");
    report.add(web);
    report.add(cache);
}

}  // namespace brfusion::bench
