#pragma once
// The measuring tools, run on integration/lab's Lab (its fixed facts: docs/lab.md), and the
// facts every run reports about the machine. Every function throws std::runtime_error with the
// command and its output when a tool fails: a benchmark never reports a number it did not get.

#include "brfusion/bench/tool_output.hpp"
#include "brfusion/testing/lab.hpp"

#include <string>
#include <vector>

namespace brfusion::bench {

// Where a tool runs: a lab node (vmN, outside) in its own network namespace, or in the network
// namespace of a container on that VM. The tools are the node's own (the test image has none of
// them), entered into the container's namespace with nsenter.
struct Place {
    std::string node;
    int container_pid = 0;  // a process of the container, in the node's pid namespace; 0 = the node's own namespace
};

// From now on SIGINT, SIGTERM and SIGHUP make the command running stop (its process group is the
// terminal's, for SIGINT) and every later one throw std::runtime_error, so that a run unwinds and
// its labs take themselves down instead of leaving VMs behind.
void stop_on_signals();
bool stopping();  // a signal asked to stop

// What the run is doing, for whoever watches it: a printf-style line on stderr, stamped with the
// time since the run began ("bench [03:12] start-up run 11/50: ...").
void progress(const char* format, ...) __attribute__((format(printf, 1, 2)));
// The time since the run began, "12 min 05 s".
std::string elapsed();

// `command` with sh on `node` (Lab::exec), unless a signal asked to stop: then it throws.
testing::CommandResult exec(testing::Lab& lab, const std::string& node, const std::string& command);
// Like exec, but `command` must succeed; its output, without the final newline.
std::string ok(testing::Lab& lab, const std::string& node, const std::string& command);
// Container `name` (running) on VM `node`, found once: docker is slow under TCG.
Place container(testing::Lab& lab, const std::string& node, const std::string& name);
// `command` prefixed to run in the network namespace of `place`.
std::string at(const Place& place, const std::string& command);

// docker run's " -p PORT:PORT/PROTOCOL": the container's port published on the same port.
std::string published(int port, const std::string& protocol = "tcp");

// Starts `command` (a server) in the background at `place` and waits until something listens on
// `port` there. It runs until stopped, or until its container goes.
void start_server(testing::Lab& lab, const Place& place, const std::string& command, int port);
// Stops the servers started on `node` whose command line contains `pattern`.
void stop_servers(testing::Lab& lab, const std::string& node, const std::string& pattern);

// Until vm1 has every spare NIC the warm pool keeps on lab2 (LabOptions::warm_pool), and the
// guest's kernel shows them: a host whose containers do not start faster than the pool refills.
// Throws after 60 s.
void wait_for_warm_pool(testing::Lab& lab, int spares);

// TCP `ports` of the host's uplink address forwarded to vm1's primary address while it lives, as
// an operator forwards a port to a VM today: a DNAT in the host's network namespace, in an
// nftables table of the benchmark's own, `table`, deleted again by the destructor.
class HostForwards {
public:
    HostForwards(testing::Lab& lab, std::string table, const std::vector<int>& ports);
    ~HostForwards();
    HostForwards(const HostForwards&) = delete;
    HostForwards& operator=(const HostForwards&) = delete;

private:
    testing::Lab& lab_;
    std::string table_;
};

// NGINX serving a 1 KiB file, /1k.html, on `port` at `place` (the node's own nginx, its files in
// /tmp/brfusion-bench-nginx-PORT-PID on the node, PID the place's container_pid), and memcached
// (64 MiB, one thread) on `port`.
// stop_servers(node, kNginxPattern or kMemcachedPattern) stops them.
void start_nginx(testing::Lab& lab, const Place& place, int port);
void start_memcached(testing::Lab& lab, const Place& place, int port);
inline constexpr const char* kNginxPattern = "nginx -c /tmp/brfusion-bench-nginx-";
inline constexpr const char* kMemcachedPattern = "memcached -u nobody -l 0.0.0.0";

// wrk from `client` for `seconds`, 16 connections on one thread, GET http://ADDRESS:PORT/1k.html.
WrkResult wrk(testing::Lab& lab, const Place& client, const std::string& address, int port, int seconds);
// memcaslap from `client` for `seconds`, 16 concurrent clients on one thread, 64-byte keys and
// 1 KiB values, SET:GET 1:10 (the paper's mix), against memcached at address:port.
MemcaslapResult memcaslap(testing::Lab& lab, const Place& client, const std::string& address, int port, int seconds);

// This benchmark's binary, which the lab's nodes and VMs see at the same path: its subcommands are
// the tools run there (ping-pong, ping-pong-server, attach-endpoints).
std::string this_binary();

// Request/response latency in microseconds: this binary's ping-pong (ping_pong.hpp) for `seconds`
// from `client` against its ping-pong-server at address:port, over TCP or UDP (given up after
// `seconds` + 30 s). Half the round trip, as sockperf reports it.
struct RrLatency {
    double average = 0, p50 = 0, p99 = 0;
};
RrLatency rr_latency(testing::Lab& lab, const Place& client, const std::string& address, int port, bool tcp, int seconds);
// Starts a ping-pong-server (UDP and TCP) on `port` at `place`; stop_servers(node, "ping-pong-server") stops it.
void start_ping_pong_server(testing::Lab& lab, const Place& place, int port);

// One TCP stream for `seconds` from `client` to a one-off iperf3 server started at `server` on
// `port`, reached at `address`, writes of `write_size` bytes (iperf3 -l; 0 = its default, 128 KiB);
// what the server received, in Mbit/s. A stream that stalls is given up after `seconds` + 30 s and
// tried again with a fresh server, up to 3 times.
struct Iperf3Target {
    Place server;
    std::string address;
    int port = 5201;
};
double iperf3_mbits(testing::Lab& lab, const Place& client, const Iperf3Target& target, int seconds, int write_size);

// One TCP stream from `client` to a one-off iperf3 server at `target`, writes of `write_size`
// bytes, for `seconds` + 2 s, and the CPU shares meanwhile, over `seconds` s from 1 s in (both
// readings within the stream): of the machine (the host's kernel) and of `client`'s VM (the same
// kernel for emulated VMs).
struct StreamCpu {
    double mbits = 0;
    CpuShares host, vm;
};
StreamCpu cpu_during_stream(testing::Lab& lab, const Place& client, const Iperf3Target& target, int seconds, int write_size);

// The pid of the process that accepted a connection on the unix socket at `path` (SO_PEERCRED),
// in the caller's pid namespace.
int pid_serving(const std::string& path);
// Resident memory (VmRSS) of process `pid`, in MiB.
double rss_mib(int pid);
// CPU time process `pid` has used so far, user and system, with its children it has waited for
// (the commands it ran), in ms.
double cpu_ms(int pid);
// The pid in the pidfile at `path`.
int pid_in(const std::string& path);

// "2 cores, AMD EPYC 7B13, kernel 6.1.0-...; OVS 3.1.0 (userspace datapath)".
std::string machine_description();
// "emulated VMs (network namespaces)" or "QEMU 7.2.22 VMs under TCG (qmp)".
std::string vm_description(const std::string& backend);

}  // namespace brfusion::bench
