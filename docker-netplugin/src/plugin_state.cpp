#include "brfusion/plugin/plugin_state.hpp"

#include "brfusion/common/durable_file.hpp"
#include "brfusion/plugin/error.hpp"

#include <nlohmann/json.hpp>

namespace brfusion::plugin {

using nlohmann::json;

PluginStore::PluginStore(std::string directory) : path_(std::move(directory) + "/state.json") {}

PluginState PluginStore::load() const {
    std::optional<std::string> text;
    try {
        text = read_file_if_exists(path_);
    } catch (const std::exception& e) {
        throw PluginError(ErrorKind::Failed, e.what());
    }
    PluginState state;
    if (!text) return state;
    try {
        const json document = json::parse(*text);
        for (const auto& n : document.at("networks"))
            state.networks[n.at("id")] = {n.at("id"), n.at("host_network"), n.at("gateway"), n.at("mtu")};
        for (const auto& e : document.at("endpoints"))
            state.endpoints[e.at("id")] = {e.at("id"),      e.at("network_id"), e.at("nic"), e.at("mac"), e.at("address"),
                                           e.at("interface"), e.at("ports").get<std::vector<guest::PortMapping>>(),
                                           e.value("checksum_offload", false)};  // absent in state saved before it
        for (const auto& r : document.at("reservations")) state.reservations.emplace(r.at("network"), r.at("ip"));
        state.groups_to_leave = document.value("groups_to_leave", std::set<std::string>{});
        state.groups_joining = document.value("groups_joining", std::map<std::string, std::int64_t>{});
        state.endpoints_unjoined = document.value("endpoints_unjoined", std::map<std::string, std::int64_t>{});
    } catch (const std::exception& e) {
        throw PluginError(ErrorKind::Failed, "the plugin's state file " + path_ + " is corrupt (" + e.what() +
                                                 "); move it away and restart brfusion-plugin: it then detaches the NICs it no longer knows");
    }
    return state;
}

void PluginStore::save(const PluginState& state) const {
    json networks = json::array(), endpoints = json::array(), reservations = json::array();
    for (const auto& [id, n] : state.networks)
        networks.push_back({{"id", n.id}, {"host_network", n.host_network}, {"gateway", n.gateway}, {"mtu", n.mtu}});
    for (const auto& [id, e] : state.endpoints)
        endpoints.push_back({{"id", e.id}, {"network_id", e.network_id}, {"nic", e.nic}, {"mac", e.mac}, {"address", e.address},
                             {"interface", e.interface}, {"ports", e.ports}, {"checksum_offload", e.checksum_offload}});
    for (const auto& [network, ip] : state.reservations) reservations.push_back({{"network", network}, {"ip", ip}});
    try {
        replace_file_durably(path_, json{{"version", 1}, {"networks", networks}, {"endpoints", endpoints}, {"reservations", reservations},
                                       {"groups_to_leave", state.groups_to_leave}, {"groups_joining", state.groups_joining},
                                       {"endpoints_unjoined", state.endpoints_unjoined}}.dump(1));
    } catch (const std::exception& e) {
        throw PluginError(ErrorKind::Failed, std::string("cannot save the plugin's state: ") + e.what());
    }
}

}  // namespace brfusion::plugin
