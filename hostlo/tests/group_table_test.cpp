// GroupTable: groups created by their first member and removed with their last; subnets of their
// own, from the range or asked for, never overlapping; errors that name the problem.

#include "brfusion/hostlo/error.hpp"
#include "brfusion/hostlo/group_table.hpp"

#include <catch2/catch.hpp>

using namespace brfusion;
using namespace brfusion::hostlo;
using nlohmann::json;

namespace {
Ipv4Prefix prefix(const char* text) { return *Ipv4Prefix::parse(text); }

SubnetPolicy policy(const char* range = "203.0.113.0/24", int length = 28) { return {prefix(range), length}; }

// The kind and message of the HostloError `action` throws.
std::pair<ErrorKind, std::string> error_of(const std::function<void()>& action) {
    try {
        action();
    } catch (const HostloError& e) {
        return {e.kind(), e.what()};
    }
    FAIL("expected a HostloError");
    return {};
}
}  // namespace

TEST_CASE("the first member creates a group with the first free block - others share it - joining again changes nothing") {
    GroupTable table;
    const Group created = table.join("podA", "vm1", std::nullopt, policy());
    CHECK(created.subnet == prefix("203.0.113.0/28"));
    CHECK(created.members == std::set<std::string>{"vm1"});

    const Group joined = table.join("podA", "vm2", std::nullopt, policy());
    CHECK(joined.subnet == prefix("203.0.113.0/28"));
    CHECK(joined.members == std::set<std::string>{"vm1", "vm2"});
    CHECK(table.join("podA", "vm2", prefix("203.0.113.0/28"), policy()) == joined);

    CHECK(table.join("podB", "vm1", std::nullopt, policy()).subnet == prefix("203.0.113.16/28"));
    CHECK(table.groups().size() == 2);
}

TEST_CASE("the last member's leave removes the group - its block is free again") {
    GroupTable table;
    table.join("podA", "vm1", std::nullopt, policy());
    table.join("podA", "vm2", std::nullopt, policy());
    CHECK_FALSE(table.leave("podA", "vm1"));
    CHECK(table.find("podA")->members == std::set<std::string>{"vm2"});
    CHECK_FALSE(table.leave("podA", "vm3"));  // not a member
    CHECK_FALSE(table.leave("nosuch", "vm2"));
    CHECK(table.leave("podA", "vm2"));
    CHECK(table.find("podA") == nullptr);
    CHECK(table.join("podC", "vm1", std::nullopt, policy()).subnet == prefix("203.0.113.0/28"));
}

TEST_CASE("a subnet asked for - inside the range - never overlapping another group's") {
    GroupTable table;
    CHECK(table.join("podA", "vm1", prefix("203.0.113.64/27"), policy()).subnet == prefix("203.0.113.64/27"));
    // The default blocks step over it.
    for (int i = 0; i < 4; ++i) table.join("pod" + std::to_string(i), "vm1", std::nullopt, policy());
    CHECK(table.join("podNext", "vm1", std::nullopt, policy()).subnet == prefix("203.0.113.96/28"));

    auto [kind, message] = error_of([&] { table.join("podB", "vm1", prefix("203.0.113.80/28"), policy()); });
    CHECK(kind == ErrorKind::Conflict);
    CHECK(message == "subnet 203.0.113.80/28 overlaps 203.0.113.64/27 of Hostlo group podA");

    std::tie(kind, message) = error_of([&] { table.join("podA", "vm2", prefix("203.0.113.128/28"), policy()); });
    CHECK(kind == ErrorKind::Conflict);
    CHECK(message == "Hostlo group podA has subnet 203.0.113.64/27, not 203.0.113.128/28; give its subnet, or none");

    std::tie(kind, message) = error_of([&] { table.join("podB", "vm1", prefix("198.51.100.0/28"), policy()); });
    CHECK(kind == ErrorKind::BadRequest);
    CHECK(message == "subnet 198.51.100.0/28 of Hostlo group podB is outside the Hostlo range 203.0.113.0/24; choose one inside it, or none");
    CHECK(error_of([&] { table.join("podB", "vm1", prefix("203.0.112.0/23"), policy()); }).first == ErrorKind::BadRequest);
    CHECK(error_of([&] { table.join("podB", "vm1", prefix("203.0.113.200/31"), policy()); }).first == ErrorKind::BadRequest);
    CHECK(table.find("podB") == nullptr);
    CHECK(table.find("podA")->members == std::set<std::string>{"vm1"});  // the refused joins changed nothing
}

TEST_CASE("a full range is Exhausted - invalid names are refused") {
    GroupTable table;
    for (int i = 0; i < 4; ++i) table.join("pod" + std::to_string(i), "vm1", std::nullopt, policy("203.0.113.0/26"));
    const auto [kind, message] = error_of([&] { table.join("pod4", "vm1", std::nullopt, policy("203.0.113.0/26")); });
    CHECK(kind == ErrorKind::Exhausted);
    CHECK(message == "the Hostlo range 203.0.113.0/26 has no free /28 left for group pod4; remove unused groups or widen hostlo.range in the shim's config");
    CHECK(table.groups().size() == 4);

    for (const char* name : {"", "pod A", "pod/a", "pod:a"})
        CHECK(error_of([&] { table.join(name, "vm1", std::nullopt, policy()); }).first == ErrorKind::BadRequest);
    CHECK(is_valid_name("shop-frontend_1.v2"));
    CHECK_FALSE(is_valid_name(std::string(65, 'a')));
}

TEST_CASE("the table survives its JSON - malformed JSON is refused by name") {
    GroupTable table;
    table.join("podA", "vm1", std::nullopt, policy());
    table.join("podA", "vm2", std::nullopt, policy());
    table.join("podB", "vm2", prefix("203.0.113.128/25"), policy());
    const GroupTable copy = GroupTable::from_json(nlohmann::json::parse(table.to_json().dump()));
    CHECK(copy.groups() == table.groups());

    CHECK_THROWS_AS(GroupTable::from_json(nlohmann::json::object()), std::invalid_argument);
    CHECK_THROWS_WITH(GroupTable::from_json(nlohmann::json::parse(R"([{"name":"podA","subnet":"203.0.113.1/24","members":[]}])")),
                      Catch::Contains("is not an IPv4 prefix"));
    CHECK_THROWS_AS(GroupTable::from_json(nlohmann::json::parse(R"([{"name":"podA"}])")), std::invalid_argument);
}

TEST_CASE("each group holds a slot of its own - the lowest free one - kept in the JSON; old JSON gets slots") {
    GroupTable table;
    CHECK(table.join("podA", "vm1", std::nullopt, policy()).slot == 0);
    CHECK(table.join("podB", "vm1", std::nullopt, policy()).slot == 1);
    CHECK(table.join("podA", "vm2", std::nullopt, policy()).slot == 0);
    table.leave("podA", "vm1");
    table.leave("podA", "vm2");
    CHECK(table.join("podC", "vm1", std::nullopt, policy()).slot == 0);  // podA's, free again
    const GroupTable copy = GroupTable::from_json(table.to_json());
    CHECK(copy.find("podB")->slot == 1);
    CHECK(copy.find("podC")->slot == 0);

    json old = table.to_json();
    for (auto& group : old) group.erase("slot");
    const GroupTable migrated = GroupTable::from_json(old);
    CHECK(migrated.find("podB")->slot != migrated.find("podC")->slot);
    json clash = table.to_json();
    clash[0]["slot"] = clash[1]["slot"];
    CHECK_THROWS_WITH(GroupTable::from_json(clash), Catch::Contains("held by another group"));
}
