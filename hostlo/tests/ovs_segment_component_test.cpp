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
    OvsSegment segment{client};

    // A host device for a member port, in the netns where ovs-vswitchd runs.
    void make_device(const std::string& name) const { sandbox.in_netns("ip tuntap add name " + name + " mode tap"); }
};
}  // namespace

TEST_CASE("a group is a labelled bridge of its own - members sit only on their group's bridge - removal takes all") {
    Lab lab;
    const std::string bridge_a = OvsSegment::bridge_of("podA"), bridge_b = OvsSegment::bridge_of("podB");
    CHECK(bridge_a.size() <= 15);
    CHECK(bridge_a != bridge_b);

    lab.segment.ensure_group("podA");
    lab.segment.ensure_group("podA");  // idempotent
    lab.segment.ensure_group("podB");
    CHECK(testing::trim_end(lab.sandbox.vsctl("--bare --columns=name find Bridge external_ids:brfusion-hostlo-group=podA")) == bridge_a);
    CHECK(testing::trim_end(lab.sandbox.vsctl("get Bridge " + bridge_a + " datapath_type")) == "netdev");

    lab.make_device("bfta1");
    lab.make_device("bfta2");
    lab.make_device("bftb1");
    lab.segment.add_member("podA", "bfta1", {{"brfusion-vm", "vm1"}});
    lab.segment.add_member("podA", "bfta2", {{"brfusion-vm", "vm2"}});
    lab.segment.add_member("podA", "bfta2", {{"brfusion-vm", "vm2"}});  // idempotent
    lab.segment.add_member("podB", "bftb1", {{"brfusion-vm", "vm1"}});
    CHECK(testing::trim_end(lab.sandbox.vsctl("port-to-br bfta1")) == bridge_a);
    CHECK(testing::trim_end(lab.sandbox.vsctl("port-to-br bftb1")) == bridge_b);
    CHECK(testing::trim_end(lab.sandbox.vsctl("--bare --columns=name find Interface external_ids:brfusion-hostlo-group=podB")) == "bftb1");
    CHECK(testing::trim_end(lab.sandbox.vsctl("get Port bfta1 external_ids:brfusion-vm")) == "vm1");
    // The host itself is not on the segment: the bridge's own port has no address.
    CHECK(lab.sandbox.in_netns("ip -4 addr show dev " + bridge_a).find("inet ") == std::string::npos);

    const auto groups = lab.segment.groups();
    CHECK(groups.at("podA") == std::set<std::string>{"bfta1", "bfta2"});
    CHECK(groups.at("podB") == std::set<std::string>{"bftb1"});

    lab.segment.remove_member("bfta2");
    lab.segment.remove_member("bfta2");  // idempotent
    CHECK(lab.segment.groups().at("podA") == std::set<std::string>{"bfta1"});

    lab.segment.remove_group("podA");
    lab.segment.remove_group("podA");  // idempotent
    CHECK(testing::trim_end(lab.sandbox.vsctl("--bare --columns=name find Bridge external_ids:brfusion-hostlo-group=podA")).empty());
    CHECK(testing::trim_end(lab.sandbox.vsctl("--bare --columns=name find Port name=bfta1")).empty());
    CHECK(lab.segment.groups().count("podA") == 0);
    CHECK(lab.segment.groups().count("podB") == 1);
}

TEST_CASE("a member port on another group's bridge is refused with OVS's reason - an unknown backend too") {
    Lab lab;
    lab.segment.ensure_group("podA");
    lab.segment.ensure_group("podB");
    lab.make_device("bftx1");
    lab.segment.add_member("podA", "bftx1", {});
    try {
        lab.segment.add_member("podB", "bftx1", {});
        FAIL("a port of podA joined podB");
    } catch (const HostloError& e) {
        CHECK(e.kind() == ErrorKind::Backend);
        CHECK_THAT(e.what(), Catch::StartsWith("Open vSwitch: "));
    }
    CHECK(testing::trim_end(lab.sandbox.vsctl("port-to-br bftx1")) == OvsSegment::bridge_of("podA"));
    CHECK_THROWS_WITH(make_segment("kmod", lab.client), Catch::Contains("hostlo kernel module"));
    CHECK_THROWS_AS(make_segment("bogus", lab.client), HostloError);
}
