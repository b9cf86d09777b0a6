#include "brfusion/ovs/datum.hpp"

#include <algorithm>
#include <stdexcept>

namespace brfusion::ovs {

namespace {

bool is_tagged(const json& wire, const char* tag) {
    return wire.is_array() && wire.size() == 2 && wire[0].is_string() && wire[0] == tag;
}

// A wire atom -> normalized atom: UUIDs become their string, everything else stays.
json normalize_atom(const json& atom) {
    if (is_tagged(atom, "uuid") || is_tagged(atom, "named-uuid")) return atom[1];
    if (atom.is_array() || atom.is_object()) throw std::invalid_argument("not an OVSDB atom: " + atom.dump());
    return atom;
}

std::string map_key(const json& atom) {
    json key = normalize_atom(atom);
    return key.is_string() ? key.get<std::string>() : key.dump();
}

// The elements of a wire set (a bare atom stands for a one-element set).
std::vector<json> set_elements(const json& wire) {
    std::vector<json> elements;
    if (is_tagged(wire, "set")) {
        for (const auto& atom : wire[1]) elements.push_back(normalize_atom(atom));
    } else {
        elements.push_back(normalize_atom(wire));
    }
    return elements;
}

json::array_t map_pairs(const json& wire) {
    if (!is_tagged(wire, "map") || !wire[1].is_array()) throw std::invalid_argument("not an OVSDB map: " + wire.dump());
    return wire[1].get<json::array_t>();
}

}  // namespace

ColumnType column_type(const json& schema_type) {
    if (schema_type.is_string()) return {ColumnKind::Scalar, false};
    const auto min = schema_type.value("min", 1);
    const json max = schema_type.value("max", json(1));
    const bool composite = max != 1;  // "unlimited" or a number above 1
    if (schema_type.contains("value")) return {ColumnKind::Map, composite};
    return {(min == 1 && max == 1) ? ColumnKind::Scalar : ColumnKind::Set, composite};
}

json normalize(ColumnKind kind, const json& wire) {
    switch (kind) {
    case ColumnKind::Scalar:
        return normalize_atom(wire);
    case ColumnKind::Set:
        return json(set_elements(wire));
    case ColumnKind::Map: {
        json object = json::object();
        for (const auto& pair : map_pairs(wire)) object[map_key(pair.at(0))] = normalize_atom(pair.at(1));
        return object;
    }
    }
    throw std::logic_error("unknown column kind");
}

json apply_diff(ColumnType type, json current, const json& diff_wire) {
    if (!type.composite) return normalize(type.kind, diff_wire);
    switch (type.kind) {
    case ColumnKind::Scalar:
        return normalize_atom(diff_wire);
    case ColumnKind::Set: {
        json result = current.is_array() ? std::move(current) : json::array();
        for (auto& element : set_elements(diff_wire)) {
            auto found = std::find(result.begin(), result.end(), element);
            if (found != result.end()) result.erase(found);
            else result.push_back(std::move(element));
        }
        return result;
    }
    case ColumnKind::Map: {
        json result = current.is_object() ? std::move(current) : json::object();
        for (const auto& pair : map_pairs(diff_wire)) {
            const std::string key = map_key(pair.at(0));
            json value = normalize_atom(pair.at(1));
            auto found = result.find(key);
            if (found == result.end()) result[key] = std::move(value);
            else if (*found == value) result.erase(found);
            else *found = std::move(value);
        }
        return result;
    }
    }
    throw std::logic_error("unknown column kind");
}

json wire_uuid(const Uuid& uuid) { return json::array({"uuid", uuid}); }
json wire_named_uuid(const std::string& name) { return json::array({"named-uuid", name}); }
json wire_set(const std::vector<json>& atoms) { return json::array({"set", json(atoms)}); }

json wire_map(const StringMap& map) {
    json pairs = json::array();
    for (const auto& [key, value] : map) pairs.push_back(json::array({key, value}));
    return json::array({"map", pairs});
}

json wire_optional(const std::optional<json>& atom) {
    return atom ? *atom : json::array({"set", json::array()});
}

StringMap to_string_map(const json& normalized) {
    StringMap map;
    if (!normalized.is_object()) return map;
    for (const auto& [key, value] : normalized.items()) map[key] = value.is_string() ? value.get<std::string>() : value.dump();
    return map;
}

}  // namespace brfusion::ovs
