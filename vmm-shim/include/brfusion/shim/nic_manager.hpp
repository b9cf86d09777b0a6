#pragma once
// NicManager: the life cycle of every container NIC, its published ports, and the host networks
// and VMs it serves. The core of brfusion-shim; the daemon's admin API and guest channels call it.
//
// attach: lease an address, create the host device, add it to OVS (the network's VLAN tag,
// brfusion-* labels), secure the port (its own MAC and address only), plug it into the VM.
// detach: the reverse, after withdrawing its published ports. The journal records the intent
// before each change to the outside world; a failure at any step of attach undoes the steps
// before it (nothing leaks); a failed detach stays recorded as "detaching" and is finished by the
// next detach or by reconcile. reconcile (on start) compares the journal with OVS, the port
// security rules and the backends: unfinished attaches are undone, unfinished detaches finished,
// missing pieces of attached NICs re-created, ports and rules brfusion made that the journal does
// not know removed, and the firewall table rewritten from the journal.
//
// Host networks and VMs come from the config file and, at run time, from add_network / add_vm
// (persisted in the journal). Those from the file can only be changed in the file.
//
// Hostlo groups (one pod's localhost segment across VMs) are joined and left by VMs; a member's
// NIC on group G is attached like any NIC, on network "hostlo:G" (hostlo_network), except that
// its port joins the group's segment (hostlo::Segment) instead of a VLAN of the integration
// bridge, it has no port security rules (the segment holds one pod's members only), and it
// publishes no ports (a group has no gateway and no NAT).
//
// Thread-safe: operations are serialized (one at a time).

#include "brfusion/common/guest_protocol.hpp"
#include "brfusion/hostlo/segment.hpp"
#include "brfusion/shim/backend.hpp"
#include "brfusion/shim/config.hpp"
#include "brfusion/shim/firewall.hpp"
#include "brfusion/shim/journal.hpp"
#include "brfusion/shim/host_switch.hpp"

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
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
    std::string pci;  // where the guest finds it in a real VM ("" for netns)
};

struct ReconcileReport {
    std::vector<std::string> undone;    // unfinished attaches rolled back
    std::vector<std::string> finished;  // unfinished detaches completed
    std::vector<std::string> repaired;  // attached NICs with a missing piece re-created
    std::vector<std::string> orphans;   // labelled OVS ports, and NICs in VMs, unknown to the journal, removed
    int stale_port_rules = 0;           // ports whose security rules outlived them, cleaned
    // What could not be reconciled now, with why (a VM that is not running, say): left as it is,
    // for the next detach or start. The other NICs and VMs are reconciled regardless.
    std::vector<std::string> deferred;
};

class NicManager {
public:
    using BackendFactory = std::function<std::unique_ptr<VmmBackend>(const VmConfig&)>;

    NicManager(ShimConfig config, Journal& journal, HostSwitch& host, HostFirewall& firewall, hostlo::Segment& hostlo, BackendFactory make_backend);

    // Loads the journal (with the networks and VMs added at run time; BadRequest if one has the
    // name of one in the config file), sets up the bridge, every network's gateway and every
    // Hostlo group's segment, reconciles (members that are no longer configured leave their
    // groups), and writes the firewall table.
    ReconcileReport start();

    // Claims a spare NIC of the VM's warm pool for the network when there is one (it only gets
    // its address, port security and label: no hot-plug), else makes and plugs a new NIC.
    // Errors: NotFound (unknown VM or network), NotAllowed (network not allowed for the VM; a
    // Hostlo group it is not a member of), BadRequest/Conflict/Exhausted (the requested address),
    // Conflict (the VM has its NIC on that Hostlo group already), Backend (a step failed; undone).
    AttachedNic attach(const std::string& vm, const std::string& network, std::optional<Ipv4> requested_ip = std::nullopt);
    // Idempotent: an endpoint that does not exist is success. NotAllowed if it is another VM's.
    void detach(const std::string& vm, const std::string& endpoint);

    // One step towards the configured warm pools (VmConfig::warm_pool): removes one spare too
    // many (its pool shrank) or makes one missing spare. Returns false when every pool is as
    // configured. Throws what failed (the spare being made is undone). WarmPool calls it in the
    // background; one step at a time, so attaches get the lock between steps.
    bool balance_warm_pool();
    // `listener` is called (under the manager's lock: keep it short) each time an attach claims
    // a spare; nullptr for none.
    void on_spare_claimed(std::function<void()> listener);

    // The endpoint's published ports become exactly `ports` (host_port 0: the lowest free port
    // of 49153-65535); returns them as published. NotFound (no such endpoint), NotAllowed
    // (another VM's), BadRequest (the same host port twice), Conflict (naming who holds a host
    // port), Backend (the firewall refused; the previous ports stay).
    std::vector<PublishedPort> publish(const std::string& vm, const std::string& endpoint, std::vector<PublishedPort> ports);
    // No published ports. Idempotent like detach.
    void unpublish(const std::string& vm, const std::string& endpoint);

    // An address of `network` reserved for `vm` before its NIC exists (Docker asks IPAM first,
    // then creates the endpoint): `requested` or the next free one. attach with that address
    // takes the reservation over. Errors as attach's for the network and the address.
    Ipv4 reserve_address(const std::string& vm, const std::string& network, std::optional<Ipv4> requested);
    // Gives back `vm`'s reservation of `address`; anything else (free, a NIC's, another VM's) is
    // left alone. Idempotent.
    void release_address(const std::string& vm, const std::string& network, Ipv4 address);

