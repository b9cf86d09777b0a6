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

}  // namespace brfusion::bench
