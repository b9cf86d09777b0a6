#pragma once
// What the plugin must remember across its own restarts and Docker's: libnetwork replays nothing,
// so the networks, endpoints and address reservations it told Docker about are kept here, as
// records (brfusion::RecordJournal: STATE_DIR/state.json and its log state.json.log), one per
// network, endpoint, reservation and group. A save writes only the records that changed since the
// last one, so its cost follows the change, not the number of endpoints. A state.json of version 1
// (the whole state in one document) loads, and is rewritten as records at the first save.

#include "brfusion/common/guest_protocol.hpp"
#include "brfusion/common/record_journal.hpp"
#include "brfusion/plugin/guest_links.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace brfusion::plugin {

struct NetworkRecord {
    std::string id;            // Docker's NetworkID
    std::string host_network;  // the shim's network
    std::string gateway;       // empty: --internal (no default route)
    int mtu = 1500;
    bool operator==(const NetworkRecord&) const = default;
};

struct EndpointRecord {
    std::string id;          // Docker's EndpointID
    std::string network_id;  // Docker's NetworkID
    std::string nic;         // the shim's endpoint id of the NIC
    std::string mac;
    std::string address;     // ip/prefix_length
    std::string interface;   // the NIC's name in the VM until Docker moves it (SrcName)
    std::vector<guest::PortMapping> ports;  // published now
    bool checksum_offload = false;  // the shim's word at attach (guest::AttachResult)
    NicHints hints;                 // where the NIC shows up in the VM, as the shim said at attach
    bool operator==(const EndpointRecord&) const = default;
};

struct PluginState {
    std::map<std::string, NetworkRecord> networks;    // by NetworkID
    std::map<std::string, EndpointRecord> endpoints;  // by EndpointID
    std::set<std::pair<std::string, std::string>> reservations;  // (host network, ip): RequestAddress not yet taken by an endpoint
    std::set<std::string> groups_to_leave;  // Hostlo groups whose pool Docker released, not yet left (a network still uses it, or the shim failed or refused)
    std::map<std::string, std::int64_t> groups_joining;  // Hostlo groups RequestPool joined, no CreateNetwork yet: when (s since the epoch)
    std::map<std::string, std::int64_t> endpoints_unjoined;  // endpoints in no sandbox (new, or after Leave), no Join since: when (s since the epoch)
};

// Not thread-safe: the driver serializes access.
class PluginStore {
public:
    explicit PluginStore(std::string directory);
    // The saved state, or an empty one if none was ever saved. Throws PluginError(Failed) naming the
    // file when it is unreadable or corrupt (never silently starts from scratch). Writes nothing.
    PluginState load();
    // Saves what differs from the last load or save (loading first if this store never did).
    // Throws PluginError(Failed) naming the file; the saved state is then the previous one.
    void save(const PluginState& state);
    const std::string& path() const { return records_.path(); }

private:
    RecordJournal records_;
    std::optional<PluginState> saved_;  // as last loaded or saved
};

}  // namespace brfusion::plugin
