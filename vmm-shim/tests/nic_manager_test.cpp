// NicManager against fakes: the happy path, refusals, and a failure injected at every step of
// attach and detach (and a crash, i.e. a new manager over the same journal): nothing leaks.

#include "brfusion/shim/nic_manager.hpp"

#include "fakes.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <future>
#include <thread>


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

}  // namespace

TEST_CASE("attach creates - labels - plugs - detach removes everything") {
    Rig rig;
    CHECK(rig.host.gateways.at("bfgw100") == "198.51.100.1/24");
    const AttachedNic nic = rig.manager->attach("vm1", net("lab"));
    CHECK(nic.gateway.str() == "198.51.100.1");
    CHECK(nic.prefix_length == 24);
    CHECK(nic.ip.str() == "198.51.100.2");
    const std::string host_if = "bf" + nic.endpoint;
    CHECK(host_if.size() <= 15);
    CHECK(nic.guest_if.size() <= 15);
    CHECK(rig.world.plugged.at(host_if) == "vm1");
    CHECK(nic.pci == "pci-of-" + host_if);  // where the backend put it, for the guest
    CHECK(Journal(rig.dir).load().nics.at(nic.endpoint).pci == nic.pci);
    const Labels& labels = rig.host.ports.at(host_if);
    CHECK(labels.at("brfusion-vm") == "vm1");
    CHECK(labels.at("brfusion-network") == "lab");
    CHECK(labels.at("brfusion-endpoint") == nic.endpoint);
    CHECK(labels.at("brfusion-mac") == nic.mac);
    CHECK(labels.at("attached-mac") == nic.mac);
    CHECK(rig.host.tags.at(host_if) == 100);
    CHECK(Journal(rig.dir).load().nics.at(nic.endpoint).phase == NicPhase::Attached);

    rig.manager->detach("vm1", nic.endpoint);
    rig.manager->detach("vm1", nic.endpoint);  // idempotent
    rig.require_clean();
}

TEST_CASE("userspace TSO: the shim will not start on a switch without it - with it, guests are told to keep their offloads") {
    Rig rig;
    CHECK_FALSE(rig.manager->attach("vm1", net("lab")).checksum_offload);
    rig.config.userspace_tso = true;
    CHECK_THROWS_WITH(rig.restart(), Catch::Contains("other_config:userspace-tso-enable=true' and restart ovs-vswitchd, or set userspace_tso to false"));
    rig.host.tso = true;
    rig.restart();
    CHECK(rig.manager->attach("vm1", net("lab")).checksum_offload);
}

TEST_CASE("refusals name the problem and change nothing") {
    Rig rig;
    const ShimError not_allowed = error_of([&] { rig.manager->attach("vm2", net("lab2")); });
    CHECK(not_allowed.kind() == ErrorKind::NotAllowed);
    CHECK(std::string(not_allowed.what()) == "network lab2 is not allowed for VM vm2; allowed: lab");
    CHECK(error_of([&] { rig.manager->attach("vm1", net("nope")); }).kind() == ErrorKind::NotFound);
    CHECK(error_of([&] { rig.manager->attach("vm9", net("lab")); }).kind() == ErrorKind::NotFound);
    CHECK(error_of([&] { rig.manager->attach("vm1", net("lab"), Ipv4::parse("198.51.100.1")); }).kind() == ErrorKind::BadRequest);

    const AttachedNic theirs = rig.manager->attach("vm1", net("lab"), Ipv4::parse("198.51.100.77"));
    CHECK(theirs.ip.str() == "198.51.100.77");
    CHECK_THAT(error_of([&] { rig.manager->attach("vm2", net("lab"), Ipv4::parse("198.51.100.77")); }).what(),
               Catch::Contains("already in use by vm1/"));
    const ShimError foreign = error_of([&] { rig.manager->detach("vm2", theirs.endpoint); });
    CHECK(foreign.kind() == ErrorKind::NotAllowed);
    CHECK(rig.manager->nics("vm1").size() == 1);
    CHECK(rig.manager->nics("vm2").empty());
}

TEST_CASE("a failure at each step of attach leaves nothing behind") {
    Rig rig;
    for (int step = 1;; ++step) {
        rig.plan.fail({step});
        try {
            const AttachedNic nic = rig.manager->attach("vm1", net("lab"));
            rig.plan.fail({});
            INFO("attach succeeded once no step failed, at step " << step);
            CHECK(step > 4);  // create, add_port, secure_port and plug were each failed before
            rig.manager->detach("vm1", nic.endpoint);
            break;
        } catch (const ShimError& e) {
            INFO("failed at step " << step << ": " << e.what());
            CHECK_THAT(e.what(), Catch::Contains("injected failure"));
            rig.require_clean();
        }
    }
    rig.require_clean();
}

TEST_CASE("a failure while undoing an attach is reported and finished by the next start") {
    Rig rig;
    rig.plan.fail({4, 5});  // attach: 1 create, 2 add_port, 3 secure_port, 4 plug fails; undo: 5 unplug fails
    const ShimError error = error_of([&] { rig.manager->attach("vm1", net("lab")); });
    CHECK_THAT(error.what(), Catch::Contains("undoing it failed too"));
    CHECK_THAT(error.what(), Catch::Contains("the next start of brfusion-shim retries"));
    REQUIRE(rig.manager->nics().size() == 1);
    CHECK(rig.manager->nics()[0].phase == NicPhase::Attaching);

    rig.plan.fail({});
    const ReconcileReport report = rig.restart();
    CHECK(report.undone.size() == 1);
    rig.require_clean();
}

