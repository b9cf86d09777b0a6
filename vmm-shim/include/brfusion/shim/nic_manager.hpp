#pragma once
// NicManager: the life cycle of every container NIC, its published ports, and the host networks
// and VMs it serves. The core of brfusion-shim; the daemon's admin API and guest channels call it.
//
// A NIC is four pieces, made in this order and removed in the reverse one (NicStep): its host
// device, its switch port (a VLAN access port of the integration bridge, or a member port of a
// Hostlo group's segment, labelled brfusion-*), its port security (the NIC's own MAC and address
// only), and its plug into the VM. attach leases an address, journals the intent, then makes the
// pieces; a failure at any step removes them all again (nothing leaks). detach withdraws the
// NIC's published ports, then removes the pieces; a failed detach stays recorded as "detaching"
// and is finished by the next detach or by reconcile. The journal records the intent before each
// change to the outside world. reconcile (on start) compares the journal with OVS, the port
// security rules and the backends: unfinished attaches are undone, unfinished detaches finished,
// missing pieces of attached NICs made again, NICs, ports and rules brfusion made that the journal
// does not know removed, and the firewall table rewritten from the journal.
//
// Host networks and VMs come from the config file and, at run time, from add_network / add_vm
// (persisted in the journal). Those from the file can only be changed in the file.
//
// Hostlo groups (one pod's localhost segment across VMs) are joined and left by VMs; a member's
// NIC on group G is attached like any NIC, on NetworkRef::hostlo_group(G), except that its port
// joins the group's segment (hostlo::Segment) instead of a VLAN of the integration bridge, and it
// publishes no ports (a group has no gateway and no NAT).
//
// Every VM is an untrusted tenant: what it may hold is bounded by its quotas (VmQuotas), the
// host ports it may publish by its range and by what the host itself uses.
//
// Thread-safe, and no VM can stall another: the state (config, journal, IPAM, records) is changed
// under one short lock that is never held across I/O; a VM's backend calls (hot-plug, unplug
// waits) are serialized per VM, outside it; firewall rewrites are serialized among themselves.
// An endpoint is worked on by one operation at a time: another one meanwhile gets Conflict.
//
// The implementation is split by concern under src/nic_manager/.

#include "brfusion/common/guest_protocol.hpp"
#include "brfusion/hostlo/segment.hpp"
#include "brfusion/shim/backend.hpp"
#include "brfusion/shim/config.hpp"
#include "brfusion/shim/firewall.hpp"
#include "brfusion/shim/host_stack.hpp"
#include "brfusion/shim/host_switch.hpp"
#include "brfusion/shim/journal.hpp"

#include <array>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace brfusion::shim {

using guest::NetworkRef;

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
    bool checksum_offload = false;  // the VM may leave TX checksums to the host (guest::AttachResult)
};

// What NicManager::maintain put right.
struct MaintenanceReport {
    int rules_restored = 0;         // ports whose security rules (or the port itself) were missing
    bool switch_restarted = false;  // because Open vSwitch lost its rules
    int reservations_expired = 0;   // reservations older than reservation_grace_seconds, given back
    bool firewall_rewritten = false;  // the host's publish addresses changed, or the last write had failed
};

// What NicManager::finish_unfinished did.
struct UnfinishedReport {
    std::vector<std::string> finished;  // NICs an attach or detach had left half made, now gone
    std::vector<std::string> failed;    // "ENDPOINT: why", retried later
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

// The host's parts the core drives; each is thread-safe.
struct HostServices {
    HostSwitch& network;     // the integration bridge, container ports, port security, gateways
    HostFirewall& firewall;  // NAT and published ports
    hostlo::Segment& hostlo; // Hostlo groups' segments
    HostStack& stack;        // the host's addresses and the ports its processes use
};

class NicManager {
public:
    using BackendFactory = std::function<std::unique_ptr<VmmBackend>(const VmConfig&)>;

    NicManager(ShimConfig config, Journal& journal, HostServices host, BackendFactory make_backend);

    // Loads the journal (with the networks and VMs added at run time; BadRequest if one has the
    // name of one in the config file), sets up the bridge, every network's gateway and every
    // Hostlo group's segment, reconciles (members that are no longer configured leave their
    // groups), and writes the firewall table. Call once, before any other operation.
    ReconcileReport start();

