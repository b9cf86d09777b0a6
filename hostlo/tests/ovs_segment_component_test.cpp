// OvsSegment against a real ovsdb-server + ovs-vswitchd (userspace datapath) in a private netns,
// with ovs-vsctl as the oracle: a bridge per group, labelled; members only on their group's bridge;
// everything gone with the group. (Traffic over groups: vmm-shim's netns component test.)

#include "brfusion/hostlo/backends/ovs_segment.hpp"
#include "brfusion/hostlo/error.hpp"
#include "brfusion/ovs/client.hpp"
#include "brfusion/testing/command.hpp"
#include "brfusion/testing/ovs_sandbox.hpp"

#include <catch2/catch.hpp>

using namespace brfusion;
using namespace brfusion::hostlo;
using brfusion::testing::OvsSandbox;

namespace {
struct Lab {
    OvsSandbox sandbox;
    ovs::OvsClient client{[&] {
        ovs::ClientOptions options;
        options.socket_path = sandbox.db_socket();
        return options;
    }()};
    OvsSegment segment{client, sandbox.db_socket()};

    // A host device for a member port, in the netns where ovs-vswitchd runs.
    void make_device(const std::string& name) const { sandbox.in_netns("ip tuntap add name " + name + " mode tap"); }
};
}  // namespace

TEST_CASE("a group is a labelled bridge of its own - members sit only on their group's bridge - removal takes all") {
    Lab lab;
    const Group pod_a{"podA", {}, {"vm1"}, 0}, pod_b{"podB", {}, {"vm1"}, 1};
    const std::string bridge_a = OvsSegment::bridge_of(pod_a), bridge_b = OvsSegment::bridge_of(pod_b);
    CHECK(bridge_a == "bfhl-0");
    CHECK(bridge_b == "bfhl-1");

    lab.segment.ensure_group(pod_a);
    lab.segment.ensure_group(pod_a);  // idempotent
    lab.segment.ensure_group(pod_b);
    CHECK(testing::trim_end(lab.sandbox.vsctl("--bare --columns=name find Bridge external_ids:brfusion-hostlo-group=podA")) == bridge_a);
    CHECK(testing::trim_end(lab.sandbox.vsctl("get Bridge " + bridge_a + " datapath_type")) == "netdev");

    lab.make_device("bfta1");
    lab.make_device("bfta2");
    lab.make_device("bftb1");
    lab.segment.add_member(pod_a, "bfta1", {{"brfusion-vm", "vm1"}});
    lab.segment.add_member(pod_a, "bfta2", {{"brfusion-vm", "vm2"}});
    lab.segment.add_member(pod_a, "bfta2", {{"brfusion-vm", "vm2"}});  // idempotent
    lab.segment.add_member(pod_b, "bftb1", {{"brfusion-vm", "vm1"}});
    CHECK(testing::trim_end(lab.sandbox.vsctl("port-to-br bfta1")) == bridge_a);
    CHECK(testing::trim_end(lab.sandbox.vsctl("port-to-br bftb1")) == bridge_b);
    CHECK(testing::trim_end(lab.sandbox.vsctl("--bare --columns=name find Interface external_ids:brfusion-hostlo-group=podB")) == "bftb1");
    CHECK(testing::trim_end(lab.sandbox.vsctl("get Port bfta1 external_ids:brfusion-vm")) == "vm1");
    // The host itself is not on the segment: the bridge's own port has no address.
    CHECK(lab.sandbox.in_netns("ip -4 addr show dev " + bridge_a).find("inet ") == std::string::npos);

    const auto groups = lab.segment.groups();
    CHECK(groups.at("podA") == SegmentState{bridge_a, {"bfta1", "bfta2"}});
    CHECK(groups.at("podB") == SegmentState{bridge_b, {"bftb1"}});

    lab.segment.remove_member("podA", "bfta2");
    lab.segment.remove_member("podA", "bfta2");  // idempotent
    CHECK(lab.segment.groups().at("podA").members == std::set<std::string>{"bfta1"});

    lab.segment.remove_group("podA");
    lab.segment.remove_group("podA");  // idempotent
    CHECK(testing::trim_end(lab.sandbox.vsctl("--bare --columns=name find Bridge external_ids:brfusion-hostlo-group=podA")).empty());
    CHECK(testing::trim_end(lab.sandbox.vsctl("--bare --columns=name find Port name=bfta1")).empty());
    CHECK(lab.segment.groups().count("podA") == 0);
    CHECK(lab.segment.groups().count("podB") == 1);
}

TEST_CASE("groups never share a segment - another group's bridge and ports are left alone, with a reason") {
    Lab lab;
    // The names that collided when bridges were named by a 32-bit hash of the group.
    const Group first{"pod1039599", {}, {"vm1"}, 0}, second{"pod1222382", {}, {"vm2"}, 1};
    lab.segment.ensure_group(first);
    lab.segment.ensure_group(second);
    CHECK(lab.segment.groups().size() == 2);
    lab.make_device("bftx1");
    lab.segment.add_member(first, "bftx1", {});
    try {
        lab.segment.add_member(second, "bftx1", {});
        FAIL("a port of pod1039599 joined pod1222382");
    } catch (const HostloError& e) {
        CHECK(e.kind() == ErrorKind::Backend);
        CHECK_THAT(e.what(), Catch::StartsWith("Open vSwitch: "));
    }
    try {
        lab.segment.remove_member("pod1222382", "bftx1");
        FAIL("pod1222382 removed a port of pod1039599");
    } catch (const HostloError& e) {
        CHECK(e.kind() == ErrorKind::Conflict);
        CHECK(std::string(e.what()) == "port bftx1 on bridge bfhl-0 is not a member of Hostlo group pod1222382 but of pod1039599; left alone");
    }
    lab.segment.remove_group("pod1222382");  // only its own bridge goes
    CHECK(testing::trim_end(lab.sandbox.vsctl("port-to-br bftx1")) == "bfhl-0");
    // A slot whose bridge belongs to another group (a journal that lost track) is refused, not taken.
    const Group stale{"podZ", {}, {"vm1"}, 0};
    try {
        lab.segment.ensure_group(stale);
        FAIL("podZ took pod1039599's bridge");
    } catch (const HostloError& e) {
        CHECK(e.kind() == ErrorKind::Conflict);
        CHECK_THAT(e.what(), Catch::Contains("bridge bfhl-0 for Hostlo group podZ exists already, for Hostlo group pod1039599"));
    }
    CHECK_THROWS_WITH(make_segment("kmod", lab.client, lab.sandbox.db_socket()), Catch::Contains("hostlo kernel module"));
    CHECK_THROWS_AS(make_segment("bogus", lab.client, lab.sandbox.db_socket()), HostloError);
}
