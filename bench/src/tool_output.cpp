#include "brfusion/bench/tool_output.hpp"

#include <iterator>
#include <regex>
#include <stdexcept>

namespace brfusion::bench {

namespace {

std::smatch required(const std::string& report, const std::regex& pattern, const std::string& what) {
    std::smatch match;
    if (!std::regex_search(report, match, pattern)) throw std::runtime_error("no " + what + " in:\n" + report);
    return match;
}

// "84.00us", "0.90ms", "1.20s" in milliseconds.
double wrk_duration_ms(const std::string& number, const std::string& unit) {
    const double value = std::stod(number);
    if (unit == "us") return value / 1000;
    if (unit == "ms") return value;
    if (unit == "s") return value * 1000;
    if (unit == "m") return value * 60'000;
    throw std::runtime_error("wrk duration unit '" + unit + "' is not one of us, ms, s, m");
}

double wrk_percentile_ms(const std::string& report, const std::string& percent) {
    const auto match = required(report, std::regex("\\n\\s*" + percent + "%\\s+([0-9.]+)(us|ms|s|m)\\b"), percent + "% latency");
    return wrk_duration_ms(match[1], match[2]);
}

}  // namespace

WrkResult parse_wrk(const std::string& report) {
    std::smatch failed;
    if (std::regex_search(report, failed, std::regex(R"(Non-2xx or 3xx responses:\s*([0-9]+))")))
        throw std::runtime_error(std::string(failed[1]) + " responses were not 2xx or 3xx:\n" + report);
    WrkResult result;
    result.requests_per_s = std::stod(required(report, std::regex(R"(Requests/sec:\s*([0-9.]+))"), "Requests/sec")[1]);
    result.p50_ms = wrk_percentile_ms(report, "50");
    result.p99_ms = wrk_percentile_ms(report, "99");
    std::smatch errors;
    if (std::regex_search(report, errors, std::regex(R"(Socket errors: connect ([0-9]+), read ([0-9]+), write ([0-9]+), timeout ([0-9]+))")))
        for (std::size_t kind = 1; kind <= 4; ++kind) result.socket_errors += std::stol(errors[kind]);
    if (result.requests_per_s <= 0) throw std::runtime_error("wrk served no request:\n" + report);
    return result;
}

MemcaslapResult parse_memcaslap(const std::string& report) {
    const auto total = report.rfind("Total Statistics");
    if (total == std::string::npos) throw std::runtime_error("no Total Statistics (was memcaslap run with -S?) in:\n" + report);
    const std::string last_total = report.substr(total);
    MemcaslapResult result;
    result.average_us = std::stod(required(last_total, std::regex(R"(Avg:\s*([0-9.]+))"), "average latency")[1]);
    result.ops_per_s = std::stod(required(report, std::regex(R"(TPS:\s*([0-9]+))"), "TPS")[1]);
    if (result.ops_per_s <= 0) throw std::runtime_error("memcaslap completed no operation:\n" + report);
    return result;
}

CpuTimes parse_proc_stat(const std::string& cpu_line) {
    std::smatch match;
    const std::regex line(R"(^cpu +([0-9]+) ([0-9]+) ([0-9]+) ([0-9]+) ([0-9]+) ([0-9]+) ([0-9]+) ([0-9]+) ([0-9]+) ([0-9]+)\s*$)");
    if (!std::regex_match(cpu_line, match, line)) throw std::runtime_error("not the cpu line of /proc/stat: '" + cpu_line + "'");
    CpuTimes times;
    double* const fields[] = {&times.user, &times.nice,    &times.system, &times.idle,  &times.iowait,
                              &times.irq,  &times.softirq, &times.steal,  &times.guest, &times.guest_nice};
    for (std::size_t field = 0; field < std::size(fields); ++field) *fields[field] = std::stod(match[field + 1]);
    return times;
}

CpuShares cpu_shares(const CpuTimes& before, const CpuTimes& after) {
    const auto delta = [&](double CpuTimes::*field) { return after.*field - before.*field; };
    // guest and guest_nice are already inside user and nice.
    const double total = delta(&CpuTimes::user) + delta(&CpuTimes::nice) + delta(&CpuTimes::system) + delta(&CpuTimes::idle) +
                         delta(&CpuTimes::iowait) + delta(&CpuTimes::irq) + delta(&CpuTimes::softirq) + delta(&CpuTimes::steal);
    if (total <= 0) throw std::runtime_error("no CPU time passed between the two readings of /proc/stat");
    const double guest = delta(&CpuTimes::guest) + delta(&CpuTimes::guest_nice);
    return {100 * (delta(&CpuTimes::user) + delta(&CpuTimes::nice) - guest) / total, 100 * (delta(&CpuTimes::system) + delta(&CpuTimes::irq)) / total,
            100 * delta(&CpuTimes::softirq) / total, 100 * guest / total};
}

}  // namespace brfusion::bench
