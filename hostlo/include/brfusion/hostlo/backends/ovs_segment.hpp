#pragma once
// OvsSegment: each Hostlo group is an OVS bridge of its own (userspace datapath, standalone:
// the NORMAL learning switch) named bfhl-<the group's slot>, holding only its members' ports.
// A bridge per group isolates by construction: no flow, tag or patch port joins it to the
// integration bridge or to another group. The bridge's own internal port stays down and has no
// address, so the host itself is not on the segment.

#include "brfusion/hostlo/segment.hpp"

namespace brfusion::hostlo {

class OvsSegment final : public Segment {
public:
    explicit OvsSegment(ovs::OvsClient& client) : client_(client) {}
    // The group's bridge: "bfhl-" and its slot (within Linux's 15 characters).
    static std::string bridge_of(const Group& group) { return "bfhl-" + std::to_string(group.slot); }

    void ensure_group(const Group& group) override;
    void remove_group(const std::string& group) override;
    void add_member(const Group& group, const std::string& port, const Labels& labels) override;
    void remove_member(const std::string& group, const std::string& port) override;
    std::map<std::string, SegmentState> groups() override;
    std::string segment_name(const Group& group) const override { return bridge_of(group); }

private:
    ovs::OvsClient& client_;
};

}  // namespace brfusion::hostlo
