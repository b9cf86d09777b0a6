#include "brfusion/hostlo/group_table.hpp"

#include "brfusion/hostlo/error.hpp"

#include <set>
#include <stdexcept>
#include <vector>

namespace brfusion::hostlo {

using nlohmann::json;

namespace {
[[noreturn]] void fail(ErrorKind kind, const std::string& message) { throw HostloError(kind, message); }

std::uint64_t block_size(int length) { return std::uint64_t{1} << (32 - length); }

// The lowest slot none of `groups` holds.
int free_slot(const std::map<std::string, Group>& groups) {
    std::set<int> taken;
    for (const auto& [name, group] : groups) taken.insert(group.slot);
    int slot = 0;
    while (taken.count(slot)) ++slot;
    return slot;
}
}  // namespace

Group GroupTable::join(const std::string& name, const std::string& vm, const std::optional<Ipv4Prefix>& subnet, const SubnetPolicy& policy) {
    if (!is_valid_name(name)) fail(ErrorKind::BadRequest, "Hostlo group '" + name + "' must be 1-64 characters of [A-Za-z0-9._-]");
    if (auto found = groups_.find(name); found != groups_.end()) {
        if (subnet && *subnet != found->second.subnet)
            fail(ErrorKind::Conflict, "Hostlo group " + name + " has subnet " + found->second.subnet.str() + ", not " + subnet->str() +
                                          "; give its subnet, or none");
        found->second.members.insert(vm);
        return found->second;
    }
    const auto taken_by = [&](const Ipv4Prefix& candidate) -> const Group* {
        for (const auto& [other, group] : groups_)
            if (group.subnet.overlaps(candidate)) return &group;
        return nullptr;
    };
    Ipv4Prefix chosen;
    if (subnet) {
        if (!policy.range.contains(subnet->network) || subnet->length < policy.range.length)
            fail(ErrorKind::BadRequest, "subnet " + subnet->str() + " of Hostlo group " + name + " is outside the Hostlo range " + policy.range.str() +
                                            "; choose one inside it, or none");
        if (subnet->length > 30) fail(ErrorKind::BadRequest, "subnet " + subnet->str() + " of Hostlo group " + name + " is too small; use /30 or larger");
        if (const Group* holder = taken_by(*subnet))
            fail(ErrorKind::Conflict, "subnet " + subnet->str() + " overlaps " + holder->subnet.str() + " of Hostlo group " + holder->name);
        chosen = *subnet;
    } else {
        const std::uint64_t step = block_size(policy.prefix_length);
        const std::uint64_t end = std::uint64_t{policy.range.network.value} + block_size(policy.range.length);
        bool found = false;
        for (std::uint64_t at = policy.range.network.value; at + step <= end && !found; at += step) {
            chosen = {Ipv4{static_cast<std::uint32_t>(at)}, policy.prefix_length};
            found = taken_by(chosen) == nullptr;
        }
        if (!found)
            fail(ErrorKind::Exhausted, "the Hostlo range " + policy.range.str() + " has no free /" + std::to_string(policy.prefix_length) +
                                           " left for group " + name + "; remove unused groups or widen hostlo.range in the shim's config");
    }
    Group group{name, chosen, {vm}, free_slot(groups_)};
    groups_[name] = group;
    return group;
}

bool GroupTable::leave(const std::string& name, const std::string& vm) {
    const auto found = groups_.find(name);
    if (found == groups_.end() || !found->second.members.erase(vm) || !found->second.members.empty()) return false;
    groups_.erase(found);
    return true;
}

const Group* GroupTable::find(const std::string& name) const {
    const auto found = groups_.find(name);
    return found == groups_.end() ? nullptr : &found->second;
}

json GroupTable::to_json(const Group& group) {
    return {{"name", group.name}, {"subnet", group.subnet.str()}, {"members", group.members}, {"slot", group.slot}};
}

json GroupTable::to_json() const {
    json groups = json::array();
    for (const auto& [name, group] : groups_) groups.push_back(to_json(group));
    return groups;
}

GroupTable GroupTable::from_json(const json& saved) {
    if (!saved.is_array()) throw std::invalid_argument("Hostlo groups: expected an array");
    GroupTable table;
    std::vector<std::string> unslotted;
    std::set<int> slots;
    for (const auto& entry : saved) {
        Group group;
        try {
            group.name = entry.at("name").get<std::string>();
            const auto subnet = Ipv4Prefix::parse(entry.at("subnet").get<std::string>());
            if (!subnet) throw std::invalid_argument("subnet " + entry.at("subnet").dump() + " is not an IPv4 prefix");
            group.subnet = *subnet;
            group.members = entry.at("members").get<std::set<std::string>>();
            if (!entry.contains("slot")) unslotted.push_back(group.name);
            else if (group.slot = entry.at("slot").get<int>(); group.slot < 0 || !slots.insert(group.slot).second)
                throw std::invalid_argument("slot " + std::to_string(group.slot) + " is negative or held by another group");
        } catch (const json::exception& e) {
            throw std::invalid_argument("Hostlo group " + entry.dump() + ": " + e.what());
        }
        table.groups_[group.name] = group;
    }
    for (const auto& name : unslotted) table.groups_[name].slot = -1;  // none yet: free_slot must not count the default 0
    for (const auto& name : unslotted) table.groups_[name].slot = free_slot(table.groups_);
    return table;
}

}  // namespace brfusion::hostlo
