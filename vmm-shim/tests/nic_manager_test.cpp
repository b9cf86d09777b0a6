// NicManager against fakes: the happy path, refusals, and a failure injected at every step of
// attach and detach (and a crash, i.e. a new manager over the same journal): nothing leaks.

#include "brfusion/shim/nic_manager.hpp"

#include "fakes.hpp"

#include <catch2/catch.hpp>


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
    const AttachedNic nic = rig.manager->attach("vm1", "lab");
    CHECK(nic.gateway.str() == "198.51.100.1");
    CHECK(nic.prefix_length == 24);
    CHECK(nic.ip.str() == "198.51.100.2");
    const std::string host_if = "bf" + nic.endpoint;
    CHECK(host_if.size() <= 15);
    CHECK(nic.guest_if.size() <= 15);
    CHECK(rig.world.plugged.at(host_if) == "vm1");
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

TEST_CASE("refusals name the problem and change nothing") {
    Rig rig;
    const ShimError not_allowed = error_of([&] { rig.manager->attach("vm2", "lab2"); });
    CHECK(not_allowed.kind() == ErrorKind::NotAllowed);
    CHECK(std::string(not_allowed.what()) == "network lab2 is not allowed for VM vm2; allowed: lab");
    CHECK(error_of([&] { rig.manager->attach("vm1", "nope"); }).kind() == ErrorKind::NotFound);
    CHECK(error_of([&] { rig.manager->attach("vm9", "lab"); }).kind() == ErrorKind::NotFound);
    CHECK(error_of([&] { rig.manager->attach("vm1", "lab", Ipv4::parse("198.51.100.1")); }).kind() == ErrorKind::BadRequest);

    const AttachedNic theirs = rig.manager->attach("vm1", "lab", Ipv4::parse("198.51.100.77"));
    CHECK(theirs.ip.str() == "198.51.100.77");
    CHECK_THAT(error_of([&] { rig.manager->attach("vm2", "lab", Ipv4::parse("198.51.100.77")); }).what(),
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
            const AttachedNic nic = rig.manager->attach("vm1", "lab");
            rig.plan.fail({});
            INFO("attach succeeded once no step failed, at step " << step);
            CHECK(step > 3);  // create, add_port and plug were each failed before
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
    rig.plan.fail({3, 4});  // attach: 1 create, 2 add_port, 3 plug fails; undo: 4 unplug fails
    const ShimError error = error_of([&] { rig.manager->attach("vm1", "lab"); });
    CHECK_THAT(error.what(), Catch::Contains("undoing it failed too"));
    CHECK_THAT(error.what(), Catch::Contains("the next start of brfusion-shim retries"));
    REQUIRE(rig.manager->nics().size() == 1);
    CHECK(rig.manager->nics()[0].phase == NicPhase::Attaching);

    rig.plan.fail({});
    const ReconcileReport report = rig.restart();
    CHECK(report.undone.size() == 1);
    rig.require_clean();
}

TEST_CASE("a failure at each step of detach: retrying detach or restarting finishes it") {
    for (const bool by_restart : {false, true}) {
        for (int step = 1; step <= 3; ++step) {
            Rig rig;
            const AttachedNic nic = rig.manager->attach("vm1", "lab");
            rig.plan.fail({step});  // 1 unplug, 2 remove_port, 3 delete_host_device
            INFO("detach step " << step << (by_restart ? " then restart" : " then detach again"));
            CHECK_THROWS_WITH(rig.manager->detach("vm1", nic.endpoint), Catch::Contains("injected failure"));
            CHECK(Journal(rig.dir).load().nics.at(nic.endpoint).phase == NicPhase::Detaching);
            rig.plan.fail({});
            if (by_restart) {
                const ReconcileReport report = rig.restart();
                CHECK(report.finished == std::vector<std::string>{nic.endpoint});
            } else {
                rig.manager->detach("vm1", nic.endpoint);
            }
            rig.require_clean();
        }
    }
}

TEST_CASE("a crash after each step of attach is undone by the next start") {
    for (int crash_after = 0; crash_after <= 3; ++crash_after) {
        Rig rig;
        // Simulate the crash: attach, then put the world back to how it was after `crash_after`
        // of its 3 steps, with the journal saying "attaching".
        const AttachedNic nic = rig.manager->attach("vm1", "lab");
        const std::string host_if = "bf" + nic.endpoint;
        if (crash_after < 3) rig.world.plugged.erase(host_if);
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

TEST_CASE("reconcile repairs an attached NIC's missing pieces and removes orphan ports") {
    Rig rig;
    const AttachedNic nic = rig.manager->attach("vm1", "lab");
    const std::string host_if = "bf" + nic.endpoint;
    rig.host.ports.erase(host_if);  // an admin deleted the port
    rig.host.ports["bforphan"] = {{"brfusion-endpoint", "gone"}, {"brfusion-vm", "vm2"}};
    rig.world.host_devices.insert("bforphan");

    const ReconcileReport report = rig.restart();
    CHECK(report.repaired == std::vector<std::string>{nic.endpoint});
    CHECK(report.orphans == std::vector<std::string>{"bforphan"});
    CHECK(rig.host.ports.count(host_if));
    CHECK_FALSE(rig.host.ports.count("bforphan"));
    CHECK_FALSE(rig.world.host_devices.count("bforphan"));
    CHECK(rig.manager->nics("vm1").size() == 1);
}
