#include "brfusion/bench/lab_tools.hpp"
#include "brfusion/bench/sections.hpp"
#include "brfusion/bench/stats.hpp"
#include "brfusion/testing/command.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdlib>
#include <cstdio>
#include <fstream>
#include <stdexcept>

namespace brfusion::bench {

namespace {

// One container start, run in the VM: `docker run` until the container's first request to the
// outside server has its answer (so the first TCP byte reached the server), timed on the VM's
// clock, which the container shares; then where the time went, from dockerd's events of that
// container: created (the CLI and `docker create`), connected to its network (IPAM, the
// endpoint, Join: brfusion-plugin's work and the hot-plug for brfusion). Prints three
// microsecond offsets from the start: first byte, create, connect. (dockerd's start event comes
// when its start call returns, often after the container's first request: no phase ends there.)
// $1: docker run's network options; $2: a name for the container, new each run.
// Busybox's date has no %N, its adjtimex shows the clock in microseconds.
constexpr const char* kStartupScript = R"SH(#!/bin/sh
first_request=$(cat <<'EOF'
timeout 60 sh -c 'until wget -q -O /dev/null http://192.0.2.2/; do :; done' &&
adjtimex | awk '/tv_sec/ {s = $2} /tv_usec/ {u = $2} END {printf "%d%06d\n", s, u}'
EOF
)
t0=$(date +%s%6N)
t1=$(docker run --rm --name "$2" $1 brfusion-test sh -c "$first_request") || exit 1
docker events --since "$((t0 / 1000000))" --until "$(date +%s.%N)" --format \
    '{{.Type}} {{.Action}} {{.TimeNano}} {{.Actor.ID}} {{with index .Actor.Attributes "container"}}{{.}}{{else}}-{{end}} {{with index .Actor.Attributes "name"}}{{.}}{{else}}-{{end}}' |
awk -v t0="$t0" -v t1="$t1" -v name="$2" '
    $1 == "container" && $6 == name { at[$2] = int($3 / 1000) - t0; id = $4 }
    $1 == "network" && $2 == "connect" { connected[$5] = int($3 / 1000) - t0 }
    END { if (!("create" in at) || !(id in connected)) exit 1
          printf "%d %d %d\n", t1 - t0, at["create"], connected[id] }'
)SH";

// One start's phases, in ms from `docker run`.
struct StartupTimes {
    double first_byte, created, connected;
};

struct StartupMode {
    std::string name;
    std::string network_options;
    bool warm = false;
    std::vector<StartupTimes> runs;
    // Each run's time from `from` (from the start when null) to `to`.
    std::vector<double> phase(double StartupTimes::*to, double StartupTimes::*from = nullptr) const {
        std::vector<double> ms;
        for (const auto& run : runs) ms.push_back(run.*to - (from ? run.*from : 0));
        return ms;
    }
};

StartupTimes parse_startup(const std::string& output) {
    StartupTimes t{};
    if (std::sscanf(output.c_str(), "%lf %lf %lf", &t.first_byte, &t.created, &t.connected) != 3)
        throw std::runtime_error("a start-up run printed '" + output + "', not three times");
    for (double* ms : {&t.first_byte, &t.created, &t.connected}) *ms /= 1000;
    return t;
}

}  // namespace

