#pragma once
// Segment: the host side of Hostlo groups. Per group, one isolated layer-2 segment that joins
// the host devices of its members' NICs and nothing else: no uplink, no gateway, no NAT, no
// other group's or host network's traffic. Backends: ovs (an OVS bridge per group, the
// default); kmod (the hostlo kernel module's multi-queue TAP) comes later.
//
// Everything a backend makes carries external_ids:brfusion-hostlo-group=GROUP, so that
// `ovs-vsctl find Bridge external_ids:brfusion-hostlo-group=POD` answers "where is pod POD".
//
// Contract for every method: idempotent (after a crash, what is asked for may exist partly or
// wholly); blocks until applied; throws HostloError(Backend) with the backend's own explanation.

#include <map>
#include <memory>
#include <set>
#include <string>

namespace brfusion::ovs {
class OvsClient;
}

namespace brfusion::hostlo {

using Labels = std::map<std::string, std::string>;  // external_ids

// The label every Hostlo object carries, with the group's name as its value.
inline constexpr const char* kGroupLabel = "brfusion-hostlo-group";

class Segment {
public:
    virtual ~Segment() = default;
    // The group's segment exists.
    virtual void ensure_group(const std::string& group) = 0;
    // The group's segment is gone, with any member ports it still had.
    virtual void remove_group(const std::string& group) = 0;
    // The existing host device `port` is a member port of the group's (existing) segment,
    // carrying `labels` and the group label.
    virtual void add_member(const std::string& group, const std::string& port, const Labels& labels) = 0;
    // The member port `port` is gone from whichever segment held it (the host device stays).
    virtual void remove_member(const std::string& port) = 0;
    // What exists now: every group's segment with its member ports (for reconcile).
    virtual std::map<std::string, std::set<std::string>> groups() = 0;
    // Where an admin finds the group's segment (the OVS bridge's name). Pure, never throws.
    virtual std::string segment_name(const std::string& group) const = 0;
};

// "ovs" (over `ovs`); throws HostloError(BadRequest) for a backend this build does not have.
std::unique_ptr<Segment> make_segment(const std::string& backend, ovs::OvsClient& ovs);

}  // namespace brfusion::hostlo