TEST_CASE("a failure at each step of detach: retrying detach, restarting, or the upkeep finishes it") {
    enum class Then { DetachAgain, Restart, Upkeep };
    for (const Then then : {Then::DetachAgain, Then::Restart, Then::Upkeep}) {
        for (int step = 1; step <= 5; ++step) {
            Rig rig;
            const AttachedNic nic = rig.manager->attach("vm1", net("lab"));
            rig.manager->publish("vm1", nic.endpoint, {{"tcp", std::nullopt, 8080, 80}});
            // 1 firewall (withdraw the published port), 2 unplug, 3 unsecure_port, 4 remove_port, 5 delete_host_device
            rig.plan.fail({step});
            INFO("detach step " << step << " then " << static_cast<int>(then));
            CHECK_THROWS_WITH(rig.manager->detach("vm1", nic.endpoint), Catch::Contains("injected failure"));
            CHECK(Journal(rig.dir).load().nics.at(nic.endpoint).phase == NicPhase::Detaching);
            rig.plan.fail({});
            if (then == Then::Restart) {
                const ReconcileReport report = rig.restart();
                CHECK(report.finished == std::vector<std::string>{nic.endpoint});
            } else if (then == Then::DetachAgain) {
                rig.manager->detach("vm1", nic.endpoint);
            } else {
                const std::int64_t now = 1'000'000;
                CHECK(rig.manager->finish_unfinished(now).finished.empty());  // first seen: its operation just failed
                rig.plan.fail({1, 2, 3, 4, 5});
                CHECK(rig.manager->finish_unfinished(now + 5).failed.size() == 1);  // still failing: tried again 5 s on
                rig.plan.fail({});
                CHECK(rig.manager->finish_unfinished(now + 9).finished.empty());   // then 10 s on
                CHECK(rig.manager->finish_unfinished(now + 15).finished == std::vector<std::string>{nic.endpoint});
                CHECK(rig.manager->finish_unfinished(now + 300).finished.empty());
            }
            rig.require_clean();
        }
    }
}

TEST_CASE("an attach whose undo failed is removed by the upkeep - an operation in progress is left alone") {
    Rig rig;
    rig.plan.fail({4, 5});  // attach: 1 create, 2 add_port, 3 secure_port, 4 plug fails; undo: 5 unplug fails
    CHECK_THROWS_WITH(rig.manager->attach("vm1", net("lab")), Catch::Contains("undoing it failed too"));
    rig.plan.fail({});
    const std::int64_t now = 1'000'000;
    rig.manager->finish_unfinished(now);
    CHECK(rig.manager->finish_unfinished(now + 5).finished.size() == 1);
    rig.require_clean();

    // A NIC being detached (Detaching, and busy: its guest has not acknowledged the unplug yet)
    // is not touched while its request runs.
    const AttachedNic nic = rig.manager->attach("vm1", net("lab"));
    rig.world.hang("vm1");
    std::thread detaching([&] { rig.manager->detach("vm1", nic.endpoint); });
    const auto unplugs_waiting = [&] {
        std::lock_guard lock(rig.world.gate);
        return rig.world.waiting;
    };
    while (unplugs_waiting() == 0) std::this_thread::yield();
    CHECK(rig.manager->nics().at(0).phase == NicPhase::Detaching);
    for (const std::int64_t later : {100, 200}) {
        const UnfinishedReport report = rig.manager->finish_unfinished(now + later);
        CHECK(report.finished.empty());
        CHECK(report.failed.empty());
    }
    rig.world.release("vm1");
    detaching.join();
    rig.require_clean();
}

TEST_CASE("a crash after each step of attach is undone by the next start") {
    for (int crash_after = 0; crash_after <= 4; ++crash_after) {
        Rig rig;
        // Simulate the crash: attach, then put the world back to how it was after `crash_after`
        // of its 4 steps, with the journal saying "attaching".
        const AttachedNic nic = rig.manager->attach("vm1", net("lab"));
        const std::string host_if = "bf" + nic.endpoint;
        if (crash_after < 4) rig.world.plugged.erase(host_if);
        if (crash_after < 3) rig.host.security.erase(host_if);
        if (crash_after < 2) rig.host.ports.erase(host_if);
        if (crash_after < 1) rig.world.host_devices.erase(host_if);
        ShimState state = rig.journal->load();
        state.nics.at(nic.endpoint).phase = NicPhase::Attaching;
        rig.journal->save(state);

        const ReconcileReport report = rig.restart();
        INFO("crash after step " << crash_after);
        CHECK(report.undone == std::vector<std::string>{nic.endpoint});
        CHECK(report.orphans.empty());  // an undone NIC's port is not reported again as an orphan
        rig.require_clean();
    }
}

