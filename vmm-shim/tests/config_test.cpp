#include "brfusion/shim/config.hpp"
#include "brfusion/shim/error.hpp"

#include <catch2/catch.hpp>

using namespace brfusion;
using namespace brfusion::shim;
using nlohmann::json;

namespace {
json valid() {
    return json::parse(R"({
      "bridge": "br-int", "state_dir": "/tmp/x",
      "networks": [{"name": "lab", "subnet": "198.51.100.0/24", "tag": 100},
                   {"name": "lab2", "subnet": "203.0.113.0/24", "gateway": "203.0.113.254", "tag": 200, "nat": false, "mtu": 1400}],
      "vms": [{"name": "vm1", "netns": "vm1ns", "networks": ["lab", "lab2"]}]
    })");
}
std::string error_of(const json& config) {
    try {
        parse_config(config);
    } catch (const ShimError& e) {
        return e.what();
    }
    return "no error";
}
}  // namespace

TEST_CASE("a valid config parses with defaults filled in") {
    const ShimConfig config = parse_config(valid());
    REQUIRE(config.networks.size() == 2);
    CHECK(config.network("lab")->gateway.str() == "198.51.100.1");  // default: first host address
    CHECK(config.network("lab")->nat);
    CHECK(config.network("lab2")->gateway.str() == "203.0.113.254");
    CHECK(config.network("lab2")->mtu == 1400);
    CHECK(config.vm("vm1")->backend == "netns");
    CHECK(config.ovsdb == "/run/openvswitch/db.sock");
    CHECK(config.ovs_timeout == std::chrono::seconds(20));
    CHECK(config.network("lab")->forward_to.empty());
    CHECK(config.vm("vm1")->warm_pool.empty());
}

TEST_CASE("a warm pool is spares per allowed network, and survives a round trip") {
    json c = valid();
    c["vms"][0]["warm_pool"] = {{"lab", 2}, {"lab2", 0}};
    const VmConfig vm = *parse_config(c).vm("vm1");
    CHECK(vm.warm_pool == std::map<std::string, int>{{"lab", 2}, {"lab2", 0}});
    CHECK(parse_vm(to_json(vm)).warm_pool == vm.warm_pool);
}

TEST_CASE("optional lists may be left out - a VM with no networks - a network forwarding nowhere") {
    const VmConfig vm = parse_vm({{"name", "bare"}, {"netns", "ns"}});
    CHECK(vm.networks.empty());
    CHECK(parse_network({{"name", "n"}, {"subnet", "192.0.2.0/24"}, {"tag", 1}}).forward_to.empty());
    CHECK(to_json(parse_vm(to_json(vm))) == to_json(vm));
}

