#pragma once
// What a user asks for with `docker network create -o ... --ipam-opt ...` and `docker run -p`,
// read from libnetwork's option maps. Every function throws PluginError(BadRequest) with a message
// naming the option and what is accepted; unknown -o and --ipam-opt keys are refused.

#include "brfusion/common/guest_protocol.hpp"

#include <nlohmann/json.hpp>

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace brfusion::plugin {

enum class NetworkMode { Brfusion, Hostlo };

struct NetworkOptions {
    std::optional<std::string> host_network;  // -o network=HOSTNET
    NetworkMode mode = NetworkMode::Brfusion; // -o mode=brfusion|hostlo
    std::optional<std::string> group;         // -o group=POD (hostlo only; the pool's group when left out)
    std::optional<int> mtu;                   // -o com.docker.network.driver.mtu=N (68-65535)
    bool internal = false;                    // --internal
    bool ipv6 = false;                        // --ipv6
};

// CreateNetwork's Options (the -o map is under com.docker.network.generic).
NetworkOptions parse_network_options(const nlohmann::json& options);

// RequestPool's Options (--ipam-opt): at most one of them.
struct PoolOptions {
    std::optional<std::string> host_network;  // --ipam-opt network=HOSTNET
    std::optional<std::string> group;         // --ipam-opt group=POD: the Hostlo group's pool (joins it)
};
PoolOptions parse_pool_options(const std::map<std::string, std::string>& options);

// The com.docker.network.portmap of ProgramExternalConnectivity as the shim's port mappings
// (null or absent: none). Refuses SCTP, IPv6 host addresses and host port ranges.
std::vector<guest::PortMapping> parse_port_map(const nlohmann::json& portmap);

}  // namespace brfusion::plugin