    // Claims a spare NIC of the VM's warm pool for the network when there is one (it only gets
    // its address, port security and label: no hot-plug), else makes and plugs a new NIC.
    // Errors: NotFound (unknown VM or network), NotAllowed (network not allowed for the VM; a
    // Hostlo group it is not a member of), BadRequest/Conflict/Exhausted (the requested address),
    // Conflict (the VM has its NIC on that Hostlo group already), Exhausted (the VM's nics quota;
    // no slot left in the VM), Backend (a step failed; undone).
    AttachedNic attach(const std::string& vm, const NetworkRef& network, std::optional<Ipv4> requested_ip = std::nullopt);
    // Idempotent: an endpoint that does not exist is success. NotAllowed if it is another VM's;
    // Conflict while another operation works on it; Backend if a step failed (retry finishes it).
    void detach(const std::string& vm, const std::string& endpoint);

    // One step towards the configured warm pools (VmConfig::warm_pool): removes one spare too
    // many (its pool shrank) or makes one missing spare, for a VM whose backend is not busy with
    // something else. Returns false when there is nothing to do now. Throws what failed (the
    // spare being made is undone). WarmPool calls it in the background.
    bool balance_warm_pool();
    // `listener` is called (under the state lock: keep it short, never call the manager from it)
    // each time an attach claims a spare; nullptr for none.
    void on_spare_claimed(std::function<void()> listener);

    // The endpoint's published ports become exactly `ports` (host_port 0: the lowest free port
    // of 49153-65535 in the VM's range); returns them as published. A host_ip must be an address
    // the host publishes on. NotFound (no such endpoint), NotAllowed (another VM's endpoint; an
    // address the host does not publish on; a host port outside the VM's range or reserved for
    // the host), BadRequest (the same host port twice), Conflict (naming who holds a host port:
    // another endpoint, or a host process), Exhausted (the published_ports quota; no free port),
    // Backend (the firewall refused; the previous ports stay).
    std::vector<PublishedPort> publish(const std::string& vm, const std::string& endpoint, std::vector<PublishedPort> ports);
    // No published ports. Idempotent like detach.
    void unpublish(const std::string& vm, const std::string& endpoint);

    // An address of `network` reserved for `vm` before its NIC exists (Docker asks IPAM first,
    // then creates the endpoint): `requested` or the next free one. attach with that address
    // takes the reservation over. Errors as attach's for the network and the address; Exhausted
    // for the VM's reservations quota.
    Ipv4 reserve_address(const std::string& vm, const NetworkRef& network, std::optional<Ipv4> requested);
    // Gives back `vm`'s reservation of `address`; anything else (free, a NIC's, another VM's) is
    // left alone. Idempotent.
    void release_address(const std::string& vm, const NetworkRef& network, Ipv4 address);

    // What drifts while the shim runs, put right (Upkeep calls it every second; `now` in seconds
    // since the epoch): every attached NIC's port and port security when Open vSwitch lost them
    // (HostSwitch::generation changed) and, every 30 s, wherever they went missing; reservations
    // older than the grace period go back to their pools (reservations of an earlier version,
    // without a time, start theirs now); the firewall follows the host's publish addresses
    // (checked every 5 s). Throws what failed; the next call retries.
    MaintenanceReport maintain(std::int64_t now);
    // NICs an attach or detach left half made while the shim runs (a step failed and so did
    // undoing it, or a detach failed: Open vSwitch or the VM's backend was away) are torn down, as
    // the next start would do; NICs an operation works on are left alone. Each NIC is retried 5 s
    // after its last try, doubling up to 5 min. Upkeep calls it every second on a thread of its
    // own: a VM that never acknowledges an unplug stalls only this, never maintain().
    UnfinishedReport finish_unfinished(std::int64_t now);

