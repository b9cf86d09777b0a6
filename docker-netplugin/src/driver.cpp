#include "brfusion/plugin/driver.hpp"

#include "brfusion/plugin/docker_api.hpp"
#include "brfusion/plugin/error.hpp"
#include "brfusion/plugin/options.hpp"

#include <algorithm>
#include <chrono>
#include <exception>
#include <functional>
#include <map>
#include <set>
#include <thread>

namespace brfusion::plugin {

using nlohmann::json;

namespace {

[[noreturn]] void refuse(const std::string& message) { throw PluginError(ErrorKind::BadRequest, message); }

std::string describe(const std::vector<guest::PoolInfo>& pools) {
    std::string text;
    for (const auto& pool : pools) text += (text.empty() ? "" : ", ") + pool.network + " (" + pool.subnet + ")";
    return text.empty() ? "none" : text;
}

std::int64_t seconds_now() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// Takes the entries of `waiting` (name -> since when, in s since the epoch) that have waited
// `grace` or longer out of it; returns their names, in order.
std::vector<std::string> take_expired(std::map<std::string, std::int64_t>& waiting, std::chrono::seconds grace) {
    const auto cutoff = seconds_now() - grace.count();
    std::vector<std::string> expired;
    std::erase_if(waiting, [&](const auto& entry) {
        if (entry.second > cutoff) return false;
        expired.push_back(entry.first);
        return true;
    });
    return expired;
}

// Whether a Hostlo leave the shim did not take stays owed: after a failure (the shim unreachable,
// OVS away), and after a Conflict (a NIC of this VM still on the group: one whose detach failed,
// which the reconcile's orphan sweep detaches first). Any other refusal stands: retrying would not
// change it.
bool leave_stays_owed(ErrorKind kind) { return kind == ErrorKind::Unavailable || kind == ErrorKind::Failed || kind == ErrorKind::Conflict; }

// The Hostlo group whose pool `pool_id` is, if it is one.
std::optional<std::string> group_of_pool(const std::string& pool_id) {
    const auto ref = guest::NetworkRef::parse(pool_id);
    return ref && ref->is_hostlo() ? std::optional(ref->name) : std::nullopt;
}

std::string prefix_of(const std::string& cidr) { return cidr.substr(cidr.find('/')); }  // "/24"

std::string strip_prefix(const std::string& address) { return address.substr(0, address.find('/')); }

int http_status(ErrorKind kind) {
    switch (kind) {
    case ErrorKind::BadRequest: return 400;
    case ErrorKind::NotAllowed: return 403;
    case ErrorKind::NotFound: return 404;
    case ErrorKind::Conflict: return 409;
    case ErrorKind::Exhausted: return 409;
    case ErrorKind::Unavailable: return 503;
    case ErrorKind::Failed: return 500;
    }
    return 500;
}

HttpAnswer error_answer(int status, const std::string& message) { return {status, json{{"Err", message}}.dump()}; }

using Handler = json (Driver::*)(const json&);

json activate(const json&) { return {{"Implements", {"NetworkDriver", "IpamDriver"}}}; }
json network_capabilities(const json&) { return {{"Scope", "local"}, {"ConnectivityScope", "local"}}; }
json ipam_capabilities(const json&) { return {{"RequiresMACAddress", false}, {"RequiresRequestReplay", false}}; }
json address_spaces(const json&) { return {{"LocalDefaultAddressSpace", kLocalAddressSpace}, {"GlobalDefaultAddressSpace", kGlobalAddressSpace}}; }
json nothing(const json&) { return json::object(); }  // DiscoverNew / DiscoverDelete: node discovery, swarm only

struct Route {
    std::function<json(Driver&, const json&)> handler;
};

const std::map<std::string, Route>& routes() {
    const auto member = [](Handler handler) { return Route{[handler](Driver& driver, const json& body) { return (driver.*handler)(body); }}; };
    const auto plain = [](json (*handler)(const json&)) { return Route{[handler](Driver&, const json& body) { return handler(body); }}; };
    static const std::map<std::string, Route> table = {
        {"/Plugin.Activate", plain(activate)},
        {"/NetworkDriver.GetCapabilities", plain(network_capabilities)},
        {"/NetworkDriver.CreateNetwork", member(&Driver::create_network)},
        {"/NetworkDriver.DeleteNetwork", member(&Driver::delete_network)},
        {"/NetworkDriver.CreateEndpoint", member(&Driver::create_endpoint)},
        {"/NetworkDriver.EndpointOperInfo", member(&Driver::endpoint_oper_info)},
        {"/NetworkDriver.DeleteEndpoint", member(&Driver::delete_endpoint)},
        {"/NetworkDriver.Join", member(&Driver::join)},
        {"/NetworkDriver.Leave", member(&Driver::leave)},
        {"/NetworkDriver.ProgramExternalConnectivity", member(&Driver::program_external_connectivity)},
        {"/NetworkDriver.RevokeExternalConnectivity", member(&Driver::revoke_external_connectivity)},
        {"/NetworkDriver.DiscoverNew", plain(nothing)},
        {"/NetworkDriver.DiscoverDelete", plain(nothing)},
        {"/IpamDriver.GetCapabilities", plain(ipam_capabilities)},
        {"/IpamDriver.GetDefaultAddressSpaces", plain(address_spaces)},
        {"/IpamDriver.RequestPool", member(&Driver::request_pool)},
        {"/IpamDriver.ReleasePool", member(&Driver::release_pool)},
        {"/IpamDriver.RequestAddress", member(&Driver::request_address)},
        {"/IpamDriver.ReleaseAddress", member(&Driver::release_address)},
    };
    return table;
}

}  // namespace

Driver::Driver(ShimChannel& channel, GuestLinks& links, PluginStore& store, DriverOptions options, DockerNetworks* docker)
    : shim_(channel), links_(links), store_(store), options_(options), state_(store.load()), docker_(docker) {}

HttpAnswer Driver::handle(const HttpRequest& request) {
    const auto route = routes().find(request.target);
    if (route == routes().end()) return error_answer(404, "brfusion-plugin does not implement " + request.target);
    if (request.method != "POST") return error_answer(405, request.target + " takes POST, not " + request.method);
    // Docker sends no body (or "null") for the calls that take none.
    const bool empty = request.body.find_first_not_of(" \t\r\n") == std::string::npos;
    json body = empty ? json::object() : json::parse(request.body, nullptr, false);
    if (body.is_discarded()) return error_answer(400, request.target + ": the request body is not valid JSON");
    if (body.is_null()) body = json::object();
    try {
        const json result = route->second.handler(*this, body);
        HttpAnswer answer{200, result.dump(), {}};
        // A NIC made for a Docker that never got the answer (dockerd crashed, or its call timed
        // out) would have no owner: Docker never deletes an endpoint it did not store. The same for
        // a Hostlo group joined for a network Docker never stored: it would never call ReleasePool.
        if (request.target == "/NetworkDriver.CreateEndpoint") {
            answer.undelivered = [this, id = body.value("EndpointID", "")] {
                try {
                    forget_endpoint(id);
                } catch (const std::exception&) {  // the state could not be saved: the NIC stays Docker's, as answered
                }
            };
        } else if (request.target == "/IpamDriver.RequestPool") {
            if (const auto group = group_of_pool(result.value("PoolID", ""))) answer.undelivered = [this, group = *group] { owe_leave(group); };
        } else if (request.target == "/NetworkDriver.CreateNetwork") {
            answer.undelivered = [this, id = body.value("NetworkID", "")] {
                try {
                    if (const auto group = forget_network(id)) owe_leave(*group);
                } catch (const std::exception&) {  // the state could not be saved: the network stays, as answered
                }
            };
        }
        return answer;
    } catch (const PluginError& e) {
        return error_answer(http_status(e.kind()), e.what());
    } catch (const std::invalid_argument& e) {  // from_json: a malformed request
        return error_answer(400, request.target + ": " + e.what());
    } catch (const std::exception& e) {
        return error_answer(500, request.target + ": internal error: " + e.what());
    }
}

PluginState Driver::state() const {
    std::lock_guard lock(mutex_);
    return state_;
}

void Driver::save_locked() { store_.save(state_); }

// --- IPAM -------------------------------------------------------------------------------------

json Driver::request_pool(const json& body) {
    const auto request = body.get<RequestPoolRequest>();
    if (request.v6) refuse("IPv6 is not supported by brfusion yet; create the network without --ipv6");
    if (!request.sub_pool.empty()) refuse("--ip-range " + request.sub_pool + " is not supported: the host allocates from the whole subnet");
    const PoolOptions options = parse_pool_options(request.options);
    if (options.group) {  // this VM joins the pod's group; Docker's ReleasePool leaves it
        std::lock_guard serial(hostlo_changes_);
        std::optional<std::int64_t> earlier;  // an earlier RequestPool's, whose CreateNetwork may still come
        {
            // Saved before the join: a plugin killed after the shim joined, before it could answer,
            // finds the group here on its restart and leaves it once the grace is over, unless a
            // network took it (Docker retries the call without its body, which cannot succeed).
            std::lock_guard lock(mutex_);
            if (const auto found = state_.groups_joining.find(*options.group); found != state_.groups_joining.end()) earlier = found->second;
            state_.groups_joining[*options.group] = seconds_now();  // until its CreateNetwork
            save_locked();
        }
        guest::PoolInfo pool;
        try {
            pool = shim_.join_hostlo(*options.group, request.pool.empty() ? std::nullopt : std::optional(request.pool));
        } catch (const PluginError& e) {
            std::lock_guard lock(mutex_);
            if (earlier) state_.groups_joining[*options.group] = *earlier;
            else state_.groups_joining.erase(*options.group);
            // The channel dropped (the shim restarting): the shim may have joined before it went.
            // Docker fails the network, so the reconcile leaves the group unless a network uses it.
            if (e.kind() == ErrorKind::Unavailable && !group_in_use_locked(*options.group)) state_.groups_to_leave.insert(*options.group);
            save_locked();
            throw;
        }
        {
            std::lock_guard lock(mutex_);
            state_.groups_to_leave.erase(*options.group);  // in use again
            save_locked();
        }
        return {{"PoolID", pool.network}, {"Pool", pool.subnet}, {"Data", json::object()}};
    }
    const auto& wanted = options.host_network;
    auto pools = shim_.pools();
    std::erase_if(pools, [](const guest::PoolInfo& pool) { return group_of_pool(pool.network).has_value(); });  // only through --ipam-opt group
    const guest::PoolInfo* chosen = nullptr;
    for (const auto& pool : pools) {
        if (wanted ? pool.network == *wanted : !request.pool.empty() ? pool.subnet == request.pool : pools.size() == 1) chosen = &pool;
    }
    if (!chosen) {
        if (wanted)
            throw PluginError(ErrorKind::NotAllowed, "host network " + *wanted + " is not available to this VM; it may use: " + describe(pools));
        if (!request.pool.empty())
            throw PluginError(ErrorKind::NotFound, "--subnet " + request.pool + " is not the subnet of a host network this VM may use: " + describe(pools));
        if (pools.empty()) throw PluginError(ErrorKind::NotAllowed, "this VM may use no host network; ask the host's admin to allow one");
        refuse("which host network should this Docker network use? This VM may use " + describe(pools) +
               ": add --subnet SUBNET or --ipam-opt network=NAME");
    }
    if (!request.pool.empty() && request.pool != chosen->subnet)
        refuse("--subnet " + request.pool + " does not match host network " + chosen->network + ", whose subnet is " + chosen->subnet);
    return {{"PoolID", chosen->network}, {"Pool", chosen->subnet}, {"Data", json::object()}};
}

json Driver::release_pool(const json& body) {
    const auto request = body.get<ReleasePoolRequest>();
    const auto group = group_of_pool(request.pool_id);
    if (!group) return json::object();  // a host network's pool is the host's; nothing is held per pool
    {
        // Owed first: Docker forgets the pool whatever we answer, and never asks again. Docker
        // releases it before DeleteNetwork (28.x) or after (older libnetwork): while a network of
        // ours still uses the group, the leave waits for that network's DeleteNetwork.
        std::lock_guard lock(mutex_);
        state_.groups_joining.erase(*group);
        state_.groups_to_leave.insert(*group);
        save_locked();
    }
    try {
        leave_owed_group(*group);
    } catch (const PluginError& e) {
        if (!leave_stays_owed(e.kind())) throw;
        throw PluginError(ErrorKind::Failed, std::string("leaving Hostlo group ") + *group + " failed (" + e.what() +
                                                 "); brfusion-plugin retries it when it next reconciles");
    }
    return json::object();
}

bool Driver::leave_owed_group(const std::string& group) {
    std::lock_guard serial(hostlo_changes_);  // a RequestPool joining it again comes before or after, not between
    {
        std::lock_guard lock(mutex_);
        if (!state_.groups_to_leave.contains(group) || group_in_use_locked(group)) return false;
    }
    std::exception_ptr refused;  // for good: no longer owed
    try {
        shim_.leave_hostlo(group);
    } catch (const PluginError& e) {
        if (leave_stays_owed(e.kind())) throw;
        refused = std::current_exception();
    }
    {
        std::lock_guard lock(mutex_);
        state_.groups_to_leave.erase(group);
        save_locked();
    }
    if (refused) std::rethrow_exception(refused);
    return true;
}

json Driver::request_address(const json& body) {
    const auto request = body.get<RequestAddressRequest>();
    const auto type = request.options.find(kRequestAddressType);
    if (type != request.options.end() && type->second == kGatewayAddressType) {
        // The gateway is the host's, on the host network; it is not ours to allocate.
        for (const auto& pool : shim_.pools()) {
            if (pool.network != request.pool_id) continue;
            if (!request.address.empty() && request.address != pool.gateway)
                refuse("--gateway " + request.address + ": the gateway of host network " + pool.network + " is " + pool.gateway +
                       "; leave --gateway out");
            return {{"Address", pool.gateway + prefix_of(pool.subnet)}, {"Data", json::object()}};
        }
        throw PluginError(ErrorKind::NotFound, "host network " + request.pool_id + " is not available to this VM");
    }
    const std::optional<std::string> ip = request.address.empty() ? std::nullopt : std::optional(request.address);
    const guest::AddressInfo reserved = shim_.request_address(request.pool_id, ip);
    try {
        std::lock_guard lock(mutex_);
        state_.reservations.emplace(request.pool_id, reserved.ip);
        save_locked();
    } catch (...) {
        shim_.release_address(request.pool_id, reserved.ip);
        throw;
    }
    return {{"Address", reserved.ip + "/" + std::to_string(reserved.prefix_length)}, {"Data", json::object()}};
}

json Driver::release_address(const json& body) {
    const auto request = body.get<ReleaseAddressRequest>();
    const std::string ip = strip_prefix(request.address);
    {
        std::lock_guard lock(mutex_);
        // Not a reservation: the gateway, or the address of an endpoint, which the shim released
        // with its NIC (and may already have given to another request).
        if (!state_.reservations.contains({request.pool_id, ip})) return json::object();
    }
    shim_.release_address(request.pool_id, ip);
    std::lock_guard lock(mutex_);
    state_.reservations.erase({request.pool_id, ip});
    save_locked();
    return json::object();
}

// --- networks ---------------------------------------------------------------------------------

json Driver::create_network(const json& body) {
    const auto request = body.get<CreateNetworkRequest>();
    const NetworkOptions options = parse_network_options(request.options);
    if (options.ipv6 || !request.ipv6_data.empty()) refuse("IPv6 is not supported by brfusion yet; create the network without --ipv6");
    if (request.ipv4_data.size() != 1) refuse("a brfusion network has exactly one IPv4 subnet, its host network's; give at most one --subnet");
    const IpamData& ipam = request.ipv4_data.front();
    if (ipam.address_space != kLocalAddressSpace && ipam.address_space != kGlobalAddressSpace)
        refuse("brfusion networks take their addresses from the host, shared by every VM on the host network: create the network with "
               "--ipam-driver brfusion");
    const auto pools = shim_.pools();
    const auto pool = std::find_if(pools.begin(), pools.end(), [&](const auto& p) { return p.subnet == ipam.pool; });
    if (pool == pools.end())
        throw PluginError(ErrorKind::NotFound, "subnet " + ipam.pool + " is not the subnet of a host network this VM may use: " + describe(pools));
    const auto group = group_of_pool(pool->network);
    if (options.mode == NetworkMode::Hostlo && !group)
        refuse("-o mode=hostlo: Docker asks the IPAM driver for the subnet before it hands -o options to the network driver, so name the pod to "
               "brfusion's IPAM: add --ipam-opt group=" + options.group.value_or("POD"));
    if (group && options.group && *options.group != *group)
        refuse("-o group=" + *options.group + " but --ipam-opt group=" + *group + "; name the same pod in both, or leave -o group out");
    if (group && options.host_network)
        refuse("-o network=" + *options.host_network + " does not go with a Hostlo group (--ipam-opt group=" + *group +
               "): the group has no host network; give the container a second, regular brfusion network for that");
    if (options.host_network && *options.host_network != pool->network)
        refuse("-o network=" + *options.host_network + " but the addresses come from host network " + pool->network + " (" + pool->subnet +
               "); add --ipam-opt network=" + *options.host_network);
    const int mtu = options.mtu.value_or(pool->mtu);
    if (mtu > pool->mtu)
        refuse("-o com.docker.network.driver.mtu=" + std::to_string(mtu) + " exceeds the MTU of host network " + pool->network + " (" +
               std::to_string(pool->mtu) + ")");
    std::lock_guard lock(mutex_);
    // A Hostlo group has no gateway: Join disables Docker's gateway service for it.
    state_.networks[request.network_id] = {request.network_id, pool->network, options.internal || group ? "" : pool->gateway, mtu};
    if (group) state_.groups_joining.erase(*group);  // taken
    save_locked();
    return json::object();
}

json Driver::delete_network(const json& body) {
    const auto request = body.get<NetworkRequest>();
    if (const auto group = forget_network(request.network_id)) {  // a pool Docker released first: its leave waited for this
        try {
            leave_owed_group(*group);
        } catch (const PluginError&) {  // still owed (or a refusal that stands): the network goes all the same
        }
    }
    return json::object();
}

std::optional<std::string> Driver::forget_network(const std::string& id) {
    std::lock_guard lock(mutex_);
    if (!state_.networks.contains(id)) return std::nullopt;
    const auto group = forget_network_locked(id);
    save_locked();
    return group;
}

std::optional<std::string> Driver::forget_network_locked(const std::string& id) {
    const auto found = state_.networks.find(id);
    if (found == state_.networks.end()) return std::nullopt;
    const auto group = group_of_pool(found->second.host_network);
    state_.networks.erase(found);
    return group;
}

void Driver::owe_leave(const std::string& group) {
    try {
        {
            std::lock_guard lock(mutex_);
            if (!owe_leave_locked(group)) return;
            save_locked();
        }
        leave_owed_group(group);
    } catch (const std::exception&) {  // still owed, for the reconcile (or the state could not be saved)
    }
}

bool Driver::owe_leave_locked(const std::string& group) {
    if (group_in_use_locked(group)) return false;  // another network of ours has it
    state_.groups_joining.erase(group);
    state_.groups_to_leave.insert(group);
    return true;
}

// --- endpoints --------------------------------------------------------------------------------

json Driver::create_endpoint(const json& body) {
    const auto request = body.get<CreateEndpointRequest>();
    if (!request.interface.address_ipv6.empty()) refuse("IPv6 is not supported by brfusion yet; the endpoint asked for " + request.interface.address_ipv6);
    if (!request.interface.mac_address.empty())
        refuse("--mac-address " + request.interface.mac_address + " is not supported: the host gives each NIC its MAC");
    std::shared_lock nic_change(nic_changes_);
    NetworkRecord network;
    {
        std::lock_guard lock(mutex_);
        const auto found = state_.networks.find(request.network_id);
        if (found == state_.networks.end())
            throw PluginError(ErrorKind::NotFound, "network " + request.network_id + " is not known to brfusion-plugin; remove it (docker network rm) and "
                                                   "create it again");
        network = found->second;
        if (const auto existing = state_.endpoints.find(request.endpoint_id); existing != state_.endpoints.end()) {  // a retried call
            json interface = {{"MacAddress", existing->second.mac}};
            if (request.interface.address.empty()) interface["Address"] = existing->second.address;
            return {{"Interface", interface}};
        }
    }
    const std::optional<std::string> ip = request.interface.address.empty() ? std::nullopt : std::optional(strip_prefix(request.interface.address));
    const guest::AttachResult nic = shim_.attach(network.host_network, ip);
    EndpointRecord endpoint{request.endpoint_id, request.network_id, nic.endpoint, nic.mac, nic.ip + "/" + std::to_string(nic.prefix_length),
                            "bfc" + nic.endpoint.substr(0, 12), {}, nic.checksum_offload, {nic.guest_if, nic.pci}};
    try {
        std::lock_guard lock(mutex_);
        state_.endpoints[endpoint.id] = endpoint;
        state_.endpoints_unjoined[endpoint.id] = seconds_now();  // until its Join
        state_.reservations.erase({network.host_network, nic.ip});  // the NIC took the reservation over
        try {
            save_locked();
        } catch (...) {
            state_.endpoints.erase(endpoint.id);
            state_.endpoints_unjoined.erase(endpoint.id);
            throw;
        }
    } catch (...) {
        // The shim frees the address with the NIC; Docker's ReleaseAddress that follows finds no
        // reservation and leaves the shim alone.
        shim_.detach(nic.endpoint);
        throw;
    }
    json interface = {{"MacAddress", endpoint.mac}};
    if (request.interface.address.empty()) interface["Address"] = endpoint.address;  // only what Docker left empty
    return {{"Interface", interface}};
}

json Driver::endpoint_oper_info(const json& body) {
    const auto request = body.get<EndpointRequest>();
    std::lock_guard lock(mutex_);
    const auto found = state_.endpoints.find(request.endpoint_id);
    if (found == state_.endpoints.end()) return {{"Value", json::object()}};
    json ports = json::array();
    for (const auto& port : found->second.ports)
        ports.push_back(PortBinding{port.protocol == "udp" ? 17 : 6, strip_prefix(found->second.address), port.container_port,
                                    port.host_ip ? port.host_ip->str() : "0.0.0.0", port.host_port, port.host_port});
    return {{"Value", {{kMacAddressInfo, found->second.mac}, {kPortMap, ports}}}};
}

json Driver::delete_endpoint(const json& body) {
    const auto request = body.get<EndpointRequest>();
    // Already gone is success, as Docker expects.
    if (const auto failure = forget_endpoint(request.endpoint_id))
        throw PluginError(ErrorKind::Failed, "detaching the NIC of endpoint " + request.endpoint_id + " failed (" + *failure +
                                                 "); brfusion-plugin detaches it when it next reconciles, within seconds");
    return json::object();
}

std::optional<std::string> Driver::forget_endpoint(const std::string& id) {
    std::shared_lock nic_change(nic_changes_);
    std::string nic;
    {
        // Forgotten first: Docker forgets the endpoint whatever we answer (libnetwork only logs a
        // DeleteEndpoint error), so a NIC kept for it would belong to nobody.
        std::lock_guard lock(mutex_);
        const auto found = state_.endpoints.find(id);
        if (found == state_.endpoints.end()) return std::nullopt;
        nic = found->second.nic;
        state_.endpoints.erase(found);
        state_.endpoints_unjoined.erase(id);
        save_locked();
    }
    try {
        shim_.detach(nic);
        return std::nullopt;
    } catch (const std::exception& e) {
        orphans_owed_ = true;  // the reconcile detaches NICs no endpoint owns
        return e.what();
    }
}

json Driver::join(const json& body) {
    const auto request = body.get<JoinRequest>();
    EndpointRecord endpoint;
    NetworkRecord network;
    {
        std::lock_guard lock(mutex_);
        const auto found = state_.endpoints.find(request.endpoint_id);
        if (found == state_.endpoints.end())
            throw PluginError(ErrorKind::NotFound, "endpoint " + request.endpoint_id + " is not known to brfusion-plugin");
        endpoint = found->second;
        if (state_.endpoints_unjoined.erase(request.endpoint_id)) save_locked();  // Docker has it: a failed Join is followed by DeleteEndpoint
        const auto owner = state_.networks.find(endpoint.network_id);
        if (owner == state_.networks.end())
            throw PluginError(ErrorKind::NotFound, "network " + endpoint.network_id + " is not known to brfusion-plugin");
        network = owner->second;
    }
    // The host plugged the NIC before CreateEndpoint returned; a real VM's kernel may take a moment
    // to show it.
    const auto deadline = std::chrono::steady_clock::now() + options_.join_timeout;
    std::optional<LinkInfo> link;
    while (!(link = find_link_by_mac(links_, endpoint.mac, endpoint.hints))) {
        if (std::chrono::steady_clock::now() >= deadline)
            throw PluginError(ErrorKind::Failed, "the NIC " + endpoint.mac + " of endpoint " + request.endpoint_id.substr(0, 12) +
                                                     " did not appear in this VM within " +
                                                     std::to_string(options_.join_timeout.count()) + " ms (host NIC " + endpoint.nic +
                                                     "; on the host: brfusionctl nics)");
        std::this_thread::sleep_for(options_.poll_interval);
    }
    links_.prepare(link->index, {endpoint.interface, network.mtu, endpoint.checksum_offload});
    json answer = {{"InterfaceName", {{"SrcName", endpoint.interface}, {"DstPrefix", "eth"}}}, {"StaticRoutes", json::array()}};
    if (network.gateway.empty()) answer["DisableGatewayService"] = true;
    else answer["Gateway"] = network.gateway;
    return answer;
}

json Driver::leave(const json& body) {
    const auto request = body.get<EndpointRequest>();
    // The NIC stays with the endpoint until DeleteEndpoint, which Docker sends next; if that is
    // lost (the plugin died during it: Docker's retry has no body), the reconcile forgets the
    // endpoint after the grace.
    std::lock_guard lock(mutex_);
    if (!state_.endpoints.contains(request.endpoint_id)) return json::object();
    state_.endpoints_unjoined[request.endpoint_id] = seconds_now();
    save_locked();
    return json::object();
}

json Driver::program_external_connectivity(const json& body) {
    const auto request = body.get<EndpointRequest>();
    const auto ports = parse_port_map(request.options.contains(kPortMap) ? request.options[kPortMap] : json());
    std::string nic;
    {
        std::lock_guard lock(mutex_);
        const auto found = state_.endpoints.find(request.endpoint_id);
        if (found == state_.endpoints.end())
            throw PluginError(ErrorKind::NotFound, "endpoint " + request.endpoint_id + " is not known to brfusion-plugin");
        if (ports.empty() && found->second.ports.empty()) return json::object();
        nic = found->second.nic;
    }
    std::vector<guest::PortMapping> published;
    if (ports.empty()) shim_.unpublish(nic);
    else published = shim_.publish(nic, ports);
    std::lock_guard lock(mutex_);
    if (const auto found = state_.endpoints.find(request.endpoint_id); found != state_.endpoints.end()) {
        found->second.ports = published;
        save_locked();
    }
    return json::object();
}

json Driver::revoke_external_connectivity(const json& body) {
    const auto request = body.get<EndpointRequest>();
    std::string nic;
    {
        std::lock_guard lock(mutex_);
        const auto found = state_.endpoints.find(request.endpoint_id);
        if (found == state_.endpoints.end() || found->second.ports.empty()) return json::object();
        nic = found->second.nic;
    }
    shim_.unpublish(nic);
    std::lock_guard lock(mutex_);
    if (const auto found = state_.endpoints.find(request.endpoint_id); found != state_.endpoints.end()) {
        found->second.ports.clear();
        save_locked();
    }
    return json::object();
}

// --- reconcile --------------------------------------------------------------------------------

bool Driver::group_in_use_locked(const std::string& group) const {
    return std::any_of(state_.networks.begin(), state_.networks.end(),
                       [&](const auto& network) { return group_of_pool(network.second.host_network) == group; });
}

bool Driver::reconcile_pending() const {
    const auto expired = seconds_now() - options_.answer_grace.count();
    std::lock_guard lock(mutex_);
    const auto over = [&](const auto& waiting) { return waiting.second <= expired; };
    return orphans_owed_ ||
           std::any_of(state_.groups_to_leave.begin(), state_.groups_to_leave.end(), [&](const std::string& group) { return !group_in_use_locked(group); }) ||
           std::any_of(state_.endpoints_unjoined.begin(), state_.endpoints_unjoined.end(), over) ||
           std::any_of(state_.groups_joining.begin(), state_.groups_joining.end(), over) ||
           std::any_of(networks_missing_.begin(), networks_missing_.end(), over);
}

PluginReconcileReport Driver::reconcile() {
    const auto docker_networks = docker_ ? docker_->ids() : std::nullopt;
    std::unique_lock no_nic_change(nic_changes_);
    PluginReconcileReport report;
    const auto nics = shim_.list();
    std::map<std::string, std::string> owner;  // NIC -> endpoint
    {
        // An endpoint in no sandbox for the grace was lost by Docker (no Join after CreateEndpoint:
        // dockerd died before it stored the endpoint; no DeleteEndpoint after Leave: the plugin died
        // during it): forgotten, its NIC is an orphan.
        std::lock_guard lock(mutex_);
        report.endpoints_lost = take_expired(state_.endpoints_unjoined, options_.answer_grace);
        for (const auto& id : report.endpoints_lost) state_.endpoints.erase(id);
        if (!report.endpoints_lost.empty()) save_locked();
        for (const auto& [id, endpoint] : state_.endpoints) owner[endpoint.nic] = id;
    }
    std::set<std::string> present;
    for (const auto& nic : nics) {
        present.insert(nic.endpoint);
        if (owner.contains(nic.endpoint)) continue;
        shim_.detach(nic.endpoint);
        report.orphans_detached.push_back(nic.endpoint);
    }
    orphans_owed_ = false;  // every NIC no endpoint owns is detached (no detach runs meanwhile: nic_changes_)
    {
        std::lock_guard lock(mutex_);
        bool changed = false;
        for (auto& [id, endpoint] : state_.endpoints) {
            if (!present.contains(endpoint.nic)) {
                report.endpoints_without_nic.push_back(id);
                continue;
            }
            for (const auto& nic : nics)
                if (nic.endpoint == endpoint.nic && nic.ports != endpoint.ports) {
                    endpoint.ports = nic.ports;
                    changed = true;
                }
        }
        if (changed) save_locked();
    }
    forget_lost_networks(docker_networks, report);
    leave_groups(report);
    return report;
}

void Driver::forget_lost_networks(const std::optional<std::set<std::string>>& docker_networks, PluginReconcileReport& report) {
    if (!docker_networks) return;  // Docker cannot say now: nothing is concluded
    {
        std::lock_guard lock(mutex_);
        std::set<std::string> with_endpoints;
        for (const auto& [id, endpoint] : state_.endpoints) with_endpoints.insert(endpoint.network_id);
        std::erase_if(networks_missing_, [&](const auto& missing) { return !state_.networks.contains(missing.first); });
        const auto now = seconds_now();
        for (const auto& [id, network] : state_.networks) {
            if (docker_networks->contains(id) || with_endpoints.contains(id)) networks_missing_.erase(id);
            else networks_missing_.try_emplace(id, now);
        }
        report.networks_lost = take_expired(networks_missing_, options_.answer_grace);
        // As DeleteNetwork would: a Hostlo group no other network of ours uses is left (by
        // leave_groups, next).
        for (const auto& id : report.networks_lost)
            if (const auto group = forget_network_locked(id)) owe_leave_locked(*group);
        if (!report.networks_lost.empty()) save_locked();
    }
}

// After the orphan sweep: an orphan NIC on a group would make the shim refuse its leave.
void Driver::leave_groups(PluginReconcileReport& report) {
    std::set<std::string> to_leave;
    {
        // A group joined for a network Docker never created (dockerd died between RequestPool and
        // CreateNetwork) is left like one a ReleasePool failed to leave.
        std::lock_guard lock(mutex_);
        const auto never_created = take_expired(state_.groups_joining, options_.answer_grace);
        for (const auto& group : never_created)
            if (!group_in_use_locked(group)) state_.groups_to_leave.insert(group);
        if (!never_created.empty()) save_locked();
        to_leave = state_.groups_to_leave;
    }
    for (const auto& group : to_leave) {
        try {
            if (leave_owed_group(group)) report.groups_left.push_back(group);
        } catch (const PluginError& e) {
            if (e.kind() == ErrorKind::Unavailable || e.kind() == ErrorKind::Failed) throw;  // the next reconcile retries
            // A Conflict: a NIC is still on the group (one whose detach the shim has yet to
            // finish); the next reconcile, a second later, tries again. Other refusals were dropped.
        }
    }
}

}  // namespace brfusion::plugin
