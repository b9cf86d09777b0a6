#pragma once
// Host IPAM: one address pool per host network, shared by every VM, so that no address is ever
// handed out twice across VMs. Pure and serializable; the caller persists it (the journal).

#include "brfusion/common/ipv4.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace brfusion::shim {

// Who holds an address: a VM's NIC, or the VM itself, which reserved it before its NIC existed
// (Docker asks its IPAM driver first, then creates the endpoint).
struct LeaseOwner {
    std::string vm;
    std::optional<std::string> endpoint;  // the NIC's; nullopt for a reservation
    std::int64_t reserved_at = 0;         // a reservation's time (seconds since the epoch)

    static LeaseOwner nic(std::string vm, std::string endpoint) { return {std::move(vm), std::move(endpoint), 0}; }
    static LeaseOwner reservation(std::string vm, std::int64_t at) { return {std::move(vm), std::nullopt, at}; }
    bool is_reservation() const { return !endpoint; }
    // "vm1/3f2a9c0b1d4e", or "vm1/reserved": for messages and the admin API.
    std::string str() const { return vm + "/" + endpoint.value_or("reserved"); }
    bool operator==(const LeaseOwner&) const = default;
};

struct Lease {
    Ipv4 address;
    LeaseOwner owner;
};

// A lease's owner as the journal keeps it, and back (Ipam::from_json reads it too).
nlohmann::json to_json(const LeaseOwner& owner);
LeaseOwner lease_owner_from_json(const nlohmann::json& entry);

class Ipam {
public:
    struct Pool {
        Ipv4Prefix subnet;
        Ipv4 gateway;
        std::map<std::uint32_t, LeaseOwner> leases;   // address -> owner
        std::uint32_t cursor = 0;                     // last address handed out
    };

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
    Ipv4 allocate(const std::string& network, const LeaseOwner& owner, std::optional<Ipv4> requested = std::nullopt);
    // Returns the address to the pool. Idempotent.
    void release(const std::string& network, Ipv4 address);

    std::vector<Lease> leases(const std::string& network) const;
    std::optional<Lease> lease(const std::string& network, Ipv4 address) const;

    // Every reservation (lease of a VM, not of a NIC), in every pool.
    std::vector<std::pair<std::string, Lease>> reservations() const;

    // The journal's view: every pool by network, and an Ipam made of them again.
    const std::map<std::string, Pool>& pool_table() const { return pools_; }
    static Ipam from_pool_table(std::map<std::string, Pool> pools);

    nlohmann::json to_json() const;
    // Throws ShimError(BadRequest) naming what is malformed. Reads leases written as "VM/ENDPOINT"
    // and "VM/reserved" by earlier versions too.
    static Ipam from_json(const nlohmann::json& state);

private:
    Pool& pool(const std::string& network);
    const Pool& pool(const std::string& network) const;

    std::map<std::string, Pool> pools_;
};

}  // namespace brfusion::shim
