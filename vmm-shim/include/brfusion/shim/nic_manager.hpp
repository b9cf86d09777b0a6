#pragma once
// NicManager: the life cycle of every container NIC and host network gateway. The core of
// brfusion-shim; the daemon's admin API and guest channels call it.
//
// attach: lease an address, create the host device, add it to OVS (the network's VLAN tag,
// brfusion-* labels), plug it into the VM. detach: the reverse. The journal records the intent
// before each change to the outside world; a failure at any step of attach undoes the steps
// before it (nothing leaks); a failed detach stays recorded as "detaching" and is finished by the
// next detach or by reconcile. reconcile (on start) compares the journal with OVS and the
// backends: unfinished attaches are undone, unfinished detaches finished, missing pieces of
// attached NICs re-created, and ports labelled by brfusion that the journal does not know removed.
//
// Thread-safe: operations are serialized (one at a time).

#include "brfusion/shim/backend.hpp"
#include "brfusion/shim/config.hpp"
#include "brfusion/shim/journal.hpp"
#include "brfusion/shim/host_switch.hpp"

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace brfusion::shim {

// What the guest needs to configure the NIC.
struct AttachedNic {
    std::string endpoint;
    std::string mac;
    std::string guest_if;
    Ipv4 ip;
    int prefix_length = 0;
    Ipv4 gateway;
    int mtu = 1500;
};

struct ReconcileReport {
    std::vector<std::string> undone;    // unfinished attaches rolled back
    std::vector<std::string> finished;  // unfinished detaches completed
    std::vector<std::string> repaired;  // attached NICs with a missing piece re-created
    std::vector<std::string> orphans;   // labelled OVS ports unknown to the journal, removed
};

class NicManager {
public:
    using BackendFactory = std::function<std::unique_ptr<VmmBackend>(const VmConfig&)>;

    NicManager(ShimConfig config, Journal& journal, HostSwitch& host, BackendFactory make_backend);

    // Loads the journal, sets up the bridge and every network's gateway, and reconciles.
    ReconcileReport start();

    // Errors: NotFound (unknown VM or network), NotAllowed (network not allowed for the VM),
    // BadRequest/Conflict/Exhausted (the requested address), Backend (a step failed; undone).
    AttachedNic attach(const std::string& vm, const std::string& network, std::optional<Ipv4> requested_ip = std::nullopt);
    // Idempotent: an endpoint that does not exist is success. NotAllowed if it is another VM's.
    void detach(const std::string& vm, const std::string& endpoint);

    std::vector<NicRecord> nics(const std::string& vm = "") const;
    // The host network `network` if VM `vm` may use it; NotFound / NotAllowed (listing what it
    // may use) otherwise.
    const HostNetwork& allowed_network(const std::string& vm, const std::string& network) const;
    const ShimConfig& config() const { return config_; }
    std::vector<Lease> leases(const std::string& network) const;

    // The gateway port of a host network (an OVS internal port; <= 15 characters).
    static std::string gateway_port(const HostNetwork& network);

private:
    void ensure_network(const HostNetwork& network);
    NicDevice device_of(const NicRecord& record) const;
    VmmBackend& backend(const std::string& vm);
    // Removes every piece of the NIC that may exist, then its lease and record. Throws on the
    // first step that fails, leaving the record as it was for a later retry.
    void tear_down(NicRecord record);
    void add_port(const NicRecord& record, const HostNetwork& network);
    ReconcileReport reconcile();

    ShimConfig config_;
    Journal& journal_;
    HostSwitch& host_;
    BackendFactory make_backend_;
    std::map<std::string, std::unique_ptr<VmmBackend>> backends_;  // by VM
    ShimState state_;
    mutable std::mutex mutex_;
};

}  // namespace brfusion::shim
