#pragma once
// The shim's persistent state: IPAM leases and one record per NIC, with the phase of the
// operation in progress. It is written *before* each step that changes the outside world, so that
// after a crash the next start knows what may exist and repairs it (reconcile), never replays.
//
// Stored as records (brfusion::RecordJournal: STATE_DIR/state.json and its log state.json.log):
// one per NIC, per address pool, per lease, per network and VM added at run time, per Hostlo
// group. A save compares the state with what was saved last and writes only the records that
// differ, so its cost follows the change, not the number of NICs. A state.json of version 1
// (the whole state in one document) loads, and is rewritten as records.

#include "brfusion/shim/config.hpp"
#include "brfusion/hostlo/group_table.hpp"
#include "brfusion/shim/firewall.hpp"
#include "brfusion/shim/ipam.hpp"
#include "brfusion/common/guest_protocol.hpp"
#include "brfusion/common/ipv4.hpp"
#include "brfusion/common/record_journal.hpp"

#include <map>
#include <vector>
#include <string>

namespace brfusion::shim {

enum class NicPhase {
    Attaching,  // address leased; devices, OVS port and plug may exist partly
    Attached,   // complete
    Detaching,  // being removed; devices, OVS port and plug may exist partly
};

// "attaching" | "attached" | "detaching", as the journal, the guest channel and the admin API show it.
const char* phase_name(NicPhase phase);

struct NicRecord {
    std::string endpoint;  // the shim's id for the NIC; the guest names it in detach
    std::string vm;
    guest::NetworkRef network;  // a host network, or a Hostlo group for the VM's NIC on one
    std::string mac;      // what the guest sees
    Ipv4 ip;
    std::string host_if;  // host-side device and OVS port name (<= 15 characters)
    std::string pci;      // where the guest finds it (a real VM's PCI address; "" for netns)
    NicPhase phase = NicPhase::Attaching;
    std::vector<PublishedPort> published;  // every host_port chosen
    // A warm-pool NIC: plugged into the VM but no container's yet. It has no address (ip is
    // 0.0.0.0), its port sends nothing, and OVS labels it brfusion-spare=true. An attach claims it.
    bool spare = false;
    bool operator==(const NicRecord&) const = default;
};

struct ShimState {
    Ipam ipam;
    std::map<std::string, NicRecord> nics;  // by endpoint
    // Added through the admin API at run time (the config file's own are not repeated here).
    std::vector<HostNetwork> added_networks;
    std::vector<VmConfig> added_vms;
    hostlo::GroupTable hostlo;  // Hostlo groups and their member VMs; each group's addresses are an IPAM pool
};

// The whole state as one document, in the layout of a version 1 state.json: {"ipam": {NETWORK:
// {"subnet", "gateway", "cursor", "leases": {ADDRESS: OWNER}}}, "nics": [...], "added_networks",
// "added_vms", "hostlo_groups"}. What `brfusionctl journal` prints.
nlohmann::json to_json(const ShimState& state);

class Journal {
public:
    explicit Journal(std::string directory);
    // The saved state, or an empty one if none was saved. Throws ShimError naming the file if it
    // cannot be read or parsed (never silently starts from scratch over existing state). It reads
    // values as strictly as the guest channel does: whatever a guest made the shim save loads.
    // Must come before the first save.
    ShimState load();
    // Saves `state` (what differs from the last save, as one unit). Throws ShimError(Backend) if it
    // cannot be written; the saved state is then the previous one.
    void save(const ShimState& state);
    const std::string& path() const { return records_.path(); }

    // What the last save (or load) wrote, to compare the next state with.
    struct Saved {
        std::map<std::string, NicRecord> nics;
        std::map<std::string, Ipam::Pool> pools;
        std::vector<HostNetwork> added_networks;
        std::vector<VmConfig> added_vms;
        std::map<std::string, hostlo::Group> hostlo;
    };

private:
    RecordJournal records_;
    Saved saved_;
};

}  // namespace brfusion::shim
