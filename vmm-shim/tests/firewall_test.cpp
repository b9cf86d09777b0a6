// render_nftables: what the shim's nftables table holds for given networks and published ports.

#include "brfusion/shim/firewall.hpp"

#include <catch2/catch.hpp>

using namespace brfusion;
using namespace brfusion::shim;

namespace {
FirewallRules two_networks() {
    FirewallRules rules;
    rules.uplink = "eth0";
    rules.networks = {{"bfgw100", *Ipv4Prefix::parse("198.51.100.0/24"), true, {"bfgw200"}},
                      {"bfgw200", *Ipv4Prefix::parse("203.0.113.0/24"), false, {}}};
    rules.published = {{{"tcp", std::nullopt, 8080, 80}, *Ipv4::parse("198.51.100.5")},
                       {{"udp", Ipv4::parse("192.0.2.1"), 5353, 53}, *Ipv4::parse("203.0.113.9")},
                       {{"udp", Ipv4::parse("192.0.2.7"), 5354, 53}, *Ipv4::parse("203.0.113.9")}};  // an address the host no longer has
    rules.publish_addresses = {*Ipv4::parse("192.0.2.1"), *Ipv4::parse("192.0.2.3")};
    return rules;
}
}  // namespace

TEST_CASE("the table replaces itself in one transaction") {
    const std::string script = render_nftables(two_networks());
    CHECK(script.rfind("table ip brfusion\ndelete table ip brfusion\ntable ip brfusion {\n", 0) == 0);
}

TEST_CASE("NAT networks are masqueraded out of the uplink - others are routed as they are") {
    const std::string script = render_nftables(two_networks());
    CHECK_THAT(script, Catch::Contains("ip saddr 198.51.100.0/24 oifname \"eth0\" masquerade"));
    CHECK_THAT(script, !Catch::Contains("ip saddr 203.0.113.0/24 oifname"));
    FirewallRules no_uplink = two_networks();
    no_uplink.uplink.clear();
    CHECK_THAT(render_nftables(no_uplink), Catch::Contains("ip saddr 198.51.100.0/24 oifname != { \"bfgw100\", \"bfgw200\" } masquerade"));
}

TEST_CASE("published ports are DNATed from outside and from the host - on every address the host publishes on, or one of them") {
    const std::string script = render_nftables(two_networks());
    const std::string any = "ip daddr { 192.0.2.1, 192.0.2.3 } tcp dport 8080 dnat to 198.51.100.5:80";
    const std::string one = "ip daddr { 192.0.2.1 } udp dport 5353 dnat to 203.0.113.9:53";
    CHECK_THAT(script, !Catch::Contains("5354") && !Catch::Contains("192.0.2.7") && !Catch::Contains("fib daddr"));
    const auto prerouting = script.find("chain prerouting"), output = script.find("chain output"), postrouting = script.find("chain postrouting");
    CHECK(script.find(any, prerouting) < output);
    CHECK(script.find(any, output) < postrouting);
    CHECK(script.find(one, prerouting) < output);
    CHECK(script.find(one, output) < postrouting);
    CHECK_THAT(script, Catch::Contains("ip saddr 198.51.100.0/24 ip daddr 198.51.100.0/24 ct status dnat masquerade"));  // hairpin
}

TEST_CASE("networks cannot open connections to each other unless forward_to says so") {
    const std::string script = render_nftables(two_networks());
    CHECK_THAT(script, Catch::Contains("ct state established,related accept\n    ct status dnat accept\n"));
    CHECK_THAT(script, Catch::Contains("iifname \"bfgw200\" oifname { \"bfgw100\" } drop"));
    CHECK_THAT(script, !Catch::Contains("iifname \"bfgw100\" oifname"));  // 100 may reach 200
}

TEST_CASE("with nothing to do the table still exists - empty chains") {
    const std::string script = render_nftables({});
    CHECK_THAT(script, Catch::Contains("chain forward {\n    type filter hook forward priority filter; policy accept;\n"
                                       "    ct state established,related accept\n    ct status dnat accept\n  }"));
    CHECK_THAT(script, !Catch::Contains("masquerade"));
}
