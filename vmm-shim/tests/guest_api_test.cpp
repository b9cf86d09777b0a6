// The guest channel's routing and error mapping, over NicManager with fakes.

#include "brfusion/common/guest_protocol.hpp"
#include "brfusion/shim/guest_api.hpp"

#include "fakes.hpp"

using namespace brfusion;
using namespace brfusion::shim;
using namespace brfusion::shim::test;
using nlohmann::json;

namespace {
json call(Rig& rig, const std::string& vm, const std::string& method, json params, json id = 1) {
    auto response = handle_guest_line(*rig.manager, vm, brfusion::guest::make_request(id, method, std::move(params)).dump());
    REQUIRE(response);
    CHECK((*response)["id"] == id);
    return *response;
}
}  // namespace

TEST_CASE("guest: attach - list - pool - detach for the calling VM") {
    Rig rig;
    const json attached = call(rig, "vm1", "nic.attach", {{"network", "lab"}, {"ip", "198.51.100.9"}});
    const auto nic = attached.at("result").get<brfusion::guest::AttachResult>();
    CHECK(nic.ip == "198.51.100.9");
    CHECK(nic.gateway == "198.51.100.1");
    CHECK(nic.prefix_length == 24);

    const json listed = call(rig, "vm1", "nic.list", json::object(), "a-string-id");
    REQUIRE(listed["result"]["nics"].size() == 1);
    CHECK(listed["result"]["nics"][0]["state"] == "attached");
    CHECK(call(rig, "vm2", "nic.list", json::object())["result"]["nics"].empty());  // another VM sees nothing

    const json lab = {{"network", "lab"}, {"subnet", "198.51.100.0/24"}, {"gateway", "198.51.100.1"}, {"mtu", 1500}};
    const json lab2 = {{"network", "lab2"}, {"subnet", "203.0.113.0/24"}, {"gateway", "203.0.113.1"}, {"mtu", 1500}};
    CHECK(call(rig, "vm2", "ipam.pool", {{"network", "lab"}})["result"] == lab);
    CHECK(call(rig, "vm2", "ipam.pool", {{"network", "lab2"}})["error"]["data"]["kind"] == "not-allowed");
    CHECK(call(rig, "vm1", "ipam.pools", json::object())["result"] == json({{"pools", {lab, lab2}}}));
    CHECK(call(rig, "vm2", "ipam.pools", json::object())["result"] == json({{"pools", {lab}}}));
    CHECK(call(rig, "vm1", "nic.detach", {{"endpoint", nic.endpoint}})["result"] == json::object());
    rig.require_clean();
}

TEST_CASE("guest: a result may carry fields a plugin does not know - a result without checksum_offload means off") {
    // Compatibility between shim and plugin versions: results are read leniently, params strictly.
    json newer = {{"endpoint", "e1"}, {"mac", "52:54:00:00:00:01"}, {"guest_if", ""}, {"ip", "198.51.100.9"},
                  {"prefix_length", 24}, {"gateway", "198.51.100.1"}, {"mtu", 1500}, {"checksum_offload", true},
                  {"a_field_from_the_future", {1, 2}}};
    CHECK(newer.get<brfusion::guest::AttachResult>().checksum_offload);
    newer.erase("checksum_offload");
    newer.erase("a_field_from_the_future");
    CHECK_FALSE(newer.get<brfusion::guest::AttachResult>().checksum_offload);
    CHECK_THROWS_WITH(json::array().get<brfusion::guest::AttachResult>(), "a result must be a JSON object");
}

TEST_CASE("guest: ipam.request reserves an address - nic.attach with it takes it over - ipam.release gives it back") {
    Rig rig;
    const json reserved = call(rig, "vm1", "ipam.request", {{"network", "lab"}, {"ip", "198.51.100.40"}});
    CHECK(reserved["result"] == json({{"ip", "198.51.100.40"}, {"prefix_length", 24}, {"gateway", "198.51.100.1"}}));
    CHECK(call(rig, "vm2", "ipam.request", {{"network", "lab"}, {"ip", "198.51.100.40"}})["error"]["data"]["kind"] == "conflict");
    CHECK(call(rig, "vm1", "ipam.release", {{"network", "lab"}})["error"]["message"] == "ipam.release: missing field 'ip'");
    CHECK(call(rig, "vm1", "ipam.release", {{"network", "lab"}, {"ip", "198.51.100.40"}})["result"] == json::object());
    CHECK(rig.manager->leases(net("lab")).empty());
}

