#include "brfusion/shim/firewall.hpp"

#include "host_tools.hpp"

#include <algorithm>
#include <sstream>

namespace brfusion::shim {

std::string describe(const PublishedPort& port) {
    return port.protocol + " " + (port.host_ip ? port.host_ip->str() : "0.0.0.0") + ":" + std::to_string(port.host_port) + " -> " +
           std::to_string(port.container_port);
}

namespace {

std::string quoted(const std::string& name) { return "\"" + name + "\""; }

std::string set_of(const std::vector<std::string>& names) {
    std::string set;
    for (const auto& name : names) set += (set.empty() ? "" : ", ") + quoted(name);
    return "{ " + set + " }";
}

// The DNAT of one published port, or "" when the host has none of the addresses it asks for.
std::string dnat_rule(const FirewallRules::Forward& forward, const std::vector<Ipv4>& publish_addresses) {
    const PublishedPort& port = forward.port;
    std::string addresses;
    for (const auto& address : publish_addresses)
        if (!port.host_ip || *port.host_ip == address) addresses += (addresses.empty() ? "" : ", ") + address.str();
    if (addresses.empty()) return "";
    return "ip daddr { " + addresses + " } " + port.protocol + " dport " + std::to_string(port.host_port) + " dnat to " + forward.container_ip.str() + ":" +
           std::to_string(port.container_port);
}

}  // namespace

std::string render_nftables(const FirewallRules& rules) {
    std::ostringstream out;
    // Create-then-delete makes the delete valid whether or not the table exists; nft applies the
    // whole script as one transaction.
    out << "table ip brfusion\ndelete table ip brfusion\ntable ip brfusion {\n";
    out << "  chain prerouting {\n    type nat hook prerouting priority dstnat; policy accept;\n";
    std::string dnats;
    for (const auto& forward : rules.published)
        if (const std::string rule = dnat_rule(forward, rules.publish_addresses); !rule.empty()) dnats += "    " + rule + "\n";
    out << dnats;
    out << "  }\n  chain output {\n    type nat hook output priority -100; policy accept;\n";
    out << dnats;
    out << "  }\n  chain postrouting {\n    type nat hook postrouting priority srcnat; policy accept;\n";
    std::vector<std::string> gateways;
    for (const auto& network : rules.networks) gateways.push_back(network.gateway_port);
    for (const auto& network : rules.networks) {
        const std::string subnet = network.subnet.str();
        // Hairpin: a container reaching a published port of its own network must see the reply
        // come back through the host, not straight from the peer.
        out << "    ip saddr " << subnet << " ip daddr " << subnet << " ct status dnat masquerade\n";
        if (!network.nat) continue;
        out << "    ip saddr " << subnet << " oifname " << (rules.uplink.empty() ? "!= " + set_of(gateways) : quoted(rules.uplink))
            << " masquerade\n";
    }
    out << "  }\n  chain forward {\n    type filter hook forward priority filter; policy accept;\n";
    out << "    ct state established,related accept\n    ct status dnat accept\n";
    for (const auto& network : rules.networks) {
        std::vector<std::string> denied;  // the other networks it may not reach
        for (const auto& other : gateways)
            if (other != network.gateway_port && std::find(network.forward_to.begin(), network.forward_to.end(), other) == network.forward_to.end())
                denied.push_back(other);
        if (!denied.empty()) out << "    iifname " << quoted(network.gateway_port) << " oifname " << set_of(denied) << " drop\n";
    }
    out << "  }\n}\n";
    return out.str();
}

void NftHostFirewall::apply(const FirewallRules& rules) {
    tools::run(host_netns_, {"nft", "-f", "-"}, render_nftables(rules));
    tools::run(host_netns_, {"sysctl", "-q", "-w", "net.ipv4.ip_forward=1"});
}

std::optional<std::string> NftHostFirewall::listing() const {
    try {
        return tools::run(host_netns_, {"nft", "list", "table", "ip", "brfusion"});
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

}  // namespace brfusion::shim