    // --- Hostlo. VM `vm` joins group `group` and gets the group's pool as the VM sees it: network
    // hostlo_network(group), the group's subnet, its MTU, and as gateway the first address, held
    // back and answered by nobody (Docker wants one; the plugin disables the gateway). The first
    // member creates the group: its subnet (`subnet`, or the next free block of the Hostlo range)
    // and its segment. Joining again changes nothing.
    // Errors: NotFound (unknown VM), NotAllowed (the VM's hostlo_groups do not allow the group),
    // Exhausted (the VM's hostlo_groups quota), BadRequest/Conflict/Exhausted (name or subnet),
    // Backend (the segment failed; undone).
    HostNetwork join_hostlo(const std::string& vm, const std::string& group, std::optional<Ipv4Prefix> subnet);
    // VM `vm` leaves group `group`, giving back its address reservations there; the last member's
    // leave removes the group's segment and pool. Idempotent. Conflict while the VM has its NIC on
    // the group; Backend if the segment cannot be removed (the VM stays a member: retry).
    void leave_hostlo(const std::string& vm, const std::string& group);
    std::vector<hostlo::Group> hostlo_groups() const;
    // Where an admin finds the group's segment (with the ovs backend, its bridge); "" for a group
    // that does not exist.
    std::string hostlo_segment(const std::string& group) const;
    static NetworkRef hostlo_network(const std::string& group) { return NetworkRef::hostlo_group(group); }

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
    // The host network (or Hostlo group's pool) `network` if VM `vm` may use it; NotFound /
    // NotAllowed (listing what it may use) otherwise.
    HostNetwork allowed_network(const std::string& vm, const NetworkRef& network) const;
    // Every host network VM `vm` may use, in its config's order, then the pools of the Hostlo
    // groups it is a member of; NotFound for an unknown VM.
    std::vector<HostNetwork> allowed_networks(const std::string& vm) const;
    // The networks and VMs served now: the config file's and those added at run time.
    ShimConfig config() const;
    std::vector<Lease> leases(const NetworkRef& network) const;
    // What the firewall table should hold now (doctor compares it with the real one).
    FirewallRules firewall_rules() const;

    // The gateway port of a host network (an OVS internal port; <= 15 characters).
    static std::string gateway_port(const HostNetwork& network);

private:
    // One VM's backend and the lock that serializes its calls (hot-plug, unplug waits).
    struct VmLane {
        std::mutex mutex;
        std::unique_ptr<VmmBackend> backend;
    };
    // The pieces of a NIC, in the order they are made (and removed in the reverse one).
    enum class NicStep { HostDevice, SwitchPort, PortSecurity, Plug };
    static constexpr std::array<NicStep, 4> kNicSteps{NicStep::HostDevice, NicStep::SwitchPort, NicStep::PortSecurity, NicStep::Plug};
    // What exists of every NIC's pieces in OVS, read once for a reconcile.
    struct SwitchView {
        std::set<std::string> ports;    // container and group member ports
        std::set<std::string> secured;  // of those, the ones with security rules
    };
    // What exists of them now (the records' ports, and their rules).
    SwitchView switch_view();

    // Who works on a busy endpoint: a request (another request on it is refused: Conflict), or
    // the upkeep restoring its port (a request waits for it: wait_for_upkeep).
    enum class BusyHolder { Request, Upkeep };
    // An endpoint marked busy for the guard's lifetime: made with state_mutex_ held (Conflict if
    // another operation works on it), released without it.
    class BusyEndpoint {
    public:
        BusyEndpoint(NicManager& manager, std::string endpoint, BusyHolder holder = BusyHolder::Request);
        ~BusyEndpoint();
        BusyEndpoint(const BusyEndpoint&) = delete;
        BusyEndpoint& operator=(const BusyEndpoint&) = delete;

    private:
        NicManager& manager_;
        std::string endpoint_;
    };

    // --- state (call with state_mutex_ held) ---
    // Returns once the upkeep no longer works on `endpoint` (it restores a port within Open
    // vSwitch's timeout); the record may have changed meanwhile, so look it up after this.
    void wait_for_upkeep(std::unique_lock<std::mutex>& lock, const std::string& endpoint);
    // The VM's config; NotFound if it is not configured, or being removed.
    const VmConfig& configured_vm(const std::string& vm) const;
    HostNetwork allowed(const std::string& vm, const NetworkRef& network) const;
    // The host network or Hostlo group's pool behind `network`, if it exists.
    std::optional<HostNetwork> network_of(const NetworkRef& network) const;
    HostNetwork group_network(const hostlo::Group& group) const;
    FirewallRules rules() const;
    NicRecord& own_record(const std::string& vm, const std::string& endpoint);
    std::shared_ptr<VmLane> lane(const std::string& vm);
    // Throws Exhausted naming the quota when VM `vm` holds `held` of it and asks for `more`.
    void require_quota(const std::string& vm, const char* quota, int limit, std::size_t held, std::size_t more) const;
    // A new NIC's names and MAC (not yet recorded).
    NicRecord new_record(const std::string& vm, const NetworkRef& network) const;
    // The VM's spare for the network that is ready to be claimed, if any.
    std::optional<NicRecord> ready_spare(const std::string& vm, const NetworkRef& network) const;
    void reclaim_reservations();
    void save();  // the journal

