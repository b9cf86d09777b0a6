#include "brfusion/ovs/datum.hpp"

#include <catch2/catch.hpp>

using namespace brfusion::ovs;

TEST_CASE("column types follow the schema's min/max/value") {
    auto is = [](const char* schema_type, ColumnKind kind, bool composite) {
        const ColumnType type = column_type(json::parse(schema_type));
        return type.kind == kind && type.composite == composite;
    };
    CHECK(is(R"("string")", ColumnKind::Scalar, false));
    CHECK(is(R"({"key":"integer"})", ColumnKind::Scalar, false));
    CHECK(is(R"({"key":"integer","min":0,"max":1})", ColumnKind::Set, false));
    CHECK(is(R"({"key":{"type":"uuid"},"min":0,"max":"unlimited"})", ColumnKind::Set, true));
    CHECK(is(R"({"key":"string","value":"string","min":0,"max":"unlimited"})", ColumnKind::Map, true));
    CHECK(is(R"({"key":"string","value":"string","min":0,"max":1})", ColumnKind::Map, false));
}

TEST_CASE("wire values normalize: bare atoms are one-element sets - uuids become strings") {
    CHECK(normalize(ColumnKind::Set, json::parse(R"(["uuid","a"])")) == json::array({"a"}));
    CHECK(normalize(ColumnKind::Set, json::parse(R"(["set",[["uuid","a"],["uuid","b"]]])")) == json::array({"a", "b"}));
    CHECK(normalize(ColumnKind::Set, json::parse(R"(["set",[]])")) == json::array());
    CHECK(normalize(ColumnKind::Scalar, json(7)) == json(7));
    CHECK(normalize(ColumnKind::Map, json::parse(R"(["map",[["k","v"],["x","y"]]])")) == json({{"k", "v"}, {"x", "y"}}));
    CHECK_THROWS_AS(normalize(ColumnKind::Map, json("not a map")), std::invalid_argument);
}

TEST_CASE("update2 diffs: non-composite columns replace - set elements toggle - map keys insert/delete/replace") {
    const ColumnType scalar{ColumnKind::Scalar, false}, optional{ColumnKind::Set, false}, set{ColumnKind::Set, true}, map{ColumnKind::Map, true};
    CHECK(apply_diff(scalar, json(1), json(2)) == json(2));
    // An optional column (max 1) going from 7 to 8 arrives as the new value, as ovsdb-server 3.1
    // sends it (seen on the wire: "modify":{"tag":8}); going to empty, as the empty set.
    CHECK(apply_diff(optional, json::array({7}), json(8)) == json::array({8}));
    CHECK(apply_diff(optional, json::array({7}), json::parse(R"(["set",[]])")) == json::array());
    CHECK(apply_diff(set, json::array({"a", "b"}), json::parse(R"(["uuid","c"])")) == json::array({"a", "b", "c"}));
    CHECK(apply_diff(set, json::array({"a", "b"}), json::parse(R"(["set",[["uuid","a"],["uuid","d"]]])")) == json::array({"b", "d"}));
    const json current = {{"keep", "1"}, {"drop", "2"}, {"change", "3"}};
    const json diff = json::parse(R"(["map",[["drop","2"],["change","4"],["new","5"]]])");
    CHECK(apply_diff(map, current, diff) == json({{"keep", "1"}, {"change", "4"}, {"new", "5"}}));
}

TEST_CASE("maps we send are pair lists - never JSON objects") {
    const json map = wire_map({{"brfusion-vm", "vm1"}, {"brfusion-network", "web"}});
    CHECK(map.dump() == R"(["map",[["brfusion-network","web"],["brfusion-vm","vm1"]]])");
    CHECK(wire_map({}).dump() == R"(["map",[]])");
    CHECK(wire_optional(std::nullopt).dump() == R"(["set",[]])");
    CHECK(wire_optional(json(5)) == json(5));
}
