#pragma once
// GroupTable: the Hostlo groups on this host and their member VMs. Pure and serializable; the
// shim persists it in its journal and drives the segments (segment.hpp) from it.
//
// A group is one pod's localhost segment, named by the pod. Its first member's join creates it,
// its last member's leave removes it. Each group owns a subnet of its own: the one its first
// member asks for, or the first free block of the configured range. Subnets never overlap, and
// all of them lie inside the range (which the shim keeps apart from its host networks). Each group
// also owns a slot, the lowest number no other group holds: its segment is named after it, so
// two groups' segments never share a name (a name made from the group's would need a hash, and
// hashes collide).

#include "brfusion/common/ipv4.hpp"
#include "brfusion/common/names.hpp"  // is_valid_name: a group's name is its pod's

#include <nlohmann/json.hpp>

#include <map>
#include <optional>
#include <set>
#include <string>

namespace brfusion::hostlo {

// Where group subnets come from.
struct SubnetPolicy {
    Ipv4Prefix range = *Ipv4Prefix::parse("100.127.0.0/16");
    int prefix_length = 28;  // each group's block when its first member does not ask for one
};

struct Group {
    std::string name;
    Ipv4Prefix subnet;
    std::set<std::string> members;  // VM names
    int slot = 0;                   // unique among the groups that exist
    bool operator==(const Group&) const = default;
};


class GroupTable {
public:
    // VM `vm` joins group `name` and the group is returned as it is now; joining again changes
    // nothing. A new group gets `subnet` if given, else the first free block of the range. For an
    // existing group, `subnet` (if given) must be its own.
    // Errors: BadRequest (invalid name; a subnet outside the range or too small for two members),
    // Conflict (a subnet other than the group's own, or overlapping another group's; both named),
    // Exhausted (no free block left in the range).
    Group join(const std::string& name, const std::string& vm, const std::optional<Ipv4Prefix>& subnet, const SubnetPolicy& policy);
    // VM `vm` leaves group `name`. Returns true when that removed the group (it was the last
    // member). An unknown group or non-member: false, nothing changes.
    bool leave(const std::string& name, const std::string& vm);

    const Group* find(const std::string& name) const;
    const std::map<std::string, Group>& groups() const { return groups_; }

    nlohmann::json to_json() const;  // an array of to_json(group)
    static nlohmann::json to_json(const Group& group);
    // Throws std::invalid_argument naming what is malformed (two groups with one slot, say).
    // Groups saved without a slot (by earlier versions) get the lowest free ones.
    static GroupTable from_json(const nlohmann::json& saved);

private:
    std::map<std::string, Group> groups_;  // by name
};

}  // namespace brfusion::hostlo