    // --- Hostlo. VM `vm` joins group `group` and gets the group's pool as the VM sees it: network
    // hostlo_network(group), the group's subnet, its MTU, and as gateway the first address, held
    // back and answered by nobody (Docker wants one; the plugin disables the gateway). The first
    // member creates the group: its subnet (`subnet`, or the next free block of the Hostlo range)
    // and its segment. Joining again changes nothing.
    // Errors: NotFound (unknown VM), NotAllowed (the VM's hostlo_groups do not allow the group),
    // BadRequest/Conflict/Exhausted (name or subnet), Backend (the segment failed; undone).
    HostNetwork join_hostlo(const std::string& vm, const std::string& group, std::optional<Ipv4Prefix> subnet);
    // VM `vm` leaves group `group`, giving back its address reservations there; the last member's
    // leave removes the group's segment and pool. Idempotent. Conflict while the VM has its NIC on
    // the group; Backend if the segment cannot be removed (the VM stays a member: retry).
    void leave_hostlo(const std::string& vm, const std::string& group);
    std::vector<hostlo::Group> hostlo_groups() const;
    // Where an admin finds the group's segment (with the ovs backend, its bridge).
    std::string hostlo_segment(const std::string& group) const { return segment_.segment_name(group); }
    static std::string hostlo_network(const std::string& group) { return guest::kHostloNetworkPrefix + group; }

    // Run-time changes, persisted. add_*: Conflict if the name (or a network's tag) is taken,
    // NotFound if a network it names does not exist, BadRequest if invalid. remove_*: NotFound,
    // NotAllowed for those from the config file; remove_vm detaches the VM's NICs first (its
    // addresses and reservations go back to the pools); remove_network refuses (Conflict) while a NIC or a VM uses it.
    void add_network(HostNetwork network);
    void remove_network(const std::string& name);
    void add_vm(VmConfig vm);
    void remove_vm(const std::string& name);
    // Whether a network / VM comes from the config file (else it was added at run time).
    bool from_config_file(const std::string& name) const;

    // Every NIC record (of `vm`, or of all VMs), warm-pool spares included.
    std::vector<NicRecord> nics(const std::string& vm = "") const;
    // The host network `network` if VM `vm` may use it; NotFound / NotAllowed (listing what it
    // may use) otherwise.
    HostNetwork allowed_network(const std::string& vm, const std::string& network) const;
    // Every host network VM `vm` may use, in its config's order, then the pools of the Hostlo
    // groups it is a member of; NotFound for an unknown VM.
    std::vector<HostNetwork> allowed_networks(const std::string& vm) const;
    // The networks and VMs served now: the config file's and those added at run time.
    ShimConfig config() const;
    std::vector<Lease> leases(const std::string& network) const;
    // What the firewall table should hold now (doctor compares it with the real one).
    FirewallRules firewall_rules() const;

    // The gateway port of a host network (an OVS internal port; <= 15 characters).
    static std::string gateway_port(const HostNetwork& network);

private:
    HostNetwork allowed(const std::string& vm, const std::string& network) const;
    // The host network or Hostlo group behind `network`, if it exists.
    std::optional<HostNetwork> network_of(const std::string& network) const;
    HostNetwork group_network(const hostlo::Group& group) const;
    // Removes the group's segment, then its pool with any reservations left in it: for the last
    // member's leave (or a last member that is gone). If the segment cannot be removed it throws
    // with nothing changed.
    void remove_hostlo_group(const std::string& group);
    void remove_port(const NicRecord& record);
    FirewallRules rules() const;
    NicRecord& own_record(const std::string& vm, const std::string& endpoint);
    void save_and_apply_firewall();
    void reclaim_reservations();
    void ensure_network(const HostNetwork& network);
    NicDevice device_of(const NicRecord& record) const;
    VmmBackend& backend(const std::string& vm);
    // Removes every piece of the NIC that may exist, then its lease and record. Throws on the
    // first step that fails, leaving the record as it was for a later retry.
    void tear_down(NicRecord record);
    void add_port(const NicRecord& record, const HostNetwork& network);
    // A new NIC's names and MAC (not yet recorded).
    NicRecord new_record(const std::string& vm, const std::string& network) const;
    // The steps that make a recorded NIC: host device, OVS port, port security, plug.
    void build(NicRecord& record, const HostNetwork& network);
    // After `failure` in an attach: tears the NIC down; if that fails too, throws both messages.
    void undo_attach(const NicRecord& record, const std::exception_ptr& failure);
    void add_spare(const std::string& vm, const HostNetwork& network);
    // The VM's spare for the network that is ready to be claimed, if any.
    std::optional<NicRecord> ready_spare(const std::string& vm, const std::string& network) const;
    ReconcileReport reconcile();
    // One journal record against what exists: finishes or undoes it, or repairs what is missing.
    // `ports`: the labelled container ports and group member ports that exist.
    void reconcile_nic(const NicRecord& record, const std::set<std::string>& ports, const std::set<std::string>& secured, ReconcileReport& report);
    // Segments of groups the journal does not know, and member ports no NIC record knows, removed.
    void reconcile_hostlo(ReconcileReport& report);

    const ShimConfig file_config_;
    ShimConfig config_;  // file_config_ plus what was added at run time
    Journal& journal_;
    HostSwitch& host_;
    HostFirewall& firewall_;
    hostlo::Segment& segment_;
    BackendFactory make_backend_;
    std::map<std::string, std::unique_ptr<VmmBackend>> backends_;  // by VM
    std::function<void()> spare_claimed_;
    ShimState state_;
    mutable std::mutex mutex_;
};

}  // namespace brfusion::shim
