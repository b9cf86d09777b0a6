#include "brfusion/plugin/error.hpp"
#include "brfusion/plugin/options.hpp"

#include <catch2/catch.hpp>

using namespace brfusion::plugin;
using nlohmann::json;

namespace {
json generic(json options) { return {{"com.docker.network.generic", std::move(options)}}; }
}  // namespace

TEST_CASE("options: -o network - mode - group - mtu - --internal and --ipv6") {
    const auto plain = parse_network_options(json::object());
    CHECK_FALSE(plain.host_network);
    CHECK(plain.mode == NetworkMode::Brfusion);
    CHECK_FALSE(plain.internal);

    const auto all = parse_network_options({{"com.docker.network.internal", true},
                                            {"com.docker.network.enable_ipv6", false},
                                            {"com.docker.network.generic", {{"network", "lab"}, {"com.docker.network.driver.mtu", "1400"}}}});
    CHECK(all.host_network == "lab");
    CHECK(all.mtu == 1400);
    CHECK(all.internal);
    CHECK_FALSE(all.ipv6);

    const auto hostlo = parse_network_options(generic({{"mode", "hostlo"}, {"group", "pod-a"}}));
    CHECK(hostlo.mode == NetworkMode::Hostlo);
    CHECK(hostlo.group == "pod-a");
}

TEST_CASE("options: unknown and conflicting options are refused with what is accepted") {
    CHECK_THROWS_WITH(parse_network_options(generic({{"vlan", "5"}})),
                      "-o vlan is not a brfusion option; brfusion takes -o network=HOSTNET, -o mode=brfusion|hostlo, -o group=POD and -o "
                      "com.docker.network.driver.mtu=N");
    CHECK_THROWS_WITH(parse_network_options(generic({{"mode", "bridge"}})), "-o mode=bridge is not a brfusion mode; use brfusion (the default) or hostlo");
    CHECK(parse_network_options(generic({{"mode", "hostlo"}})).mode == NetworkMode::Hostlo);  // the group comes from --ipam-opt group
    CHECK_THROWS_WITH(parse_network_options(generic({{"group", "p"}})), "-o group=p needs -o mode=hostlo");
    CHECK_THROWS_WITH(parse_network_options(generic({{"com.docker.network.driver.mtu", "9x"}})),
                      "-o com.docker.network.driver.mtu=9x: the MTU must be a number from 68 to 65535");
    CHECK_THROWS_WITH(parse_network_options(generic({{"com.docker.network.driver.mtu", "20"}})),
                      "-o com.docker.network.driver.mtu=20: the MTU must be a number from 68 to 65535");
    CHECK_THROWS_WITH(parse_network_options(generic({{"network", ""}})), "-o network= needs the name of a host network");
    CHECK_THROWS_AS(parse_network_options(generic({{"network", 5}})), PluginError);

    CHECK(parse_pool_options({{"network", "lab"}}).host_network == "lab");
    CHECK(parse_pool_options({{"group", "pod-a"}}).group == "pod-a");
    CHECK_FALSE(parse_pool_options({}).host_network);
    CHECK_FALSE(parse_pool_options({}).group);
    CHECK_THROWS_WITH(parse_pool_options({{"subnet", "x"}}),
                      "--ipam-opt subnet is not a brfusion IPAM option; brfusion takes --ipam-opt network=HOSTNET or --ipam-opt group=POD (Hostlo)");
    CHECK_THROWS_WITH(parse_pool_options({{"group", ""}}), "--ipam-opt group= needs the name of the pod");
    CHECK_THROWS_WITH(parse_pool_options({{"group", "p"}, {"network", "lab"}}), Catch::StartsWith("--ipam-opt network= and --ipam-opt group= do not go together"));
}

TEST_CASE("options: docker run -p bindings become the shim's port mappings, a host port range with its end") {
    const json portmap = json::parse(R"([{"Proto":6,"IP":"","Port":80,"HostIP":"","HostPort":8080,"HostPortEnd":8080},
                                         {"Proto":6,"IP":"","Port":80,"HostIP":"::","HostPort":8080,"HostPortEnd":8080},
                                         {"Proto":17,"IP":"","Port":53,"HostIP":"192.0.2.1","HostPort":0,"HostPortEnd":0}])");
    const auto ports = parse_port_map(portmap);
    REQUIRE(ports.size() == 2);
    CHECK(ports[0] == brfusion::guest::PortMapping{"tcp", std::nullopt, 8080, 80});
    CHECK(ports[1] == brfusion::guest::PortMapping{"udp", brfusion::Ipv4::parse("192.0.2.1"), 0, 53});
    CHECK(parse_port_map(json()).empty());

    CHECK_THROWS_WITH(parse_port_map(json::parse(R"([{"Proto":132,"Port":80,"HostPort":80}])")),
                      "-p 80: only tcp and udp ports can be published through brfusion (IP protocol 132 asked)");
    const auto range = parse_port_map(json::parse(R"([{"Proto":6,"Port":80,"HostPort":8000,"HostPortEnd":8010}])"));
    REQUIRE(range.size() == 1);
    CHECK(range[0] == brfusion::guest::PortMapping{"tcp", std::nullopt, 8000, 80, 8010});
    CHECK_THROWS_WITH(parse_port_map(json::parse(R"([{"Proto":6,"Port":80,"HostPort":8010,"HostPortEnd":8000}])")),
                      "-p 8010-8000:80: a host port range goes from a lower port to a higher one");
    CHECK_THROWS_WITH(parse_port_map(json::parse(R"([{"Proto":6,"Port":80,"HostIP":"2001:db8::1","HostPort":80}])")),
                      "-p 2001:db8::1:...: brfusion publishes ports on the host's IPv4 addresses only");
    CHECK_THROWS_WITH(parse_port_map(json::parse(R"([{"Port":80}])")), "com.docker.network.portmap: missing field 'Proto'");
}