void measure_startup(testing::Lab& lab, const BenchOptions& options, Report& report) {
    if (lab.options().warm_pool < 1) throw std::invalid_argument("the start-up section needs a lab with a warm pool (LabOptions::warm_pool)");
    const std::string script = lab.options().dir + "/startup.sh";  // the lab's directory is visible in its VMs
    std::ofstream(script) << kStartupScript;
    ok(lab, "vm1", "docker network create -d brfusion --ipam-driver brfusion --ipam-opt network=lab bench-cold");
    ok(lab, "vm1", "docker network create -d brfusion --ipam-driver brfusion --ipam-opt network=lab2 bench-warm");
    ok(lab, "vm1", "docker network create bench-bridge");
    const int runs = options.startups;
    // The user-defined bridge is the fair baseline for brfusion (any network but Docker's default
    // makes Docker do more per container); the default bridge is the paper's.
    std::vector<StartupMode> modes = {
        {"Docker's default bridge (nested NAT)", "", false, {}},
        {"Docker's user-defined bridge (nested NAT)", "--network bench-bridge", false, {}},
        {"brfusion, cold (NIC hot-plugged)", "--network bench-cold", false, {}},
        {"brfusion, warm pool", "--network bench-warm", true, {}},
    };
    for (int run = 1; run <= runs; ++run)
        for (auto& mode : modes) {
            if (mode.warm) wait_for_warm_pool(lab, lab.options().warm_pool);
            if (run % 10 == 1) progress("start-up run %d/%d: %s", run, runs, mode.name.c_str());
            const std::string name = "bench-start-" + std::to_string(run) + "-" + std::to_string(&mode - modes.data());
            mode.runs.push_back(parse_startup(ok(lab, "vm1", "sh " + script + " '" + mode.network_options + "' " + name)));
        }
    ok(lab, "vm1", "docker network rm bench-cold bench-warm bench-bridge >/dev/null");

    const double bridge = median(modes[0].phase(&StartupTimes::first_byte)), user_bridge = median(modes[1].phase(&StartupTimes::first_byte));
    Table table{"Container start-up: `docker run` until its first TCP byte reached a server (ms)",
                {"mode", "runs", "p50", "p90", "min", "p50 vs default bridge", "p50 vs user-defined bridge"},
                {},
                {"Runs in vm1, the modes interleaved; each `docker run --rm` of busybox until its "
                 "first HTTP request to the outside server (192.0.2.2) was answered, on the VM's clock. Warm: the pool (" +
                 std::to_string(lab.options().warm_pool) + " spares on host network lab2) had refilled before each run."}};
    Table phases{"Container start-up by phase (ms, medians)",
                 {"mode", "to created", "created to connected", "connected to first byte", "total"},
                 {},
                 {"From dockerd's events of each run's container: created (the CLI and `docker create`); connected to its network "
                  "(IPAM, the endpoint and Join: for brfusion, the plugin's calls to the shim and the hot-plug); then the rest of "
                  "`docker start` and the container's own run until its first request to the outside was answered. Medians of each "
                  "phase: they need not add up to the total's."}};
    std::string data;
    for (const auto& mode : modes) {
        const auto ms = mode.phase(&StartupTimes::first_byte);
        table.rows.push_back({mode.name, std::to_string(ms.size()), fixed(median(ms), 0), fixed(percentile(ms, 0.9), 0), fixed(minimum(ms), 0),
                              fixed(median(ms) / bridge, 2) + "x", fixed(median(ms) / user_bridge, 2) + "x"});
        phases.rows.push_back({mode.name, fixed(median(mode.phase(&StartupTimes::created)), 0),
                               fixed(median(mode.phase(&StartupTimes::connected, &StartupTimes::created)), 0),
                               fixed(median(mode.phase(&StartupTimes::first_byte, &StartupTimes::connected)), 0), fixed(median(ms), 0)});
        // One block per mode (gnuplot's index): the sorted times and their cumulative fraction.
        std::vector<double> sorted = ms;
        std::sort(sorted.begin(), sorted.end());
        data += "# " + mode.name + ": ms fraction\n";
        for (std::size_t i = 0; i < sorted.size(); ++i)
            data += fixed(sorted[i], 1) + " " + fixed(static_cast<double>(i + 1) / static_cast<double>(sorted.size()), 4) + "\n";
        data += "\n\n";
    }
    report.add(table);
    report.plot("startup", data, "Container start-up, cumulative distribution");
    report.add(phases);
}

}  // namespace brfusion::bench