TEST_CASE("reconcile repairs an attached NIC's missing pieces and removes orphan ports and rules") {
    Rig rig;
    const AttachedNic nic = rig.manager->attach("vm1", net("lab"));
    const std::string host_if = "bf" + nic.endpoint;
    rig.host.ports.erase(host_if);  // an admin deleted the port
    rig.host.security.erase(host_if);
    rig.host.ports["bforphan"] = {{"brfusion-endpoint", "gone"}, {"brfusion-vm", "vm2"}};
    rig.world.host_devices.insert("bforphan");
    rig.host.security["bfgone"] = "02:00:00:00:00:01 198.51.100.200";  // rules whose port is long gone

    const ReconcileReport report = rig.restart();
    CHECK(report.repaired == std::vector<std::string>{nic.endpoint});
    CHECK(report.orphans == std::vector<std::string>{"bforphan"});
    CHECK(report.stale_port_rules == 1);
    CHECK(rig.host.security == std::map<std::string, std::string>{{host_if, nic.mac + " " + nic.ip.str()}});
    CHECK(rig.host.ports.count(host_if));
    CHECK_FALSE(rig.host.ports.count("bforphan"));
    CHECK_FALSE(rig.world.host_devices.count("bforphan"));
    CHECK(rig.manager->nics("vm1").size() == 1);
}

TEST_CASE("reconcile unplugs a NIC a VM holds that no record knows - with its port and host device") {
    Rig rig;
    rig.world.host_devices.insert("bflost");
    rig.world.plugged["bflost"] = "vm2";  // plugged, then the journal was lost
    rig.host.ports["bflost"] = {{"brfusion-vm", "vm2"}};  // without an endpoint label: only the VM knows it
    const ReconcileReport report = rig.restart();
    CHECK(report.orphans == std::vector<std::string>{"bflost"});
    rig.require_clean();
}

TEST_CASE("attach secures the port for the NIC's own MAC and address") {
    Rig rig;
    const AttachedNic nic = rig.manager->attach("vm1", net("lab"));
    CHECK(rig.host.security.at("bf" + nic.endpoint) == nic.mac + " " + nic.ip.str());
}

TEST_CASE("publish - chosen and requested host ports - conflicts name the holder - unpublish and detach withdraw them") {
    Rig rig;
    const AttachedNic a = rig.manager->attach("vm1", net("lab"));
    const AttachedNic b = rig.manager->attach("vm2", net("lab"));
    const auto published = rig.manager->publish("vm1", a.endpoint, {{"tcp", std::nullopt, 8080, 80}, {"udp", std::nullopt, 0, 53}});
    CHECK(published == std::vector<PublishedPort>{{"tcp", std::nullopt, 8080, 80}, {"udp", std::nullopt, 49153, 53}});
    REQUIRE(rig.firewall.rules.published.size() == 2);
    CHECK(rig.firewall.rules.published[0].container_ip == a.ip);
    CHECK(Journal(rig.dir).load().nics.at(a.endpoint).published == published);

    // Another endpoint wants the same host port: refused with who holds it; a free one is fine.
    const ShimError taken = error_of([&] { rig.manager->publish("vm2", b.endpoint, {{"tcp", Ipv4::parse("192.0.2.1"), 8080, 80}}); });
    CHECK(taken.kind() == ErrorKind::Conflict);
    CHECK_THAT(taken.what(), Catch::Contains("already published by endpoint " + a.endpoint + " of VM vm1"));
    CHECK(rig.manager->publish("vm2", b.endpoint, {{"tcp", std::nullopt, 8081, 80}, {"tcp", std::nullopt, 0, 81}})[1].host_port == 49153);
    CHECK(error_of([&] { rig.manager->publish("vm2", b.endpoint, {{"tcp", std::nullopt, 9000, 80}, {"tcp", std::nullopt, 9000, 81}}); }).kind() ==
          ErrorKind::BadRequest);
    // Only the VM's own endpoints.
    CHECK(error_of([&] { rig.manager->publish("vm2", a.endpoint, {}); }).kind() == ErrorKind::NotAllowed);
    CHECK(error_of([&] { rig.manager->publish("vm1", "nope", {}); }).kind() == ErrorKind::NotFound);
    CHECK(error_of([&] { rig.manager->unpublish("vm2", a.endpoint); }).kind() == ErrorKind::NotAllowed);

    // Publishing replaces the set; unpublish clears it; detach withdraws what is left.
    rig.manager->publish("vm1", a.endpoint, {{"tcp", std::nullopt, 8080, 8080}});
    CHECK(rig.manager->nics("vm1")[0].published == std::vector<PublishedPort>{{"tcp", std::nullopt, 8080, 8080}});
    rig.manager->unpublish("vm1", a.endpoint);
    rig.manager->unpublish("vm1", a.endpoint);
    CHECK(rig.manager->nics("vm1")[0].published.empty());
    rig.manager->detach("vm1", a.endpoint);
    rig.manager->detach("vm2", b.endpoint);
    rig.require_clean();
}

TEST_CASE("a publish the firewall refuses keeps the previous ports - in the journal and the table") {
    Rig rig;
    const AttachedNic a = rig.manager->attach("vm1", net("lab"));
    const std::vector<PublishedPort> before = {{"tcp", std::nullopt, 8080, 80}};
    rig.manager->publish("vm1", a.endpoint, before);
    rig.plan.fail({1});  // the firewall refuses the new table; restoring the old one works
    CHECK_THROWS_WITH(rig.manager->publish("vm1", a.endpoint, {{"tcp", std::nullopt, 9090, 80}}), Catch::Contains("injected failure"));
    rig.plan.fail({});
    CHECK(rig.manager->nics("vm1")[0].published == before);
    CHECK(Journal(rig.dir).load().nics.at(a.endpoint).published == before);
    REQUIRE(rig.firewall.rules.published.size() == 1);
    CHECK(rig.firewall.rules.published[0].port == before[0]);
}

