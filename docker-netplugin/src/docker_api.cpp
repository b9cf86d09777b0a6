#include "brfusion/plugin/docker_api.hpp"

#include "brfusion/common/json_keys.hpp"

#include <stdexcept>
#include <type_traits>

namespace brfusion::plugin {

using nlohmann::json;

namespace {

void require_object(const json& j) {
    if (!j.is_object()) throw std::invalid_argument("the request body must be a JSON object");
}

// Docker omits empty fields in some versions and sends null in others: both read as "absent".
const json* find(const json& j, const char* name) {
    const auto it = j.find(name);
    return it == j.end() || it->is_null() ? nullptr : &*it;
}

template <typename T>
void get(const json& j, const char* name, T& out, bool required) {
    const json* value = find(j, name);
    if (!value) {
        if (required) throw std::invalid_argument("missing field '" + std::string(name) + "'");
        return;
    }
    if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
        if (!fits_integer<T>(*value))
            throw std::invalid_argument("field '" + std::string(name) + "' must be an integer from " + std::to_string(std::numeric_limits<T>::min()) +
                                        " to " + std::to_string(std::numeric_limits<T>::max()) + ", not " + value->dump());
    }
    try {
        out = value->get<T>();
    } catch (const json::exception&) {
        throw std::invalid_argument("field '" + std::string(name) + "' has the wrong type: " + value->dump());
    }
}

void get_object(const json& j, const char* name, json& out) {
    const json* value = find(j, name);
    if (!value) return;
    if (!value->is_object()) throw std::invalid_argument("field '" + std::string(name) + "' must be an object");
    out = *value;
}

}  // namespace

void from_json(const json& j, IpamData& d) {
    require_object(j);
    get(j, "AddressSpace", d.address_space, false);
    get(j, "Pool", d.pool, true);
    get(j, "Gateway", d.gateway, false);
}

void from_json(const json& j, CreateNetworkRequest& r) {
    require_object(j);
    get(j, "NetworkID", r.network_id, true);
    get_object(j, "Options", r.options);
    get(j, "IPv4Data", r.ipv4_data, false);
    get(j, "IPv6Data", r.ipv6_data, false);
}

void from_json(const json& j, NetworkRequest& r) {
    require_object(j);
    get(j, "NetworkID", r.network_id, true);
}

void from_json(const json& j, EndpointInterface& i) {
    require_object(j);
    get(j, "Address", i.address, false);
    get(j, "AddressIPv6", i.address_ipv6, false);
    get(j, "MacAddress", i.mac_address, false);
}

void from_json(const json& j, CreateEndpointRequest& r) {
    require_object(j);
    get(j, "NetworkID", r.network_id, true);
    get(j, "EndpointID", r.endpoint_id, true);
    get(j, "Interface", r.interface, false);
    get_object(j, "Options", r.options);
}

void from_json(const json& j, EndpointRequest& r) {
    require_object(j);
    get(j, "NetworkID", r.network_id, true);
    get(j, "EndpointID", r.endpoint_id, true);
    get_object(j, "Options", r.options);
}

void from_json(const json& j, JoinRequest& r) {
    require_object(j);
    get(j, "NetworkID", r.network_id, true);
    get(j, "EndpointID", r.endpoint_id, true);
    get(j, "SandboxKey", r.sandbox_key, false);
    get_object(j, "Options", r.options);
}

void from_json(const json& j, PortBinding& b) {
    require_object(j);
    get(j, "Proto", b.proto, true);
    get(j, "IP", b.ip, false);
    get(j, "Port", b.port, true);
    get(j, "HostIP", b.host_ip, false);
    get(j, "HostPort", b.host_port, false);
    get(j, "HostPortEnd", b.host_port_end, false);
}

void to_json(json& j, const PortBinding& b) {
    j = {{"Proto", b.proto}, {"IP", b.ip}, {"Port", b.port}, {"HostIP", b.host_ip}, {"HostPort", b.host_port}, {"HostPortEnd", b.host_port_end}};
}

void from_json(const json& j, RequestPoolRequest& r) {
    require_object(j);
    get(j, "AddressSpace", r.address_space, false);
    get(j, "Pool", r.pool, false);
    get(j, "SubPool", r.sub_pool, false);
    get(j, "Options", r.options, false);
    get(j, "V6", r.v6, false);
}

void from_json(const json& j, ReleasePoolRequest& r) {
    require_object(j);
    get(j, "PoolID", r.pool_id, true);
}

void from_json(const json& j, RequestAddressRequest& r) {
    require_object(j);
    get(j, "PoolID", r.pool_id, true);
    get(j, "Address", r.address, false);
    get(j, "Options", r.options, false);
}

void from_json(const json& j, ReleaseAddressRequest& r) {
    require_object(j);
    get(j, "PoolID", r.pool_id, true);
    get(j, "Address", r.address, true);
}

}  // namespace brfusion::plugin
