#include "brfusion/shim/guest_api.hpp"

#include "brfusion/common/guest_protocol.hpp"
#include "brfusion/shim/wire.hpp"

#include <functional>
#include <map>

namespace brfusion::shim {

using nlohmann::json;

namespace {

using Handler = std::function<json(NicManager&, const std::string& vm, const json& params)>;

std::optional<Ipv4> address_of(const std::optional<std::string>& text) {
    if (!text) return std::nullopt;
    auto ip = Ipv4::parse(*text);
    if (!ip) throw ShimError(ErrorKind::BadRequest, "'" + *text + "' is not an IPv4 address");
    return ip;
}

json attach(NicManager& nics, const std::string& vm, const json& params) {
    const auto p = params.get<guest::AttachParams>();
    const AttachedNic nic = nics.attach(vm, p.network, address_of(p.ip));
    return guest::AttachResult{nic.endpoint, nic.mac, nic.guest_if, nic.ip.str(), nic.prefix_length, nic.gateway.str(), nic.mtu, nic.pci};
}

json detach(NicManager& nics, const std::string& vm, const json& params) {
    nics.detach(vm, params.get<guest::DetachParams>().endpoint);
    return json::object();
}

json list(NicManager& nics, const std::string& vm, const json& params) {
    if (!params.empty()) throw std::invalid_argument("nic.list takes no params");
    std::vector<guest::NicInfo> result;
    for (const auto& nic : nics.nics(vm))
        if (!nic.spare)  // the host's, until an attach claims it
            result.push_back({nic.endpoint, nic.network, nic.mac, nic.ip.str(), phase_name(nic.phase), nic.published});
    return {{"nics", result}};
}

guest::PoolInfo pool_info(const HostNetwork& network) { return {network.name, network.subnet.str(), network.gateway.str(), network.mtu}; }

json pool(NicManager& nics, const std::string& vm, const json& params) {
    return pool_info(nics.allowed_network(vm, params.get<guest::PoolParams>().network));
}

json pools(NicManager& nics, const std::string& vm, const json& params) {
    if (!params.empty()) throw std::invalid_argument("ipam.pools takes no params");
    std::vector<guest::PoolInfo> result;
    for (const auto& network : nics.allowed_networks(vm)) result.push_back(pool_info(network));
    return {{"pools", result}};
}

json request_address(NicManager& nics, const std::string& vm, const json& params) {
    const auto p = params.get<guest::AddressParams>();
    const Ipv4 ip = nics.reserve_address(vm, p.network, address_of(p.ip));
    const HostNetwork network = nics.allowed_network(vm, p.network);
    return guest::AddressInfo{ip.str(), network.subnet.length, network.gateway.str()};
}

json release_address(NicManager& nics, const std::string& vm, const json& params) {
    const auto p = params.get<guest::AddressParams>();
    if (!p.ip) throw std::invalid_argument("missing field 'ip'");
    nics.release_address(vm, p.network, *address_of(p.ip));
    return json::object();
}

json publish(NicManager& nics, const std::string& vm, const json& params) {
    auto p = params.get<guest::PublishParams>();
    return guest::PublishResult{nics.publish(vm, p.endpoint, std::move(p.ports))};
}

json unpublish(NicManager& nics, const std::string& vm, const json& params) {
    nics.unpublish(vm, params.get<guest::UnpublishParams>().endpoint);
    return json::object();
}

json join_hostlo(NicManager& nics, const std::string& vm, const json& params) {
    const auto p = params.get<guest::HostloParams>();
    std::optional<Ipv4Prefix> subnet;
    if (p.subnet && !(subnet = Ipv4Prefix::parse(*p.subnet)))
        throw ShimError(ErrorKind::BadRequest, "'" + *p.subnet + "' is not an IPv4 prefix with zero host bits (like 100.127.0.16/28)");
    return pool_info(nics.join_hostlo(vm, p.group, subnet));
}

json leave_hostlo(NicManager& nics, const std::string& vm, const json& params) {
    const auto p = params.get<guest::HostloParams>();
    if (p.subnet) throw std::invalid_argument("hostlo.leave takes no subnet");
    nics.leave_hostlo(vm, p.group);
    return json::object();
}

const std::map<std::string, Handler>& routes() {
    static const std::map<std::string, Handler> table = {
        {guest::kAttach, attach},
        {guest::kDetach, detach},
        {guest::kList, list},
        {guest::kPool, pool},
        {guest::kPools, pools},
        {guest::kRequestAddress, request_address},
        {guest::kReleaseAddress, release_address},
        {guest::kPublish, publish},
        {guest::kUnpublish, unpublish},
        {guest::kHostloJoin, join_hostlo},
        {guest::kHostloLeave, leave_hostlo},
    };
    return table;
}

}  // namespace

std::optional<json> handle_guest_message(NicManager& nics, const std::string& vm, const json& message) {
    const bool is_request = message.is_object() && message.contains("id");
    const json id = is_request ? message["id"] : json();
    if (!message.is_object() || message.value("jsonrpc", "") != "2.0" || !message.contains("method") || !message["method"].is_string() ||
        (id.is_object() || id.is_array() || id.is_boolean()))
        return guest::make_error(id, guest::kInvalidRequest, "not a JSON-RPC 2.0 request (needs jsonrpc \"2.0\", a method and an id)");
    const std::string method = message["method"];
    const auto route = routes().find(method);
    json response;
    if (route == routes().end()) {
        std::string known;
        for (const auto& [name, handler] : routes()) known += (known.empty() ? "" : ", ") + name;
        response = guest::make_error(id, guest::kMethodNotFound, "unknown method '" + method + "' (known: " + known + ")");
    } else {
        try {
            response = guest::make_result(id, route->second(nics, vm, message.value("params", json::object())));
        } catch (const ShimError& e) {
            response = guest::make_error(id, jsonrpc_code(e.kind()), e.what(), kind_name(e.kind()));
        } catch (const std::exception& e) {  // malformed params (from_json)
            response = guest::make_error(id, guest::kInvalidParams, method + ": " + e.what(), kind_name(ErrorKind::BadRequest));
        }
    }
    if (!is_request) return std::nullopt;
    return response;
}

}  // namespace brfusion::shim