TEST_CASE("the firewall rules follow the networks - NAT - isolation - and are rewritten at start") {
    Rig rig;
    const FirewallRules rules = rig.firewall.rules;
    REQUIRE(rules.networks.size() == 2);
    CHECK(rules.networks[0].gateway_port == "bfgw100");
    CHECK(rules.networks[0].nat);
    CHECK(rules.networks[0].forward_to.empty());
    const int applied = rig.firewall.applied;
    rig.restart();
    CHECK(rig.firewall.applied == applied + 1);
}

TEST_CASE("networks and VMs added at run time are served - persisted - and removed cleanly") {
    Rig rig;
    rig.manager->add_network(parse_network({{"name", "extra"}, {"subnet", "192.0.2.0/28"}, {"tag", 300}, {"nat", false}, {"forward_to", {"lab"}}}));
    CHECK(rig.host.gateways.at("bfgw300") == "192.0.2.1/28");
    REQUIRE(rig.firewall.rules.networks.size() == 3);
    CHECK(rig.firewall.rules.networks[2].forward_to == std::vector<std::string>{"bfgw100"});
    rig.manager->add_vm(parse_vm({{"name", "vm3"}, {"netns", "ns3"}, {"networks", {"extra", "lab"}}}));
    CHECK(rig.manager->config().vm("vm3")->channel == "/run/brfusion/vm-vm3.sock");
    CHECK_FALSE(rig.manager->from_config_file("vm3"));
    CHECK(rig.manager->from_config_file("vm1"));
    const AttachedNic nic = rig.manager->attach("vm3", net("extra"));
    CHECK(nic.ip.str() == "192.0.2.2");
    rig.manager->publish("vm3", nic.endpoint, {{"tcp", std::nullopt, 8080, 80}});

    // Both survive a restart, with the NIC.
    rig.restart();
    CHECK(rig.manager->config().network("extra"));
    CHECK(rig.manager->nics("vm3").size() == 1);

    // Refusals: names and tags taken, unknown networks, the config file's own, networks in use.
    CHECK(error_of([&] { rig.manager->add_vm(parse_vm({{"name", "vm3"}, {"netns", "x"}})); }).kind() == ErrorKind::Conflict);
    CHECK(error_of([&] { rig.manager->add_vm(parse_vm({{"name", "vm4"}, {"netns", "x"}, {"networks", {"nope"}}})); }).kind() == ErrorKind::NotFound);
    CHECK_THAT(error_of([&] { rig.manager->add_network(parse_network({{"name", "dup"}, {"subnet", "203.0.113.0/28"}, {"tag", 100}})); }).what(),
               Catch::Contains("VLAN tag 100 is taken by network lab"));
    CHECK_THAT(error_of([&] { rig.manager->add_network(parse_network({{"name", "dup"}, {"subnet", "198.51.100.64/26"}, {"tag", 400}})); }).what(),
               Catch::Contains("subnet 198.51.100.64/26 overlaps 198.51.100.0/24 of network lab"));
    CHECK_THAT(error_of([&] { rig.manager->remove_vm("vm1"); }).what(), Catch::Contains("comes from the config file"));
    CHECK(error_of([&] { rig.manager->remove_network("lab"); }).kind() == ErrorKind::NotAllowed);
    CHECK_THAT(error_of([&] { rig.manager->remove_network("extra"); }).what(), Catch::Contains("in use: NIC " + nic.endpoint + " of VM vm3"));
    CHECK(error_of([&] { rig.manager->remove_vm("vm9"); }).kind() == ErrorKind::NotFound);

    // Removing the VM detaches its NIC and gives the address back; then the network can go.
    rig.manager->remove_vm("vm3");
    CHECK(rig.manager->nics().empty());
    CHECK(rig.firewall.rules.published.empty());
    CHECK(rig.manager->leases(net("extra")).empty());
    rig.manager->remove_network("extra");
    CHECK_FALSE(rig.host.gateways.count("bfgw300"));
    CHECK(rig.firewall.rules.networks.size() == 2);
    rig.restart();
    CHECK_FALSE(rig.manager->config().vm("vm3"));
    CHECK_FALSE(rig.manager->config().network("extra"));
    rig.require_clean();
}

TEST_CASE("a failure while adding a network leaves no trace") {
    for (int step = 1; step <= 2; ++step) {  // 1 gateway, 2 firewall
        Rig rig;
        rig.plan.fail({step});
        INFO("step " << step);
        CHECK_THROWS_WITH(rig.manager->add_network(parse_network({{"name", "extra"}, {"subnet", "192.0.2.0/28"}, {"tag", 300}})),
                          Catch::Contains("injected failure"));
        rig.plan.fail({});
        CHECK_FALSE(rig.manager->config().network("extra"));
        CHECK(Journal(rig.dir).load().added_networks.empty());
        CHECK_FALSE(Journal(rig.dir).load().ipam.has_pool("extra"));
        CHECK(rig.firewall.rules.networks.size() == 2);
    }
}