    // --- operations (call without state_mutex_) ---
    // The Hostlo group as the state has it now; NotFound if it is gone.
    hostlo::Group group_now(const std::string& name);
    // Writes the firewall table from the state as it is now (serialized with other writes).
    void apply_firewall();
    // The pieces of a NIC: make one (idempotent), see whether it exists, remove it (idempotent).
    void make_step(NicStep step, NicRecord& record, VmmBackend& vmm, const HostNetwork& network);
    bool step_exists(NicStep step, const NicRecord& record, VmmBackend& vmm, const SwitchView& view);
    // `vmm` is null when the VM is gone from the config (its side of the NIC went with it).
    void remove_step(NicStep step, const NicRecord& record, VmmBackend* vmm);
    // Every piece, in order: the backend's under the VM's lane, the switch's outside it. On a failure
    // the pieces made stay, for the caller's undo.
    void build(NicRecord& record, const HostNetwork& network);
    // Removes every piece of the recorded NIC that may exist (withdrawing its published ports
    // first), then its lease and record. The caller marked the endpoint busy. Throws on the first
    // step that fails, leaving the record "detaching" for a later retry.
    void tear_down(NicRecord record);
    // The NIC is complete: recorded as attached, in the journal.
    void mark_attached(NicRecord& record);
    // After `failure` in an attach: tears the NIC down; if that fails too, throws both messages.
    void undo_attach(const NicRecord& record, const std::exception_ptr& failure);
    void add_spare(const std::string& vm, const HostNetwork& network);
    // The network's gateway: an internal port of its VLAN with the gateway address.
    void ensure_gateway(const HostNetwork& network);

    ReconcileReport reconcile();
    // One journal record against what exists: finishes or undoes it, or repairs what is missing.
    void reconcile_nic(const NicRecord& record, const SwitchView& view, ReconcileReport& report);
    // NICs the VMs hold that no record knows, and labelled ports no record knows: removed.
    void remove_orphans(ReconcileReport& report);
    // Ports and port rules of attached NICs that are missing, made again; returns how many.
    int restore_switch_ports();
    int expire_reservations(std::int64_t now);
    // Segments of groups the journal does not know (or not where the journal has them) removed,
    // then every group's segment made: before the NICs, whose member ports need them.
    void reconcile_segments(ReconcileReport& report);
    // Member ports no NIC record knows, removed.
    void remove_orphan_members(ReconcileReport& report);

    const ShimConfig file_config_;
    Journal& journal_;
    HostServices host_;
    BackendFactory make_backend_;

    mutable std::mutex state_mutex_;  // guards everything below; never held across I/O
    std::condition_variable idle_;    // notified when an endpoint stops being busy
    ShimConfig config_;               // file_config_ plus what was added at run time
    ShimState state_;
    std::map<std::string, std::shared_ptr<VmLane>> lanes_;  // by VM
    std::map<std::string, BusyHolder> busy_;                // endpoints an operation is working on
    std::set<std::string> removing_vms_;                    // VMs remove_vm is taking apart
    std::set<std::string> dissolving_groups_;               // Hostlo groups whose last member is leaving
    std::function<void()> spare_claimed_;
    std::string switch_generation_;        // HostSwitch::generation when the rules were last whole
    std::int64_t next_rules_audit_ = 0;    // when maintain next checks every port's rules
    std::int64_t next_address_check_ = 0;  // when maintain next compares the publish addresses
    struct Retry {
        std::int64_t at = 0;      // when finish_unfinished next tries the NIC
        std::int64_t pause = 0;   // and the pause after that try
    };
    std::map<std::string, Retry> unfinished_retries_;  // by endpoint

    std::mutex firewall_mutex_;                 // serializes firewall writes, and guards:
    std::string applied_firewall_;              // the rules of the last write, rendered; "" if it failed
    std::mutex hostlo_mutex_;    // serializes Hostlo joins, leaves and the upkeep's re-making of segments
    std::mutex admin_mutex_;     // serializes run-time network and VM changes
};

}  // namespace brfusion::shim
