#include "brfusion/hostlo/backends/ovs_segment.hpp"

#include "brfusion/hostlo/error.hpp"
#include "brfusion/ovs/client.hpp"


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

void OvsSegment::ensure_group(const Group& group) {
    const std::string name = bridge_of(group);
    if (const auto existing = client_.bridge(name)) {
        const auto label = existing->external_ids.find(kGroupLabel);
        const std::string holder = label == existing->external_ids.end() ? "" : label->second;
        if (holder != group.name)
            throw HostloError(ErrorKind::Conflict, "bridge " + name + " for Hostlo group " + group.name + " exists already, for " +
                                                       (holder.empty() ? std::string("something else (it has no brfusion-hostlo-group label)")
                                                                       : "Hostlo group " + holder) +
                                                       "; remove it (ovs-vsctl del-br " + name + ") if nothing uses it");
    }
    translate([&] { client_.ensure_bridge({name, "netdev", {{kGroupLabel, group.name}}}); });
}

void OvsSegment::remove_group(const std::string& group) {
    translate([&] {
        for (const auto& bridge : client_.list_owned(kGroupLabel).bridges)
            if (const auto label = bridge.external_ids.find(kGroupLabel); label != bridge.external_ids.end() && label->second == group)
                client_.remove_bridge(bridge.name);
    });
}

void OvsSegment::add_member(const Group& group, const std::string& port, const Labels& labels) {
    Labels all = labels;
    all[kGroupLabel] = group.name;
    translate([&] { client_.ensure_port({bridge_of(group), port, ovs::PortType::System, std::nullopt, all, ""}); });
}

void OvsSegment::remove_member(const std::string& group, const std::string& port) {
    const auto existing = client_.port(port);
    if (!existing) return;
    const auto label = existing->port.external_ids.find(kGroupLabel);
    if (label == existing->port.external_ids.end() || label->second != group)
        throw HostloError(ErrorKind::Conflict, "port " + port + " on bridge " + existing->bridge + " is not a member of Hostlo group " + group +
                                                   (label == existing->port.external_ids.end() ? "" : " but of " + label->second) + "; left alone");
    translate([&] {
        rules_of(existing->bridge).unsecure(port);  // before the port: OVS keeps a removed port's flows
        client_.remove_port(port);
    });
}

void OvsSegment::secure_members(const Group& group, const std::map<std::string, PortSecurity>& ports) {
    translate([&] { rules_of(bridge_of(group)).secure(ports); });
}

std::set<std::string> OvsSegment::secured_members(const Group& group, const std::set<std::string>& ports) {
    return translate([&] { return rules_of(bridge_of(group)).secured(ports); });
}

std::map<std::string, SegmentState> OvsSegment::groups() {
    return translate([&] {
        const ovs::OwnedObjects owned = client_.list_owned(kGroupLabel);
        std::map<std::string, SegmentState> result;
        std::map<std::string, std::string> group_of_bridge;
        for (const auto& bridge : owned.bridges) {
            const auto label = bridge.external_ids.find(kGroupLabel);
            if (label == bridge.external_ids.end()) continue;
            group_of_bridge[bridge.name] = label->second;
            result[label->second].name = bridge.name;
        }
        for (const auto& info : owned.ports)
            if (auto group = group_of_bridge.find(info.bridge); group != group_of_bridge.end()) result[group->second].members.insert(info.port.name);
        return result;
    });
}

}  // namespace brfusion::hostlo
