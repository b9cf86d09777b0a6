#include "brfusion/ovs/error.hpp"
#include "brfusion/ovs/transaction.hpp"

#include "fixtures.hpp"

#include <catch2/catch.hpp>

using namespace brfusion::ovs;

namespace {
std::vector<std::string> op_names(const Transaction& txn) {
    std::vector<std::string> names;
    for (const auto& op : txn.operations()) names.push_back(op["op"].get<std::string>() + " " + op["table"].get<std::string>());
    return names;
}

ErrorKind kind_of(const std::function<void()>& action) {
    try {
        action();
    } catch (const OvsError& e) {
        return e.kind();
    }
    FAIL("no OvsError thrown");
    return ErrorKind::Rejected;
}
}  // namespace

TEST_CASE("a new port: wait on the bridge - insert - mutate Bridge.ports (not rewrite) - bump next_cfg") {
    const Replica replica = test::test_replica();
    auto txn = plan_ensure_port(replica, {"br0", "p2", PortType::Tap, 20, {{"brfusion-vm", "vm2"}}, ""});
    REQUIRE(txn);
    CHECK(op_names(*txn) ==
          std::vector<std::string>{"wait Bridge", "insert Interface", "insert Port", "mutate Bridge", "mutate Open_vSwitch", "select Open_vSwitch"});
    const auto& ops = txn->operations();
    CHECK(ops[0]["timeout"] == 0);
    CHECK(ops[1]["row"]["type"] == "tap");
    CHECK(ops[1]["row"]["external_ids"].dump() == R"(["map",[["brfusion-vm","vm2"]]])");
    CHECK(ops[2]["row"]["tag"] == 20);
    CHECK(ops[3]["mutations"].dump() == R"([["ports","insert",["set",[["named-uuid","port_0"]]]]])");
    CHECK(txn->params("Open_vSwitch")[0] == "Open_vSwitch");
}

TEST_CASE("several ports in one transaction: only those missing - unique uuid-names - one bump of next_cfg - a conflict refuses all") {
    const Replica replica = test::test_replica();
    const PortSpec existing{"br0", "p1", PortType::Internal, 10, {{"brfusion-vm", "vm1"}}, ""};
    auto txn = plan_ensure_ports(replica, {{"br0", "p2", PortType::System, 20, {}, ""}, existing, {"br0", "p3", PortType::System, 20, {}, ""}});
    REQUIRE(txn);
    CHECK(op_names(*txn) == std::vector<std::string>{"wait Bridge", "insert Interface", "insert Port", "mutate Bridge", "wait Bridge", "insert Interface",
                                                     "insert Port", "mutate Bridge", "mutate Open_vSwitch", "select Open_vSwitch"});
    const auto& ops = txn->operations();
    CHECK(ops[1]["uuid-name"] == "iface_0");
    CHECK(ops[2]["row"]["name"] == "p2");
    CHECK(ops[5]["uuid-name"] == "iface_2");
    CHECK(ops[6]["row"]["name"] == "p3");
    CHECK_FALSE(plan_ensure_ports(replica, {existing}));
    CHECK_FALSE(plan_ensure_ports(replica, {}));
    CHECK(kind_of([&] { plan_ensure_ports(replica, {{"br0", "p2", PortType::System, 20, {}, ""}, {"br0", "p1", PortType::Tap, 20, {}, ""}}); }) ==
          ErrorKind::Conflict);
}

TEST_CASE("ensure_port is idempotent and names every difference") {
    const Replica replica = test::test_replica();
    CHECK_FALSE(plan_ensure_port(replica, {"br0", "p1", PortType::Internal, 10, {{"brfusion-vm", "vm1"}}, ""}));
    try {
        plan_ensure_port(replica, {"br0", "p1", PortType::Tap, 20, {{"brfusion-vm", "vm9"}}, ""});
        FAIL("expected a conflict");
    } catch (const OvsError& e) {
        CHECK(e.kind() == ErrorKind::Conflict);
        const std::string message = e.what();
        CHECK_THAT(message, Catch::Contains("tag 10 (wanted 20)"));
        CHECK_THAT(message, Catch::Contains("brfusion-vm=vm9 (has vm1)"));
        CHECK_THAT(message, Catch::Contains("type 'internal' (wanted 'tap')"));
    }
}

