#include "brfusion/ovs/replica.hpp"

#include <algorithm>
#include <stdexcept>

namespace brfusion::ovs {

namespace {

// table -> monitored columns. Everything the typed rows read, nothing more.
const std::map<std::string, std::vector<std::string>>& monitored() {
    static const std::map<std::string, std::vector<std::string>> columns = {
        {"Open_vSwitch", {"bridges", "next_cfg", "cur_cfg", "other_config"}},
        {"Bridge", {"name", "datapath_type", "ports", "external_ids"}},
        {"Port", {"name", "interfaces", "tag", "external_ids"}},
        {"Interface", {"name", "type", "options", "external_ids", "ofport", "error", "mac_in_use"}},
    };
    return columns;
}

std::string string_column(const json& row, const char* column) {
    auto found = row.find(column);
    return found != row.end() && found->is_string() ? found->get<std::string>() : std::string();
}

std::vector<Uuid> uuid_set(const json& row, const char* column) {
    std::vector<Uuid> uuids;
    if (auto found = row.find(column); found != row.end())
        for (const auto& atom : *found) uuids.push_back(atom.get<std::string>());
    return uuids;
}

StringMap map_column(const json& row, const char* column) {
    auto found = row.find(column);
    return found != row.end() ? to_string_map(*found) : StringMap{};
}

// An optional (min 0, max 1) column: a set of zero or one element.
template <typename T>
std::optional<T> optional_column(const json& row, const char* column) {
    auto found = row.find(column);
    if (found == row.end() || !found->is_array() || found->empty()) return std::nullopt;
    return (*found)[0].get<T>();
}

BridgeRow to_bridge(const Uuid& uuid, const json& row) {
    return {uuid, string_column(row, "name"), string_column(row, "datapath_type"), uuid_set(row, "ports"),
            map_column(row, "external_ids")};
}

PortRow to_port(const Uuid& uuid, const json& row) {
    return {uuid, string_column(row, "name"), uuid_set(row, "interfaces"), optional_column<int>(row, "tag"),
            map_column(row, "external_ids")};
}

InterfaceRow to_interface(const Uuid& uuid, const json& row) {
    return {uuid,
            string_column(row, "name"),
            string_column(row, "type"),
            map_column(row, "options"),
            map_column(row, "external_ids"),
            optional_column<std::int64_t>(row, "ofport"),
            optional_column<std::string>(row, "error"),
            optional_column<std::string>(row, "mac_in_use")};
}

}  // namespace

json monitor_requests() {
    json requests = json::object();
    for (const auto& [table, columns] : monitored()) requests[table] = json::array({{{"columns", columns}}});
    return requests;
}

Schema Schema::from_json(const json& schema) {
    Schema result;
    for (const auto& [table, columns] : monitored()) {
        const json* table_schema = schema.contains("tables") && schema["tables"].contains(table) ? &schema["tables"][table] : nullptr;
        if (!table_schema) throw std::invalid_argument("the OVSDB schema has no table " + table + "; is this an Open_vSwitch database?");
        for (const auto& column : columns) {
            if (!(*table_schema)["columns"].contains(column))
                throw std::invalid_argument("the OVSDB schema has no column " + table + "." + column);
            result.types_[table][column] = column_type((*table_schema)["columns"][column]["type"]);
        }
    }
    return result;
}

ColumnType Schema::type(const std::string& table, const std::string& column) const {
    auto t = types_.find(table);
    if (t != types_.end())
        if (auto c = t->second.find(column); c != t->second.end()) return c->second;
    throw std::invalid_argument("column " + table + "." + column + " is not monitored");
}

void Replica::reset(const json& table_updates2) {
    tables_.clear();
    apply(table_updates2);
}

void Replica::apply(const json& table_updates2) {
    for (const auto& [table, rows] : table_updates2.items())
        for (const auto& [uuid, row_update] : rows.items()) apply_row(table, uuid, row_update);
}

void Replica::apply_row(const std::string& table_name, const Uuid& uuid, const json& row_update) {
    Table& table = tables_[table_name];
    auto unindex = [&](const json& row) {
        if (auto name = row.find("name"); name != row.end()) table.by_name.erase(name->get<std::string>());
    };
    if (auto initial = row_update.find("initial"); initial != row_update.end() || row_update.contains("insert")) {
        const json& wire_row = initial != row_update.end() ? *initial : row_update["insert"];
        json row = json::object();
        for (const auto& [column, value] : wire_row.items()) row[column] = normalize(schema_.type(table_name, column).kind, value);
        if (auto name = row.find("name"); name != row.end()) table.by_name[name->get<std::string>()] = uuid;
        table.rows[uuid] = std::move(row);
    } else if (auto modify = row_update.find("modify"); modify != row_update.end()) {
        auto found = table.rows.find(uuid);
        if (found == table.rows.end()) return;  // a row we never saw: the next resync fixes the replica
        unindex(found->second);
        json& row = found->second;
        for (const auto& [column, diff] : modify->items())
            row[column] = apply_diff(schema_.type(table_name, column), row.contains(column) ? std::move(row[column]) : json(), diff);
        if (auto name = row.find("name"); name != row.end()) table.by_name[name->get<std::string>()] = uuid;
    } else if (row_update.contains("delete")) {
        if (auto found = table.rows.find(uuid); found != table.rows.end()) {
            unindex(found->second);
            table.rows.erase(found);
        }
    }
}

const Replica::Entry* Replica::find(const std::string& table, const std::string& name) const {
    auto t = tables_.find(table);
    if (t == tables_.end()) return nullptr;
    auto uuid = t->second.by_name.find(name);
    return uuid == t->second.by_name.end() ? nullptr : &*t->second.rows.find(uuid->second);
}

const Replica::Entry* Replica::find_uuid(const std::string& table, const Uuid& uuid) const {
    auto t = tables_.find(table);
    if (t == tables_.end()) return nullptr;
    auto row = t->second.rows.find(uuid);
    return row == t->second.rows.end() ? nullptr : &*row;
}

std::optional<SwitchRow> Replica::root() const {
    auto t = tables_.find("Open_vSwitch");
    if (t == tables_.end() || t->second.rows.empty()) return std::nullopt;
    const auto& [uuid, row] = *t->second.rows.begin();
    return SwitchRow{uuid, row.value("next_cfg", std::int64_t{0}), row.value("cur_cfg", std::int64_t{0}), uuid_set(row, "bridges"),
                     map_column(row, "other_config")};
}

std::optional<BridgeRow> Replica::bridge(const std::string& name) const {
    const Entry* row = find("Bridge", name);
    return row ? std::optional(to_bridge(row->first, row->second)) : std::nullopt;
}

std::optional<PortRow> Replica::port(const std::string& name) const {
    const Entry* row = find("Port", name);
    return row ? std::optional(to_port(row->first, row->second)) : std::nullopt;
}

std::optional<InterfaceRow> Replica::interface(const std::string& name) const {
    const Entry* row = find("Interface", name);
    return row ? std::optional(to_interface(row->first, row->second)) : std::nullopt;
}

std::optional<InterfaceRow> Replica::interface_by_uuid(const Uuid& uuid) const {
    const Entry* row = find_uuid("Interface", uuid);
    return row ? std::optional(to_interface(row->first, row->second)) : std::nullopt;
}

std::vector<BridgeRow> Replica::bridges() const {
    std::vector<BridgeRow> result;
    if (auto t = tables_.find("Bridge"); t != tables_.end())
        for (const auto& [uuid, row] : t->second.rows) result.push_back(to_bridge(uuid, row));
    return result;
}

std::vector<PortRow> Replica::ports() const {
    std::vector<PortRow> result;
    if (auto t = tables_.find("Port"); t != tables_.end())
        for (const auto& [uuid, row] : t->second.rows) result.push_back(to_port(uuid, row));
    return result;
}

std::vector<InterfaceRow> Replica::interfaces() const {
    std::vector<InterfaceRow> result;
    if (auto t = tables_.find("Interface"); t != tables_.end())
        for (const auto& [uuid, row] : t->second.rows) result.push_back(to_interface(uuid, row));
    return result;
}

std::optional<std::string> Replica::bridge_of_port(const Uuid& port) const {
    auto t = tables_.find("Bridge");
    if (t == tables_.end()) return std::nullopt;
    const json wanted(port);
    for (const auto& [uuid, row] : t->second.rows) {
        auto ports = row.find("ports");
        if (ports != row.end() && std::find(ports->begin(), ports->end(), wanted) != ports->end()) return string_column(row, "name");
    }
    return std::nullopt;
}

}  // namespace brfusion::ovs
