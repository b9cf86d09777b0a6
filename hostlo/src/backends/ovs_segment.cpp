#include "brfusion/hostlo/backends/ovs_segment.hpp"

#include "brfusion/hostlo/error.hpp"
#include "brfusion/ovs/client.hpp"

#include <cstdio>

namespace brfusion::hostlo {

namespace {
// OVS's message already says what failed; it only needs to say it was OVS.
template <typename F>
auto translate(F&& operation) {
    try {
        return operation();
    } catch (const ovs::OvsError& e) {
        throw HostloError(ErrorKind::Backend, std::string("Open vSwitch: ") + e.what());
    }
}
}  // namespace

std::string OvsSegment::bridge_of(const std::string& group) {
    std::uint32_t hash = 2166136261u;  // FNV-1a
    for (unsigned char c : group) hash = (hash ^ c) * 16777619u;
    char name[16];
    std::snprintf(name, sizeof name, "bfhl-%08x", hash);
    return name;
}

void OvsSegment::ensure_group(const std::string& group) {
    // A second group hashing to the same bridge name gets OVS's Conflict on the label.
    translate([&] { client_.ensure_bridge({bridge_of(group), "netdev", {{kGroupLabel, group}}}); });
}

void OvsSegment::remove_group(const std::string& group) {
    translate([&] { client_.remove_bridge(bridge_of(group)); });
}

void OvsSegment::add_member(const std::string& group, const std::string& port, const Labels& labels) {
    Labels all = labels;
    all[kGroupLabel] = group;
    translate([&] { client_.ensure_port({bridge_of(group), port, ovs::PortType::System, std::nullopt, all, ""}); });
}

void OvsSegment::remove_member(const std::string& port) {
    translate([&] { client_.remove_port(port); });
}

std::map<std::string, std::set<std::string>> OvsSegment::groups() {
    return translate([&] {
        const ovs::OwnedObjects owned = client_.list_owned(kGroupLabel);
        std::map<std::string, std::set<std::string>> result;
        std::map<std::string, std::string> group_of_bridge;
        for (const auto& bridge : owned.bridges) {
            const auto label = bridge.external_ids.find(kGroupLabel);
            if (label == bridge.external_ids.end()) continue;
            group_of_bridge[bridge.name] = label->second;
            result[label->second];
        }
        for (const auto& info : owned.ports)
            if (auto group = group_of_bridge.find(info.bridge); group != group_of_bridge.end()) result[group->second].insert(info.port.name);
        return result;
    });
}

}  // namespace brfusion::hostlo
