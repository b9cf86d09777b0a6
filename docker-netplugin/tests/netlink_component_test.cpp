// NetlinkLinks against the kernel, in a fresh network namespace.

#include "brfusion/plugin/error.hpp"
#include "brfusion/plugin/guest_links.hpp"
#include "brfusion/testing/ovs_sandbox.hpp"

#include <catch2/catch.hpp>

using namespace brfusion;
using namespace brfusion::plugin;

TEST_CASE("netlink: find a link by MAC - rename it - set its MTU and offloads - leave it down") {
    testing::Netns vm;
    REQUIRE(vm.exec("ip link add nic7 address 02:bf:00:00:00:07 type veth peer name peer7 && ip link set nic7 up").exit_code == 0);
    NetlinkLinks links("/run/netns/" + vm.name());
    const auto link = find_link_by_mac(links, "02:BF:00:00:00:07");
    REQUIRE(link);
    CHECK(link->name == "nic7");
    CHECK(link->up);
    CHECK_FALSE(find_link_by_mac(links, "02:bf:00:00:00:08"));
    // One lookup by name; a hint is taken only with the right MAC.
    REQUIRE(links.get("nic7"));
    CHECK(links.get("nic7")->mac == "02:bf:00:00:00:07");
    CHECK_FALSE(links.get("nothere"));
    CHECK_FALSE(links.get("a-name-far-too-long-for-a-link"));
    CHECK(find_link_by_mac(links, "02:bf:00:00:00:07", {"nothere", ""})->name == "nic7");
    CHECK(find_link_by_mac(links, "02:bf:00:00:00:07", {"nic7", ""})->index == link->index);
    CHECK_FALSE(find_link_by_mac(links, "02:bf:00:00:00:08", {"nic7", ""}));
    // Only a PCI address becomes a path.
    CHECK(links.names_at_pci("../../../../etc").empty());
    CHECK(links.names_at_pci("0000:ff:1f.7").empty());

    REQUIRE_THAT(vm.exec("ethtool -k nic7").output, Catch::Contains("tx-checksumming: on") && Catch::Contains("scatter-gather: on"));
    links.prepare(link->index, {"bfc0123456789a", 1400, false});
    const std::string shown = vm.exec("ip -o link show bfc0123456789a").output;
    CHECK_THAT(shown, Catch::Contains("mtu 1400") && Catch::Contains("state DOWN") && Catch::Contains("02:bf:00:00:00:07"));
    const std::string offloads = vm.exec("ethtool -k bfc0123456789a").output;
    CHECK_THAT(offloads, Catch::Contains("tx-checksumming: off") && Catch::Contains("scatter-gather: on"));
    links.prepare(link->index, {"bfc0123456789a", 1400, false});  // again: the same
    CHECK_THROWS_WITH(links.prepare(link->index, {"x", 20, false}), Catch::Contains("cannot set up interface") && Catch::Contains("with MTU 20"));
    CHECK_THROWS_AS(links.prepare(9999, {"bfcnothere", 1500, false}), PluginError);

    // Where the host completes checksums, the NIC keeps its offload.
    REQUIRE(vm.exec("ip link add nic8 address 02:bf:00:00:00:08 type veth peer name peer8").exit_code == 0);
    links.prepare(find_link_by_mac(links, "02:bf:00:00:00:08")->index, {"bfc0123456789b", 1500, true});
    CHECK_THAT(vm.exec("ethtool -k bfc0123456789b").output, Catch::Contains("tx-checksumming: on"));
}
