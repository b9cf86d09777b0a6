#include "brfusion/common/guest_protocol.hpp"

#include "brfusion/common/json_keys.hpp"
#include "brfusion/common/json_stream.hpp"
#include "brfusion/common/names.hpp"

#include <cstdint>
#include <limits>
#include <stdexcept>
#include <type_traits>
#include <utility>

namespace brfusion::guest {

using nlohmann::json;

namespace {

constexpr std::string_view kHostloPrefix = "hostlo:";


// Params: refuses fields the message type does not have, so that a typo is an error, not ignored.
void only(const json& j, std::initializer_list<const char*> fields) {
    if (!j.is_object()) throw std::invalid_argument("params must be a JSON object");
    if (auto key = unknown_key(j, fields)) throw std::invalid_argument("unknown field " + printable(*key));
}

// Results: a newer shim may add fields, which an older plugin ignores.
void result_object(const json& j) {
    if (!j.is_object()) throw std::invalid_argument("a result must be a JSON object");
}

// An integer field takes only a JSON integer that fits (fits_integer).
template <typename T>
void field(const json& j, const char* name, T& out) {
    auto found = j.find(name);
    if (found == j.end()) throw std::invalid_argument(std::string("missing field '") + name + "'");
    if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
        if (!fits_integer<T>(*found))
            throw std::invalid_argument(std::string("field '") + name + "' must be an integer from " + std::to_string(std::numeric_limits<T>::min()) +
                                        " to " + std::to_string(std::numeric_limits<T>::max()));
    }
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

// Typed values travel as strings; each reader says what form it wants.
template <typename T>
T parsed(const json& j, const char* name, std::optional<T> (*parse)(std::string_view), const char* form) {
    std::string text;
    field(j, name, text);
    auto value = parse(text);
    if (!value) throw std::invalid_argument(std::string("field '") + name + "': " + printable(text) + " is not " + form);
    return *value;
}

template <typename T>
void optional_parsed(const json& j, const char* name, std::optional<T>& out, std::optional<T> (*parse)(std::string_view), const char* form) {
    if (j.contains(name) && !j[name].is_null()) out = parsed(j, name, parse, form);
}

std::optional<Ipv4> ipv4(std::string_view text) { return Ipv4::parse(text); }
std::optional<Ipv4Prefix> ipv4_prefix(std::string_view text) { return Ipv4Prefix::parse(text); }
std::optional<std::string> name(std::string_view text) {
    std::string value(text);
    return is_valid_name(value) ? std::optional(std::move(value)) : std::nullopt;
}
std::optional<std::string> endpoint_id(std::string_view text) { return is_endpoint_id(text) ? std::optional(std::string(text)) : std::nullopt; }

constexpr const char* kIpv4Form = "an IPv4 address (dotted decimal)";
constexpr const char* kPrefixForm = "an IPv4 prefix with zero host bits (like 100.127.0.16/28)";
constexpr const char* kNameForm = "a name (1-64 characters of [A-Za-z0-9._-])";
constexpr const char* kNetworkForm = "a network (a host network's name, or hostlo:GROUP)";
constexpr const char* kEndpointForm = "an endpoint id (12 lowercase hex digits)";

}  // namespace

std::optional<NetworkRef> NetworkRef::parse(std::string_view wire) {
    const bool hostlo = wire.starts_with(kHostloPrefix);
    std::string named(hostlo ? wire.substr(kHostloPrefix.size()) : wire);
    if (!is_valid_name(named)) return std::nullopt;
    return NetworkRef{hostlo ? Kind::HostloGroup : Kind::HostNetwork, std::move(named)};
}

std::string printable(std::string_view text) {
    std::string shown;
    for (const char c : text.substr(0, 64)) shown += static_cast<unsigned char>(c) < 0x20 || c == 0x7f ? '?' : c;
    return "'" + shown + (text.size() > 64 ? "...'" : "'");
}

std::string NetworkRef::wire() const { return is_hostlo() ? std::string(kHostloPrefix) + name : name; }

void from_json(const json& j, NetworkRef& r) {
    if (!j.is_string()) throw std::invalid_argument("a network must be a string");
    auto ref = NetworkRef::parse(j.get<std::string>());
    if (!ref) throw std::invalid_argument(printable(j.get<std::string>()) + " is not " + kNetworkForm);
    r = std::move(*ref);
}
void to_json(json& j, const NetworkRef& r) { j = r.wire(); }

bool is_endpoint_id(std::string_view id) {
    return id.size() == kEndpointIdLength && id.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

void from_json(const json& j, AttachParams& p) {
    only(j, {"network", "ip"});
    p.network = parsed(j, "network", NetworkRef::parse, kNetworkForm);
    optional_parsed(j, "ip", p.ip, ipv4, kIpv4Form);
}
void to_json(json& j, const AttachParams& p) {
    j = {{"network", p.network.wire()}};
    if (p.ip) j["ip"] = p.ip->str();
}

void from_json(const json& j, AttachResult& r) {
    result_object(j);
    field(j, "endpoint", r.endpoint);
    field(j, "mac", r.mac);
    field(j, "guest_if", r.guest_if);
    field(j, "ip", r.ip);
    field(j, "prefix_length", r.prefix_length);
    field(j, "gateway", r.gateway);
    field(j, "mtu", r.mtu);
    if (j.contains("pci")) field(j, "pci", r.pci);  // older shims do not send it
    if (j.contains("checksum_offload")) field(j, "checksum_offload", r.checksum_offload);  // nor this
}
void to_json(json& j, const AttachResult& r) {
    j = {{"endpoint", r.endpoint}, {"mac", r.mac}, {"guest_if", r.guest_if}, {"ip", r.ip}, {"prefix_length", r.prefix_length},
         {"gateway", r.gateway}, {"mtu", r.mtu}, {"pci", r.pci}, {"checksum_offload", r.checksum_offload}};
}

void from_json(const json& j, DetachParams& p) {
    only(j, {"endpoint"});
    p.endpoint = parsed(j, "endpoint", endpoint_id, kEndpointForm);
}
void to_json(json& j, const DetachParams& p) { j = {{"endpoint", p.endpoint}}; }

void from_json(const json& j, PortMapping& p) {
    only(j, {"protocol", "host_ip", "host_port", "host_port_end", "container_port"});
    field(j, "protocol", p.protocol);
    if (p.protocol != "tcp" && p.protocol != "udp") throw std::invalid_argument("protocol " + printable(p.protocol) + " is not tcp or udp");
    optional_parsed(j, "host_ip", p.host_ip, ipv4, kIpv4Form);
    field(j, "host_port", p.host_port);
    if (p.host_port < 0 || p.host_port > 65535) throw std::invalid_argument("host_port " + std::to_string(p.host_port) + " is not 0-65535");
    if (j.contains("host_port_end")) field(j, "host_port_end", p.host_port_end);
    if (p.host_port_end != 0 && (p.host_port < 1 || p.host_port_end <= p.host_port || p.host_port_end > 65535))
        throw std::invalid_argument("host_port_end " + std::to_string(p.host_port_end) + " does not end a range after host_port " +
                                    std::to_string(p.host_port) + " (host_port 1-65534, host_port_end above it, at most 65535; 0: no range)");
    field(j, "container_port", p.container_port);
    if (p.container_port < 1 || p.container_port > 65535)
        throw std::invalid_argument("container_port " + std::to_string(p.container_port) + " is not 1-65535");
}
void to_json(json& j, const PortMapping& p) {
    j = {{"protocol", p.protocol}, {"host_port", p.host_port}, {"container_port", p.container_port}};
    if (p.host_ip) j["host_ip"] = p.host_ip->str();
    if (p.host_port_end != 0) j["host_port_end"] = p.host_port_end;
}

void from_json(const json& j, PublishParams& p) {
    only(j, {"endpoint", "ports"});
    p.endpoint = parsed(j, "endpoint", endpoint_id, kEndpointForm);
    if (j.contains("ports") && j["ports"].is_array() && j["ports"].size() > kMaxPortsPerRequest)
        throw std::invalid_argument("field 'ports' lists " + std::to_string(j["ports"].size()) + " mappings; at most " +
                                    std::to_string(kMaxPortsPerRequest) + " per request");
    field(j, "ports", p.ports);
}
void to_json(json& j, const PublishParams& p) { j = {{"endpoint", p.endpoint}, {"ports", p.ports}}; }

void from_json(const json& j, PublishResult& r) {
    result_object(j);
    field(j, "ports", r.ports);
}
void to_json(json& j, const PublishResult& r) { j = {{"ports", r.ports}}; }

void from_json(const json& j, NicInfo& n) {
    result_object(j);
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
    p.network = parsed(j, "network", NetworkRef::parse, kNetworkForm);
}
void to_json(json& j, const PoolParams& p) { j = {{"network", p.network.wire()}}; }

void from_json(const json& j, PoolInfo& p) {
    result_object(j);
    field(j, "network", p.network);
    field(j, "subnet", p.subnet);
    field(j, "gateway", p.gateway);
    field(j, "mtu", p.mtu);
}
void to_json(json& j, const PoolInfo& p) { j = {{"network", p.network}, {"subnet", p.subnet}, {"gateway", p.gateway}, {"mtu", p.mtu}}; }

void from_json(const json& j, AddressParams& p) {
    only(j, {"network", "ip"});
    p.network = parsed(j, "network", NetworkRef::parse, kNetworkForm);
    optional_parsed(j, "ip", p.ip, ipv4, kIpv4Form);
}
void to_json(json& j, const AddressParams& p) {
    j = {{"network", p.network.wire()}};
    if (p.ip) j["ip"] = p.ip->str();
}

void from_json(const json& j, HostloParams& p) {
    only(j, {"group", "subnet"});
    p.group = parsed(j, "group", name, kNameForm);
    optional_parsed(j, "subnet", p.subnet, ipv4_prefix, kPrefixForm);
}
void to_json(json& j, const HostloParams& p) {
    j = {{"group", p.group}};
    if (p.subnet) j["subnet"] = p.subnet->str();
}

void from_json(const json& j, AddressInfo& a) {
    result_object(j);
    field(j, "ip", a.ip);
    field(j, "prefix_length", a.prefix_length);
    field(j, "gateway", a.gateway);
}
void to_json(json& j, const AddressInfo& a) { j = {{"ip", a.ip}, {"prefix_length", a.prefix_length}, {"gateway", a.gateway}}; }

ParsedLine parse_request_line(std::string_view line) {
    if (line.size() > kMaxLineBytes)
        return {std::nullopt, make_error(nullptr, kInvalidRequest, "a line exceeds " + std::to_string(kMaxLineBytes) + " bytes")};
    std::string why;
    const auto message = parse_json_bounded(line, kMaxDepth, why);
    if (!message) return {std::nullopt, make_error(nullptr, kParseError, "a line was refused: " + why)};
    const json id = message->is_object() && message->contains("id") ? (*message)["id"] : json();
    const bool id_ok = id.is_null() || id.is_number() || (id.is_string() && id.get_ref<const std::string&>().size() <= kMaxIdBytes);
    if (!id_ok) return {std::nullopt, make_error(nullptr, kInvalidRequest, "a request's id must be a number or a string of at most 64 bytes")};
    const auto method = message->is_object() ? message->find("method") : message->end();
    if (!message->is_object() || message->value("jsonrpc", json()) != "2.0" || method == message->end() || !method->is_string())
        return {std::nullopt, make_error(id, kInvalidRequest, "not a JSON-RPC 2.0 request (needs jsonrpc \"2.0\", a method and an id)")};
    if (auto key = unknown_key(*message, {"jsonrpc", "method", "params", "id"}))
        return {std::nullopt, make_error(id, kInvalidRequest, "a request has no member " + printable(*key))};
    json params = message->value("params", json::object());
    if (!params.is_object()) return {std::nullopt, make_error(id, kInvalidParams, "params must be a JSON object")};
    return {Request{method->get<std::string>(), std::move(params), id, !message->contains("id")}, json()};
}

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
