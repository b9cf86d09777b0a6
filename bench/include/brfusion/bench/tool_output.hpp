#pragma once
// What the benchmark reads from the application load generators' reports. Each parser throws
// std::runtime_error, quoting the report, when a figure is missing or the load was not served: a
// benchmark never reports a number it did not get.

#include <string>

namespace brfusion::bench {

// `wrk --latency`: requests per second and the latency distribution's median and 99th percentile.
// Responses that were not 2xx or 3xx make it throw; socket errors (connect, read, write, timeout)
// are counted.
struct WrkResult {
    double requests_per_s = 0, p50_ms = 0, p99_ms = 0;
    long socket_errors = 0;
};
WrkResult parse_wrk(const std::string& report);

// memcaslap (libmemcached's memaslap) run with `-S`: operations per second and the average latency
// of every operation over the whole run (its last "Total Statistics").
struct MemcaslapResult {
    double ops_per_s = 0, average_us = 0;
};
MemcaslapResult parse_memcaslap(const std::string& report);

// The "cpu" line of /proc/stat: the CPU time of all CPUs since boot, in clock ticks, by kind.
// Throws when the line is not one.
struct CpuTimes {
    double user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0, guest = 0, guest_nice = 0;
};
CpuTimes parse_proc_stat(const std::string& cpu_line);

// The shares of the CPU time between two readings, in % of all CPUs' time: user (with nice, without
// the guests' time, which the kernel counts as user too), system (with hardware interrupts),
// softirq, and guest (virtual CPUs running). Throws when no time passed.
struct CpuShares {
    double user = 0, system = 0, softirq = 0, guest = 0;
};
CpuShares cpu_shares(const CpuTimes& before, const CpuTimes& after);

}  // namespace brfusion::bench
