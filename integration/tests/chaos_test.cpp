// The fault campaign, bounded for CI (docs/lab.md, "The fault campaign"): kill -9 of the shim, ovsdb-server,
// ovs-vswitchd, a plugin or a dockerd at random moments during attach, detach, publish and Hostlo
// join/leave on a netns lab; after each run every host object has an owner, every Docker
// endpoint its NIC, and traffic flows. `integration/chaos --runs 1000` is the long campaign.

#include "brfusion/testing/chaos.hpp"

#include <catch2/catch.hpp>

#include <iostream>

TEST_CASE("chaos: 25 runs of kill -9 during attach - detach - publish - Hostlo - every object keeps an owner - traffic flows") {
    brfusion::testing::ChaosOptions options;
    options.runs = 25;
    options.binaries = {BRFUSION_SHIM_BINARY, BRFUSION_CTL_BINARY, BRFUSION_PLUGIN_BINARY};
    const auto report = brfusion::testing::run_chaos(options, std::cout);
    INFO("seed " << report.seed << " (integration/chaos --seed " << report.seed << " replays the choices)");
    CHECK(report.runs == options.runs);
    CHECK(report.violations.empty());
}
