// NicManager's Hostlo groups against fakes: members join and leave, each member VM gets one NIC on
// the group's segment with an address of the group's subnet, the last leave removes the group;
// refusals; a failure at each step of join, attach, detach and leave leaves nothing behind; a
// restart keeps groups and members and reconciles the segments.

#include "brfusion/shim/nic_manager.hpp"

#include "fakes.hpp"

#include <catch2/catch.hpp>

using namespace brfusion;
using namespace brfusion::shim;
using namespace brfusion::shim::test;

namespace {

ShimError error_of(const std::function<void()>& action) {
    try {
        action();
    } catch (const ShimError& e) {
        return e;
    }
    FAIL("expected a ShimError");
    throw std::logic_error("unreachable");
}

// vm1 and vm2 may join groups named pod*; Hostlo subnets are /28s of 192.0.2.0/24.
void hostlo_config(ShimConfig& config) {
    config.hostlo.subnets = {*Ipv4Prefix::parse("192.0.2.0/24"), 28};
    for (auto& vm : config.vms) vm.hostlo_groups = {"pod*"};
}

const guest::NetworkRef kPodA = NicManager::hostlo_network("podA");

// No group, segment, member port, pool or record of any group NIC exists.
void require_no_hostlo(const Rig& rig) {
    rig.require_clean();
    CHECK(rig.segment.segments.empty());
    CHECK(rig.manager->hostlo_groups().empty());
    const ShimState saved = Journal(rig.dir).load();
    CHECK(saved.hostlo.groups().empty());
    CHECK_FALSE(saved.ipam.has_pool(kPodA.wire()));
}

}  // namespace

TEST_CASE("hostlo: members get NICs on the group's segment with its addresses - the last leave removes the group") {
    Rig rig(hostlo_config);
    const HostNetwork pool = rig.manager->join_hostlo("vm1", "podA", std::nullopt);
    CHECK(pool.name == kPodA.wire());
    CHECK(pool.subnet.str() == "192.0.2.0/28");
    CHECK(pool.gateway.str() == "192.0.2.1");
    CHECK_FALSE(pool.nat);
    CHECK(rig.segment.segments.count("podA"));
    CHECK(rig.manager->join_hostlo("vm2", "podA", std::nullopt).subnet == pool.subnet);
    CHECK(rig.manager->join_hostlo("vm2", "podA", pool.subnet).subnet == pool.subnet);  // again: nothing changes
    CHECK(rig.manager->allowed_networks("vm2").back().name == kPodA.wire());

    const AttachedNic nic1 = rig.manager->attach("vm1", kPodA);
    const AttachedNic nic2 = rig.manager->attach("vm2", kPodA, Ipv4::parse("192.0.2.9"));
    CHECK(nic1.ip.str() == "192.0.2.2");
    CHECK(nic2.ip.str() == "192.0.2.9");
    CHECK(nic1.prefix_length == 28);
    // On the group's segment, labelled like any NIC, with its own port rules there; not on the
    // integration bridge.
    const auto& members = rig.segment.segments.at("podA");
    REQUIRE(members.size() == 2);
    const hostlo::Labels& labels = members.at("bf" + nic1.endpoint);
    CHECK(labels.at("brfusion-vm") == "vm1");
    CHECK(labels.at("brfusion-network") == kPodA.wire());
    CHECK(labels.at("brfusion-endpoint") == nic1.endpoint);
    CHECK(rig.host.ports.empty());
    CHECK(rig.host.security.empty());
    CHECK(rig.segment.security.at("bf" + nic1.endpoint) == nic1.mac + " 192.0.2.2");
    CHECK(rig.segment.security.at("bf" + nic2.endpoint) == nic2.mac + " 192.0.2.9");
    CHECK(rig.world.plugged.at("bf" + nic2.endpoint) == "vm2");

    CHECK(error_of([&] { rig.manager->attach("vm1", kPodA); }).kind() == ErrorKind::Conflict);
    const ShimError publish = error_of([&] { rig.manager->publish("vm1", nic1.endpoint, {{"tcp", std::nullopt, 8080, 80}}); });
    CHECK(publish.kind() == ErrorKind::BadRequest);
    CHECK_THAT(publish.what(), Catch::Contains("no gateway and no NAT"));
    const ShimError busy = error_of([&] { rig.manager->leave_hostlo("vm1", "podA"); });
    CHECK(busy.kind() == ErrorKind::Conflict);
    CHECK_THAT(busy.what(), Catch::Contains("still has its NIC on Hostlo group podA"));

    rig.manager->detach("vm1", nic1.endpoint);
    rig.manager->leave_hostlo("vm1", "podA");
    rig.manager->leave_hostlo("vm1", "podA");  // idempotent
    REQUIRE(rig.manager->hostlo_groups().size() == 1);
    CHECK(rig.manager->hostlo_groups()[0].members == std::set<std::string>{"vm2"});
    CHECK(rig.segment.segments.at("podA").size() == 1);
    CHECK(error_of([&] { rig.manager->attach("vm1", kPodA); }).kind() == ErrorKind::NotAllowed);  // no longer a member

    rig.manager->detach("vm2", nic2.endpoint);
    rig.manager->leave_hostlo("vm2", "podA");
    require_no_hostlo(rig);
}

