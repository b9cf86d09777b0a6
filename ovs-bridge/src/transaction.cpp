#include "brfusion/ovs/transaction.hpp"

#include "brfusion/ovs/error.hpp"

#include <algorithm>

namespace brfusion::ovs {

namespace {

json where_name(const std::string& name) { return json::array({json::array({"name", "==", name})}); }
json where_uuid(const Uuid& uuid) { return json::array({json::array({"_uuid", "==", wire_uuid(uuid)})}); }

json insert(const char* table, json row, const std::string& uuid_name) {
    return {{"op", "insert"}, {"table", table}, {"row", std::move(row)}, {"uuid-name", uuid_name}};
}

json mutate(const char* table, json where, json mutations) {
    return {{"op", "mutate"}, {"table", table}, {"where", std::move(where)}, {"mutations", std::move(mutations)}};
}

// "wait" with timeout 0 (RFC 7047 §5.2.6): fails the transaction at once unless the bridge exists.
json wait_bridge_exists(const std::string& bridge) {
    return {{"op", "wait"},         {"table", "Bridge"},      {"where", where_name(bridge)}, {"columns", json::array({"name"})},
            {"until", "=="},        {"rows", json::array({{{"name", bridge}}})}, {"timeout", 0}};
}

// Keys of `wanted` that `actual` lacks or holds with another value, as "k=v (has k=w)".
std::vector<std::string> map_differences(const StringMap& actual, const StringMap& wanted) {
    std::vector<std::string> differences;
    for (const auto& [key, value] : wanted) {
        auto found = actual.find(key);
        if (found == actual.end()) differences.push_back(key + "=" + value + " (missing)");
        else if (found->second != value) differences.push_back(key + "=" + value + " (has " + found->second + ")");
    }
    return differences;
}

std::string join(const std::vector<std::string>& parts, const char* separator) {
    std::string joined;
    for (const auto& part : parts) joined += (joined.empty() ? "" : separator) + part;
    return joined;
}

std::string describe_tag(const std::optional<int>& tag) { return tag ? std::to_string(*tag) : "none"; }

void require_root(const Replica& replica) {
    if (!replica.root())
        throw OvsError(ErrorKind::NotFound, "the Open_vSwitch table has no row: initialize the database with 'ovs-vsctl init'");
}

}  // namespace

const char* interface_type(PortType type) {
    switch (type) {
    case PortType::System: return "";
    case PortType::Tap: return "tap";
    case PortType::Internal: return "internal";
    case PortType::Patch: return "patch";
    }
    return "";
}

const char* table_name(Table table) {
    switch (table) {
    case Table::Bridge: return "Bridge";
    case Table::Port: return "Port";
    case Table::Interface: return "Interface";
    }
    return "";
}

void Transaction::add(json operation, std::string meaning_if_it_fails) {
    operations_.push_back(std::move(operation));
    meanings_.push_back(std::move(meaning_if_it_fails));
}

void Transaction::bump_next_cfg() {
    add(mutate("Open_vSwitch", json::array(), json::array({json::array({"next_cfg", "+=", 1})})));
    next_cfg_select_ = operations_.size();
    add({{"op", "select"}, {"table", "Open_vSwitch"}, {"where", json::array()}, {"columns", json::array({"next_cfg"})}});
}

json Transaction::params(const std::string& database) const {
    json params = json::array({database});
    for (const auto& operation : operations_) params.push_back(operation);
    return params;
}

Transaction::Outcome Transaction::interpret(const json& result) const {
    if (!result.is_array()) throw OvsError(ErrorKind::Rejected, "ovsdb-server answered a transaction with " + result.dump());
    for (std::size_t i = 0; i < result.size(); ++i) {
        const json& op_result = result[i];
        if (!op_result.is_object() || !op_result.contains("error") || op_result["error"].is_null()) continue;
        std::string message = "ovsdb-server refused the change: " + op_result["error"].get<std::string>();
        if (auto details = op_result.find("details"); details != op_result.end() && details->is_string())
            message += ": " + details->get<std::string>();
        if (i < operations_.size()) {
            if (!meanings_[i].empty()) throw OvsError(ErrorKind::NotFound, meanings_[i]);
            message += " (in " + operations_[i].value("op", std::string("?")) + " on " + operations_[i].value("table", std::string("?")) + ")";
        }
        throw OvsError(ErrorKind::Rejected, message);
    }
    Outcome outcome{result, std::nullopt};
    if (next_cfg_select_) {
        const json& rows = result.at(*next_cfg_select_).at("rows");
        if (rows.empty()) throw OvsError(ErrorKind::NotFound, "the Open_vSwitch table has no row: initialize the database with 'ovs-vsctl init'");
        outcome.next_cfg = rows[0].at("next_cfg").get<std::int64_t>();
    }
    return outcome;
}

std::optional<Transaction> plan_ensure_bridge(const Replica& replica, const BridgeSpec& spec) {
    if (auto existing = replica.bridge(spec.name)) {
        std::vector<std::string> differences;
        if (existing->datapath_type != spec.datapath_type)
            differences.push_back("datapath_type " + existing->datapath_type + " (wanted " + spec.datapath_type + ")");
        if (auto ids = map_differences(existing->external_ids, spec.external_ids); !ids.empty())
            differences.push_back("external_ids " + join(ids, ", "));
        if (differences.empty()) return std::nullopt;
        throw OvsError(ErrorKind::Conflict, "bridge " + spec.name + " already exists with other settings: " + join(differences, "; ") +
                                                ". Remove it ('ovs-vsctl del-br " + spec.name + "') or use another name");
    }
    require_root(replica);
    Transaction txn;
    txn.add(insert("Interface", {{"name", spec.name}, {"type", "internal"}}, "iface"));
    txn.add(insert("Port", {{"name", spec.name}, {"interfaces", wire_named_uuid("iface")}}, "port"));
    txn.add(insert("Bridge",
                   {{"name", spec.name}, {"datapath_type", spec.datapath_type}, {"ports", wire_named_uuid("port")},
                    {"external_ids", wire_map(spec.external_ids)}},
                   "bridge"));
    txn.add(mutate("Open_vSwitch", json::array(), json::array({json::array({"bridges", "insert", wire_set({wire_named_uuid("bridge")})})})));
    txn.bump_next_cfg();
    return txn;
}

std::optional<Transaction> plan_remove_bridge(const Replica& replica, const std::string& name) {
    auto existing = replica.bridge(name);
    if (!existing) return std::nullopt;
    Transaction txn;
    txn.add(mutate("Open_vSwitch", json::array(), json::array({json::array({"bridges", "delete", wire_set({wire_uuid(existing->uuid)})})})));
    txn.bump_next_cfg();
    return txn;
}

namespace {

// True when port spec.name exists exactly as asked; throws Conflict naming every difference when
// it exists otherwise; false when it does not exist.
bool port_matches(const Replica& replica, const PortSpec& spec) {
    auto existing = replica.port(spec.name);
    if (!existing) return false;
    std::vector<std::string> differences;
    auto bridge = replica.bridge_of_port(existing->uuid);
    if (bridge != spec.bridge) differences.push_back("bridge " + bridge.value_or("(none)") + " (wanted " + spec.bridge + ")");
    if (existing->tag != spec.tag) differences.push_back("tag " + describe_tag(existing->tag) + " (wanted " + describe_tag(spec.tag) + ")");
    if (auto ids = map_differences(existing->external_ids, spec.external_ids); !ids.empty())
        differences.push_back("external_ids " + join(ids, ", "));
    auto iface = existing->interfaces.size() == 1 ? replica.interface_by_uuid(existing->interfaces[0]) : std::nullopt;
    if (!iface) {
        differences.push_back(std::to_string(existing->interfaces.size()) + " interfaces (wanted 1)");
    } else {
        if (iface->type != interface_type(spec.type))
            differences.push_back("type '" + iface->type + "' (wanted '" + interface_type(spec.type) + "')");
        if (spec.type == PortType::Patch && iface->options["peer"] != spec.peer)
            differences.push_back("peer " + iface->options["peer"] + " (wanted " + spec.peer + ")");
    }
    if (differences.empty()) return true;
    throw OvsError(ErrorKind::Conflict, "port " + spec.name + " already exists with other settings: " + join(differences, "; ") +
                                            ". Remove it ('ovs-vsctl del-port " + spec.name + "') or use another name");
}

// Appends the operations that create the port. `id` makes the uuid-names unique within one
// transaction (several ports may be created together).
void add_port_operations(Transaction& txn, const Replica& replica, const PortSpec& spec, const std::string& id) {
    if (spec.tag && (*spec.tag < 0 || *spec.tag > 4095))
        throw OvsError(ErrorKind::Rejected, "VLAN tag " + std::to_string(*spec.tag) + " for port " + spec.name + " is outside 0-4095");
    if (!replica.has_bridge(spec.bridge))
        throw OvsError(ErrorKind::NotFound, "bridge " + spec.bridge + " does not exist; create it before adding port " + spec.name);
    StringMap options;
    if (spec.type == PortType::Patch) options["peer"] = spec.peer;
    const std::string iface = "iface" + id, port = "port" + id;
    txn.add(wait_bridge_exists(spec.bridge), "bridge " + spec.bridge + " does not exist (it was removed while port " + spec.name + " was being added)");
    txn.add(insert("Interface",
                   {{"name", spec.name}, {"type", interface_type(spec.type)}, {"options", wire_map(options)},
                    {"external_ids", wire_map(spec.external_ids)}},
                   iface));
    txn.add(insert("Port",
                   {{"name", spec.name}, {"interfaces", wire_named_uuid(iface)}, {"tag", wire_optional(spec.tag ? std::optional<json>(*spec.tag) : std::nullopt)},
                    {"external_ids", wire_map(spec.external_ids)}},
                   port));
    txn.add(mutate("Bridge", where_name(spec.bridge), json::array({json::array({"ports", "insert", wire_set({wire_named_uuid(port)})})})));
}

}  // namespace

std::optional<Transaction> plan_ensure_port(const Replica& replica, const PortSpec& spec) { return plan_ensure_ports(replica, {spec}); }

std::optional<Transaction> plan_ensure_ports(const Replica& replica, const std::vector<PortSpec>& specs) {
    std::optional<Transaction> txn;
    for (std::size_t i = 0; i < specs.size(); ++i) {
        const PortSpec& spec = specs[i];
        if (spec.type == PortType::Patch)
            throw OvsError(ErrorKind::Rejected, "patch port " + spec.name + " must be created with its peer: use ensure_patch_pair");
        if (port_matches(replica, spec)) continue;
        if (!txn) {
            require_root(replica);
            txn.emplace();
        }
        add_port_operations(*txn, replica, spec, "_" + std::to_string(i));
    }
    if (txn) txn->bump_next_cfg();
    return txn;
}

std::optional<Transaction> plan_ensure_patch_pair(const Replica& replica, const PatchPairSpec& spec) {
    const PortSpec a{spec.bridge_a, spec.port_a, PortType::Patch, std::nullopt, spec.external_ids, spec.port_b};
    const PortSpec b{spec.bridge_b, spec.port_b, PortType::Patch, std::nullopt, spec.external_ids, spec.port_a};
    const bool a_exists = port_matches(replica, a), b_exists = port_matches(replica, b);
    if (a_exists && b_exists) return std::nullopt;
    require_root(replica);
    Transaction txn;
    if (!a_exists) add_port_operations(txn, replica, a, "_a");
    if (!b_exists) add_port_operations(txn, replica, b, "_b");
    txn.bump_next_cfg();
    return txn;
}

std::optional<Transaction> plan_remove_port(const Replica& replica, const std::string& name) {
    auto existing = replica.port(name);
    if (!existing) return std::nullopt;
    Transaction txn;
    // Removing the reference is enough: the Port and its Interfaces are garbage-collected.
    txn.add(mutate("Bridge", json::array({json::array({"ports", "includes", wire_uuid(existing->uuid)})}),
                   json::array({json::array({"ports", "delete", wire_set({wire_uuid(existing->uuid)})})})));
    txn.bump_next_cfg();
    return txn;
}

namespace {
struct RowIdentity {
    Uuid uuid;
    StringMap external_ids;
};

// The row's uuid and external_ids; NotFound when it does not exist.
RowIdentity require_row(const Replica& replica, Table table, const std::string& name) {
    std::optional<RowIdentity> row;
    switch (table) {
    case Table::Bridge: if (auto r = replica.bridge(name)) row = RowIdentity{r->uuid, r->external_ids}; break;
    case Table::Port: if (auto r = replica.port(name)) row = RowIdentity{r->uuid, r->external_ids}; break;
    case Table::Interface: if (auto r = replica.interface(name)) row = RowIdentity{r->uuid, r->external_ids}; break;
    }
    if (!row) throw OvsError(ErrorKind::NotFound, std::string(table_name(table)) + " " + name + " does not exist");
    return *row;
}
}  // namespace

std::optional<Transaction> plan_set_external_ids(const Replica& replica, Table table, const std::string& name,
                                                 const StringMap& external_ids) {
    const RowIdentity row = require_row(replica, table, name);
    if (map_differences(row.external_ids, external_ids).empty()) return std::nullopt;
    std::vector<json> keys;
    for (const auto& [key, value] : external_ids) keys.emplace_back(key);
    // "insert" never overwrites a key, so delete the keys first; both mutations apply atomically.
    Transaction txn;
    txn.add(mutate(table_name(table), where_uuid(row.uuid),
                   json::array({json::array({"external_ids", "delete", wire_set(keys)}),
                                json::array({"external_ids", "insert", wire_map(external_ids)})})));
    return txn;
}

std::optional<Transaction> plan_clear_external_ids(const Replica& replica, Table table, const std::string& name,
                                                   const std::vector<std::string>& keys) {
    const RowIdentity row = require_row(replica, table, name);
    std::vector<json> present;
    for (const auto& key : keys)
        if (row.external_ids.count(key)) present.emplace_back(key);
    if (present.empty()) return std::nullopt;
    Transaction txn;
    txn.add(mutate(table_name(table), where_uuid(row.uuid), json::array({json::array({"external_ids", "delete", wire_set(present)})})));
    return txn;
}

}  // namespace brfusion::ovs
