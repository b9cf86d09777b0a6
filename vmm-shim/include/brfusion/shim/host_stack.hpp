#pragma once
// HostStack: what the host's own IP stack holds, read where publishing a port needs it: the
// addresses VMs may publish on, and the ports host processes use (a published port must never
// take one). ProcHostStack is the real one (the host netns's /proc and `ip`); unit tests use a
// fake.
//
// Contract: reads only, blocks briefly (a few files and at most one `ip` run), thread-safe;
// throws ShimError(Backend) saying what could not be read.

#include "brfusion/common/ipv4.hpp"

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace brfusion::shim {

struct InterfaceAddress {
    std::string interface;
    Ipv4 address;
    bool operator==(const InterfaceAddress&) const = default;
};

// A socket of a host process bound to a port: on one address, or on all (nullopt).
struct PortUse {
    std::optional<Ipv4> address;
    std::string process;  // "sshd (pid 812)", or "" when no process could be found for it
};

class HostStack {
public:
    virtual ~HostStack() = default;
    // The IPv4 addresses VMs may publish on: those of `interfaces`, or, when `interfaces` is
    // empty, of every interface but loopback and those named in `excluded` (brfusion's own).
    virtual std::vector<InterfaceAddress> publish_addresses(const std::vector<std::string>& interfaces, const std::set<std::string>& excluded) = 0;
    // The host ports that host processes use for `protocol` ("tcp": listening sockets; "udp":
    // bound sockets), with who uses them, IPv4 and IPv6 (a wildcard IPv6 socket takes IPv4 too).
    virtual std::multimap<int, PortUse> used_ports(const std::string& protocol) = 0;
    // net.ipv4.ip_local_reserved_ports: ports the host's admin keeps for the host.
    virtual std::set<int> reserved_ports() = 0;
};

class ProcHostStack final : public HostStack {
public:
    explicit ProcHostStack(std::string host_netns) : host_netns_(std::move(host_netns)) {}
    std::vector<InterfaceAddress> publish_addresses(const std::vector<std::string>& interfaces, const std::set<std::string>& excluded) override;
    std::multimap<int, PortUse> used_ports(const std::string& protocol) override;
    std::set<int> reserved_ports() override;

private:
    std::string host_netns_;
};

// Parsers of the kernel's texts, pure (for tests). A /proc/net/{tcp,udp}[6] table: port, address
// (nullopt = any) and socket inode of each socket that `listening_only` keeps (TCP state 0A).
struct ProcSocket {
    int port = 0;
    std::optional<Ipv4> address;
    unsigned long inode = 0;
};
std::vector<ProcSocket> parse_proc_net(const std::string& table, bool ipv6, bool listening_only);
// "8080,9000-9002" -> {8080, 9000, 9001, 9002}
std::set<int> parse_port_list(const std::string& text);

}  // namespace brfusion::shim
