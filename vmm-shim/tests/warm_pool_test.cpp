// The warm pool against fakes: spares are made, labelled and locked down; an attach claims one
// with no hot-plug; pools follow their configured size; a failure at each step of making or
// claiming a spare leaves nothing behind; a restart keeps spares; WarmPool refills in the background.

#include "brfusion/shim/warm_pool.hpp"

#include "fakes.hpp"

#include <catch2/catch.hpp>

#include <thread>

using namespace brfusion;
using namespace brfusion::shim;
using namespace brfusion::shim::test;

namespace {

// vm1 keeps `spares` spare NICs on lab.
std::function<void(ShimConfig&)> pool_of(int spares) {
    return [spares](ShimConfig& config) { config.vms[0].warm_pool = {{"lab", spares}}; };
}

int balance(NicManager& manager) {
    int steps = 0;
    while (manager.balance_warm_pool()) ++steps;
    return steps;
}

// The spares that are ready: one being made (visible while the pool works) does not count.
std::vector<NicRecord> spares_of(const NicManager& manager) {
    std::vector<NicRecord> spares;
    for (const auto& nic : manager.nics())
        if (nic.spare && nic.phase == NicPhase::Attached) spares.push_back(nic);
    return spares;
}

// Polls (the pool works on its own thread) until `done` or a generous deadline; no timing is asserted.
bool eventually(const std::function<bool()>& done) {
    for (int i = 0; i < 1000 && !done(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return done();
}

}  // namespace

TEST_CASE("spares are plugged - labelled - send nothing - hold no address") {
    Rig rig(pool_of(2));
    CHECK(balance(*rig.manager) == 2);
    CHECK(balance(*rig.manager) == 0);
    const auto spares = spares_of(*rig.manager);
    REQUIRE(spares.size() == 2);
    for (const auto& spare : spares) {
        CHECK(spare.vm == "vm1");
        CHECK(spare.network == net("lab"));
        CHECK(spare.phase == NicPhase::Attached);
        CHECK(rig.world.plugged.at(spare.host_if) == "vm1");
        CHECK(rig.host.ports.at(spare.host_if).at("brfusion-spare") == "true");
        CHECK(rig.host.tags.at(spare.host_if) == 100);
        CHECK(rig.host.security.at(spare.host_if) == spare.mac + " nothing");
        CHECK(Journal(rig.dir).load().nics.at(spare.endpoint).spare);
    }
    CHECK(rig.manager->leases(net("lab")).empty());
}

TEST_CASE("attach claims a spare without a hot-plug - the pool is told - detach removes it") {
    Rig rig(pool_of(1));
    balance(*rig.manager);
    const NicRecord spare = spares_of(*rig.manager).at(0);
    int claims = 0;
    rig.manager->on_spare_claimed([&] { ++claims; });

    rig.plan.fail({});  // counts the steps from here
    const AttachedNic nic = rig.manager->attach("vm1", net("lab"), Ipv4::parse("198.51.100.9"));
    CHECK(rig.plan.steps == 2);  // port security and the label; no device made, no plug
    CHECK(claims == 1);
    CHECK(nic.endpoint == spare.endpoint);
    CHECK(nic.mac == spare.mac);
    CHECK(nic.pci == spare.pci);
    CHECK(nic.ip.str() == "198.51.100.9");
    CHECK(rig.host.security.at(spare.host_if) == spare.mac + " 198.51.100.9");
    CHECK_FALSE(rig.host.ports.at(spare.host_if).count("brfusion-spare"));
    CHECK_FALSE(Journal(rig.dir).load().nics.at(nic.endpoint).spare);

    // The pool is empty now: the next attach plugs a new NIC, and balancing makes a new spare.
    const AttachedNic cold = rig.manager->attach("vm1", net("lab"));
    CHECK(cold.endpoint != spare.endpoint);
    CHECK(claims == 1);
    CHECK(balance(*rig.manager) == 1);
    CHECK(spares_of(*rig.manager).size() == 1);

    rig.manager->detach("vm1", nic.endpoint);
    rig.manager->detach("vm1", cold.endpoint);
    CHECK(rig.manager->leases(net("lab")).empty());
    CHECK(rig.manager->nics().size() == 1);  // the new spare
}

TEST_CASE("a spare is no guest's to detach or publish - another network's attach does not take it") {
    Rig rig(pool_of(1));
    balance(*rig.manager);
    const NicRecord spare = spares_of(*rig.manager).at(0);
    rig.manager->detach("vm1", spare.endpoint);  // unknown to the guest: success, nothing done
    CHECK(rig.world.plugged.count(spare.host_if));
    CHECK_THROWS_AS(rig.manager->publish("vm1", spare.endpoint, {{"tcp", std::nullopt, 8080, 80}}), ShimError);
    CHECK(rig.firewall.rules.published.empty());
    const AttachedNic other = rig.manager->attach("vm1", net("lab2"));
    CHECK(other.endpoint != spare.endpoint);
    CHECK(spares_of(*rig.manager).size() == 1);
}

TEST_CASE("pools follow their configured size across restarts") {
    Rig rig(pool_of(3));
    balance(*rig.manager);
    const auto before = spares_of(*rig.manager);
    REQUIRE(before.size() == 3);

    const ReconcileReport same = rig.restart();  // spares are kept as they are
    CHECK(same.undone.empty());
    CHECK(same.repaired.empty());
    CHECK(same.orphans.empty());
    CHECK(spares_of(*rig.manager).size() == 3);
    CHECK(balance(*rig.manager) == 0);

    rig.config.vms[0].warm_pool = {{"lab", 1}};
    rig.restart();
    CHECK(balance(*rig.manager) == 2);
    CHECK(spares_of(*rig.manager).size() == 1);
    CHECK(rig.world.plugged.size() == 1);

    rig.config.vms[0].warm_pool.clear();
    rig.restart();
    CHECK(balance(*rig.manager) == 1);
    rig.require_clean();
}

TEST_CASE("a failure at each step of making a spare leaves nothing behind") {
    Rig rig(pool_of(1));
    for (int step = 1;; ++step) {
        rig.plan.fail({step});
        try {
            balance(*rig.manager);
            INFO("made once no step failed, at step " << step);
            CHECK(step > 4);  // create, add_port, secure_port and plug were each failed before
            break;
        } catch (const ShimError& e) {
            INFO("failed at step " << step << ": " << e.what());
            CHECK_THAT(e.what(), Catch::Contains("injected failure"));
            rig.require_clean();
        }
    }
    CHECK(spares_of(*rig.manager).size() == 1);
}

TEST_CASE("a failure at each step of claiming a spare: the claim is undone and the reservation kept") {
    for (int step = 1; step <= 2; ++step) {  // 1 port security, 2 the label
        Rig rig(pool_of(1));
        balance(*rig.manager);
        const Ipv4 reserved = rig.manager->reserve_address("vm1", net("lab"), std::nullopt);
        rig.plan.fail({step});
        INFO("claim step " << step);
        CHECK_THROWS_WITH(rig.manager->attach("vm1", net("lab"), reserved), Catch::Contains("injected failure"));
        rig.plan.fail({});
        CHECK(rig.manager->nics().empty());  // the spare went with the failed claim
        CHECK(rig.world.plugged.empty());
        CHECK(rig.host.ports.empty());
        const auto leases = rig.manager->leases(net("lab"));
        REQUIRE(leases.size() == 1);
        CHECK(leases[0].owner.str() == "vm1/reserved");
        CHECK(balance(*rig.manager) == 1);  // the pool refills
    }
}

TEST_CASE("a claim cut short by a crash is undone by the next start") {
    Rig rig(pool_of(1));
    balance(*rig.manager);
    rig.plan.fail({2, 3});  // claim: 1 port security, 2 the label fails; undo: 3 unplug fails
    CHECK_THROWS_WITH(rig.manager->attach("vm1", net("lab")), Catch::Contains("undoing it failed too"));
    rig.plan.fail({});
    const ReconcileReport report = rig.restart();
    CHECK(report.undone.size() == 1);
    rig.config.vms[0].warm_pool.clear();
    rig.restart();
    rig.require_clean();
}

TEST_CASE("WarmPool fills the pools in the background and refills after a claim") {
    Rig rig(pool_of(2));
    WarmPool pool(*rig.manager, [](const std::string&) {}, std::chrono::milliseconds(20));
    REQUIRE(eventually([&] { return spares_of(*rig.manager).size() == 2; }));
    const AttachedNic nic = rig.manager->attach("vm1", net("lab"));
    CHECK(nic.endpoint != "");
    REQUIRE(eventually([&] { return spares_of(*rig.manager).size() == 2; }));
    CHECK(rig.manager->nics().size() == 3);
}

TEST_CASE("WarmPool logs a lasting failure once - and recovers when the cause goes") {
    Rig rig(pool_of(2));
    rig.world.slots = 1;  // room for one spare only
    std::mutex mutex;
    std::vector<std::string> logged;
    const auto log_size = [&] {
        std::lock_guard lock(mutex);
        return logged.size();
    };
    const auto log = [&](const std::string& line) {
        std::lock_guard lock(mutex);
        logged.push_back(line);
    };
    {
        WarmPool pool(*rig.manager, log, std::chrono::milliseconds(10));
        REQUIRE(eventually([&] { return log_size() == 1; }));
        std::this_thread::sleep_for(std::chrono::milliseconds(200));  // many retries, all failing alike
    }  // stopped: no spare is being made while the state is looked at (it is visible mid-way, by design)
    CHECK(log_size() == 1);
    {
        std::lock_guard lock(mutex);
        CHECK_THAT(logged[0], Catch::Contains("warm pool: VM vm1 has no free slot"));
    }
    CHECK(spares_of(*rig.manager).size() == 1);
    CHECK(rig.manager->nics().size() == 1);  // the failed spares were undone, none left half-made

    rig.world.slots = 8;
    WarmPool pool(*rig.manager, log, std::chrono::milliseconds(10));
    REQUIRE(eventually([&] { return spares_of(*rig.manager).size() == 2; }));
}
