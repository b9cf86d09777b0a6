#pragma once
// OVSDB transactions (RFC 7047 §4.1.3) and the plans of brfusion's typed OVS operations.
// Pure: a plan reads the replica and returns the transaction to send; the client sends it.

#include "brfusion/ovs/replica.hpp"

#include <optional>
#include <string>
#include <vector>

namespace brfusion::ovs {

// A list of operations for one "transact" request. Each operation may carry the sentence that
// explains its failure to a user (a failed "wait" otherwise only says "timed out").
class Transaction {
public:
    void add(json operation, std::string meaning_if_it_fails = {});
    // Increments Open_vSwitch.next_cfg and reads it back in the same transaction, so that the
    // caller can wait for ovs-vswitchd to report cur_cfg >= that value.
    void bump_next_cfg();

    json params(const std::string& database) const;
    bool empty() const { return operations_.empty(); }
    const std::vector<json>& operations() const { return operations_; }

    struct Outcome {
        json results;                          // one result per operation
        std::optional<std::int64_t> next_cfg;  // set when bump_next_cfg() was used
    };
    // Interprets ovsdb-server's "transact" result. Throws OvsError naming the failed operation
    // (with its meaning, when one was given) if any operation or the commit failed.
    Outcome interpret(const json& result) const;

private:
    std::vector<json> operations_;
    std::vector<std::string> meanings_;
    std::optional<std::size_t> next_cfg_select_;
};

enum class PortType { System, Tap, Internal, Patch };
const char* interface_type(PortType type);  // the Interface.type value: "", "tap", "internal", "patch"

struct BridgeSpec {
    std::string name;
    std::string datapath_type = "netdev";  // "netdev" = userspace datapath; "system" needs the kernel module
    StringMap external_ids;
};

struct PortSpec {
    std::string bridge;
    std::string name;  // also the name of its single interface
    PortType type = PortType::System;
    std::optional<int> tag;  // VLAN tag (access port) 0-4095; none = trunk of all VLANs
    StringMap external_ids;  // set on both the Port and the Interface
    std::string peer;        // PortType::Patch only: the peer patch port
};

// Two patch ports, each the other's peer. Created together: a patch port alone is an error in
// ovs-vswitchd ("No usable peer").
struct PatchPairSpec {
    std::string bridge_a, port_a;
    std::string bridge_b, port_b;
    StringMap external_ids;  // on both ports and both interfaces
};

enum class Table { Bridge, Port, Interface };
const char* table_name(Table table);

// Each plan returns nullopt when the database already is as asked (nothing to send), and throws
// OvsError: Conflict naming every difference when an object of that name exists with other
// settings; NotFound when an object it needs is missing; Unreachable-free (they never do I/O).

// Bridge `spec.name` with its local internal port (as `ovs-vsctl add-br` makes it).
std::optional<Transaction> plan_ensure_bridge(const Replica& replica, const BridgeSpec& spec);
// Removes the bridge; its ports and interfaces go with it. Missing bridge: nullopt.
std::optional<Transaction> plan_remove_bridge(const Replica& replica, const std::string& name);
// Port with one interface (not Patch: see plan_ensure_patch_pair). The transaction waits on the bridge, so that a bridge deleted
// meanwhile fails the transaction instead of leaving an orphaned port to be garbage-collected.
std::optional<Transaction> plan_ensure_port(const Replica& replica, const PortSpec& spec);
// Every port of `specs` in one transaction (the same rules as plan_ensure_port for each);
// nullopt when all exist as asked.
std::optional<Transaction> plan_ensure_ports(const Replica& replica, const std::vector<PortSpec>& specs);
// Both ends of a patch pair in one transaction (nullopt when both exist as asked).
std::optional<Transaction> plan_ensure_patch_pair(const Replica& replica, const PatchPairSpec& spec);
// Removes the port from whichever bridge holds it. Missing port: nullopt.
std::optional<Transaction> plan_remove_port(const Replica& replica, const std::string& name);
// Sets (adds or overwrites) external_ids keys on a row; NotFound if the row is missing.
std::optional<Transaction> plan_set_external_ids(const Replica& replica, Table table, const std::string& name,
                                                 const StringMap& external_ids);
// Removes external_ids keys from a row; NotFound if the row is missing.
std::optional<Transaction> plan_clear_external_ids(const Replica& replica, Table table, const std::string& name,
                                                   const std::vector<std::string>& keys);

}  // namespace brfusion::ovs
