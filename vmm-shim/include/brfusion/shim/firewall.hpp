#pragma once
// HostFirewall: the host's NAT and forwarding for brfusion networks, all in one nftables table,
// `ip brfusion`, that the shim owns (nobody else should edit it; the shim rewrites it whole).
//
// What the table holds (see render_nftables):
// - masquerade: each NAT network's subnet leaving through the uplink gets the host's address;
// - published ports: DNAT of HOST_IP:PORT to CONTAINER_IP:PORT (`docker run -p`), for traffic
//   arriving from outside and from the host itself, with hairpin masquerade so that containers on
//   the same network reach each other through the published port too. HOST_IP is one of the
//   addresses the host publishes on (ShimConfig::publish_interfaces), or each of them: never an
//   address that is not the host's, loopback or a gateway;
// - isolation: new connections between host networks are dropped unless the source network lists
//   the destination in forward_to; published ports are reachable from every network (as with Docker).

#include "brfusion/common/guest_protocol.hpp"
#include "brfusion/common/ipv4.hpp"

#include <optional>
#include <string>
#include <vector>

namespace brfusion::shim {

// A port published by a container; the guest protocol's type, checked when parsed.
using PublishedPort = guest::PortMapping;

// "tcp 0.0.0.0:8080 -> 80", for messages.
std::string describe(const PublishedPort& port);

// Everything the table must hold.
struct FirewallRules {
    struct Network {
        std::string gateway_port;               // the network's gateway device on the host
        Ipv4Prefix subnet;
        bool nat = true;
        std::vector<std::string> forward_to;    // gateway ports of the networks it may reach
    };
    struct Forward {
        PublishedPort port;
        Ipv4 container_ip;
    };
    std::string uplink;  // "" = masquerade whatever leaves by a device that is not a brfusion gateway
    std::vector<Network> networks;
    std::vector<Forward> published;
    // The host's addresses ports are published on: a port without host_ip on each, one with a
    // host_ip only if it is among them (an address the host gave up publishes nothing).
    std::vector<Ipv4> publish_addresses;
};

// The nft script that replaces the table with exactly `rules` in one transaction.
std::string render_nftables(const FirewallRules& rules);

class HostFirewall {
public:
    virtual ~HostFirewall() = default;
    // Makes the table hold exactly `rules`, atomically (if it fails, the previous rules stay), and
    // turns on IPv4 forwarding. Blocks; throws ShimError(Backend) with nft's explanation.
    virtual void apply(const FirewallRules& rules) = 0;
};

// The real one: `nft -f -` in the host's network namespace.
class NftHostFirewall final : public HostFirewall {
public:
    explicit NftHostFirewall(std::string host_netns) : host_netns_(std::move(host_netns)) {}
    void apply(const FirewallRules& rules) override;
    // The table as `nft list table ip brfusion` shows it; nullopt if it does not exist.
    std::optional<std::string> listing() const;

private:
    std::string host_netns_;
};

}  // namespace brfusion::shim
