#pragma once
// OvsClient: brfusion's way to program Open vSwitch. It speaks OVSDB (RFC 7047) to ovsdb-server
// on a unix socket, keeps a replica of the tables it monitors (monitor_cond / update2), and offers
// typed, idempotent operations that wait until ovs-vswitchd has applied them.
//
// Threading: every public member is thread-safe. Operations block the calling thread (never more
// than ClientOptions::timeout); the client's own I/O runs on a private thread.
// Connection: the constructor never blocks; the client connects in the background, reconnects with
// backoff whenever ovsdb-server goes away, and then resyncs its replica from scratch.

#include "brfusion/ovs/error.hpp"
#include "brfusion/ovs/replica.hpp"
#include "brfusion/ovs/transaction.hpp"

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace brfusion::ovs {

struct ClientOptions {
    std::string socket_path = "/run/openvswitch/db.sock";  // ovsdb-server's unix socket
    std::string database = "Open_vSwitch";
    // Upper bound for one operation: reaching ovsdb-server, committing, and ovs-vswitchd applying.
    std::chrono::milliseconds timeout{5000};
    // false: like `ovs-vsctl --no-wait`, operations return once ovsdb-server has committed them,
    // without waiting for ovs-vswitchd, so ensure_port cannot report ofport or Interface.error.
    bool wait_for_vswitchd = true;
    std::chrono::milliseconds reconnect_first{50};
    std::chrono::milliseconds reconnect_max{2000};
};

// A port with the bridge that holds it and its interfaces.
struct PortInfo {
    PortRow port;
    std::string bridge;
    std::vector<InterfaceRow> interfaces;
};

// Everything carrying an external_ids key with a given prefix.
struct OwnedObjects {
    std::vector<BridgeRow> bridges;
    std::vector<PortInfo> ports;
    std::vector<InterfaceRow> interfaces;
};

class OvsClient {
public:
    explicit OvsClient(ClientOptions options);
    ~OvsClient();
    OvsClient(const OvsClient&) = delete;
    OvsClient& operator=(const OvsClient&) = delete;

    // Blocks until connected and the replica is synced. Throws Unreachable, naming the socket and
    // the last connection error, after options.timeout.
    void wait_ready() const;
    bool ready() const;

    // --- Typed operations. Each is idempotent: "already as asked" is success. Errors (OvsError):
    // Conflict (exists with other settings; the message lists each difference), NotFound (a
    // bridge/row it needs is missing), Unreachable, VswitchdTimeout (ovs-vswitchd did not apply
    // the change in time; the change stays in the database), Vswitchd (ovs-vswitchd reported
    // Interface.error; a port this call created is removed again), Rejected (ovsdb-server refused).
    // A ConnectionLost while in flight is retried once after resync, which is safe because every
    // operation is idempotent.

    BridgeRow ensure_bridge(const BridgeSpec& spec);
    void remove_bridge(const std::string& name);
    // Returns the port's interface as ovs-vswitchd left it (ofport set); with
    // wait_for_vswitchd=false, as committed (ofport and error not known yet).
    InterfaceRow ensure_port(const PortSpec& spec);
    // Several ports in one transaction, with the same rules as ensure_port for each: ovs-vswitchd
    // reconfigures once for all of them (in its userspace datapath that costs about as much for
    // ten ports as for one). All or nothing: on any error, none of the ports this call created
    // stays.
    void ensure_ports(const std::vector<PortSpec>& specs);
    // Both ends of a patch pair; the same rules as ensure_port, for two ports at once.
    void ensure_patch_pair(const PatchPairSpec& spec);
    void remove_port(const std::string& name);
    void set_external_ids(Table table, const std::string& name, const StringMap& external_ids);
    void clear_external_ids(Table table, const std::string& name, const std::vector<std::string>& keys);

    // --- Queries, answered from the replica without a round trip.
    std::optional<BridgeRow> bridge(const std::string& name) const;
    std::optional<PortInfo> port(const std::string& name) const;
    std::optional<InterfaceRow> interface(const std::string& name) const;
    // Ports / interfaces whose external_ids contain every pair of `match`.
    std::vector<PortInfo> find_ports(const StringMap& match) const;
    std::vector<InterfaceRow> find_interfaces(const StringMap& match) const;
    // Bridges, ports and interfaces with any external_ids key starting with `prefix`.
    OwnedObjects list_owned(const std::string& prefix = "brfusion-") const;
    // Runs `reader` with the replica locked (do not call back into the client from it).
    void read(const std::function<void(const Replica&)>& reader) const;
    // Blocks until `predicate(replica)` holds or `timeout` passes; returns whether it held.
    bool wait_until(const std::function<bool(const Replica&)>& predicate, std::chrono::milliseconds timeout) const;

private:
    // The first port's interface if ovs-vswitchd set up every named port; otherwise throws
    // Vswitchd (after removing the ports of `created`, those this call made).
    InterfaceRow require_working_ports(const std::vector<std::string>& names, const std::vector<std::string>& created);
    // Of `names`, those without a port now.
    std::vector<std::string> absent_ports(const std::vector<std::string>& names) const;

    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace brfusion::ovs
