#pragma once
// Segment: the host side of Hostlo groups. Per group, one isolated layer-2 segment that joins
// the host devices of its members' NICs and nothing else: no uplink, no gateway, no NAT, no
// other group's or host network's traffic. Backends: ovs (an OVS bridge per group, the
// default); kmod (the hostlo kernel module's multi-queue TAP) comes later.
//
// Everything a backend makes carries external_ids:brfusion-hostlo-group=GROUP, so that
// `ovs-vsctl find Bridge external_ids:brfusion-hostlo-group=POD` answers "where is pod POD", and
// every change checks that label first: a segment or port of another group is never touched. A
// group's segment is named after its slot (Group::slot), unique by construction.
//
// Contract for every method: idempotent (after a crash, what is asked for may exist partly or
// wholly); blocks until applied; throws HostloError(Conflict) when the name it needs belongs to
// another group (or to something brfusion did not make), HostloError(Backend) with the backend's
// own explanation otherwise.

#include "brfusion/common/port_security.hpp"
#include "brfusion/hostlo/group_table.hpp"

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

// A group's segment as it exists.
struct SegmentState {
    std::string name;               // where an admin finds it (the OVS bridge)
    std::set<std::string> members;  // its member ports
    bool operator==(const SegmentState&) const = default;
};

class Segment {
public:
    virtual ~Segment() = default;
    // The group's segment exists, named after its slot and labelled with its name.
    virtual void ensure_group(const Group& group) = 0;
    // Every segment labelled with the group is gone, with any member ports it still had.
    virtual void remove_group(const std::string& group) = 0;
    // The existing host device `port` is a member port of the group's (existing) segment,
    // carrying `labels` and the group label.
    virtual void add_member(const Group& group, const std::string& port, const Labels& labels) = 0;
    // The member port `port` of `group` is gone, with its port security (the host device stays).
    // A port of that name that is not the group's is left alone: Conflict.
    virtual void remove_member(const std::string& group, const std::string& port) = 0;
    // Port security on member ports of the group's segment (brfusion/common/port_security.hpp),
    // replacing what each had, all at once: a member may send only from its own MAC and address.
    virtual void secure_members(const Group& group, const std::map<std::string, PortSecurity>& ports) = 0;
    // Which of the group's member ports have port security.
    virtual std::set<std::string> secured_members(const Group& group, const std::set<std::string>& ports) = 0;
    // What exists now, by the group its label names (for reconcile).
    virtual std::map<std::string, SegmentState> groups() = 0;
    // The name of the group's segment. Pure, never throws.
    virtual std::string segment_name(const Group& group) const = 0;
};

// "ovs" (over `ovs`, whose ovsdb-server listens on `ovsdb_socket`); throws
// HostloError(BadRequest) for a backend this build does not have.
std::unique_ptr<Segment> make_segment(const std::string& backend, ovs::OvsClient& ovs, const std::string& ovsdb_socket);

}  // namespace brfusion::hostlo