TEST_CASE("guest: publish and unpublish an endpoint's ports - listed with the NIC") {
    Rig rig;
    const std::string endpoint = call(rig, "vm1", "nic.attach", {{"network", "lab"}})["result"]["endpoint"];
    const json published = call(rig, "vm1", "nic.publish",
                                {{"endpoint", endpoint}, {"ports", {{{"protocol", "tcp"}, {"host_port", 0}, {"container_port", 80}}}}});
    CHECK(published["result"] == json({{"ports", {{{"protocol", "tcp"}, {"host_port", 49153}, {"container_port", 80}}}}}));
    CHECK(call(rig, "vm1", "nic.list", json::object())["result"]["nics"][0]["ports"] == published["result"]["ports"]);
    CHECK(call(rig, "vm2", "nic.unpublish", {{"endpoint", endpoint}})["error"]["data"]["kind"] == "not-allowed");
    CHECK(call(rig, "vm1", "nic.unpublish", {{"endpoint", endpoint}})["result"] == json::object());
    CHECK(rig.firewall.rules.published.empty());

    const json bad_port = call(rig, "vm1", "nic.publish",
                               {{"endpoint", endpoint}, {"ports", {{{"protocol", "sctp"}, {"host_port", 1}, {"container_port", 80}}}}});
    CHECK(bad_port["error"]["code"] == -32602);
    CHECK(bad_port["error"]["message"] == "nic.publish: protocol 'sctp' is not tcp or udp");
    const json bad_ip = call(rig, "vm1", "nic.publish",
                             {{"endpoint", endpoint}, {"ports", {{{"protocol", "udp"}, {"host_ip", "1.2.3"}, {"host_port", 1}, {"container_port", 80}}}}});
    CHECK(bad_ip["error"]["message"] == "nic.publish: field 'host_ip': '1.2.3' is not an IPv4 address (dotted decimal)");
    CHECK(call(rig, "vm1", "nic.publish", {{"endpoint", endpoint}, {"ports", {{{"protocol", "tcp"}, {"host_port", 1}, {"container_port", 0}}}}})
              ["error"]["message"] == "nic.publish: container_port 0 is not 1-65535");
    // A host port range: the answer names the port taken, without an end; a range that is not one is refused.
    CHECK(call(rig, "vm1", "nic.publish",
               {{"endpoint", endpoint}, {"ports", {{{"protocol", "tcp"}, {"host_port", 8000}, {"host_port_end", 8010}, {"container_port", 80}}}}})
              ["result"] == json({{"ports", {{{"protocol", "tcp"}, {"host_port", 8000}, {"container_port", 80}}}}}));
    for (const auto& [first, end] : {std::pair(8010, 8000), std::pair(8000, 8000), std::pair(0, 8000), std::pair(8000, 65536)})
        CHECK_THAT(call(rig, "vm1", "nic.publish",
                        {{"endpoint", endpoint}, {"ports", {{{"protocol", "tcp"}, {"host_port", first}, {"host_port_end", end}, {"container_port", 80}}}}})
                       ["error"]["message"]
                           .get<std::string>(),
                   Catch::StartsWith("nic.publish: host_port_end " + std::to_string(end) + " does not end a range after host_port " + std::to_string(first)));
    call(rig, "vm1", "nic.unpublish", {{"endpoint", endpoint}});
    // A number that is not an integer of the field's type is refused, not converted: a float out of
    // int's range would be undefined behaviour, 2^32 + 80 would wrap to 80.
    for (const json& port : {json(9e124), json(80.5), json(4294967376ULL), json(-4294967216LL)})
        CHECK(call(rig, "vm1", "nic.publish", {{"endpoint", endpoint}, {"ports", {{{"protocol", "tcp"}, {"host_port", 1}, {"container_port", port}}}}})
                  ["error"]["message"] == "nic.publish: field 'container_port' must be an integer from -2147483648 to 2147483647");
    CHECK(rig.firewall.rules.published.empty());
}

