#include "brfusion/plugin/docker_api.hpp"

#include <catch2/catch.hpp>

using namespace brfusion::plugin;
using nlohmann::json;

// Bodies as Docker 20.10 sends them (field names and shapes from moby's libnetwork remote API).
TEST_CASE("docker api: CreateNetwork - CreateEndpoint - Join bodies as Docker sends them") {
    const json create_network = json::parse(R"({"NetworkID":"8f2c","Options":{"com.docker.network.enable_ipv6":false,
        "com.docker.network.generic":{"network":"lab"}},"IPv4Data":[{"AddressSpace":"brfusion","Pool":"198.51.100.0/24",
        "Gateway":"198.51.100.1/24","AuxAddresses":null}],"IPv6Data":[]})");
    const auto network = create_network.get<CreateNetworkRequest>();
    CHECK(network.network_id == "8f2c");
    REQUIRE(network.ipv4_data.size() == 1);
    CHECK(network.ipv4_data[0].address_space == "brfusion");
    CHECK(network.ipv4_data[0].pool == "198.51.100.0/24");
    CHECK(network.ipv4_data[0].gateway == "198.51.100.1/24");
    CHECK(network.options["com.docker.network.generic"]["network"] == "lab");
    CHECK(network.ipv6_data.empty());

    const json create_endpoint = json::parse(R"({"NetworkID":"8f2c","EndpointID":"e1","Options":{"com.docker.network.endpoint.exposedports":[],
        "com.docker.network.portmap":[]},"Interface":{"Address":"198.51.100.2/24","AddressIPv6":"","MacAddress":""}})");
    const auto endpoint = create_endpoint.get<CreateEndpointRequest>();
    CHECK(endpoint.endpoint_id == "e1");
    CHECK(endpoint.interface.address == "198.51.100.2/24");
    CHECK(endpoint.interface.mac_address.empty());

    const auto join = json::parse(R"({"NetworkID":"8f2c","EndpointID":"e1","SandboxKey":"/var/run/docker/netns/abc","Options":null})").get<JoinRequest>();
    CHECK(join.sandbox_key == "/var/run/docker/netns/abc");
    CHECK(join.options == json::object());

    const auto pool = json::parse(R"({"AddressSpace":"brfusion","Pool":"","SubPool":"","Options":{"network":"lab"},"V6":false})").get<RequestPoolRequest>();
    CHECK(pool.options.at("network") == "lab");
    CHECK_FALSE(pool.v6);
    const auto address =
        json::parse(R"({"PoolID":"lab","Address":"","Options":{"RequestAddressType":"com.docker.network.gateway"}})").get<RequestAddressRequest>();
    CHECK(address.options.at("RequestAddressType") == "com.docker.network.gateway");
}

TEST_CASE("docker api: a missing or mistyped field is named - unknown fields are ignored") {
    CHECK_THROWS_WITH(json::parse(R"({"EndpointID":"e1"})").get<EndpointRequest>(), "missing field 'NetworkID'");
    CHECK_THROWS_WITH(json::parse(R"({"NetworkID":7,"EndpointID":"e1"})").get<EndpointRequest>(), "field 'NetworkID' has the wrong type: 7");
    CHECK_THROWS_WITH(json::parse(R"({"NetworkID":"n","Options":[1]})").get<CreateNetworkRequest>(), "field 'Options' must be an object");
    CHECK_THROWS_WITH(json::parse(R"([1,2])").get<NetworkRequest>(), "the request body must be a JSON object");
    CHECK(json::parse(R"({"NetworkID":"n","SomethingNew":{"x":1}})").get<NetworkRequest>().network_id == "n");
    // An integer field takes only an integer that fits: a float or a too large integer would be
    // converted without a word (the first was undefined behaviour: found by the request fuzzer).
    CHECK_THROWS_WITH(json::parse(R"({"Proto":6,"Port":1.1e107})").get<PortBinding>(), "field 'Port' must be an integer from -2147483648 to 2147483647, not 1.1e+107");
    CHECK_THROWS_WITH(json::parse(R"({"Proto":6,"Port":80,"HostPort":4294967376})").get<PortBinding>(),
                      Catch::StartsWith("field 'HostPort' must be an integer from"));
    CHECK(json::parse(R"({"Proto":6,"Port":80,"HostPort":8080})").get<PortBinding>().host_port == 8080);
}
