// Published ports (docker run -p) and the firewall table that carries them, with the host's NAT
// and the isolation between networks. A VM publishes only what is its to take: addresses the host
// publishes on, host ports in its range that neither the host nor another endpoint uses.

#include "internal.hpp"

#include <algorithm>

namespace brfusion::shim {

using namespace detail;

namespace {

// Where the shim picks host ports for `host_port` 0, as Docker does (its ephemeral range).
constexpr int kFirstPickedPort = 49153;
constexpr int kLastPickedPort = 65535;

// What the host holds that a publish must leave alone, read before the state lock.
struct HostFacts {
    std::vector<InterfaceAddress> addresses;              // where VMs may publish
    std::set<int> reserved;                               // ip_local_reserved_ports
    std::map<std::string, std::multimap<int, PortUse>> used;  // by protocol: the host's own sockets

    bool publishes_on(Ipv4 address) const {
        return std::any_of(addresses.begin(), addresses.end(), [&](const InterfaceAddress& a) { return a.address == address; });
    }
    std::string address_list() const {
        std::vector<std::string> shown;
        for (const auto& a : addresses) shown.push_back(a.address.str() + " (" + a.interface + ")");
        return join(shown);
    }
    // Who on the host uses the port the mapping would take, or "".
    std::string user_of(const PublishedPort& port) const {
        const auto found = used.find(port.protocol);
        if (found == used.end()) return "";
        const auto [first, last] = found->second.equal_range(port.host_port);
        for (auto use = first; use != last; ++use) {
            const PortUse& socket = use->second;
            const bool taken = !socket.address || (port.host_ip ? *socket.address == *port.host_ip : publishes_on(*socket.address));
            if (taken) return (socket.process.empty() ? std::string("a host process") : socket.process) + " on " + (socket.address ? socket.address->str() : "0.0.0.0");
        }
        return "";
    }
};

// Two mappings clash when they take the same protocol and port on a common host address.
bool clash(const PublishedPort& a, const PublishedPort& b) {
    return a.protocol == b.protocol && a.host_port == b.host_port && (!a.host_ip || !b.host_ip || *a.host_ip == *b.host_ip);
}

}  // namespace

std::vector<PublishedPort> NicManager::publish(const std::string& vm, const std::string& endpoint, std::vector<PublishedPort> ports) {
    HostFacts host;
    {
        std::vector<std::string> interfaces;
        std::set<std::string> gateways;
        {
            std::lock_guard lock(state_mutex_);
            own_record(vm, endpoint);  // refuse another VM's endpoint before looking at the host
            interfaces = config_.publish_interfaces;
            for (const auto& network : config_.networks) gateways.insert(gateway_port(network));
        }
        host.addresses = host_.stack.publish_addresses(interfaces, gateways);
        host.reserved = host_.stack.reserved_ports();
        for (const auto& port : ports)
            if (!host.used.count(port.protocol)) host.used[port.protocol] = host_.stack.used_ports(port.protocol);
    }

    std::optional<BusyEndpoint> busy;
    std::vector<PublishedPort> before;
    {
        std::unique_lock lock(state_mutex_);
        wait_for_upkeep(lock, endpoint);
        NicRecord& record = own_record(vm, endpoint);
        if (record.phase != NicPhase::Attached)
            throw ShimError(ErrorKind::Conflict, "endpoint " + endpoint + " is " + phase_name(record.phase) + "; publish its ports once it is attached");
        if (record.network.is_hostlo())
            throw ShimError(ErrorKind::BadRequest, "endpoint " + endpoint + " is on " + record.network.wire() +
                                                       ", which has no gateway and no NAT: publish ports on the container's other, regular brfusion network");
        const VmConfig& config = configured_vm(vm);
        std::size_t held = 0;
        std::vector<std::pair<PublishedPort, const NicRecord*>> taken;  // by other endpoints
        for (const auto& [other_endpoint, other] : state_.nics) {
            if (other_endpoint == endpoint) continue;
            if (other.vm == vm) held += other.published.size();
            for (const auto& port : other.published) taken.emplace_back(port, &other);
        }
        require_quota(vm, "published_ports", config.quotas.published_ports, held, ports.size());

        const PortRange& range = config.host_ports;
        for (std::size_t i = 0; i < ports.size(); ++i) {
            PublishedPort& port = ports[i];
            if (port.host_ip && !host.publishes_on(*port.host_ip))
                throw ShimError(ErrorKind::NotAllowed, describe(port) + ": " + port.host_ip->str() + " is not an address this host publishes ports on; it publishes on " +
                                                           host.address_list() + ". Leave the address out to publish on all of them");
            if (!port.host_ip && host.addresses.empty())
                throw ShimError(ErrorKind::NotAllowed, describe(port) + ": this host has no address to publish ports on (its admin sets publish_interfaces)");
            // Another endpoint's mapping, or an earlier one of this request, on the same port.
            const auto holder = [&](const PublishedPort& candidate) -> std::optional<ShimError> {
                for (const auto& [used, owner] : taken)
                    if (clash(used, candidate))
                        return ShimError(ErrorKind::Conflict, describe(candidate) + ": host port " + std::to_string(candidate.host_port) + "/" +
                                                                  candidate.protocol + " is already published by endpoint " + owner->endpoint + " of VM " +
                                                                  owner->vm + " (" + describe(used) + ")");
                for (std::size_t j = 0; j < ports.size(); ++j)  // those chosen before, and single ports asked for after
                    if (j != i && ports[j].host_port != 0 && (j < i || ports[j].host_port_end == 0) && clash(ports[j], candidate))
                        return ShimError(ErrorKind::BadRequest, describe(candidate) + ": host port " + std::to_string(candidate.host_port) + "/" +
                                                                    candidate.protocol + " is asked for twice in this request (" + describe(ports[j]) + ")");
                return std::nullopt;
            };
            const auto free = [&](const PublishedPort& candidate) {
                return range.contains(candidate.host_port) && !host.reserved.count(candidate.host_port) && host.user_of(candidate).empty() &&
                       !holder(candidate);
            };
            // A port to pick: any (host_port 0, in Docker's ephemeral range), or one of the range asked for.
            if (port.host_port == 0 || port.host_port_end != 0) {
                const bool any = port.host_port == 0;
                if (!any && (!range.contains(port.host_port) || !range.contains(port.host_port_end)))
                    throw ShimError(ErrorKind::NotAllowed, describe(port) + ": host ports " + std::to_string(port.host_port) + "-" +
                                                               std::to_string(port.host_port_end) + " are not all among the host ports VM " + vm +
                                                               " may publish on (" + range.str() + ", vms[].host_ports)");
                const int first = any ? std::max(kFirstPickedPort, range.first) : port.host_port;
                const int last = any ? std::min(kLastPickedPort, range.last) : port.host_port_end;
                port.host_port_end = 0;  // what is published is one port
                for (port.host_port = first; port.host_port <= last && !free(port); ++port.host_port) {
                }
                if (port.host_port > last)
                    throw ShimError(any ? ErrorKind::Exhausted : ErrorKind::Conflict,
                                    "no free host port in " + std::to_string(first) + "-" + std::to_string(last) + " for " + port.protocol + " (VM " + vm +
                                        "'s range " + range.str() + (any ? ")" : "; the others are in use or reserved on the host, or published)"));
                continue;
            }
            if (!range.contains(port.host_port))
                throw ShimError(ErrorKind::NotAllowed, describe(port) + ": host port " + std::to_string(port.host_port) + " is outside the host ports VM " + vm +
                                                           " may publish on (" + range.str() + ", vms[].host_ports)");
            if (host.reserved.count(port.host_port))
                throw ShimError(ErrorKind::NotAllowed, describe(port) + ": host port " + std::to_string(port.host_port) +
                                                           " is reserved for the host (net.ipv4.ip_local_reserved_ports); publish on another port");
            if (const std::string user = host.user_of(port); !user.empty())
                throw ShimError(ErrorKind::Conflict, describe(port) + ": host port " + std::to_string(port.host_port) + "/" + port.protocol +
                                                         " is in use on the host by " + user + "; publish on another port");
            if (auto clashing = holder(port)) throw *clashing;
        }
        busy.emplace(*this, endpoint);
        before = record.published;
        record.published = ports;
        try {
            save();
        } catch (...) {
            record.published = before;
            throw;
        }
    }
    try {
        apply_firewall();
    } catch (...) {
        {
            std::lock_guard lock(state_mutex_);
            state_.nics.at(endpoint).published = before;  // busy: nothing else removed it
            try {
                save();
            } catch (...) {  // the journal keeps the new ports; reconcile rewrites the table from it at the next start
            }
        }
        try {
            apply_firewall();
        } catch (...) {  // the table keeps the old rules: nft applies all or nothing
        }
        throw;
    }
    return ports;
}

void NicManager::unpublish(const std::string& vm, const std::string& endpoint) {
    std::optional<BusyEndpoint> busy;
    {
        std::unique_lock lock(state_mutex_);
        wait_for_upkeep(lock, endpoint);
        const auto found = state_.nics.find(endpoint);
        if (found == state_.nics.end() || found->second.spare) return;
        NicRecord& record = own_record(vm, endpoint);
        if (record.published.empty()) return;
        busy.emplace(*this, endpoint);
        record.published.clear();
        save();
    }
    apply_firewall();
}

FirewallRules NicManager::rules() const {
    FirewallRules rules;
    rules.uplink = config_.uplink;
    for (const auto& network : config_.networks) {
        FirewallRules::Network entry{gateway_port(network), network.subnet, network.nat, {}};
        for (const auto& peer : network.forward_to) entry.forward_to.push_back(gateway_port(*config_.network(peer)));
        rules.networks.push_back(std::move(entry));
    }
    for (const auto& [endpoint, record] : state_.nics)
        for (const auto& port : record.published) rules.published.push_back({port, record.ip});
    return rules;
}

FirewallRules NicManager::firewall_rules() const {
    std::vector<std::string> interfaces;
    std::set<std::string> gateways;
    FirewallRules current;
    {
        std::lock_guard lock(state_mutex_);
        current = rules();
        interfaces = config_.publish_interfaces;
        for (const auto& network : config_.networks) gateways.insert(gateway_port(network));
    }
    std::set<Ipv4> addresses;  // an address may be on two interfaces
    for (const auto& address : host_.stack.publish_addresses(interfaces, gateways)) addresses.insert(address.address);
    current.publish_addresses.assign(addresses.begin(), addresses.end());
    return current;
}

void NicManager::apply_firewall() {
    std::lock_guard serial(firewall_mutex_);  // each write renders the state as it is when it runs: the last write is the newest
    const FirewallRules rules = firewall_rules();
    applied_firewall_.clear();  // unknown until the write succeeds: the upkeep writes again
    host_.firewall.apply(rules);
    applied_firewall_ = render_nftables(rules);
}

}  // namespace brfusion::shim