TEST_CASE("an address reserved before its NIC is the VM's alone - attach takes it over - removal of the VM reclaims it") {
    Rig rig;
    const Ipv4 reserved = rig.manager->reserve_address("vm1", net("lab"), std::nullopt);
    CHECK(rig.manager->leases(net("lab"))[0].owner.str() == "vm1/reserved");
    CHECK(error_of([&] { rig.manager->attach("vm2", net("lab"), reserved); }).kind() == ErrorKind::Conflict);
    CHECK(error_of([&] { rig.manager->reserve_address("vm2", net("lab2"), std::nullopt); }).kind() == ErrorKind::NotAllowed);
    rig.manager->release_address("vm2", net("lab"), reserved);  // not vm2's: left alone
    REQUIRE(rig.manager->leases(net("lab")).size() == 1);

    // A failed attach leaves the reservation in place; a good one takes it over.
    rig.plan.fail({1});
    CHECK_THROWS(rig.manager->attach("vm1", net("lab"), reserved));
    rig.plan.fail({});
    CHECK(rig.manager->leases(net("lab"))[0].owner.str() == "vm1/reserved");
    const AttachedNic nic = rig.manager->attach("vm1", net("lab"), reserved);
    CHECK(nic.ip == reserved);
    CHECK(rig.manager->leases(net("lab"))[0].owner.str() == "vm1/" + nic.endpoint);
    rig.manager->release_address("vm1", net("lab"), reserved);  // a NIC's address is not a reservation
    CHECK(rig.manager->leases(net("lab")).size() == 1);
    rig.manager->detach("vm1", nic.endpoint);
    rig.manager->release_address("vm1", net("lab"), reserved);  // Docker releases after deleting the endpoint: fine
    CHECK(rig.manager->leases(net("lab")).empty());

    // Reservations of a VM that is removed go back to the pool.
    rig.manager->add_vm(parse_vm({{"name", "vm3"}, {"netns", "ns3"}, {"networks", {"lab"}}}));
    rig.manager->reserve_address("vm3", net("lab"), Ipv4::parse("198.51.100.50"));
    rig.manager->remove_vm("vm3");
    CHECK(rig.manager->leases(net("lab")).empty());
    rig.require_clean();
}

TEST_CASE("reconcile removes the gateway of a network that is gone") {
    Rig rig;
    // What a network removed from the config file (or a removal cut short) leaves in OVS.
    rig.host.gateways["bfgw999"] = "192.0.2.1/24";
    rig.host.gateway_labels["bfgw999"] = {{"brfusion-network", "old"}, {"brfusion-gateway", "192.0.2.1"}};
    const ReconcileReport report = rig.restart();
    CHECK(report.orphans == std::vector<std::string>{"bfgw999"});
    CHECK(rig.host.gateways.size() == 2);  // lab's and lab2's stay
    CHECK(rig.host.gateways.count("bfgw100"));
}

TEST_CASE("a published port takes only the host's own addresses and ports in the VM's range that nobody on the host uses") {
    Rig rig([](ShimConfig& config) { config.vms[1].host_ports = {8000, 8999}; });
    rig.stack.addresses = {{"eth0", *Ipv4::parse("192.0.2.1")}, {"eth1", *Ipv4::parse("192.0.2.3")}};
    rig.stack.reserved = {8010};
    rig.stack.tcp = {{2222, {std::nullopt, "sshd (pid 812)"}}, {8020, {Ipv4::parse("192.0.2.3"), "nginx (pid 90)"}},
                     {8030, {Ipv4::parse("127.0.0.1"), "redis-server (pid 77)"}}};
    const AttachedNic nic = rig.manager->attach("vm2", net("lab"));
    const auto refused = [&](PublishedPort port) {
        const ShimError error = error_of([&] { rig.manager->publish("vm2", nic.endpoint, {port}); });
        return std::pair(error.kind(), std::string(error.what()));
    };
    // Addresses that are not the host's to publish on: another host's, a gateway's, loopback, metadata.
    for (const char* address : {"192.0.2.2", "198.51.100.1", "127.0.0.1", "169.254.169.254"}) {
        const auto [kind, message] = refused({"tcp", Ipv4::parse(address), 8080, 80});
        CHECK(kind == ErrorKind::NotAllowed);
        CHECK(message == std::string("tcp ") + address + ":8080 -> 80: " + address +
                             " is not an address this host publishes ports on; it publishes on 192.0.2.1 (eth0), 192.0.2.3 (eth1). "
                             "Leave the address out to publish on all of them");
    }
    // Ports outside the VM's range, or reserved for the host.
    CHECK(refused({"tcp", std::nullopt, 80, 80}) ==
          std::pair(ErrorKind::NotAllowed, std::string("tcp 0.0.0.0:80 -> 80: host port 80 is outside the host ports VM vm2 may publish on (8000-8999, vms[].host_ports)")));
    CHECK(refused({"tcp", std::nullopt, 8010, 80}).first == ErrorKind::NotAllowed);
    CHECK_THAT(refused({"tcp", std::nullopt, 8010, 80}).second, Catch::Contains("reserved for the host (net.ipv4.ip_local_reserved_ports)"));
    // A port a host process uses: on every address, on one the mapping takes, not on one it does not.
    CHECK(refused({"tcp", std::nullopt, 8020, 80}) ==
          std::pair(ErrorKind::Conflict, std::string("tcp 0.0.0.0:8020 -> 80: host port 8020/tcp is in use on the host by nginx (pid 90) on 192.0.2.3; "
                                                     "publish on another port")));
    CHECK(rig.manager->publish("vm2", nic.endpoint, {{"tcp", Ipv4::parse("192.0.2.1"), 8020, 80}}).size() == 1);  // nginx is on .3 only
    CHECK(rig.manager->publish("vm2", nic.endpoint, {{"tcp", std::nullopt, 8030, 80}}).size() == 1);  // redis is on loopback only
    CHECK(rig.manager->publish("vm2", nic.endpoint, {{"udp", std::nullopt, 8020, 53}}).size() == 1);  // nginx is TCP
    CHECK(rig.firewall.rules.publish_addresses == std::vector<Ipv4>{*Ipv4::parse("192.0.2.1"), *Ipv4::parse("192.0.2.3")});
    // vm1's default range (1024-65535): the host's sshd keeps its port.
    const AttachedNic other = rig.manager->attach("vm1", net("lab"));
    CHECK_THAT(error_of([&] { rig.manager->publish("vm1", other.endpoint, {{"tcp", std::nullopt, 2222, 22}}); }).what(),
               Catch::Contains("in use on the host by sshd (pid 812) on 0.0.0.0"));
    // Nothing was changed by a refusal.
    CHECK(rig.manager->nics("vm1")[0].published.empty());
}