TEST_CASE("bad configs are refused with the path of the offending value") {
    json c = valid();
    c["networks"][0]["colour"] = "red";
    CHECK_THAT(error_of(c), Catch::Contains("networks[0].colour: unknown key"));
    c = valid();
    c["networks"][1]["gateway"] = "192.0.2.1";
    CHECK_THAT(error_of(c), Catch::Contains("networks[1].gateway: 192.0.2.1 is not a host address of subnet 203.0.113.0/24"));
    c = valid();
    c["networks"][0]["subnet"] = "198.51.100.1/24";
    CHECK_THAT(error_of(c), Catch::Contains("networks[0].subnet"));
    c = valid();
    c["networks"][1]["tag"] = 100;
    CHECK_THAT(error_of(c), Catch::Contains("VLAN tag 100 is used by two networks"));
    c = valid();
    c["vms"][0]["networks"] = {"nope"};
    CHECK_THAT(error_of(c), Catch::Contains("VM vm1 allows network nope, which is not defined"));
    c = valid();
    c["vms"][0]["backend"] = "xen";
    CHECK_THAT(error_of(c), Catch::Contains("'xen' is not supported"));
    c = valid();
    c["networks"][0]["tag"] = "100";
    CHECK_THAT(error_of(c), Catch::Contains("networks[0].tag: has the wrong type"));
    c = valid();
    c["networks"][1]["subnet"] = "198.51.100.128/25";
    c["networks"][1].erase("gateway");
    CHECK_THAT(error_of(c), Catch::Contains("subnet 198.51.100.128/25 of network lab2 overlaps 198.51.100.0/24 of network lab"));
    c = valid();
    c["networks"][0]["forward_to"] = {"nope"};
    CHECK_THAT(error_of(c), Catch::Contains("network lab forwards to nope, which is not defined"));
    c = valid();
    c["networks"][0]["forward_to"] = {"lab"};
    CHECK_THAT(error_of(c), Catch::Contains("network lab forwards to lab, itself"));
    c = valid();
    c["vms"][0]["warm_pool"] = {{"web", 1}};
    CHECK_THAT(error_of(c), Catch::Contains("vms[0].warm_pool.web: is not one of the VM's networks"));
    c = valid();
    c["vms"][0]["warm_pool"] = {{"lab", 33}};
    CHECK_THAT(error_of(c), Catch::Contains("vms[0].warm_pool.lab: 33 is outside 0-32"));
    c = valid();
    c["vms"][0]["warm_pool"] = 2;
    CHECK_THAT(error_of(c), Catch::Contains("vms[0].warm_pool: has the wrong type"));
    c = valid();
    c["ovs_timeout_ms"] = 999;
    CHECK_THAT(error_of(c), Catch::Contains("ovs_timeout_ms: 999 is outside 1000-300000"));
    c["ovs_timeout_ms"] = 60000;
    CHECK(parse_config(c).ovs_timeout == std::chrono::minutes(1));
    CHECK_FALSE(parse_config(c).userspace_tso);
    c["userspace_tso"] = "yes";
    CHECK_THAT(error_of(c), Catch::Contains("userspace_tso: has the wrong type (\"yes\")"));
    c["userspace_tso"] = true;
    CHECK(parse_config(c).userspace_tso);
    c = valid();
    c["surprise"] = 1;
    CHECK_THAT(error_of(c), Catch::Contains("config surprise: unknown key"));
}

TEST_CASE("hostlo: a range apart from the host networks, a block size, and the groups each VM may join") {
    ShimConfig config = parse_config(valid());
    CHECK(config.hostlo.backend == "ovs");
    CHECK(config.hostlo.subnets.range.str() == "100.127.0.0/16");
    CHECK(config.hostlo.subnets.prefix_length == 28);
    CHECK(config.vm("vm1")->hostlo_groups.empty());
    CHECK_FALSE(config.vm("vm1")->may_join_hostlo("podA"));

    json with_hostlo = valid();
    with_hostlo["hostlo"] = {{"range", "192.0.2.0/24"}, {"prefix_length", 27}, {"mtu", 1400}};
    with_hostlo["vms"][0]["hostlo_groups"] = {"shop-*", "podA"};
    config = parse_config(with_hostlo);
    CHECK(config.hostlo.subnets.prefix_length == 27);
    CHECK(config.hostlo.mtu == 1400);
    CHECK(config.vm("vm1")->may_join_hostlo("shop-frontend"));
    CHECK(config.vm("vm1")->may_join_hostlo("podA"));
    CHECK_FALSE(config.vm("vm1")->may_join_hostlo("podAB"));
    CHECK_FALSE(config.vm("vm1")->may_join_hostlo("shop"));
    CHECK(parse_vm(to_json(*config.vm("vm1"))).hostlo_groups == config.vm("vm1")->hostlo_groups);

    json bad = with_hostlo;
    bad["hostlo"]["range"] = "198.51.101.0/23";
    CHECK(error_of(bad) == "config hostlo.range: '198.51.101.0/23' is not an IPv4 prefix with zero host bits (like 100.127.0.0/16)");
    bad["hostlo"]["range"] = "198.51.100.128/25";
    CHECK(error_of(bad) == "config networks: subnet 198.51.100.0/24 of network lab overlaps the Hostlo range 198.51.100.128/25; move one of them (hostlo.range)");
    bad = with_hostlo;
    bad["hostlo"]["prefix_length"] = 31;
    CHECK(error_of(bad) == "config hostlo.prefix_length: 31 is outside 24-30 (the range's length to /30)");
    bad = with_hostlo;
    bad["hostlo"]["backend"] = "tap";
    CHECK(error_of(bad) == "config hostlo.backend: 'tap' is not supported (supported: ovs, kmod)");
    bad = with_hostlo;
    bad["vms"][0]["hostlo_groups"] = {"pod A"};
    CHECK(error_of(bad) == "config vms[0].hostlo_groups: 'pod A' is neither a group name ([A-Za-z0-9._-]) nor such a prefix ending in '*'");
}
