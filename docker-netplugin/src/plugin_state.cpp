#include "brfusion/plugin/plugin_state.hpp"

#include "brfusion/plugin/error.hpp"

#include <nlohmann/json.hpp>

#include <functional>

namespace brfusion::plugin {

using nlohmann::json;

namespace {

// The records' sections.
constexpr const char* kNetwork = "network";                    // NetworkID -> the network
constexpr const char* kEndpoint = "endpoint";                  // EndpointID -> the endpoint
constexpr const char* kReservation = "reservation";            // NETWORK/IP -> {network, ip}
constexpr const char* kGroupToLeave = "group_to_leave";        // group -> true
constexpr const char* kGroupJoining = "group_joining";         // group -> since (s)
constexpr const char* kEndpointUnjoined = "endpoint_unjoined";  // EndpointID -> since (s)

json network_json(const NetworkRecord& n) { return {{"id", n.id}, {"host_network", n.host_network}, {"gateway", n.gateway}, {"mtu", n.mtu}}; }
NetworkRecord parse_network(const json& n) { return {n.at("id"), n.at("host_network"), n.at("gateway"), n.at("mtu")}; }

json endpoint_json(const EndpointRecord& e) {
    return {{"id", e.id},       {"network_id", e.network_id}, {"nic", e.nic},   {"mac", e.mac},
            {"address", e.address}, {"interface", e.interface},   {"ports", e.ports}, {"checksum_offload", e.checksum_offload},
            {"hints", {{"name", e.hints.name}, {"pci", e.hints.pci}}}};
}
EndpointRecord parse_endpoint(const json& e) {
    const json hints = e.value("hints", json::object());  // absent in state saved before it
    return {e.at("id"),
            e.at("network_id"),
            e.at("nic"),
            e.at("mac"),
            e.at("address"),
            e.at("interface"),
            e.at("ports").get<std::vector<guest::PortMapping>>(),
            e.value("checksum_offload", false),  // absent in state saved before it
            {hints.value("name", ""), hints.value("pci", "")}};
}

// The changes from `saved` to `state`, and what makes `saved` equal to `state` once they are saved.
std::pair<std::vector<RecordChange>, std::function<void()>> changes_since(PluginState& saved, const PluginState& state) {
    std::vector<RecordChange> changes;
    const auto first = [](const auto& e) { return e.first; };
    const auto since = [](const auto& e) { return json(e.second); };
    const auto networks = diff_section(kNetwork, saved.networks, state.networks, first, [](const auto& e) { return network_json(e.second); }, changes);
    const auto endpoints = diff_section(kEndpoint, saved.endpoints, state.endpoints, first, [](const auto& e) { return endpoint_json(e.second); }, changes);
    const auto reservations = diff_section(kReservation, saved.reservations, state.reservations, [](const auto& r) { return r.first + "/" + r.second; },
                                           [](const auto& r) { return json{{"network", r.first}, {"ip", r.second}}; }, changes);
    const auto to_leave = diff_section(kGroupToLeave, saved.groups_to_leave, state.groups_to_leave, [](const auto& g) { return g; },
                                       [](const auto&) { return json(true); }, changes);
    const auto joining = diff_section(kGroupJoining, saved.groups_joining, state.groups_joining, first, since, changes);
    const auto unjoined = diff_section(kEndpointUnjoined, saved.endpoints_unjoined, state.endpoints_unjoined, first, since, changes);
    return {std::move(changes), [&saved, networks, endpoints, reservations, to_leave, joining, unjoined] {
                sync_section(saved.networks, networks);
                sync_section(saved.endpoints, endpoints);
                sync_section(saved.reservations, reservations);
                sync_section(saved.groups_to_leave, to_leave);
                sync_section(saved.groups_joining, joining);
                sync_section(saved.endpoints_unjoined, unjoined);
            }};
}

// A state.json of version 1: the whole state in one document.
PluginState parse_version1(const json& document) {
    PluginState state;
    for (const auto& n : document.at("networks")) state.networks[n.at("id")] = parse_network(n);
    for (const auto& e : document.at("endpoints")) state.endpoints[e.at("id")] = parse_endpoint(e);
    for (const auto& r : document.at("reservations")) state.reservations.emplace(r.at("network"), r.at("ip"));
    state.groups_to_leave = document.value("groups_to_leave", std::set<std::string>{});
    state.groups_joining = document.value("groups_joining", std::map<std::string, std::int64_t>{});
    state.endpoints_unjoined = document.value("endpoints_unjoined", std::map<std::string, std::int64_t>{});
    return state;
}

PluginState parse_records(const Records& records) {
    PluginState state;
    for (const auto& [id, n] : section_of(records, kNetwork)) state.networks[id] = parse_network(n);
    for (const auto& [id, e] : section_of(records, kEndpoint)) state.endpoints[id] = parse_endpoint(e);
    for (const auto& [key, r] : section_of(records, kReservation)) state.reservations.emplace(r.at("network"), r.at("ip"));
    for (const auto& [group, value] : section_of(records, kGroupToLeave)) state.groups_to_leave.insert(group);
    for (const auto& [group, since] : section_of(records, kGroupJoining)) state.groups_joining[group] = since.get<std::int64_t>();
    for (const auto& [id, since] : section_of(records, kEndpointUnjoined)) state.endpoints_unjoined[id] = since.get<std::int64_t>();
    return state;
}

}  // namespace

PluginStore::PluginStore(std::string directory) : records_(std::move(directory) + "/state.json") {}

PluginState PluginStore::load() {
    PluginState state;
    try {
        const auto records = records_.load([](const json& document) {
            PluginState none;
            Records converted;
            for (const auto& change : changes_since(none, parse_version1(document)).first) converted[change.section][change.key] = *change.value;
            return converted;
        });
        if (records) state = parse_records(*records);
    } catch (const std::exception& e) {
        throw PluginError(ErrorKind::Failed, "the plugin's state file " + path() + " is corrupt (" + e.what() +
                                                 "); move it and its .log away and restart brfusion-plugin: it then detaches the NICs it no longer knows");
    }
    saved_ = state;
    return state;
}

void PluginStore::save(const PluginState& state) {
    if (!saved_) load();
    auto [changes, sync] = changes_since(*saved_, state);
    try {
        records_.save(changes);
    } catch (const std::exception& e) {
        throw PluginError(ErrorKind::Failed, std::string("cannot save the plugin's state: ") + e.what());
    }
    sync();
}

}  // namespace brfusion::plugin