TEST_CASE("a host port the shim picks is in the VM's range - not reserved - not used by the host") {
    Rig rig([](ShimConfig& config) { config.vms[0].host_ports = {49150, 49160}; });
    rig.stack.reserved = {49153};
    rig.stack.udp = {{49154, {std::nullopt, "dnsmasq (pid 5)"}}};
    const AttachedNic nic = rig.manager->attach("vm1", net("lab"));
    CHECK(rig.manager->publish("vm1", nic.endpoint, {{"udp", std::nullopt, 0, 53}, {"udp", std::nullopt, 0, 54}}) ==
          std::vector<PublishedPort>{{"udp", std::nullopt, 49155, 53}, {"udp", std::nullopt, 49156, 54}});
    rig.stack.addresses.clear();  // the host lost its address: nothing to publish on
    CHECK(error_of([&] { rig.manager->publish("vm1", nic.endpoint, {{"tcp", std::nullopt, 0, 80}}); }).kind() == ErrorKind::NotAllowed);
}

TEST_CASE("a host port range (docker run -p 8000-8010:80) takes its lowest free port - within the VM's range - the same again when published again") {
    Rig rig([](ShimConfig& config) { config.vms[1].host_ports = {8000, 8999}; });
    rig.stack.reserved = {8001};
    rig.stack.tcp = {{8002, {std::nullopt, "nginx (pid 90)"}}};
    const AttachedNic a = rig.manager->attach("vm2", net("lab"));
    const AttachedNic b = rig.manager->attach("vm2", net("lab"));
    // 8000 is a's single port, 8001 reserved, 8002 the host's: a's range takes 8003; what is published is one port.
    const auto published = rig.manager->publish("vm2", a.endpoint, {{"tcp", std::nullopt, 8000, 8000}, {"tcp", std::nullopt, 8000, 80, 8005}});
    CHECK(published == std::vector<PublishedPort>{{"tcp", std::nullopt, 8000, 8000}, {"tcp", std::nullopt, 8003, 80}});
    CHECK(Journal(rig.dir).load().nics.at(a.endpoint).published == published);
    // Docker publishes again on a restart: the endpoint keeps its port.
    CHECK(rig.manager->publish("vm2", a.endpoint, {{"tcp", std::nullopt, 8000, 8000}, {"tcp", std::nullopt, 8000, 80, 8005}}) == published);
    // Another endpoint's range skips what a holds; a range of its own ports skips those taken before it.
    CHECK(rig.manager->publish("vm2", b.endpoint, {{"tcp", std::nullopt, 8003, 80, 8005}, {"tcp", std::nullopt, 8003, 81, 8005}}) ==
          std::vector<PublishedPort>{{"tcp", std::nullopt, 8004, 80}, {"tcp", std::nullopt, 8005, 81}});
    // A range with nothing free, or reaching outside the VM's range: refused, nothing changed.
    const ShimError full = error_of([&] { rig.manager->publish("vm2", b.endpoint, {{"tcp", std::nullopt, 8000, 80, 8003}}); });
    CHECK(full.kind() == ErrorKind::Conflict);
    CHECK_THAT(full.what(), Catch::StartsWith("no free host port in 8000-8003 for tcp (VM vm2's range 8000-8999"));
    const ShimError outside = error_of([&] { rig.manager->publish("vm2", b.endpoint, {{"tcp", std::nullopt, 8990, 80, 9010}}); });
    CHECK(outside.kind() == ErrorKind::NotAllowed);
    CHECK_THAT(outside.what(), Catch::Contains("host ports 8990-9010 are not all among the host ports VM vm2 may publish on (8000-8999"));
    CHECK(rig.manager->nics("vm2")[1].published.size() == 2);
}

