#pragma once
// The guest channel: how brfusion-plugin (in a VM) talks to brfusion-shim (on the host).
//
// Transport: one byte stream per VM (a unix socket for netns VMs; virtio-serial port
// org.brfusion.shim.0 or AF_VSOCK for real VMs). The VM's identity is the stream it speaks on,
// never a field of a request.
// Framing: newline-delimited JSON; one JSON-RPC 2.0 message per line. Several requests may be in
// flight; responses carry the request's id and may come in any order.
// Errors: JSON-RPC error objects; `message` is for the user (the plugin shows it to docker as
// is), `data.kind` names the class (bad-request, not-allowed, not-found, conflict, exhausted,
// backend).
//
// Limits (the shim holds a guest to them; see kMaxLineBytes and below): one message per line of at
// most 1 MiB, nesting at most 8 objects and arrays; every string field has its format (names of
// 1-64 [A-Za-z0-9._-], endpoint ids of 12 lowercase hex digits, dotted-decimal IPv4, tcp|udp) and
// anything else is refused with the field's name; a request's id is a number or a string of at
// most 64 bytes. A line that breaks a limit gets an error response naming it; the channel goes on.
//
// Methods (params and result are JSON objects; unknown fields of params are refused; a result may
// carry fields that a plugin older than the shim does not know, and it ignores them):
//   nic.attach  {network, ip?}  -> AttachResult   a NIC on host network `network` for this VM
//   nic.detach  {endpoint}      -> {}             idempotent; only this VM's NICs
//   nic.list    {}              -> {nics: [NicInfo]}   this VM's NICs
//   ipam.pool   {network}       -> PoolInfo       the host network's subnet, gateway and MTU
//   ipam.pools  {}              -> {pools: [PoolInfo]}  every host network this VM may use
//   ipam.request {network, ip?} -> AddressInfo    reserve an address for this VM before its NIC
//                                  exists (Docker's RequestAddress); nic.attach {ip} takes it over
//   ipam.release {network, ip}  -> {}             give back this VM's reservation; idempotent
//   nic.publish {endpoint, ports: [PortMapping]} -> {ports: [PortMapping]}
//                                  the endpoint's published ports become exactly `ports` (host_port
//                                  0: the shim picks one; the result says which); only this VM's NICs
//   nic.unpublish {endpoint}    -> {}             no published ports; idempotent
//   hostlo.join {group, subnet?} -> PoolInfo      this VM joins Hostlo group `group` (the first
//                                  member creates it, with `subnet` or one the host picks); the pool
//                                  is network "hostlo:GROUP", whose NICs nic.attach makes as usual.
//                                  Its gateway is held back and answers nothing: disable it
//   hostlo.leave {group}        -> {}             this VM leaves (the last member removes the
//                                  group); idempotent; refused while the VM has its NIC on it

#include "brfusion/common/ipv4.hpp"

#include <nlohmann/json.hpp>

#include <compare>
#include <optional>
#include <string>
#include <vector>

namespace brfusion::guest {

inline constexpr const char* kAttach = "nic.attach";
inline constexpr const char* kDetach = "nic.detach";
inline constexpr const char* kList = "nic.list";
inline constexpr const char* kPool = "ipam.pool";
inline constexpr const char* kPools = "ipam.pools";
inline constexpr const char* kRequestAddress = "ipam.request";
inline constexpr const char* kReleaseAddress = "ipam.release";
inline constexpr const char* kPublish = "nic.publish";
inline constexpr const char* kUnpublish = "nic.unpublish";
inline constexpr const char* kHostloJoin = "hostlo.join";
inline constexpr const char* kHostloLeave = "hostlo.leave";

// The channel's limits (see above).
inline constexpr std::size_t kMaxLineBytes = 1024 * 1024;
inline constexpr int kMaxDepth = 8;
inline constexpr std::size_t kMaxIdBytes = 64;
inline constexpr std::size_t kEndpointIdLength = 12;
inline constexpr std::size_t kMaxPortsPerRequest = 1024;

// What a NIC or an address is on: a host network, or a Hostlo group's segment. On the wire, a
// host network is its name and a group's segment is "hostlo:" and the group's name.
struct NetworkRef {
    enum class Kind { HostNetwork, HostloGroup };
    Kind kind = Kind::HostNetwork;
    std::string name;  // the host network's, or the group's