TEST_CASE("guest: refusals and malformed requests become JSON-RPC errors with a user message") {
    Rig rig;
    const json not_allowed = call(rig, "vm2", "nic.attach", {{"network", "lab2"}});
    CHECK(not_allowed["error"]["code"] == 1);
    CHECK(not_allowed["error"]["message"] == "network lab2 is not allowed for VM vm2; allowed: lab");
    CHECK(not_allowed["error"]["data"]["kind"] == "not-allowed");

    const std::string endpoint = call(rig, "vm1", "nic.attach", {{"network", "lab"}})["result"]["endpoint"];
    CHECK(call(rig, "vm2", "nic.detach", {{"endpoint", endpoint}})["error"]["data"]["kind"] == "not-allowed");
    CHECK(rig.manager->nics("vm1").size() == 1);

    CHECK(call(rig, "vm1", "nic.attach", {{"network", "lab"}, {"colour", "red"}})["error"]["message"] == "nic.attach: unknown field 'colour'");
    CHECK(call(rig, "vm1", "nic.attach", {{"network", 5}})["error"]["code"] == -32602);
    CHECK(call(rig, "vm1", "nic.attach", {{"network", "lab"}, {"ip", "not-an-ip"}})["error"]["message"] ==
          "nic.attach: field 'ip': 'not-an-ip' is not an IPv4 address (dotted decimal)");
    CHECK_THAT(call(rig, "vm1", "nic.explode", json::object())["error"]["message"].get<std::string>(), Catch::Contains("unknown method 'nic.explode'"));

    const auto invalid = handle_guest_line(*rig.manager, "vm1", json{{"id", 7}, {"method", "nic.list"}}.dump());
    REQUIRE(invalid);
    CHECK((*invalid)["error"]["code"] == -32600);
    CHECK((*invalid)["id"] == 7);
    CHECK_FALSE(handle_guest_line(*rig.manager, "vm1", json{{"jsonrpc", "2.0"}, {"method", "nic.list"}}.dump()));  // a notification
}

TEST_CASE("guest: a line past the channel's limits is refused whole - with a message naming the limit") {
    Rig rig;
    const auto refused = [&](const std::string& line) {
        const auto answer = handle_guest_line(*rig.manager, "vm2", line);
        REQUIRE(answer);
        CHECK((*answer)["id"].is_null());
        return (*answer)["error"]["message"].get<std::string>();
    };
    // Nested 100,000 deep (200 KB): refused before it is parsed, copied or destroyed.
    const std::string deep = R"({"jsonrpc":"2.0","id":1,"method":"nic.list","params":{"x":)" + std::string(100000, '[') + std::string(100000, ']') + "}}";
    CHECK(refused(deep) == "a line was refused: it nests objects and arrays deeper than 8 levels");
    CHECK(refused("{not json") == "a line was refused: it is not valid JSON");
    CHECK(refused(std::string(brfusion::guest::kMaxLineBytes + 1, ' ')) == "a line exceeds 1048576 bytes");
    CHECK(refused(R"({"jsonrpc":"2.0","id":")" + std::string(65, 'x') + R"(","method":"nic.list"})") ==
          "a request's id must be a number or a string of at most 64 bytes");
    CHECK(refused(R"({"jsonrpc":"2.0","id":[1],"method":"nic.list"})") == "a request's id must be a number or a string of at most 64 bytes");
    // Strings hold exactly their form: no NUL, no trailing bytes, no other characters.
    const auto message = [&](const json& params) { return call(rig, "vm2", "ipam.request", params)["error"]["message"].get<std::string>(); };
    CHECK(message({{"network", "lab"}, {"ip", std::string("198.51.100.9\0junk", 17)}}) ==
          "ipam.request: field 'ip': '198.51.100.9?junk' is not an IPv4 address (dotted decimal)");
    CHECK(message({{"network", "lab "}}) == "ipam.request: field 'network': 'lab ' is not a network (a host network's name, or hostlo:GROUP)");
    CHECK(message({{"network", std::string(200, 'n')}}) ==
          "ipam.request: field 'network': '" + std::string(64, 'n') + "...' is not a network (a host network's name, or hostlo:GROUP)");
    CHECK(call(rig, "vm2", "nic.detach", {{"endpoint", "../../etc"}})["error"]["message"] ==
          "nic.detach: field 'endpoint': '../../etc' is not an endpoint id (12 lowercase hex digits)");
    CHECK(call(rig, "vm2", "hostlo.join", {{"group", "pod\n1"}})["error"]["message"] ==
          "hostlo.join: field 'group': 'pod?1' is not a name (1-64 characters of [A-Za-z0-9._-])");
    CHECK(rig.manager->leases(net("lab")).empty());
}

TEST_CASE("guest: warm-pool spares are not listed to the guest until an attach claims one") {
    Rig rig([](ShimConfig& config) { config.vms[0].warm_pool = {{"lab", 1}}; });
    while (rig.manager->balance_warm_pool()) {
    }
    CHECK(call(rig, "vm1", "nic.list", json::object())["result"]["nics"].empty());
    const auto nic = call(rig, "vm1", "nic.attach", {{"network", "lab"}})["result"].get<brfusion::guest::AttachResult>();
    const json listed = call(rig, "vm1", "nic.list", json::object())["result"]["nics"];
    REQUIRE(listed.size() == 1);
    CHECK(listed[0]["endpoint"] == nic.endpoint);
}