TEST_CASE("quotas bound what one VM holds - refusals name the quota and its key - other VMs are unaffected") {
    Rig rig([](ShimConfig& config) {
        config.vms[1].quotas = {2, 2, 3, 1, 16};  // vm2: 2 NICs, 2 reservations, 3 published ports, 1 Hostlo group
        config.vms[1].hostlo_groups = {"*"};
    });
    const AttachedNic a = rig.manager->attach("vm2", net("lab"));
    rig.manager->attach("vm2", net("lab"));
    const ShimError nics = error_of([&] { rig.manager->attach("vm2", net("lab")); });
    CHECK(nics.kind() == ErrorKind::Exhausted);
    CHECK(std::string(nics.what()) == "VM vm2 holds 2 of its 2 nics (quota vms[].quotas.nics); give some back, or ask the host's admin to raise it");
    CHECK(rig.manager->attach("vm1", net("lab")).ip.str() == "198.51.100.4");  // vm1 is not limited by vm2's quota

    rig.manager->reserve_address("vm2", net("lab"), std::nullopt);
    rig.manager->reserve_address("vm2", net("lab"), std::nullopt);
    CHECK_THAT(error_of([&] { rig.manager->reserve_address("vm2", net("lab"), std::nullopt); }).what(),
               Catch::Contains("holds 2 of its 2 reservations (quota vms[].quotas.reservations)"));
    CHECK(rig.manager->reserve_address("vm1", net("lab"), std::nullopt).str() == "198.51.100.7");

    CHECK(rig.manager->publish("vm2", a.endpoint, {{"tcp", std::nullopt, 0, 1}, {"tcp", std::nullopt, 0, 2}, {"tcp", std::nullopt, 0, 3}}).size() == 3);
    CHECK_THAT(error_of([&] { rig.manager->publish("vm2", a.endpoint, {{"tcp", std::nullopt, 0, 1}, {"tcp", std::nullopt, 0, 2}, {"tcp", std::nullopt, 0, 3},
                                                                        {"tcp", std::nullopt, 0, 4}}); })
                   .what(),
               Catch::Contains("holds 0 of its 3 published_ports and asked for 4 more"));

    rig.manager->join_hostlo("vm2", "pod1", std::nullopt);
    rig.manager->join_hostlo("vm2", "pod1", std::nullopt);  // again: no more held
    CHECK(error_of([&] { rig.manager->join_hostlo("vm2", "pod2", std::nullopt); }).kind() == ErrorKind::Exhausted);
    rig.manager->leave_hostlo("vm2", "pod1");
    rig.manager->join_hostlo("vm2", "pod2", std::nullopt);
}

TEST_CASE("one VM's hung unplug stalls only that VM - the others attach, publish and detach - the views answer") {
    Rig rig;
    const AttachedNic stuck = rig.manager->attach("vm2", net("lab"));
    const AttachedNic other = rig.manager->attach("vm2", net("lab"));
    rig.world.hang("vm2");  // vm2's guest stops acknowledging unplugs
    std::thread detaching([&] { rig.manager->detach("vm2", stuck.endpoint); });
    const auto unplugs_waiting = [&] {
        std::lock_guard lock(rig.world.gate);
        return rig.world.waiting;
    };
    while (unplugs_waiting() == 0) std::this_thread::yield();

    const AttachedNic nic = rig.manager->attach("vm1", net("lab"));
    rig.manager->publish("vm1", nic.endpoint, {{"tcp", std::nullopt, 8080, 80}});
    rig.manager->reserve_address("vm1", net("lab2"), std::nullopt);
    rig.manager->detach("vm1", nic.endpoint);
    CHECK(rig.manager->nics().size() == 2);
    for (const auto& record : rig.manager->nics("vm2"))
        CHECK(record.phase == (record.endpoint == stuck.endpoint ? NicPhase::Detaching : NicPhase::Attached));
    CHECK(rig.manager->config().vms.size() == 2);
    // On the stuck endpoint itself, one operation at a time; vm2's other NIC can still publish.
    CHECK(error_of([&] { rig.manager->detach("vm2", stuck.endpoint); }).kind() == ErrorKind::Conflict);
    CHECK(rig.manager->publish("vm2", other.endpoint, {{"tcp", std::nullopt, 8081, 80}}).size() == 1);
    CHECK(unplugs_waiting() == 1);  // all of the above while vm2's unplug still hung

    rig.world.release("vm2");
    detaching.join();
    CHECK(rig.manager->nics("vm2").size() == 1);
    rig.manager->detach("vm2", other.endpoint);
    rig.require_clean();
}

TEST_CASE("upkeep: rules Open vSwitch lost come back at once - missing ones at the next audit - ports a bridge lost too") {
    Rig rig([](ShimConfig& config) { config.vms[0].hostlo_groups = {"pod*"}; });
    const AttachedNic a = rig.manager->attach("vm1", net("lab"));
    const AttachedNic b = rig.manager->attach("vm2", net("lab"));
    rig.manager->join_hostlo("vm1", "pod1", std::nullopt);
    const AttachedNic member = rig.manager->attach("vm1", net("hostlo:pod1"));
    const std::int64_t now = 1'800'000'000;
    CHECK(rig.manager->maintain(now).rules_restored == 0);  // the first audit: all in place

    rig.host.restart_switch();  // ovs-vswitchd restarted: every rule is gone
    rig.segment.security.clear();
    const MaintenanceReport restarted = rig.manager->maintain(now + 1);
    CHECK(restarted.switch_restarted);
    CHECK(restarted.rules_restored == 3);
    CHECK(rig.host.security.at("bf" + a.endpoint) == a.mac + " " + a.ip.str());
    CHECK(rig.host.security.at("bf" + b.endpoint) == b.mac + " " + b.ip.str());
    CHECK(rig.segment.security.at("bf" + member.endpoint) == member.mac + " " + member.ip.str());
    CHECK(rig.manager->maintain(now + 2).rules_restored == 0);

    rig.host.security.erase("bf" + b.endpoint);  // an admin deleted flows: found at the next audit, 30 s on
    CHECK(rig.manager->maintain(now + 3).rules_restored == 0);
    CHECK(rig.manager->maintain(now + 32).rules_restored == 1);
    CHECK(rig.host.security.count("bf" + b.endpoint));

    rig.host.ports.erase("bf" + a.endpoint);  // the bridge was made again: its ports are gone too
    rig.host.security.clear();
    rig.host.restart_switch();
    CHECK(rig.manager->maintain(now + 33).rules_restored == 2);
    CHECK(rig.host.ports.at("bf" + a.endpoint).at("brfusion-endpoint") == a.endpoint);
    CHECK(rig.host.security.at("bf" + a.endpoint) == a.mac + " " + a.ip.str());
}

