#pragma once
// brfusion-plugin's core: Docker's remote NetworkDriver and IpamDriver over the guest channel.
//
// Addresses come from the host (brfusion-shim's IPAM), never from this VM's Docker: RequestPool
// picks the host network, RequestAddress reserves an address there, CreateEndpoint asks the shim
// for a NIC with it, Join hands the NIC (found by MAC) to Docker, DeleteEndpoint gives it back.
// One routing table maps each plugin call to its handler; errors become {"Err": message} with an
// HTTP status in one place.

#include "brfusion/common/http_server.hpp"
#include "brfusion/plugin/docker_networks.hpp"
#include "brfusion/plugin/guest_links.hpp"
#include "brfusion/plugin/plugin_state.hpp"
#include "brfusion/plugin/shim_client.hpp"

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <shared_mutex>
#include <string>
#include <vector>

namespace brfusion::plugin {

// IPAM address spaces of brfusion's pools (GetDefaultAddressSpaces).
inline constexpr const char* kLocalAddressSpace = "brfusion";
inline constexpr const char* kGlobalAddressSpace = "brfusion-global";

struct DriverOptions {
    std::chrono::milliseconds join_timeout{30000};  // how long Join waits for the hot-plugged NIC to show up
    std::chrono::milliseconds poll_interval{10};    // how often Join looks
    // How long a call Docker follows up at once may wait for that follow-up before the reconcile
    // takes Docker to have lost what it made: a CreateEndpoint for its Join, a Leave for its
    // DeleteEndpoint (the endpoint is forgotten, its NIC detached), a Hostlo RequestPool for its
    // CreateNetwork (the group is left). Docker sends each within milliseconds; it loses one when
    // dockerd dies after reading an answer, before storing it, or when the plugin dies during the
    // follow-up (Docker retries a call whose connection broke, with an empty body).
    std::chrono::seconds answer_grace{30};
};

struct PluginReconcileReport {
    std::vector<std::string> orphans_detached;  // NICs the shim had for this VM that no endpoint owns
    std::vector<std::string> endpoints_without_nic;  // endpoints whose NIC the shim no longer has
    std::vector<std::string> groups_left;  // Hostlo groups a failed ReleasePool, or a network Docker never made, had left joined
    std::vector<std::string> endpoints_lost;  // endpoints Docker lost: in no sandbox for answer_grace (their NICs are among the orphans)
    std::vector<std::string> networks_lost;   // networks Docker lost: not among its networks for answer_grace
};

class Driver {
public:
    // Loads the saved state; throws PluginError when it is corrupt. `docker`: where the reconcile
    // asks which networks Docker has (nullptr: it never concludes that Docker lost one).
    Driver(ShimChannel& channel, GuestLinks& links, PluginStore& store, DriverOptions options = {}, DockerNetworks* docker = nullptr);

    // One plugin call: POST /Plugin.Activate, /NetworkDriver.*, /IpamDriver.*. Never throws;
    // thread-safe (Docker sends calls concurrently).
    HttpAnswer handle(const HttpRequest& request);

    // Matches this VM's NICs on the shim with our endpoints: detaches NICs no endpoint owns (a NIC
    // attached just before a crash, never reported to Docker) and takes the published ports from
    // the shim; leaves the Hostlo groups whose leave is owed (Docker released their pool; no
    // network of ours uses them; the shim failed or refused for a NIC still on them), and those
    // RequestPool joined for a network Docker never created (no CreateNetwork within
    // answer_grace); first forgets endpoints Docker lost (in no sandbox for answer_grace: no Join
    // after CreateEndpoint, no DeleteEndpoint after Leave), so that their NICs are among the orphans;
    // and forgets the networks Docker lost (not among Docker's networks for answer_grace, and no
    // endpoint of ours on them), so that their Hostlo groups are left.
    // Throws PluginError (Unavailable when the shim cannot be reached).
    PluginReconcileReport reconcile();
    // Whether reconcile has work waiting (a NIC whose detach failed, a Hostlo group to leave that
    // no network uses, a joined group's or an endpoint's grace over): the caller reconciles soon
    // rather than at its usual interval.
    bool reconcile_pending() const;

    PluginState state() const;

    // The handlers; public for the routing table in driver.cpp.
    nlohmann::json create_network(const nlohmann::json& body);
    nlohmann::json delete_network(const nlohmann::json& body);
    nlohmann::json create_endpoint(const nlohmann::json& body);
    nlohmann::json endpoint_oper_info(const nlohmann::json& body);
    nlohmann::json delete_endpoint(const nlohmann::json& body);
    nlohmann::json join(const nlohmann::json& body);
    nlohmann::json leave(const nlohmann::json& body);
    nlohmann::json program_external_connectivity(const nlohmann::json& body);
    nlohmann::json revoke_external_connectivity(const nlohmann::json& body);
    nlohmann::json request_pool(const nlohmann::json& body);
    nlohmann::json release_pool(const nlohmann::json& body);
    nlohmann::json request_address(const nlohmann::json& body);
    nlohmann::json release_address(const nlohmann::json& body);

private:
    void save_locked();
    // Forgets endpoint `id` (saved) and detaches its NIC. A detach that fails is owed: the
    // reconcile, which detaches NICs no endpoint owns, is due at once. Returns why it failed.
    std::optional<std::string> forget_endpoint(const std::string& id);
    // reconcile's part that forgets the networks Docker lost, given Docker's networks (asked
    // before the reconcile took nic_changes_: dockerd may be waiting for a call of ours).
    void forget_lost_networks(const std::optional<std::set<std::string>>& docker_networks, PluginReconcileReport& report);
    // reconcile's last part: leaves the Hostlo groups owed a leave.
    void leave_groups(PluginReconcileReport& report);
    // Leaves Hostlo group `group` if a leave is owed and no network of ours uses it; returns
    // whether it left. Throws the shim's error: after a failure (Unavailable, Failed) or a
    // Conflict (a NIC of this VM still on the group) the leave stays owed; another refusal
    // drops it.
    bool leave_owed_group(const std::string& group);
    // For a Hostlo group Docker will never release (it did not get the answer that joined it, or
    // that made its network): owes its leave unless a network of ours uses it, and tries it; a
    // failure is left to the reconcile. Never throws.
    void owe_leave(const std::string& group);
    // owe_leave's record (mutex_ held, not saved): whether the leave is now owed (false: a
    // network of ours uses the group).
    bool owe_leave_locked(const std::string& group);
    // Forgets network `id` (saved); returns its Hostlo group, if it has one.
    std::optional<std::string> forget_network(const std::string& id);
    // forget_network's change (mutex_ held, not saved).
    std::optional<std::string> forget_network_locked(const std::string& id);
    // Whether a network of ours takes its addresses from Hostlo group `group` (mutex_ held).
    bool group_in_use_locked(const std::string& group) const;
    ShimClient shim_;
    GuestLinks& links_;
    PluginStore& store_;
    DriverOptions options_;
    mutable std::mutex mutex_;  // state_ and its file
    PluginState state_;
    std::shared_mutex nic_changes_;  // shared by attach/detach, exclusive for reconcile
    std::mutex hostlo_changes_;      // serializes this VM's Hostlo joins and leaves, their shim calls included
    std::atomic<bool> orphans_owed_{false};  // a detach failed: its NIC waits for the reconcile
    DockerNetworks* docker_;
    // Networks of ours Docker did not have at the last reconciles: since when (s since the epoch).
    // Not saved: after a restart the grace starts again.
    std::map<std::string, std::int64_t> networks_missing_;
};

}  // namespace brfusion::plugin
