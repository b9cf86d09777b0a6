#include "brfusion/hostlo/group_table.hpp"

#include "brfusion/hostlo/error.hpp"

#include <stdexcept>

namespace brfusion::hostlo {

using nlohmann::json;

namespace {
[[noreturn]] void fail(ErrorKind kind, const std::string& message) { throw HostloError(kind, message); }

std::uint64_t block_size(int length) { return std::uint64_t{1} << (32 - length); }
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
    Group group{name, chosen, {vm}};
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

json GroupTable::to_json() const {
    json groups = json::array();
    for (const auto& [name, group] : groups_) groups.push_back({{"name", name}, {"subnet", group.subnet.str()}, {"members", group.members}});
    return groups;
}

GroupTable GroupTable::from_json(const json& saved) {
    if (!saved.is_array()) throw std::invalid_argument("Hostlo groups: expected an array");
    GroupTable table;
    for (const auto& entry : saved) {
        Group group;
        try {
            group.name = entry.at("name").get<std::string>();
            const auto subnet = Ipv4Prefix::parse(entry.at("subnet").get<std::string>());
            if (!subnet) throw std::invalid_argument("subnet " + entry.at("subnet").dump() + " is not an IPv4 prefix");
            group.subnet = *subnet;
            group.members = entry.at("members").get<std::set<std::string>>();
        } catch (const json::exception& e) {
            throw std::invalid_argument("Hostlo group " + entry.dump() + ": " + e.what());
        }
        table.groups_[group.name] = group;
    }
    return table;
}

}  // namespace brfusion::hostlo
