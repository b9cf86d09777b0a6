#include "brfusion/common/guest_protocol.hpp"

#include "brfusion/common/json_keys.hpp"

#include <stdexcept>

#include <arpa/inet.h>

namespace brfusion::guest {

using nlohmann::json;

namespace {

// Refuses fields the message type does not have, so that a typo is an error, not ignored.
void only(const json& j, std::initializer_list<const char*> fields) {
    if (!j.is_object()) throw std::invalid_argument("params must be a JSON object");
    if (auto key = unknown_key(j, fields)) throw std::invalid_argument("unknown field '" + *key + "'");
}

template <typename T>
void field(const json& j, const char* name, T& out) {
    auto found = j.find(name);
    if (found == j.end()) throw std::invalid_argument(std::string("missing field '") + name + "'");
    try {
        out = found->get<T>();
    } catch (const json::exception&) {
        throw std::invalid_argument(std::string("field '") + name + "' has the wrong type");
    }
}

template <typename T>
void optional_field(const json& j, const char* name, std::optional<T>& out) {
    if (j.contains(name) && !j[name].is_null()) {
        T value;
        field(j, name, value);
        out = std::move(value);
    }
}

}  // namespace

void from_json(const json& j, AttachParams& p) {
    only(j, {"network", "ip"});
    field(j, "network", p.network);
    optional_field(j, "ip", p.ip);
}
void to_json(json& j, const AttachParams& p) {
    j = {{"network", p.network}};
    if (p.ip) j["ip"] = *p.ip;
}

void from_json(const json& j, AttachResult& r) {
    only(j, {"endpoint", "mac", "guest_if", "ip", "prefix_length", "gateway", "mtu", "pci"});
    field(j, "endpoint", r.endpoint);
    field(j, "mac", r.mac);
    field(j, "guest_if", r.guest_if);
    field(j, "ip", r.ip);
    field(j, "prefix_length", r.prefix_length);
    field(j, "gateway", r.gateway);
    field(j, "mtu", r.mtu);
    if (j.contains("pci")) field(j, "pci", r.pci);  // older shims do not send it
}
void to_json(json& j, const AttachResult& r) {
    j = {{"endpoint", r.endpoint}, {"mac", r.mac}, {"guest_if", r.guest_if}, {"ip", r.ip},
         {"prefix_length", r.prefix_length}, {"gateway", r.gateway}, {"mtu", r.mtu}, {"pci", r.pci}};
}

void from_json(const json& j, DetachParams& p) {
    only(j, {"endpoint"});
    field(j, "endpoint", p.endpoint);
}
void to_json(json& j, const DetachParams& p) { j = {{"endpoint", p.endpoint}}; }

void from_json(const json& j, PortMapping& p) {
    only(j, {"protocol", "host_ip", "host_port", "container_port"});
    field(j, "protocol", p.protocol);
    if (p.protocol != "tcp" && p.protocol != "udp") throw std::invalid_argument("protocol '" + p.protocol + "' is not tcp or udp");
    optional_field(j, "host_ip", p.host_ip);
    in_addr address{};
    if (p.host_ip && ::inet_pton(AF_INET, p.host_ip->c_str(), &address) != 1)
        throw std::invalid_argument("host_ip '" + *p.host_ip + "' is not an IPv4 address");
    field(j, "host_port", p.host_port);
    if (p.host_port < 0 || p.host_port > 65535) throw std::invalid_argument("host_port " + std::to_string(p.host_port) + " is not 0-65535");
    field(j, "container_port", p.container_port);
    if (p.container_port < 1 || p.container_port > 65535)
        throw std::invalid_argument("container_port " + std::to_string(p.container_port) + " is not 1-65535");
}
void to_json(json& j, const PortMapping& p) {
    j = {{"protocol", p.protocol}, {"host_port", p.host_port}, {"container_port", p.container_port}};
    if (p.host_ip) j["host_ip"] = *p.host_ip;
}

void from_json(const json& j, PublishParams& p) {
    only(j, {"endpoint", "ports"});
    field(j, "endpoint", p.endpoint);
    field(j, "ports", p.ports);
}
void to_json(json& j, const PublishParams& p) { j = {{"endpoint", p.endpoint}, {"ports", p.ports}}; }

void from_json(const json& j, PublishResult& r) {
    only(j, {"ports"});
    field(j, "ports", r.ports);
}
void to_json(json& j, const PublishResult& r) { j = {{"ports", r.ports}}; }

void from_json(const json& j, NicInfo& n) {
    only(j, {"endpoint", "network", "mac", "ip", "state", "ports"});
    field(j, "endpoint", n.endpoint);
    field(j, "network", n.network);
    field(j, "mac", n.mac);
    field(j, "ip", n.ip);
    field(j, "state", n.state);
    field(j, "ports", n.ports);
}
void to_json(json& j, const NicInfo& n) {
    j = {{"endpoint", n.endpoint}, {"network", n.network}, {"mac", n.mac}, {"ip", n.ip}, {"state", n.state}, {"ports", n.ports}};
}

void from_json(const json& j, PoolParams& p) {
    only(j, {"network"});
    field(j, "network", p.network);
}
void to_json(json& j, const PoolParams& p) { j = {{"network", p.network}}; }

void from_json(const json& j, PoolInfo& p) {
    only(j, {"network", "subnet", "gateway", "mtu"});
    field(j, "network", p.network);
    field(j, "subnet", p.subnet);
    field(j, "gateway", p.gateway);
    field(j, "mtu", p.mtu);
}
void to_json(json& j, const PoolInfo& p) { j = {{"network", p.network}, {"subnet", p.subnet}, {"gateway", p.gateway}, {"mtu", p.mtu}}; }

void from_json(const json& j, AddressParams& p) {
    only(j, {"network", "ip"});
    field(j, "network", p.network);
    optional_field(j, "ip", p.ip);
}
void to_json(json& j, const AddressParams& p) {
    j = {{"network", p.network}};
    if (p.ip) j["ip"] = *p.ip;
}

void from_json(const json& j, HostloParams& p) {
    only(j, {"group", "subnet"});
    field(j, "group", p.group);
    optional_field(j, "subnet", p.subnet);
}
void to_json(json& j, const HostloParams& p) {
    j = {{"group", p.group}};
    if (p.subnet) j["subnet"] = *p.subnet;
}

void from_json(const json& j, AddressInfo& a) {
    only(j, {"ip", "prefix_length", "gateway"});
    field(j, "ip", a.ip);
    field(j, "prefix_length", a.prefix_length);
    field(j, "gateway", a.gateway);
}
void to_json(json& j, const AddressInfo& a) { j = {{"ip", a.ip}, {"prefix_length", a.prefix_length}, {"gateway", a.gateway}}; }

json make_request(const json& id, const std::string& method, json params) {
    return {{"jsonrpc", "2.0"}, {"id", id}, {"method", method}, {"params", std::move(params)}};
}

json make_result(const json& id, json result) { return {{"jsonrpc", "2.0"}, {"id", id}, {"result", std::move(result)}}; }

json make_error(const json& id, int code, const std::string& message, const std::string& kind) {
    json error = {{"code", code}, {"message", message}};
    if (!kind.empty()) error["data"] = {{"kind", kind}};
    return {{"jsonrpc", "2.0"}, {"id", id}, {"error", std::move(error)}};
}

}  // namespace brfusion::guest
