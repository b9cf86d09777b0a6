#include "brfusion/shim/guest_api.hpp"

#include "brfusion/common/guest_protocol.hpp"
#include "brfusion/shim/wire.hpp"

#include <functional>
#include <map>

namespace brfusion::shim {

using nlohmann::json;

namespace {

using Handler = std::function<json(NicManager&, const std::string& vm, const json& params)>;

json attach(NicManager& nics, const std::string& vm, const json& params) {
    const auto p = params.get<guest::AttachParams>();
    const AttachedNic nic = nics.attach(vm, p.network, p.ip);
    return guest::AttachResult{nic.endpoint, nic.mac, nic.guest_if, nic.ip.str(), nic.prefix_length, nic.gateway.str(), nic.mtu, nic.pci,
                               nic.checksum_offload};
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
            result.push_back({nic.endpoint, nic.network.wire(), nic.mac, nic.ip.str(), phase_name(nic.phase), nic.published});
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
    const Ipv4 ip = nics.reserve_address(vm, p.network, p.ip);
    const HostNetwork network = nics.allowed_network(vm, p.network);
    return guest::AddressInfo{ip.str(), network.subnet.length, network.gateway.str()};
}

json release_address(NicManager& nics, const std::string& vm, const json& params) {
    const auto p = params.get<guest::AddressParams>();
    if (!p.ip) throw std::invalid_argument("missing field 'ip'");
    nics.release_address(vm, p.network, *p.ip);
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
    return pool_info(nics.join_hostlo(vm, p.group, p.subnet));
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

std::optional<json> handle_guest_request(NicManager& nics, const std::string& vm, const guest::Request& request) {
    const auto route = routes().find(request.method);
    json response;
    if (route == routes().end()) {
        std::string known;
        for (const auto& [name, handler] : routes()) known += (known.empty() ? "" : ", ") + name;
        response = guest::make_error(request.id, guest::kMethodNotFound, "unknown method " + guest::printable(request.method) + " (known: " + known + ")");
    } else {
        try {
            response = guest::make_result(request.id, route->second(nics, vm, request.params));
        } catch (const ShimError& e) {
            response = guest::make_error(request.id, jsonrpc_code(e.kind()), e.what(), kind_name(e.kind()));
        } catch (const std::exception& e) {  // malformed params (from_json)
            response = guest::make_error(request.id, guest::kInvalidParams, request.method + ": " + e.what(), kind_name(ErrorKind::BadRequest));
        }
    }
    if (request.notification) return std::nullopt;
    return response;
}

std::optional<json> handle_guest_line(NicManager& nics, const std::string& vm, std::string_view line) {
    guest::ParsedLine parsed = guest::parse_request_line(line);
    if (!parsed.request) return std::move(parsed.error);
    return handle_guest_request(nics, vm, *parsed.request);
}

}  // namespace brfusion::shim
