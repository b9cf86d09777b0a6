#include "brfusion/ovs/replica.hpp"

#include "fixtures.hpp"

#include <catch2/catch.hpp>

using namespace brfusion::ovs;

TEST_CASE("the initial monitor reply gives typed rows") {
    Replica replica = test::test_replica();
    auto root = replica.root();
    REQUIRE(root);
    CHECK(root->cur_cfg == 3);
    CHECK(root->bridges == std::vector<Uuid>{"b0"});
    CHECK(root->other_config == StringMap{{"userspace-tso-enable", "true"}});
    auto br0 = replica.bridge("br0");
    REQUIRE(br0);
    CHECK(br0->datapath_type == "netdev");
    CHECK(br0->ports.size() == 2);
    auto p1 = replica.port("p1");
    REQUIRE(p1);
    CHECK(p1->tag == 10);
    CHECK(p1->external_ids.at("brfusion-vm") == "vm1");
    CHECK_FALSE(replica.port("br0")->tag);
    CHECK(replica.interface("p1")->ofport == 1);
    CHECK_FALSE(replica.interface("p1")->error);
    CHECK(replica.bridge_of_port(p1->uuid) == "br0");
}

TEST_CASE("update2 insert - modify and delete keep rows and the name index current") {
    Replica replica = test::test_replica();
    replica.apply(json::parse(R"({
      "Port":{"p2":{"insert":{"name":"p2","interfaces":["uuid","i2"],"tag":20}},
              "p1":{"modify":{"tag":11,"external_ids":["map",[["brfusion-vm","vm1"],["brfusion-endpoint","e1"]]]}}},
      "Bridge":{"b0":{"modify":{"ports":["uuid","p2"]}}},
      "Open_vSwitch":{"root":{"modify":{"cur_cfg":4}}}
    })"));
    CHECK(replica.port("p2")->tag == 20);
    CHECK(replica.port("p1")->tag == 11);
    CHECK(replica.port("p1")->external_ids == StringMap{{"brfusion-endpoint", "e1"}});
    CHECK(replica.bridge("br0")->ports.size() == 3);
    CHECK(replica.root()->cur_cfg == 4);

    // A rename moves the name index; a delete drops the row.
    replica.apply(json::parse(R"({"Port":{"p2":{"modify":{"name":"p2-renamed"}},"p1":{"delete":null}}})"));
    CHECK_FALSE(replica.port("p2"));
    CHECK(replica.port("p2-renamed"));
    CHECK_FALSE(replica.port("p1"));
    CHECK(replica.ports().size() == 2);
}

TEST_CASE("reset replaces everything") {
    Replica replica = test::test_replica();
    replica.reset(json::parse(R"({"Open_vSwitch":{"r2":{"initial":{"next_cfg":1,"cur_cfg":1}}}})"));
    CHECK(replica.bridges().empty());
    CHECK_FALSE(replica.interface("p1"));
    CHECK(replica.root()->uuid == "r2");
}

TEST_CASE("a schema without a monitored column is refused with its name") {
    CHECK_THROWS_WITH(Schema::from_json(json::parse(R"({"tables":{}})")), Catch::Contains("no table"));
}
