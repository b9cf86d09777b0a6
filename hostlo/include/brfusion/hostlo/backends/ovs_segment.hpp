#pragma once
// OvsSegment: each Hostlo group is an OVS bridge of its own (userspace datapath, standalone:
// the NORMAL learning switch) named bfhl-<the group's slot>, holding only its members' ports.
// A bridge per group isolates by construction: no flow, tag or patch port joins it to the
// integration bridge or to another group. The bridge's own internal port stays down and has no
// address, so the host itself is not on the segment.

#include "brfusion/hostlo/segment.hpp"
#include "brfusion/ovs/port_rules.hpp"

namespace brfusion::hostlo {

class OvsSegment final : public Segment {
public:
    // `ovsdb_socket`: ovsdb-server's; each bridge's OpenFlow management socket is beside it.
    OvsSegment(ovs::OvsClient& client, std::string ovsdb_socket) : client_(client), ovsdb_socket_(std::move(ovsdb_socket)) {}
    // The group's bridge: "bfhl-" and its slot (within Linux's 15 characters).
    static std::string bridge_of(const Group& group) { return "bfhl-" + std::to_string(group.slot); }

    void ensure_group(const Group& group) override;
    void remove_group(const std::string& group) override;
    void add_member(const Group& group, const std::string& port, const Labels& labels) override;
    void remove_member(const std::string& group, const std::string& port) override;
    std::map<std::string, SegmentState> groups() override;
    void secure_members(const Group& group, const std::map<std::string, PortSecurity>& ports) override;
    std::set<std::string> secured_members(const Group& group, const std::set<std::string>& ports) override;
    std::string segment_name(const Group& group) const override { return bridge_of(group); }

private:
    ovs::PortRules rules_of(const std::string& bridge) const { return ovs::PortRules(client_, ovsdb_socket_, bridge); }

    ovs::OvsClient& client_;
    std::string ovsdb_socket_;
};

}  // namespace brfusion::hostlo
