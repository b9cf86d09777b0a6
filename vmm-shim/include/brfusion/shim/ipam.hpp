#pragma once
// Host IPAM: one address pool per host network, shared by every VM, so that no address is ever
// handed out twice across VMs. Pure and serializable; the caller persists it (the journal).

#include "brfusion/common/ipv4.hpp"

#include <nlohmann/json.hpp>

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace brfusion::shim {

struct Lease {
    Ipv4 address;
    std::string owner;  // who holds it, e.g. "vm1/ep-3f2a"; shown in errors
};

class Ipam {
public:
    // Registers a pool. The network and broadcast addresses and the gateway are never handed out.
    // Re-adding a pool with the same subnet and gateway keeps its leases; with others, Conflict.
    void add_pool(const std::string& network, Ipv4Prefix subnet, Ipv4 gateway);
    // Removes a pool; Conflict (listing the holders) while it has leases.
    void remove_pool(const std::string& network);
    bool has_pool(const std::string& network) const { return pools_.count(network) != 0; }
    std::vector<std::string> pools() const;

    // Leases an address to `owner`: `requested` if given (BadRequest if outside the subnet or
    // reserved, Conflict naming the holder if taken), else the next free one after the last
    // handed out (so a released address is not reused at once). Exhausted when the pool is full.
    Ipv4 allocate(const std::string& network, const std::string& owner, std::optional<Ipv4> requested = std::nullopt);
    // Returns the address to the pool. Idempotent.
    void release(const std::string& network, Ipv4 address);

    std::vector<Lease> leases(const std::string& network) const;
    std::optional<Lease> lease(const std::string& network, Ipv4 address) const;

    nlohmann::json to_json() const;
    static Ipam from_json(const nlohmann::json& state);

private:
    struct Pool {
        Ipv4Prefix subnet;
        Ipv4 gateway;
        std::map<std::uint32_t, std::string> leases;  // address -> owner
        std::uint32_t cursor = 0;                     // last address handed out
    };
    Pool& pool(const std::string& network);
    const Pool& pool(const std::string& network) const;

    std::map<std::string, Pool> pools_;
};

}  // namespace brfusion::shim
