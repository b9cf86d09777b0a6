#pragma once
// A local copy of the OVSDB tables brfusion monitors, kept current from monitor_cond/update2, plus
// typed views of the rows. Pure: the I/O shell feeds it; readers query it. Not thread-safe (the
// client guards it).

#include "brfusion/ovs/datum.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace brfusion::ovs {

struct BridgeRow {
    Uuid uuid;
    std::string name;
    std::string datapath_type;
    std::vector<Uuid> ports;
    StringMap external_ids;
};

struct PortRow {
    Uuid uuid;
    std::string name;
    std::vector<Uuid> interfaces;
    std::optional<int> tag;
    StringMap external_ids;
};

struct InterfaceRow {
    Uuid uuid;
    std::string name;
    std::string type;  // "" means a system device
    StringMap options;
    StringMap external_ids;
    std::optional<std::int64_t> ofport;    // -1 when ovs-vswitchd could not add the interface
    std::optional<std::string> error;      // set by ovs-vswitchd when it failed
    std::optional<std::string> mac_in_use;
};

// The root row of the Open_vSwitch table.
struct SwitchRow {
    Uuid uuid;
    std::int64_t next_cfg = 0;
    std::int64_t cur_cfg = 0;
    std::vector<Uuid> bridges;
    StringMap other_config;  // ovs-vswitchd's settings, e.g. userspace-tso-enable
};

// The tables and columns brfusion monitors, as a monitor_cond request body.
json monitor_requests();

// Column kinds of the monitored columns, taken from a get_schema reply.
class Schema {
public:
    // Throws std::invalid_argument naming the table/column if the schema lacks one we monitor.
    static Schema from_json(const json& schema);
    ColumnType type(const std::string& table, const std::string& column) const;

private:
    std::map<std::string, std::map<std::string, ColumnType>> types_;
};

class Replica {
public:
    explicit Replica(Schema schema) : schema_(std::move(schema)) {}

    // Replaces the whole replica with a monitor_cond reply (<table-updates2>, all "initial").
    void reset(const json& table_updates2);
    // Applies one update2 notification's <table-updates2>.
    void apply(const json& table_updates2);

    std::optional<SwitchRow> root() const;
    std::optional<BridgeRow> bridge(const std::string& name) const;
    bool has_bridge(const std::string& name) const { return find("Bridge", name) != nullptr; }
    std::optional<PortRow> port(const std::string& name) const;
    std::optional<InterfaceRow> interface(const std::string& name) const;
    std::optional<InterfaceRow> interface_by_uuid(const Uuid& uuid) const;
    std::vector<BridgeRow> bridges() const;
    std::vector<PortRow> ports() const;
    std::vector<InterfaceRow> interfaces() const;
    // The name of the bridge whose `ports` holds the port, if any. Converts no row: a lookup on
    // the attach path, whose cost is one comparison per port.
    std::optional<std::string> bridge_of_port(const Uuid& port) const;

private:
    struct Table {
        std::unordered_map<Uuid, json> rows;           // uuid -> {column: normalized value}
        std::unordered_map<std::string, Uuid> by_name;  // for tables with a "name" column
    };
    using Entry = std::pair<const Uuid, json>;  // a row with its uuid
    void apply_row(const std::string& table, const Uuid& uuid, const json& row_update);
    const Entry* find(const std::string& table, const std::string& name) const;
    const Entry* find_uuid(const std::string& table, const Uuid& uuid) const;

    Schema schema_;
    std::map<std::string, Table> tables_;
};

}  // namespace brfusion::ovs
