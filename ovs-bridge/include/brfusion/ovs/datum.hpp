#pragma once
// OVSDB values (RFC 7047 §5.1) in two forms:
//  - the wire form, as ovsdb-server sends and accepts it: ["set",[...]], ["map",[[k,v],...]],
//    ["uuid","..."], or a bare atom for a one-element set;
//  - the normalized form kept in the replica: a scalar column holds its atom, a set column a JSON
//    array of atoms, a map column a JSON object keyed by the key atom (as a string). UUID atoms
//    become plain strings in the normalized form.
// Pure functions; no I/O.

#include <nlohmann/json.hpp>

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace brfusion::ovs {

using json = nlohmann::json;
using Uuid = std::string;
using StringMap = std::map<std::string, std::string>;

// How a column's values are shaped, from its schema type (RFC 7047 §3.2 <type>): Scalar is exactly
// one atom (min = max = 1, no value type); every other key-only column is a Set (including
// optional columns, min 0 / max 1); every column with a value type is a Map.
enum class ColumnKind { Scalar, Set, Map };
struct ColumnType {
    ColumnKind kind = ColumnKind::Scalar;
    // max > 1. Only composite columns get element diffs in update2; ovsdb-server sends the whole
    // new value for the others, optional columns included (OVS's ovsdb_type_is_composite()).
    bool composite = false;
};
ColumnType column_type(const json& schema_type);

// Wire form -> normalized form for a column of `kind`. Throws std::invalid_argument on a value
// that does not fit the kind.
json normalize(ColumnKind kind, const json& wire);

// Applies an update2 "modify" value (ovsdb-server(7) §4.1.14) to a normalized value. For a
// non-composite column it is the new value. For a composite one it is a diff: each set element
// in it is toggled; each map key is inserted if absent, removed if present with the same value,
// replaced if present with another value.
// `current` is taken by value so that callers can move it in (no copy of a large set).
json apply_diff(ColumnType type, json current, const json& diff_wire);

// Builders for values we send. Maps go through json::array so that nlohmann_json never turns a
// pair list into an object.
json wire_uuid(const Uuid& uuid);
json wire_named_uuid(const std::string& name);
json wire_set(const std::vector<json>& atoms);
json wire_map(const StringMap& map);
json wire_optional(const std::optional<json>& atom);  // empty set or the atom

// Normalized map -> StringMap (non-string values are dumped as JSON).
StringMap to_string_map(const json& normalized);

}  // namespace brfusion::ovs