TEST_CASE("bad port requests are refused before anything is sent") {
    const Replica replica = test::test_replica();
    CHECK(kind_of([&] { plan_ensure_port(replica, {"nobr", "p9", PortType::Tap, {}, {}, ""}); }) == ErrorKind::NotFound);
    CHECK(kind_of([&] { plan_ensure_port(replica, {"br0", "p9", PortType::Tap, 4096, {}, ""}); }) == ErrorKind::Rejected);
    CHECK(kind_of([&] { plan_ensure_port(replica, {"br0", "p9", PortType::Patch, {}, {}, ""}); }) == ErrorKind::Rejected);
}

TEST_CASE("a patch pair is created in one transaction with unique uuid-names") {
    const Replica replica = test::test_replica();
    auto txn = plan_ensure_patch_pair(replica, {"br0", "a", "br0", "b", {}});
    REQUIRE(txn);
    const auto& ops = txn->operations();
    CHECK(ops[1]["uuid-name"] == "iface_a");
    CHECK(ops[5]["uuid-name"] == "iface_b");
    CHECK(ops[1]["row"]["options"].dump() == R"(["map",[["peer","b"]]])");
    CHECK(ops[5]["row"]["options"].dump() == R"(["map",[["peer","a"]]])");
    CHECK(ops.size() == 10);  // 2 x (wait, 2 inserts, mutate) + next_cfg bump and read
}

TEST_CASE("removing a port deletes only its reference from the bridge - a missing port needs nothing") {
    const Replica replica = test::test_replica();
    auto txn = plan_remove_port(replica, "p1");
    REQUIRE(txn);
    CHECK(txn->operations()[0]["mutations"].dump() == R"([["ports","delete",["set",[["uuid","p1"]]]]])");
    CHECK_FALSE(plan_remove_port(replica, "nope"));
    CHECK_FALSE(plan_remove_bridge(replica, "nope"));
}

TEST_CASE("bridges: created with their local internal port - a different datapath type is a conflict") {
    const Replica replica = test::test_replica();
    auto txn = plan_ensure_bridge(replica, {"br1", "netdev", {{"brfusion-bridge", "integration"}}});
    REQUIRE(txn);
    CHECK(txn->operations()[0]["row"]["type"] == "internal");
    CHECK_FALSE(plan_ensure_bridge(replica, {"br0", "netdev", {}}));
    CHECK_THROWS_WITH(plan_ensure_bridge(replica, {"br0", "system", {}}), Catch::Contains("datapath_type netdev (wanted system)"));
}

TEST_CASE("external_ids: set overwrites keys atomically - unchanged values need nothing") {
    const Replica replica = test::test_replica();
    CHECK_FALSE(plan_set_external_ids(replica, Table::Port, "p1", {{"brfusion-vm", "vm1"}}));
    auto txn = plan_set_external_ids(replica, Table::Port, "p1", {{"brfusion-vm", "vm2"}});
    REQUIRE(txn);
    CHECK(txn->operations()[0]["mutations"].dump() ==
          R"([["external_ids","delete",["set",["brfusion-vm"]]],["external_ids","insert",["map",[["brfusion-vm","vm2"]]]]])");
    CHECK_FALSE(plan_clear_external_ids(replica, Table::Port, "p1", {"absent"}));
    CHECK(plan_clear_external_ids(replica, Table::Port, "p1", {"brfusion-vm"}));
    CHECK(kind_of([&] { plan_set_external_ids(replica, Table::Interface, "nope", {{"k", "v"}}); }) == ErrorKind::NotFound);
}

TEST_CASE("transaction results: a failed wait says what it means - other errors carry ovsdb's details") {
    const Replica replica = test::test_replica();
    auto txn = plan_ensure_port(replica, {"br0", "p2", PortType::Tap, {}, {}, ""});
    REQUIRE(txn);
    const json wait_failed = json::parse(R"([{"error":"timed out"},null,null,null,null,null])");
    CHECK_THROWS_WITH(txn->interpret(wait_failed), Catch::Contains("bridge br0 does not exist"));
    const json constraint = json::parse(
        R"([{},{"uuid":["uuid","x"]},{"uuid":["uuid","y"]},{"count":1},{"count":1},{"rows":[{"next_cfg":4}]},{"error":"constraint violation","details":"duplicate name"}])");
    CHECK_THROWS_WITH(txn->interpret(constraint), Catch::Contains("constraint violation: duplicate name"));
    const json ok = json::parse(R"([{},{"uuid":["uuid","x"]},{"uuid":["uuid","y"]},{"count":1},{"count":1},{"rows":[{"next_cfg":4}]}])");
    CHECK(txn->interpret(ok).next_cfg == 4);
}