TEST_CASE("hostlo: refusals name the problem and change nothing") {
    Rig rig([](ShimConfig& config) {
        hostlo_config(config);
        config.vms[1].hostlo_groups = {"shop"};
    });
    ShimError error = error_of([&] { rig.manager->join_hostlo("vm2", "podA", std::nullopt); });
    CHECK(error.kind() == ErrorKind::NotAllowed);
    CHECK(std::string(error.what()) == "VM vm2 may not join Hostlo group podA; its hostlo_groups allow: shop (the host's admin adds the group, or a "
                                       "prefix ending in '*', there)");
    CHECK(error_of([&] { rig.manager->join_hostlo("vm9", "podA", std::nullopt); }).kind() == ErrorKind::NotFound);
    CHECK(error_of([&] { rig.manager->join_hostlo("vm1", "pod/A", std::nullopt); }).kind() == ErrorKind::BadRequest);  // matches pod*, not a name
    CHECK(error_of([&] { rig.manager->join_hostlo("vm1", "podA", Ipv4Prefix::parse("198.51.100.0/28")); }).kind() == ErrorKind::BadRequest);
    error = error_of([&] { rig.manager->attach("vm1", kPodA); });
    CHECK(error.kind() == ErrorKind::NotAllowed);
    CHECK_THAT(error.what(), Catch::Contains("is not a member of Hostlo group podA"));
    CHECK(error_of([&] { rig.manager->reserve_address("vm1", kPodA, std::nullopt); }).kind() == ErrorKind::NotAllowed);
    require_no_hostlo(rig);

    rig.manager->join_hostlo("vm1", "podA", std::nullopt);
    error = error_of([&] { rig.manager->join_hostlo("vm1", "podA", Ipv4Prefix::parse("192.0.2.64/28")); });
    CHECK(error.kind() == ErrorKind::Conflict);
    CHECK_THAT(error.what(), Catch::Contains("has subnet 192.0.2.0/28"));
    // A host network added at run time may not take the Hostlo range.
    HostNetwork overlapping = parse_network({{"name", "web"}, {"subnet", "192.0.2.128/25"}, {"tag", 300}});
    CHECK(error_of([&] { rig.manager->add_network(overlapping); }).kind() == ErrorKind::Conflict);
}

