#pragma once
// The messages Docker's libnetwork sends to a remote NetworkDriver and IpamDriver (moby's
// libnetwork docs, remote.md and ipam.md), typed. Field names are exactly Docker's.
//
// from_json throws std::invalid_argument naming the field when a field is missing or has the wrong
// type. Unknown fields are ignored, not refused: every Docker release adds some, and a driver that
// refused them would break on a Docker upgrade. Our own option keys (-o, --ipam-opt) are strict.

#include <nlohmann/json.hpp>

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace brfusion::plugin {

// Keys of libnetwork's option maps.
inline constexpr const char* kGenericOptions = "com.docker.network.generic";  // the -o options
inline constexpr const char* kEnableIpv6 = "com.docker.network.enable_ipv6";
inline constexpr const char* kInternal = "com.docker.network.internal";
inline constexpr const char* kMtuOption = "com.docker.network.driver.mtu";
inline constexpr const char* kPortMap = "com.docker.network.portmap";
inline constexpr const char* kMacAddressInfo = "com.docker.network.endpoint.macaddress";
inline constexpr const char* kRequestAddressType = "RequestAddressType";
inline constexpr const char* kGatewayAddressType = "com.docker.network.gateway";

// One pool of a network, as Docker's IPAM returned it (CIDRs: "198.51.100.0/24", gateway "198.51.100.1/24").
struct IpamData {
    std::string address_space;  // AddressSpace
    std::string pool;           // Pool
    std::string gateway;        // Gateway
};

struct CreateNetworkRequest {
    std::string network_id;
    nlohmann::json options = nlohmann::json::object();  // Options: kGenericOptions, kEnableIpv6, kInternal
    std::vector<IpamData> ipv4_data, ipv6_data;
};

// DeleteNetwork.
struct NetworkRequest {
    std::string network_id;
};

struct EndpointInterface {
    std::string address;       // Address "ip/len", from our IPAM; empty if none
    std::string address_ipv6;  // AddressIPv6
    std::string mac_address;   // MacAddress: only when the user gave --mac-address
};

struct CreateEndpointRequest {
    std::string network_id;
    std::string endpoint_id;
    EndpointInterface interface;
    nlohmann::json options = nlohmann::json::object();
};

// EndpointOperInfo, DeleteEndpoint, Leave, ProgramExternalConnectivity, RevokeExternalConnectivity.
struct EndpointRequest {
    std::string network_id;
    std::string endpoint_id;
    nlohmann::json options = nlohmann::json::object();  // ProgramExternalConnectivity: kPortMap
};

struct JoinRequest {
    std::string network_id;
    std::string endpoint_id;
    std::string sandbox_key;
    nlohmann::json options = nlohmann::json::object();
};

// One entry of kPortMap (`docker run -p [HostIP:]HostPort[-HostPortEnd]:Port/proto`).
struct PortBinding {
    int proto = 6;  // IP protocol number: 6 tcp, 17 udp, 132 sctp
    std::string ip;
    int port = 0;
    std::string host_ip;
    int host_port = 0;
    int host_port_end = 0;
};

struct RequestPoolRequest {
    std::string address_space;
    std::string pool;      // --subnet, or empty
    std::string sub_pool;  // --ip-range, or empty
    std::map<std::string, std::string> options;  // --ipam-opt
    bool v6 = false;
};

struct ReleasePoolRequest {
    std::string pool_id;
};

struct RequestAddressRequest {
    std::string pool_id;
    std::string address;  // a specific address (--ip, --gateway), or empty
    std::map<std::string, std::string> options;
};

struct ReleaseAddressRequest {
    std::string pool_id;
    std::string address;
};

void from_json(const nlohmann::json& j, IpamData& d);
void from_json(const nlohmann::json& j, CreateNetworkRequest& r);
void from_json(const nlohmann::json& j, NetworkRequest& r);
void from_json(const nlohmann::json& j, EndpointInterface& i);
void from_json(const nlohmann::json& j, CreateEndpointRequest& r);
void from_json(const nlohmann::json& j, EndpointRequest& r);
void from_json(const nlohmann::json& j, JoinRequest& r);
void from_json(const nlohmann::json& j, PortBinding& b);
void to_json(nlohmann::json& j, const PortBinding& b);
void from_json(const nlohmann::json& j, RequestPoolRequest& r);
void from_json(const nlohmann::json& j, ReleasePoolRequest& r);
void from_json(const nlohmann::json& j, RequestAddressRequest& r);
void from_json(const nlohmann::json& j, ReleaseAddressRequest& r);

}  // namespace brfusion::plugin
