#include "brfusion/bench/tool_output.hpp"

#include <catch2/catch.hpp>

using namespace brfusion::bench;
using Catch::Contains;

namespace {

// wrk 4.1.0's report, as Debian 12's wrk printed it.
const std::string kWrk = R"(Running 2s test @ http://127.0.0.1:8088/1k.html
  1 threads and 8 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   331.85us  780.16us   5.86ms   90.87%
    Req/Sec    80.79k    23.33k   95.11k    80.00%
  Latency Distribution
     50%   84.00us
     75%   86.00us
     90%    0.90ms
     99%    3.89ms
  160395 requests in 2.00s, 193.19MB read
Requests/sec:  80170.52
Transfer/sec:     96.56MB
)";

// memcaslap 1.1.4 with -S, as Debian 12's printed it (the distributions cut): the period's
// statistics as a table, then the run's as blocks.
const std::string kMemcaslap = R"(servers: 127.0.0.1:11311
threads count: 1
concurrency: 16
Total Statistics
Type     Time(s)  Ops          TPS(ops/s)   Net(M/s)   Get_miss   Min(us)  Max(us)    Avg(us)    Std_dev    Geo_dist
Period   1        107049       107049       111.1      0          12       6265       148        413.22     89.71
Global   1        107049       107049       111.1      0          12       6265       148        413.22     89.71

Get Statistics (97326 events)
   Min:        12
   Max:      6265
   Avg:       148
   Geo:     89.63

Total Statistics (107065 events)
   Min:        12
   Max:      6265
   Avg:       149
   Geo:     89.76
   Std:    414.59

cmd_get: 97342
cmd_set: 9739
get_misses: 0

Run time: 1.0s Ops: 107081 TPS: 107065 Net_rate: 119.8M/s
)";

}  // namespace

TEST_CASE("tool output: wrk's requests per second and latency percentiles, in ms whatever the unit") {
    const WrkResult result = parse_wrk(kWrk);
    CHECK(result.requests_per_s == Approx(80170.52));
    CHECK(result.p50_ms == Approx(0.084));
    CHECK(result.p99_ms == Approx(3.89));
    CHECK(result.socket_errors == 0);

    std::string slow = kWrk;
    slow.replace(slow.find("3.89ms"), 6, "1.20s");
    slow += "  Socket errors: connect 0, read 2, write 0, timeout 5\n";
    const WrkResult timed_out = parse_wrk(slow);
    CHECK(timed_out.p99_ms == Approx(1200));
    CHECK(timed_out.socket_errors == 7);
}

TEST_CASE("tool output: wrk - responses that failed, or a report without a figure, throw quoting the report") {
    CHECK_THROWS_WITH(parse_wrk(kWrk + "  Non-2xx or 3xx responses: 12\n"), Contains("12 responses were not 2xx or 3xx") && Contains("Requests/sec"));
    std::string no_distribution = kWrk;
    no_distribution.erase(no_distribution.find("     99%"), std::string("     99%    3.89ms\n").size());
    CHECK_THROWS_WITH(parse_wrk(no_distribution), Contains("no 99% latency"));
    CHECK_THROWS_WITH(parse_wrk("unable to connect to 192.0.2.1:8091 Connection refused\n"), Contains("no Requests/sec") && Contains("Connection refused"));
}

TEST_CASE("tool output: memcaslap's operations per second and the whole run's average latency") {
    const MemcaslapResult result = parse_memcaslap(kMemcaslap);
    CHECK(result.ops_per_s == 107065);
    CHECK(result.average_us == 149);  // the run's, not the last period's (148)
}

TEST_CASE("tool output: memcaslap without -S statistics or without a TPS throws") {
    CHECK_THROWS_WITH(parse_memcaslap("Run time: 2.0s Ops: 163283 TPS: 81635 Net_rate: 91.4M/s\n"), Contains("no Total Statistics"));
    CHECK_THROWS_WITH(parse_memcaslap("Total Statistics (0 events)\n   Avg:  0\n"), Contains("no TPS"));
}

TEST_CASE("tool output: CPU shares between two readings of /proc/stat - the guests' time apart from user") {
    // user nice system idle iowait irq softirq steal guest guest_nice
    const CpuTimes before = parse_proc_stat("cpu  1000 0 500 8000 0 0 100 0 200 0");
    const CpuTimes after = parse_proc_stat("cpu  1600 0 700 8600 0 50 200 0 600 0\n");
    CHECK(before.guest == 200);
    // 1550 ticks passed: user 600 of which guest 400, system 200 + irq 50, softirq 100, idle 600.
    const CpuShares shares = cpu_shares(before, after);
    CHECK(shares.user == Approx(100.0 * 200 / 1550));
    CHECK(shares.system == Approx(100.0 * 250 / 1550));
    CHECK(shares.softirq == Approx(100.0 * 100 / 1550));
    CHECK(shares.guest == Approx(100.0 * 400 / 1550));
}

TEST_CASE("tool output: /proc/stat - another line, or no time passed, throws") {
    CHECK_THROWS_WITH(parse_proc_stat("cpu0 1 2 3 4 5 6 7 8 9 10"), Contains("not the cpu line"));
    CHECK_THROWS_WITH(parse_proc_stat("cpu  1 2 3"), Contains("not the cpu line"));
    const CpuTimes same = parse_proc_stat("cpu  1 2 3 4 5 6 7 8 0 0");
    CHECK_THROWS_WITH(cpu_shares(same, same), Contains("no CPU time passed"));
}