    static NetworkRef host_network(std::string name) { return {Kind::HostNetwork, std::move(name)}; }
    static NetworkRef hostlo_group(std::string group) { return {Kind::HostloGroup, std::move(group)}; }
    // nullopt unless `wire` is a valid name or "hostlo:" and one.
    static std::optional<NetworkRef> parse(std::string_view wire);
    std::string wire() const;
    bool is_hostlo() const { return kind == Kind::HostloGroup; }
    auto operator<=>(const NetworkRef&) const = default;
};

// A guest's text, quoted and safe to put in a message: at most 64 characters, control bytes as '?'.
std::string printable(std::string_view text);

// Whether `id` has the form of the shim's endpoint ids (12 lowercase hex digits).
bool is_endpoint_id(std::string_view id);

// JSON-RPC 2.0 error codes: the standard ones, and ours for ShimError kinds.
enum ErrorCode : int {
    kParseError = -32700,
    kInvalidRequest = -32600,
    kMethodNotFound = -32601,
    kInvalidParams = -32602,
    kNotAllowed = 1,
    kNotFound = 2,
    kConflict = 3,
    kExhausted = 4,
    kBackend = 5,
};

struct AttachParams {
    NetworkRef network;
    std::optional<Ipv4> ip;  // a specific address (docker run --ip)
};

struct AttachResult {
    std::string endpoint;
    std::string mac;
    std::string guest_if;  // the NIC's name in the VM where the backend names it (netns); else find it by MAC
    std::string ip;
    int prefix_length = 0;
    std::string gateway;
    int mtu = 1500;
    std::string pci;  // a real VM's PCI address of the NIC ("0000:01:00.0"); "" in a netns "VM"
    // Whether the VM may leave its TX checksums to the host (checksum offload, and with it TSO).
    // false: the VM turns TX checksum offload off on the NIC (ethtool -K IF tx off) and sends
    // complete checksums, as OVS's userspace datapath needs unless its TSO support is on. The NIC
    // keeps scatter-gather and GSO either way. Shims before this field: false.
    bool checksum_offload = false;
};

struct DetachParams {
    std::string endpoint;
};

// A published port (docker run -p [HOST_IP:]HOST_PORT:CONTAINER_PORT[/PROTOCOL]): PROTOCOL traffic
// to the host's HOST_PORT reaches the container's CONTAINER_PORT. from_json also checks the values.
struct PortMapping {
    std::string protocol = "tcp";       // tcp | udp
    std::optional<Ipv4> host_ip;        // only this address of the host; unset = all it publishes on
    int host_port = 0;                  // 1-65535; 0 in nic.publish = the shim picks a free one
    int container_port = 0;             // 1-65535
    // nic.publish only (docker run -p 8000-8010:80): host_port-host_port_end is a range, and the
    // shim takes its lowest free port. 0 = host_port alone; always 0 in what the shim answers.
    int host_port_end = 0;
    bool operator==(const PortMapping&) const = default;
};

struct PublishParams {
    std::string endpoint;
    std::vector<PortMapping> ports;
};

struct PublishResult {
    std::vector<PortMapping> ports;  // as published: every host_port chosen
};

using UnpublishParams = DetachParams;

struct NicInfo {
    std::string endpoint;
    std::string network;
    std::string mac;
    std::string ip;
    std::string state;  // attaching | attached | detaching
    std::vector<PortMapping> ports;
};

struct PoolParams {
    NetworkRef network;
};

struct PoolInfo {
    std::string network;
    std::string subnet;
    std::string gateway;
    int mtu = 1500;
};

struct AddressParams {
    NetworkRef network;
    std::optional<Ipv4> ip;  // required by ipam.release
};

struct AddressInfo {
    std::string ip;
    int prefix_length = 0;
    std::string gateway;
};

struct HostloParams {
    std::string group;
    std::optional<Ipv4Prefix> subnet;  // hostlo.join only: the group's subnet, as its first member wants it
};

// from_json throws std::invalid_argument naming the field on unknown, missing, mistyped or
// malformed fields (a guest's bytes are quoted back at most 64 characters long, made printable).
void from_json(const nlohmann::json& j, AttachParams& p);
void to_json(nlohmann::json& j, const AttachParams& p);
void from_json(const nlohmann::json& j, AttachResult& r);
void to_json(nlohmann::json& j, const AttachResult& r);
void from_json(const nlohmann::json& j, DetachParams& p);
void to_json(nlohmann::json& j, const DetachParams& p);
void from_json(const nlohmann::json& j, PortMapping& p);
void to_json(nlohmann::json& j, const PortMapping& p);
void from_json(const nlohmann::json& j, PublishParams& p);
void to_json(nlohmann::json& j, const PublishParams& p);
void from_json(const nlohmann::json& j, PublishResult& r);
void to_json(nlohmann::json& j, const PublishResult& r);
void from_json(const nlohmann::json& j, NicInfo& n);
void to_json(nlohmann::json& j, const NicInfo& n);
void from_json(const nlohmann::json& j, PoolParams& p);
void to_json(nlohmann::json& j, const PoolParams& p);
void from_json(const nlohmann::json& j, PoolInfo& p);
void to_json(nlohmann::json& j, const PoolInfo& p);
void from_json(const nlohmann::json& j, AddressParams& p);
void to_json(nlohmann::json& j, const AddressParams& p);
void from_json(const nlohmann::json& j, HostloParams& p);
void to_json(nlohmann::json& j, const HostloParams& p);
void from_json(const nlohmann::json& j, AddressInfo& a);
void to_json(nlohmann::json& j, const AddressInfo& a);

// A request as the shim reads it from a guest's line: method, params (an object) and id (null for
// a notification).
struct Request {
    std::string method;
    nlohmann::json params;
    nlohmann::json id;
    bool notification = false;
};
// Parses one line within the limits; on a line that breaks one, the error response to send back
// (with the request's id when it could be read). Never throws.
struct ParsedLine {
    std::optional<Request> request;
    nlohmann::json error;  // when !request
};
ParsedLine parse_request_line(std::string_view line);

// Envelopes.
nlohmann::json make_request(const nlohmann::json& id, const std::string& method, nlohmann::json params);
nlohmann::json make_result(const nlohmann::json& id, nlohmann::json result);
nlohmann::json make_error(const nlohmann::json& id, int code, const std::string& message, const std::string& kind = "");

}  // namespace brfusion::guest