// The two races below need the request to run while the upkeep is inside Open vSwitch: the hook
// starts it there and gives it time to finish, which it does unless it waits for the upkeep.
constexpr auto kRaceWindow = std::chrono::milliseconds(200);

TEST_CASE("upkeep: a detach while the upkeep makes a lost port again waits for it - the port goes with the NIC") {
    Rig rig;
    const AttachedNic nic = rig.manager->attach("vm1", net("lab"));
    const std::int64_t now = 1'800'000'000;
    rig.manager->maintain(now);
    rig.host.ports.erase("bf" + nic.endpoint);  // the bridge was made again: its ports and rules are gone
    rig.host.security.clear();
    rig.host.restart_switch();
    std::future<void> detaching;
    rig.host.before_add_port = [&](const std::string&) {
        detaching = std::async(std::launch::async, [&] { rig.manager->detach("vm1", nic.endpoint); });
        detaching.wait_for(kRaceWindow);
    };
    CHECK(rig.manager->maintain(now + 1).rules_restored == 1);
    detaching.get();
    rig.require_clean();
}

TEST_CASE("upkeep: a group's last leave while the upkeep makes segments again waits for it - no segment comes back") {
    Rig rig([](ShimConfig& config) { config.vms[0].hostlo_groups = {"pod*"}; });
    rig.manager->join_hostlo("vm1", "pod1", std::nullopt);
    const std::int64_t now = 1'800'000'000;
    rig.manager->maintain(now);
    rig.host.restart_switch();
    std::future<void> leaving;
    rig.segment.before_ensure_group = [&](const hostlo::Group&) {
        leaving = std::async(std::launch::async, [&] { rig.manager->leave_hostlo("vm1", "pod1"); });
        leaving.wait_for(kRaceWindow);
    };
    CHECK(rig.manager->maintain(now + 1).switch_restarted);
    leaving.get();
    CHECK(rig.manager->hostlo_groups().empty());
    CHECK(rig.segment.segments.empty());
}

TEST_CASE("upkeep: reservations no NIC took within the grace period go back to the pool - NICs' addresses stay") {
    Rig rig([](ShimConfig& config) { config.reservation_grace_seconds = 300; });
    const AttachedNic nic = rig.manager->attach("vm1", net("lab"));
    const Ipv4 reserved = rig.manager->reserve_address("vm2", net("lab"), std::nullopt);
    const std::int64_t reserved_at = rig.manager->leases(net("lab")).back().owner.reserved_at;
    CHECK(rig.manager->maintain(reserved_at + 299).reservations_expired == 0);
    CHECK(rig.manager->maintain(reserved_at + 300).reservations_expired == 1);
    const auto leases = rig.manager->leases(net("lab"));
    REQUIRE(leases.size() == 1);
    CHECK(leases[0].address == nic.ip);
    CHECK(Journal(rig.dir).load().ipam.leases("lab").size() == 1);
    rig.manager->release_address("vm2", net("lab"), reserved);  // Docker's late ReleaseAddress: harmless
    CHECK(rig.manager->leases(net("lab")).size() == 1);
}

TEST_CASE("upkeep: published ports follow the host's addresses") {
    Rig rig;
    const AttachedNic nic = rig.manager->attach("vm1", net("lab"));
    rig.manager->publish("vm1", nic.endpoint, {{"tcp", std::nullopt, 8080, 80}});
    const std::int64_t now = 1'800'000'000;
    CHECK_FALSE(rig.manager->maintain(now).firewall_rewritten);
    rig.stack.addresses = {{"eth0", *Ipv4::parse("192.0.2.9")}};  // the uplink's address changed
    CHECK(rig.manager->maintain(now + 1).firewall_rewritten == false);  // checked every 5 s
    CHECK(rig.manager->maintain(now + 5).firewall_rewritten);
    CHECK(rig.firewall.rules.publish_addresses == std::vector<Ipv4>{*Ipv4::parse("192.0.2.9")});

    // A write that failed (the unpublish is saved, the table kept the port) is made again.
    rig.plan.fail({1});
    CHECK_THROWS(rig.manager->unpublish("vm1", nic.endpoint));
    CHECK(rig.firewall.rules.published.size() == 1);
    CHECK(rig.manager->maintain(now + 10).firewall_rewritten);
    CHECK(rig.firewall.rules.published.empty());
    CHECK_FALSE(rig.manager->maintain(now + 15).firewall_rewritten);
}