TEST_CASE("hostlo: a failure at each step of join - attach - detach - leave leaves nothing behind, or a retry finishes") {
    Rig rig(hostlo_config);
    // join: 1 ensure_group
    rig.plan.fail({1});
    CHECK_THROWS_WITH(rig.manager->join_hostlo("vm1", "podA", std::nullopt), Catch::Contains("injected failure"));
    rig.plan.fail({});
    require_no_hostlo(rig);

    rig.manager->join_hostlo("vm1", "podA", std::nullopt);
    // attach: 1 create_host_device, 2 add_member, 3 plug (no port security on a group)
    for (int step = 1; step <= 3; ++step) {
        rig.plan.fail({step});
        INFO("attach step " << step);
        CHECK_THROWS_WITH(rig.manager->attach("vm1", kPodA), Catch::Contains("injected failure"));
        rig.plan.fail({});
        rig.require_clean();
        CHECK(rig.segment.segments.at("podA").empty());
    }
    // detach: 1 unplug, 2 remove_member, 3 delete_host_device; a second detach finishes it
    for (int step = 1; step <= 3; ++step) {
        const AttachedNic nic = rig.manager->attach("vm1", kPodA);
        rig.plan.fail({step});
        INFO("detach step " << step);
        CHECK_THROWS_WITH(rig.manager->detach("vm1", nic.endpoint), Catch::Contains("injected failure"));
        rig.plan.fail({});
        rig.manager->detach("vm1", nic.endpoint);
        rig.require_clean();
        CHECK(rig.segment.segments.at("podA").empty());
    }
    // leave: 1 remove_group; the VM stays a member, and a retry removes the group
    rig.plan.fail({1});
    CHECK_THROWS_WITH(rig.manager->leave_hostlo("vm1", "podA"), Catch::Contains("injected failure"));
    rig.plan.fail({});
    REQUIRE(rig.manager->hostlo_groups().size() == 1);
    CHECK(Journal(rig.dir).load().hostlo.find("podA")->members == std::set<std::string>{"vm1"});
    rig.manager->leave_hostlo("vm1", "podA");
    require_no_hostlo(rig);
}

TEST_CASE("hostlo: a restart keeps groups and members - reconcile repairs segments and removes what no record knows") {
    Rig rig(hostlo_config);
    rig.manager->join_hostlo("vm1", "podA", std::nullopt);
    rig.manager->join_hostlo("vm2", "podA", std::nullopt);
    const AttachedNic nic = rig.manager->attach("vm1", kPodA);
    const Ipv4 reserved = rig.manager->reserve_address("vm2", kPodA, std::nullopt);

    // Lost on the host: the group's segment (with the member port); left over: a stray group and port.
    rig.segment.segments.erase("podA");
    rig.segment.segments["podGone"]["bfstray"] = {};
    rig.segment.names["podGone"] = "seg-7";
    const ReconcileReport report = rig.restart();
    CHECK(report.repaired == std::vector<std::string>{nic.endpoint});
    CHECK(std::find(report.orphans.begin(), report.orphans.end(), "Hostlo segment seg-7 of group podGone") != report.orphans.end());
    CHECK(rig.segment.segments.count("podGone") == 0);
    CHECK(rig.segment.segments.at("podA").count("bf" + nic.endpoint));
    REQUIRE(rig.manager->hostlo_groups().size() == 1);
    CHECK(rig.manager->hostlo_groups()[0].members == std::set<std::string>{"vm1", "vm2"});
    CHECK(rig.manager->leases(kPodA).size() == 2);  // vm1's NIC and vm2's reservation

    // A member port no record knows is removed.
    rig.segment.segments["podA"]["bfunknown"] = {};
    rig.restart();
    CHECK(rig.segment.segments.at("podA").count("bfunknown") == 0);

    // A segment that is not where the journal has it (another slot's name) is made again where it
    // is, and the member port with it.
    rig.segment.names["podA"] = "seg-9";
    const ReconcileReport moved = rig.restart();
    CHECK(std::find(moved.orphans.begin(), moved.orphans.end(), "Hostlo segment seg-9 of group podA") != moved.orphans.end());
    CHECK(rig.segment.names.at("podA") == "seg-0");
    CHECK(moved.repaired == std::vector<std::string>{nic.endpoint});
    CHECK(rig.segment.segments.at("podA").count("bf" + nic.endpoint));

    // A member gone from the config leaves (its reservation back to the pool); vm1 keeps the group.
    rig.config.vms.pop_back();
    rig.restart();
    CHECK(rig.manager->hostlo_groups()[0].members == std::set<std::string>{"vm1"});
    CHECK_FALSE(rig.manager->leases(kPodA).empty());
    for (const auto& lease : rig.manager->leases(kPodA)) CHECK(lease.address != reserved);

    rig.manager->detach("vm1", nic.endpoint);
    rig.manager->leave_hostlo("vm1", "podA");
    require_no_hostlo(rig);
}
