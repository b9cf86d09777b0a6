// The driver against the shim's real core (NicManager over the shim's fakes of OVS and the VMM),
// through an in-memory guest channel: the calls Docker makes, in Docker's order.

#include "brfusion/plugin/driver.hpp"
#include "brfusion/plugin/error.hpp"
#include "brfusion/shim/guest_api.hpp"
#include "fakes.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

using namespace brfusion;
using namespace brfusion::plugin;
using nlohmann::json;
using brfusion::shim::test::net;

namespace {

// Hostlo groups from 192.0.2.0/24 in blocks of 16, and vm2 may join any group named pod*.
void allow_pods(shim::ShimConfig& config) {
    config.hostlo.subnets = {*Ipv4Prefix::parse("192.0.2.0/24"), 28};
    config.vms[1].hostlo_groups = {"pod*"};
}

// The guest channel without a socket: each call runs the shim's handler for `vm` in place.
struct LoopbackChannel : ShimChannel {
    LoopbackChannel(shim::test::Rig& shim_rig, std::string vm_name) : rig(shim_rig), vm(std::move(vm_name)) {}
    json call(const std::string& method, const json& params) override {
        if (unreachable) throw PluginError(ErrorKind::Unavailable, "cannot reach brfusion-shim at unix:/test: Connection refused");
        const auto answer = shim::handle_guest_line(*rig.manager, vm, guest::make_request(1, method, params).dump());
        if (after_shim_acted) std::exchange(after_shim_acted, nullptr)();
        if (answer_lost) throw PluginError(ErrorKind::Unavailable, "the channel to brfusion-shim closed (did the shim restart?); retry");
        return result_of(*answer, method);
    }
    shim::test::Rig& rig;
    std::string vm;
    bool unreachable = false;
    bool answer_lost = false;  // the shim acts, then its answer is lost (it died before sending it)
    std::function<void()> after_shim_acted;  // runs once, when the shim has acted on the next call
};

// The VM's links: every NIC the shim has attached to the VM, as the guest kernel would show it.
struct FakeLinks : GuestLinks {
    FakeLinks(shim::test::Rig& shim_rig, std::string vm_name) : rig(shim_rig), vm(std::move(vm_name)) {}
    std::vector<LinkInfo> list() override {
        ++listed;
        std::vector<LinkInfo> links = {{1, "lo", "00:00:00:00:00:00", 65536, true}};
        for (const auto& nic : rig.manager->nics(vm)) {
            if (nic.phase != shim::NicPhase::Attached || hidden) continue;
            const int index = static_cast<int>(std::hash<std::string>{}(nic.mac) % 10000) + 2;
            const auto set = prepared.find(index);
            const std::string name = named_by_host ? "bfg" + nic.endpoint : "eth" + std::to_string(index);
            links.push_back(set == prepared.end() ? LinkInfo{index, name, nic.mac, 1500, true} : set->second);
        }
        return links;
    }
    std::optional<LinkInfo> get(const std::string& name) override {
        for (const auto& link : all())
            if (link.name == name) return link;
        return std::nullopt;
    }
    // Like sysfs: the names of the NIC the fake VMM plugged at `pci`.
    std::vector<std::string> names_at_pci(const std::string& pci) override {
        if (!pci_in_sysfs) return {};
        for (const auto& nic : rig.manager->nics(vm))
            if (nic.pci == pci)
                if (const auto link = find_if_mac(nic.mac)) return {link->name};
        return {};
    }
    std::optional<LinkInfo> find_if_mac(const std::string& mac) {
        for (const auto& link : all())
            if (link.mac == mac) return link;
        return std::nullopt;
    }
    std::vector<LinkInfo> all() {  // list() without counting
        auto links = list();
        --listed;
        return links;
    }
    void prepare(int index, const LinkSetup& setup) override {
        for (const auto& link : all())
            if (link.index == index) {
                prepared[index] = {index, setup.name, link.mac, setup.mtu, false};
                checksum_offload[setup.name] = setup.checksum_offload;
            }
    }
    shim::test::Rig& rig;
    std::string vm;
    bool hidden = false;  // the NIC never shows up in the VM
    bool named_by_host = false;  // each NIC has the name the host gave it (netns), not one of the kernel's
    bool pci_in_sysfs = false;   // names_at_pci knows the NICs
    int listed = 0;              // walks over every link
    std::map<int, LinkInfo> prepared;
    std::map<std::string, bool> checksum_offload;  // by the name prepare gave
};

// Docker's API, as the reconcile asks it which networks Docker has.
struct FakeDocker : DockerNetworks {
    std::optional<std::set<std::string>> networks;  // nullopt: Docker cannot be asked
    std::optional<std::set<std::string>> ids() override { return networks; }
};

struct Plugin {
    shim::test::Rig rig;
    LoopbackChannel channel;
    FakeLinks links;
    FakeDocker docker;
    std::string dir = "/tmp/brfusion-plugin-test-" + std::to_string(::getpid());
    std::unique_ptr<PluginStore> store;
    std::unique_ptr<Driver> driver;
    DriverOptions options{std::chrono::milliseconds(50), std::chrono::milliseconds(1)};

    explicit Plugin(const std::string& vm = "vm2", const std::function<void(shim::ShimConfig&)>& adjust = {})
        : rig(adjust), channel(rig, vm), links(rig, vm) {
        std::filesystem::remove_all(dir);
        restart();
    }
    ~Plugin() { std::filesystem::remove_all(dir); }
    void restart() {
        store = std::make_unique<PluginStore>(dir);
        driver = std::make_unique<Driver>(channel, links, *store, options, &docker);
    }
    std::pair<int, json> call(const std::string& path, const json& body = nullptr) {
        const HttpAnswer answer = driver->handle({"POST", path, body.is_null() ? "" : body.dump()});
        return {answer.status, json::parse(answer.body)};
    }
    json ok(const std::string& path, const json& body = nullptr) {
        auto [status, answer] = call(path, body);
        INFO(path << " answered " << status << " " << answer.dump());
        REQUIRE(status == 200);
        return answer;
    }
    std::string error(const std::string& path, const json& body, int expected_status) {
        auto [status, answer] = call(path, body);
        INFO(path << " answered " << answer.dump());
        CHECK(status == expected_status);
        return answer.value("Err", "");
    }
    // What Docker does for `docker network create -d brfusion --ipam-driver brfusion NAME`.
    void create_network(const std::string& id, const json& generic = json::object(), const std::string& subnet = "") {
        const json pool = ok("/IpamDriver.RequestPool", {{"AddressSpace", "brfusion"}, {"Pool", subnet}, {"SubPool", ""}, {"Options", json::object()}, {"V6", false}});
        const json gateway = ok("/IpamDriver.RequestAddress", {{"PoolID", pool["PoolID"]}, {"Address", ""},
                                                               {"Options", {{"RequestAddressType", "com.docker.network.gateway"}}}});
        ok("/NetworkDriver.CreateNetwork", {{"NetworkID", id},
                                            {"Options", {{"com.docker.network.enable_ipv6", false}, {"com.docker.network.generic", generic}}},
                                            {"IPv4Data", {{{"AddressSpace", "brfusion"}, {"Pool", pool["Pool"]}, {"Gateway", gateway["Address"]}}}},
                                            {"IPv6Data", json::array()}});
    }
    // What Docker does for a container's endpoint: RequestAddress, CreateEndpoint. Returns the MAC.
    std::string create_endpoint(const std::string& network, const std::string& endpoint, const std::string& ip = "") {
        const json address = ok("/IpamDriver.RequestAddress", {{"PoolID", "lab"}, {"Address", ip}, {"Options", json::object()}});
        const json created = ok("/NetworkDriver.CreateEndpoint", {{"NetworkID", network}, {"EndpointID", endpoint}, {"Options", json::object()},
                                                                  {"Interface", {{"Address", address["Address"]}, {"AddressIPv6", ""}, {"MacAddress", ""}}}});
        CHECK_FALSE(created["Interface"].contains("Address"));  // Docker gave one: only what it left empty comes back
        return created["Interface"]["MacAddress"];
    }
    void delete_endpoint(const std::string& network, const std::string& endpoint, const std::string& address) {
        ok("/NetworkDriver.DeleteEndpoint", {{"NetworkID", network}, {"EndpointID", endpoint}});
        ok("/IpamDriver.ReleaseAddress", {{"PoolID", "lab"}, {"Address", address}});
    }
    void require_clean() {
        rig.require_clean();
        CHECK(rig.manager->leases(net("lab")).empty());
        CHECK(driver->state().endpoints.empty());
        CHECK(driver->state().reservations.empty());
        const PluginState saved = PluginStore(dir).load();
        CHECK(saved.endpoints.empty());
        CHECK(saved.reservations.empty());
    }
};

}  // namespace

TEST_CASE("driver: a shim with userspace TSO lets the NIC keep its offloads - also across a plugin restart before Join") {
    Plugin plugin("vm2", [](shim::ShimConfig& config) { config.userspace_tso = true; });
    plugin.create_network("net1");
    const std::string mac = plugin.create_endpoint("net1", "ep1");
    plugin.restart();  // what the shim allowed is kept with the endpoint
    plugin.ok("/NetworkDriver.Join", {{"NetworkID", "net1"}, {"EndpointID", "ep1"}, {"SandboxKey", "/var/run/docker/netns/x"}});
    const auto link = find_link_by_mac(plugin.links, mac);
    REQUIRE(link);
    CHECK(plugin.links.checksum_offload.at(link->name));
}

TEST_CASE("driver: Activate and capabilities answer what libnetwork expects") {
    Plugin plugin;
    CHECK(plugin.ok("/Plugin.Activate") == json::parse(R"({"Implements":["NetworkDriver","IpamDriver"]})"));
    CHECK(plugin.ok("/NetworkDriver.GetCapabilities") == json::parse(R"({"Scope":"local","ConnectivityScope":"local"})"));
    CHECK(plugin.ok("/IpamDriver.GetCapabilities") == json::parse(R"({"RequiresMACAddress":false,"RequiresRequestReplay":false})"));
    CHECK(plugin.ok("/IpamDriver.GetDefaultAddressSpaces") ==
          json::parse(R"({"LocalDefaultAddressSpace":"brfusion","GlobalDefaultAddressSpace":"brfusion-global"})"));
    CHECK(plugin.ok("/NetworkDriver.DiscoverNew", {{"DiscoveryType", 1}, {"DiscoveryData", nullptr}}) == json::object());
}

TEST_CASE("driver: a container's life - create - join - publish - leave - delete - nothing left") {
    Plugin plugin;
    plugin.create_network("net1");
    CHECK(plugin.driver->state().networks.at("net1").host_network == "lab");  // vm2's only host network
    CHECK(plugin.driver->state().networks.at("net1").gateway == "198.51.100.1");

    const std::string mac = plugin.create_endpoint("net1", "ep1");
    const auto nics = plugin.rig.manager->nics("vm2");
    REQUIRE(nics.size() == 1);
    CHECK(nics[0].mac == mac);
    CHECK(nics[0].ip.str() == "198.51.100.2");
    CHECK(plugin.driver->state().reservations.empty());  // the NIC took the reservation over

    const json joined = plugin.ok("/NetworkDriver.Join", {{"NetworkID", "net1"}, {"EndpointID", "ep1"}, {"SandboxKey", "/var/run/docker/netns/x"}});
    const std::string src = "bfc" + nics[0].endpoint;
    CHECK(joined == json({{"InterfaceName", {{"SrcName", src}, {"DstPrefix", "eth"}}}, {"Gateway", "198.51.100.1"}, {"StaticRoutes", json::array()}}));
    const auto link = find_link_by_mac(plugin.links, mac);
    REQUIRE(link);
    CHECK(link->name == src);
    CHECK(link->mtu == 1500);
    CHECK_FALSE(link->up);  // Docker sets it up inside the container
    CHECK_FALSE(plugin.links.checksum_offload.at(src));  // the shim did not allow it: OVS's userspace datapath needs complete checksums

    plugin.ok("/NetworkDriver.ProgramExternalConnectivity",
              {{"NetworkID", "net1"}, {"EndpointID", "ep1"},
               {"Options", {{"com.docker.network.portmap", {{{"Proto", 6}, {"IP", ""}, {"Port", 80}, {"HostIP", ""}, {"HostPort", 0}, {"HostPortEnd", 0}}}}}}});
    CHECK(plugin.rig.firewall.rules.published.size() == 1);
    const json info = plugin.ok("/NetworkDriver.EndpointOperInfo", {{"NetworkID", "net1"}, {"EndpointID", "ep1"}});
    CHECK(info["Value"]["com.docker.network.endpoint.macaddress"] == mac);
    CHECK(info["Value"]["com.docker.network.portmap"] ==
          json::parse(R"([{"Proto":6,"IP":"198.51.100.2","Port":80,"HostIP":"0.0.0.0","HostPort":49153,"HostPortEnd":49153}])"));

    plugin.ok("/NetworkDriver.RevokeExternalConnectivity", {{"NetworkID", "net1"}, {"EndpointID", "ep1"}});
    CHECK(plugin.rig.firewall.rules.published.empty());
    plugin.ok("/NetworkDriver.Leave", {{"NetworkID", "net1"}, {"EndpointID", "ep1"}});
    CHECK(plugin.rig.manager->nics("vm2").size() == 1);  // Leave keeps the NIC
    plugin.delete_endpoint("net1", "ep1", "198.51.100.2");
    plugin.ok("/NetworkDriver.DeleteNetwork", {{"NetworkID", "net1"}});
    plugin.ok("/IpamDriver.ReleaseAddress", {{"PoolID", "lab"}, {"Address", "198.51.100.1"}});  // the gateway: nothing to do
    plugin.ok("/IpamDriver.ReleasePool", {{"PoolID", "lab"}});
    plugin.require_clean();
    CHECK(plugin.driver->state().networks.empty());
}

TEST_CASE("driver: --ip - --internal - --subnet and --ipam-opt choose the host network") {
    Plugin plugin("vm1");  // vm1 may use lab and lab2
    CHECK(plugin.error("/IpamDriver.RequestPool", {{"AddressSpace", "brfusion"}, {"Pool", ""}},
                       400) == "which host network should this Docker network use? This VM may use lab (198.51.100.0/24), lab2 (203.0.113.0/24): "
                               "add --subnet SUBNET or --ipam-opt network=NAME");
    CHECK(plugin.ok("/IpamDriver.RequestPool", {{"Pool", "203.0.113.0/24"}})["PoolID"] == "lab2");
    CHECK(plugin.ok("/IpamDriver.RequestPool", {{"Options", {{"network", "lab2"}}}})["Pool"] == "203.0.113.0/24");
    CHECK(plugin.error("/IpamDriver.RequestPool", {{"Pool", "192.0.2.0/24"}}, 404) ==
          "--subnet 192.0.2.0/24 is not the subnet of a host network this VM may use: lab (198.51.100.0/24), lab2 (203.0.113.0/24)");
    CHECK(plugin.error("/IpamDriver.RequestPool", {{"Pool", "198.51.100.0/24"}, {"Options", {{"network", "lab2"}}}}, 400) ==
          "--subnet 198.51.100.0/24 does not match host network lab2, whose subnet is 203.0.113.0/24");
    CHECK(plugin.error("/IpamDriver.RequestPool", {{"Options", {{"network", "web"}}}}, 403) ==
          "host network web is not available to this VM; it may use: lab (198.51.100.0/24), lab2 (203.0.113.0/24)");

    plugin.create_network("internal", json::object(), "198.51.100.0/24");
    // --internal arrives as its own option; the network is created again under another id.
    plugin.ok("/NetworkDriver.CreateNetwork", {{"NetworkID", "int2"}, {"Options", {{"com.docker.network.internal", true}}},
                                               {"IPv4Data", {{{"AddressSpace", "brfusion"}, {"Pool", "198.51.100.0/24"}}}}});
    const std::string mac = plugin.create_endpoint("int2", "ep1", "198.51.100.77");
    CHECK(plugin.rig.manager->nics("vm1").at(0).ip.str() == "198.51.100.77");
    const json joined = plugin.ok("/NetworkDriver.Join", {{"NetworkID", "int2"}, {"EndpointID", "ep1"}});
    CHECK(joined["DisableGatewayService"] == true);
    CHECK_FALSE(joined.contains("Gateway"));
    plugin.delete_endpoint("int2", "ep1", "198.51.100.77");
    plugin.require_clean();
}

TEST_CASE("driver: refusals name the problem and change nothing") {
    Plugin plugin;
    const json ipv4 = {{{"AddressSpace", "brfusion"}, {"Pool", "198.51.100.0/24"}}};
    const auto create = [&](const json& options, const json& data) {
        return plugin.error("/NetworkDriver.CreateNetwork", {{"NetworkID", "n"}, {"Options", options}, {"IPv4Data", data}}, 400);
    };
    CHECK(create({{"com.docker.network.generic", {{"parent", "eth0"}}}}, ipv4).starts_with("-o parent is not a brfusion option"));
    CHECK(create({{"com.docker.network.enable_ipv6", true}}, ipv4) == "IPv6 is not supported by brfusion yet; create the network without --ipv6");
    CHECK(create(json::object(), {{{"AddressSpace", "LocalDefault"}, {"Pool", "172.18.0.0/16"}}}) ==
          "brfusion networks take their addresses from the host, shared by every VM on the host network: create the network with --ipam-driver brfusion");
    CHECK(create({{"com.docker.network.generic", {{"network", "lab2"}}}}, ipv4) ==
          "-o network=lab2 but the addresses come from host network lab (198.51.100.0/24); add --ipam-opt network=lab2");
    CHECK(create({{"com.docker.network.generic", {{"com.docker.network.driver.mtu", "9000"}}}}, ipv4) ==
          "-o com.docker.network.driver.mtu=9000 exceeds the MTU of host network lab (1500)");
    CHECK(create({{"com.docker.network.generic", {{"mode", "hostlo"}, {"group", "pod"}}}}, ipv4) ==
          "-o mode=hostlo: Docker asks the IPAM driver for the subnet before it hands -o options to the network driver, so name the pod to brfusion's "
          "IPAM: add --ipam-opt group=pod");
    CHECK(plugin.error("/IpamDriver.RequestPool", {{"V6", true}}, 400) == "IPv6 is not supported by brfusion yet; create the network without --ipv6");
    CHECK(plugin.error("/IpamDriver.RequestPool", {{"SubPool", "198.51.100.128/25"}}, 400) ==
          "--ip-range 198.51.100.128/25 is not supported: the host allocates from the whole subnet");
    CHECK(plugin.error("/IpamDriver.RequestAddress", {{"PoolID", "lab"}, {"Address", "198.51.100.9"},
                                                      {"Options", {{"RequestAddressType", "com.docker.network.gateway"}}}},
                       400) == "--gateway 198.51.100.9: the gateway of host network lab is 198.51.100.1; leave --gateway out");
    CHECK(plugin.driver->state().networks.empty());

    plugin.create_network("net1");
    const json endpoint = {{"NetworkID", "net1"}, {"EndpointID", "e"}, {"Interface", {{"Address", "198.51.100.5/24"}, {"MacAddress", "02:00:00:00:00:01"}}}};
    CHECK(plugin.error("/NetworkDriver.CreateEndpoint", endpoint, 400) ==
          "--mac-address 02:00:00:00:00:01 is not supported: the host gives each NIC its MAC");
    CHECK(plugin.error("/NetworkDriver.CreateEndpoint", {{"NetworkID", "nope"}, {"EndpointID", "e"}}, 404) ==
          "network nope is not known to brfusion-plugin; remove it (docker network rm) and create it again");
    CHECK(plugin.error("/NetworkDriver.Join", {{"NetworkID", "net1"}, {"EndpointID", "nope"}}, 404) == "endpoint nope is not known to brfusion-plugin");
    plugin.require_clean();
}

TEST_CASE("driver: malformed - unknown and non-POST requests get a 4xx with a message") {
    Plugin plugin;
    CHECK(plugin.driver->handle({"POST", "/NetworkDriver.CreateNetwork", "{not json"}).status == 400);
    CHECK(plugin.error("/NetworkDriver.CreateEndpoint", {{"NetworkID", "n"}}, 400) == "/NetworkDriver.CreateEndpoint: missing field 'EndpointID'");
    CHECK(plugin.error("/NetworkDriver.AllocateNetwork", json::object(), 404) == "brfusion-plugin does not implement /NetworkDriver.AllocateNetwork");
    CHECK(plugin.error("/VolumeDriver.Create", json::object(), 404) == "brfusion-plugin does not implement /VolumeDriver.Create");
    const HttpAnswer get = plugin.driver->handle({"GET", "/Plugin.Activate", ""});
    CHECK(get.status == 405);
    CHECK(json::parse(get.body)["Err"] == "/Plugin.Activate takes POST, not GET");
    CHECK(plugin.error("/NetworkDriver.Join", json::array(), 400) == "/NetworkDriver.Join: the request body must be a JSON object");
}

TEST_CASE("driver: Leave - DeleteEndpoint and ReleaseAddress of unknown ids succeed - DeleteEndpoint is idempotent") {
    Plugin plugin;
    plugin.ok("/NetworkDriver.Leave", {{"NetworkID", "x"}, {"EndpointID", "y"}});
    plugin.ok("/NetworkDriver.DeleteEndpoint", {{"NetworkID", "x"}, {"EndpointID", "y"}});
    plugin.ok("/NetworkDriver.RevokeExternalConnectivity", {{"NetworkID", "x"}, {"EndpointID", "y"}});
    plugin.ok("/IpamDriver.ReleaseAddress", {{"PoolID", "lab"}, {"Address", "198.51.100.200"}});
    CHECK(plugin.ok("/NetworkDriver.EndpointOperInfo", {{"NetworkID", "x"}, {"EndpointID", "y"}}) == json({{"Value", json::object()}}));

    plugin.create_network("net1");
    plugin.create_endpoint("net1", "ep1");
    plugin.rig.manager->detach("vm2", plugin.rig.manager->nics("vm2").at(0).endpoint);  // the NIC went away behind our back
    plugin.delete_endpoint("net1", "ep1", "198.51.100.2");
    plugin.delete_endpoint("net1", "ep1", "198.51.100.2");
    plugin.require_clean();
}

TEST_CASE("driver: a failure at each step of CreateEndpoint leaves nothing behind") {
    for (int step = 1; step <= 8; ++step) {
        DYNAMIC_SECTION("shim step " << step) {
            Plugin plugin;
            plugin.create_network("net1");
            const json address = plugin.ok("/IpamDriver.RequestAddress", {{"PoolID", "lab"}});
            plugin.rig.plan.fail({step});
            auto [status, answer] = plugin.call("/NetworkDriver.CreateEndpoint", {{"NetworkID", "net1"}, {"EndpointID", "ep1"},
                                                                                   {"Interface", {{"Address", address["Address"]}}}});
            plugin.rig.plan.fail({});
            if (status == 200) {  // the step was not part of this attach
                plugin.delete_endpoint("net1", "ep1", "198.51.100.2");
            } else {
                CHECK(answer["Err"].get<std::string>().find("injected") != std::string::npos);
                CHECK(plugin.driver->state().endpoints.empty());
                plugin.ok("/IpamDriver.ReleaseAddress", {{"PoolID", "lab"}, {"Address", "198.51.100.2"}});  // Docker's rollback
            }
            plugin.require_clean();
        }
    }
    SECTION("the plugin cannot save its state") {
        Plugin plugin;
        plugin.create_network("net1");
        const json address = plugin.ok("/IpamDriver.RequestAddress", {{"PoolID", "lab"}});
        std::filesystem::remove_all(plugin.dir);
        std::ofstream(plugin.dir) << "a file where the state directory should be";
        auto [status, answer] = plugin.call("/NetworkDriver.CreateEndpoint", {{"NetworkID", "net1"}, {"EndpointID", "ep1"},
                                                                               {"Interface", {{"Address", address["Address"]}}}});
        CHECK(status == 500);
        CHECK(answer["Err"].get<std::string>().starts_with("cannot save the plugin's state"));
        CHECK(plugin.rig.manager->nics("vm2").empty());  // the NIC was given back
        std::filesystem::remove(plugin.dir);
        plugin.ok("/IpamDriver.ReleaseAddress", {{"PoolID", "lab"}, {"Address", "198.51.100.2"}});
        plugin.require_clean();
    }
}

TEST_CASE("driver: shim unreachable - a clear 503 at once - works again when it is back") {
    Plugin plugin;
    plugin.create_network("net1");
    plugin.channel.unreachable = true;
    CHECK(plugin.error("/IpamDriver.RequestAddress", {{"PoolID", "lab"}}, 503) ==
          "cannot reach brfusion-shim at unix:/test: Connection refused");
    CHECK(plugin.error("/NetworkDriver.CreateEndpoint", {{"NetworkID", "net1"}, {"EndpointID", "ep1"}}, 503).starts_with("cannot reach"));
    CHECK_THROWS_AS(plugin.driver->reconcile(), PluginError);
    plugin.channel.unreachable = false;
    plugin.create_endpoint("net1", "ep1");
    plugin.delete_endpoint("net1", "ep1", "198.51.100.2");
    plugin.require_clean();
}

TEST_CASE("driver: Join waits for the NIC and gives up with a message when it never shows") {
    Plugin plugin;
    plugin.create_network("net1");
    const std::string mac = plugin.create_endpoint("net1", "ep1");
    plugin.links.hidden = true;
    CHECK(plugin.error("/NetworkDriver.Join", {{"NetworkID", "net1"}, {"EndpointID", "ep1"}}, 500)
              .starts_with("the NIC " + mac + " of endpoint ep1 did not appear in this VM within 50 ms"));
    plugin.links.hidden = false;
    plugin.ok("/NetworkDriver.Join", {{"NetworkID", "net1"}, {"EndpointID", "ep1"}});
    plugin.ok("/NetworkDriver.Join", {{"NetworkID", "net1"}, {"EndpointID", "ep1"}});  // again, after a plugin crash: same answer
    plugin.delete_endpoint("net1", "ep1", "198.51.100.2");
    plugin.require_clean();
}

TEST_CASE("driver: Join looks the NIC up where the shim says it is - every link is walked only when that is wrong") {
    Plugin plugin;
    plugin.create_network("net1");
    const auto join = [&](const std::string& endpoint, bool restart_first = false) {
        plugin.create_endpoint("net1", endpoint);
        if (restart_first) plugin.restart();  // the hints are kept with the endpoint
        const int listed = plugin.links.listed;
        const json answer = plugin.ok("/NetworkDriver.Join", {{"NetworkID", "net1"}, {"EndpointID", endpoint}});
        REQUIRE(plugin.links.prepared.size() == 1);
        CHECK(plugin.links.prepared.begin()->second.name == answer["InterfaceName"]["SrcName"]);
        plugin.links.prepared.clear();
        return plugin.links.listed - listed;
    };
    SECTION("by the name the host gave it (netns)") {
        plugin.links.named_by_host = true;
        CHECK(join("ep1") == 0);
        CHECK(join("ep2", true) == 0);
    }
    SECTION("by its PCI address (a real VM)") {
        plugin.links.pci_in_sysfs = true;
        CHECK(join("ep1") == 0);
        CHECK(join("ep2", true) == 0);
    }
    SECTION("neither: the kernel named it, and sysfs does not show it") {
        CHECK(join("ep1") == 1);
    }
}

TEST_CASE("driver: a restart keeps networks and endpoints - reconcile detaches a NIC no endpoint owns") {
    Plugin plugin;
    plugin.create_network("net1");
    plugin.create_endpoint("net1", "ep1");
    plugin.ok("/NetworkDriver.Join", {{"NetworkID", "net1"}, {"EndpointID", "ep1"}});
    // A NIC attached for a CreateEndpoint whose answer was lost in a crash.
    const auto orphan = plugin.rig.manager->attach("vm2", net("lab"), std::nullopt);

    plugin.restart();
    const auto report = plugin.driver->reconcile();
    CHECK(report.orphans_detached == std::vector<std::string>{orphan.endpoint});
    CHECK(report.endpoints_without_nic.empty());
    CHECK(plugin.rig.manager->nics("vm2").size() == 1);
    CHECK(plugin.ok("/NetworkDriver.Join", {{"NetworkID", "net1"}, {"EndpointID", "ep1"}})["Gateway"] == "198.51.100.1");
    plugin.delete_endpoint("net1", "ep1", "198.51.100.2");
    plugin.ok("/NetworkDriver.DeleteNetwork", {{"NetworkID", "net1"}});
    plugin.require_clean();
}

TEST_CASE("driver: concurrent endpoints on one network all get distinct NICs") {
    Plugin plugin;
    plugin.create_network("net1");
    std::vector<std::thread> threads;
    std::atomic<int> failures = 0;
    for (int i = 0; i < 8; ++i)
        threads.emplace_back([&, i] {
            const std::string id = "ep" + std::to_string(i);
            const auto [status, address] = plugin.call("/IpamDriver.RequestAddress", {{"PoolID", "lab"}});
            const auto [created, answer] = plugin.call("/NetworkDriver.CreateEndpoint",
                                                       {{"NetworkID", "net1"}, {"EndpointID", id}, {"Interface", {{"Address", address["Address"]}}}});
            if (status != 200 || created != 200) ++failures;
        });
    for (auto& thread : threads) thread.join();
    CHECK(failures == 0);
    const auto nics = plugin.rig.manager->nics("vm2");
    CHECK(nics.size() == 8);
    std::set<std::string> macs, ips;
    for (const auto& nic : nics) {
        macs.insert(nic.mac);
        ips.insert(nic.ip.str());
    }
    CHECK(macs.size() == 8);
    CHECK(ips.size() == 8);
    for (const auto& [id, endpoint] : plugin.driver->state().endpoints) plugin.delete_endpoint("net1", id, endpoint.address.substr(0, endpoint.address.find('/')));
    plugin.require_clean();
}

TEST_CASE("driver: Hostlo - --ipam-opt group joins the pod's group - endpoints get its addresses - no gateway - ReleasePool leaves") {
    Plugin plugin("vm2", allow_pods);
    const json pool = plugin.ok("/IpamDriver.RequestPool", {{"AddressSpace", "brfusion"}, {"Pool", ""}, {"Options", {{"group", "podA"}}}});
    CHECK(pool["PoolID"] == "hostlo:podA");
    CHECK(pool["Pool"] == "192.0.2.0/28");
    REQUIRE(plugin.rig.manager->hostlo_groups().size() == 1);
    CHECK(plugin.rig.manager->hostlo_groups()[0].members == std::set<std::string>{"vm2"});
    // A plain network still finds vm2's only host network: the group's pool is not a candidate.
    CHECK(plugin.ok("/IpamDriver.RequestPool", {{"AddressSpace", "brfusion"}, {"Pool", ""}})["PoolID"] == "lab");

    const json gateway = plugin.ok("/IpamDriver.RequestAddress", {{"PoolID", "hostlo:podA"}, {"Address", ""},
                                                                  {"Options", {{"RequestAddressType", "com.docker.network.gateway"}}}});
    CHECK(gateway["Address"] == "192.0.2.1/28");
    const json ipv4 = {{{"AddressSpace", "brfusion"}, {"Pool", "192.0.2.0/28"}, {"Gateway", "192.0.2.1/28"}}};
    const auto create = [&](const std::string& id, const json& generic) {
        return plugin.call("/NetworkDriver.CreateNetwork", {{"NetworkID", id}, {"Options", {{"com.docker.network.generic", generic}}}, {"IPv4Data", ipv4}});
    };
    CHECK(create("bad", {{"mode", "hostlo"}, {"group", "podB"}}).second["Err"] ==
          "-o group=podB but --ipam-opt group=podA; name the same pod in both, or leave -o group out");
    CHECK(create("bad", {{"network", "lab"}}).second["Err"].get<std::string>().starts_with("-o network=lab does not go with a Hostlo group"));
    REQUIRE(create("pod", {{"mode", "hostlo"}, {"group", "podA"}}).first == 200);

    const json address = plugin.ok("/IpamDriver.RequestAddress", {{"PoolID", "hostlo:podA"}, {"Address", ""}, {"Options", json::object()}});
    CHECK(address["Address"] == "192.0.2.2/28");
    const json created = plugin.ok("/NetworkDriver.CreateEndpoint", {{"NetworkID", "pod"}, {"EndpointID", "e1"}, {"Options", json::object()},
                                                                     {"Interface", {{"Address", address["Address"]}, {"AddressIPv6", ""}, {"MacAddress", ""}}}});
    const auto nics = plugin.rig.manager->nics("vm2");
    REQUIRE(nics.size() == 1);
    CHECK(nics[0].network == net("hostlo:podA"));
    CHECK(nics[0].ip.str() == "192.0.2.2");
    CHECK(created["Interface"]["MacAddress"] == nics[0].mac);
    const json joined = plugin.ok("/NetworkDriver.Join", {{"NetworkID", "pod"}, {"EndpointID", "e1"}, {"SandboxKey", "/var/run/docker/netns/x"}});
    CHECK(joined["DisableGatewayService"] == true);
    CHECK_FALSE(joined.contains("Gateway"));

    plugin.ok("/NetworkDriver.DeleteEndpoint", {{"NetworkID", "pod"}, {"EndpointID", "e1"}});
    plugin.ok("/IpamDriver.ReleaseAddress", {{"PoolID", "hostlo:podA"}, {"Address", "192.0.2.2/28"}});
    // Docker 28 releases the pool before it deletes the network: the leave waits for DeleteNetwork.
    plugin.ok("/IpamDriver.ReleasePool", {{"PoolID", "hostlo:podA"}});
    CHECK(plugin.rig.manager->hostlo_groups().size() == 1);
    CHECK_FALSE(plugin.driver->reconcile_pending());  // nothing to do while the network is there
    plugin.ok("/NetworkDriver.DeleteNetwork", {{"NetworkID", "pod"}});
    CHECK(plugin.rig.manager->hostlo_groups().empty());
    CHECK(plugin.driver->state().groups_to_leave.empty());
    CHECK(plugin.rig.segment.segments.empty());
    plugin.require_clean();
}

TEST_CASE("driver: Hostlo - a VM whose config does not allow the group is refused by name") {
    Plugin plugin;
    CHECK(plugin.error("/IpamDriver.RequestPool", {{"AddressSpace", "brfusion"}, {"Pool", ""}, {"Options", {{"group", "podA"}}}}, 403) ==
          "VM vm2 may not join Hostlo group podA; its hostlo_groups allow: none (the host's admin adds the group, or a prefix ending in '*', there)");
    CHECK(plugin.rig.manager->hostlo_groups().empty());
}

TEST_CASE("driver: a CreateEndpoint answer Docker never took is undone - its NIC detached - the endpoint forgotten") {
    Plugin plugin;
    plugin.create_network("net1");
    const json address = plugin.ok("/IpamDriver.RequestAddress", {{"PoolID", "lab"}, {"Address", ""}, {"Options", json::object()}});
    const HttpAnswer created = plugin.driver->handle(
        {"POST", "/NetworkDriver.CreateEndpoint",
         json{{"NetworkID", "net1"}, {"EndpointID", "ep1"}, {"Interface", {{"Address", address["Address"]}, {"AddressIPv6", ""}, {"MacAddress", ""}}}}.dump()});
    REQUIRE(created.status == 200);
    CHECK(plugin.rig.manager->nics("vm2").size() == 1);
    REQUIRE(created.undelivered);
    created.undelivered();  // what the HTTP server does when dockerd is gone before the answer is written
    CHECK(plugin.rig.manager->nics("vm2").empty());
    CHECK(plugin.driver->state().endpoints.empty());
    CHECK(PluginStore(plugin.dir).load().endpoints.empty());
    plugin.ok("/NetworkDriver.DeleteEndpoint", {{"NetworkID", "net1"}, {"EndpointID", "ep1"}});  // a late DeleteEndpoint finds nothing
    // Other answers carry nothing to undo.
    CHECK_FALSE(plugin.driver->handle({"POST", "/NetworkDriver.GetCapabilities", ""}).undelivered);
}

TEST_CASE("driver: an endpoint in no sandbox past the grace is forgotten - no Join after CreateEndpoint - no DeleteEndpoint after Leave") {
    Plugin plugin;
    plugin.create_network("net1");
    const auto create_endpoint = [&](const std::string& id) {
        const json address = plugin.ok("/IpamDriver.RequestAddress", {{"PoolID", "lab"}, {"Address", ""}, {"Options", json::object()}});
        plugin.ok("/NetworkDriver.CreateEndpoint", {{"NetworkID", "net1"}, {"EndpointID", id},
                                                    {"Interface", {{"Address", address["Address"]}, {"AddressIPv6", ""}, {"MacAddress", ""}}}});
    };
    const auto join = [&](const std::string& id) {
        plugin.ok("/NetworkDriver.Join", {{"NetworkID", "net1"}, {"EndpointID", id}, {"SandboxKey", "/var/run/docker/netns/x"}});
    };
    create_endpoint("joined");
    join("joined");
    create_endpoint("never-joined");  // dockerd read the answer and died before it stored the endpoint: no Join will come
    create_endpoint("left");
    join("left");
    plugin.ok("/NetworkDriver.Leave", {{"NetworkID", "net1"}, {"EndpointID", "left"}});  // its DeleteEndpoint is lost: the plugin died
    plugin.error("/NetworkDriver.DeleteEndpoint", json::object(), 400);  // during it, and Docker's retry has no body
    CHECK(plugin.driver->reconcile().endpoints_lost.empty());  // within the grace: the Join or DeleteEndpoint may still come
    CHECK_FALSE(plugin.driver->reconcile_pending());
    CHECK(PluginStore(plugin.dir).load().endpoints_unjoined.size() == 2);  // survives a plugin restart

    plugin.options.answer_grace = std::chrono::seconds(0);  // the grace is over
    plugin.restart();
    CHECK(plugin.driver->reconcile_pending());
    const PluginReconcileReport report = plugin.driver->reconcile();
    CHECK(report.endpoints_lost == std::vector<std::string>{"left", "never-joined"});
    CHECK(report.orphans_detached.size() == 2);
    CHECK(plugin.rig.manager->nics("vm2").size() == 1);
    CHECK(plugin.driver->state().endpoints.count("joined") == 1);
    CHECK_FALSE(plugin.driver->reconcile_pending());
    plugin.ok("/NetworkDriver.DeleteEndpoint", {{"NetworkID", "net1"}, {"EndpointID", "left"}});  // a late DeleteEndpoint finds nothing
}

TEST_CASE("driver: Hostlo - a RequestPool answer Docker never took leaves the group again") {
    Plugin plugin("vm2", allow_pods);
    const HttpAnswer pool = plugin.driver->handle(
        {"POST", "/IpamDriver.RequestPool", json{{"AddressSpace", "brfusion"}, {"Pool", ""}, {"Options", {{"group", "podA"}}}}.dump()});
    REQUIRE(pool.status == 200);
    REQUIRE(plugin.rig.manager->hostlo_groups().size() == 1);
    REQUIRE(pool.undelivered);
    pool.undelivered();
    CHECK(plugin.rig.manager->hostlo_groups().empty());
    // A host network's pool holds nothing: nothing to undo.
    CHECK_FALSE(plugin.driver->handle({"POST", "/IpamDriver.RequestPool", json{{"AddressSpace", "brfusion"}, {"Pool", ""}}.dump()}).undelivered);
}

TEST_CASE("driver: Hostlo - a CreateNetwork answer Docker never took forgets the network and leaves its group") {
    Plugin plugin("vm2", allow_pods);
    plugin.ok("/IpamDriver.RequestPool", {{"AddressSpace", "brfusion"}, {"Pool", ""}, {"Options", {{"group", "podA"}}}});
    const HttpAnswer created = plugin.driver->handle(
        {"POST", "/NetworkDriver.CreateNetwork",
         json{{"NetworkID", "hl"},
              {"Options", {{"com.docker.network.generic", json::object()}}},
              {"IPv4Data", {{{"AddressSpace", "brfusion"}, {"Pool", "192.0.2.0/28"}, {"Gateway", "192.0.2.1/28"}}}}}.dump()});
    REQUIRE(created.status == 200);
    REQUIRE(created.undelivered);
    created.undelivered();  // dockerd died before it stored the network: it will never delete it, nor release its pool
    CHECK(plugin.driver->state().networks.empty());
    CHECK(plugin.rig.manager->hostlo_groups().empty());
    CHECK_FALSE(plugin.driver->reconcile_pending());

    // A network of a host network holds no group: forgotten, nothing else.
    plugin.create_network("net1");
    const HttpAnswer plain = plugin.driver->handle({"POST", "/NetworkDriver.CreateNetwork",
                                                    json{{"NetworkID", "net2"},
                                                         {"Options", {{"com.docker.network.generic", json::object()}}},
                                                         {"IPv4Data", {{{"AddressSpace", "brfusion"}, {"Pool", "198.51.100.0/24"}}}}}.dump()});
    REQUIRE(plain.status == 200);
    plain.undelivered();
    CHECK(plugin.driver->state().networks.size() == 1);
}

TEST_CASE("driver: Hostlo - a ReleasePool the shim fails is retried by the reconcile - a join in between cancels it") {
    Plugin plugin("vm2", allow_pods);
    const json request = {{"AddressSpace", "brfusion"}, {"Pool", ""}, {"Options", {{"group", "podA"}}}};
    plugin.ok("/IpamDriver.RequestPool", request);
    plugin.rig.plan.fail({1});  // removing the group's segment fails (Open vSwitch away)
    CHECK_THAT(plugin.error("/IpamDriver.ReleasePool", {{"PoolID", "hostlo:podA"}}, 500), Catch::Contains("retries it when it next reconciles"));
    CHECK(plugin.rig.manager->hostlo_groups().size() == 1);
    CHECK(plugin.driver->reconcile_pending());
    CHECK(PluginStore(plugin.dir).load().groups_to_leave == std::set<std::string>{"podA"});  // survives a plugin restart
    plugin.rig.plan.fail({});
    CHECK(plugin.driver->reconcile().groups_left == std::vector<std::string>{"podA"});
    CHECK(plugin.rig.manager->hostlo_groups().empty());
    CHECK_FALSE(plugin.driver->reconcile_pending());

    plugin.ok("/IpamDriver.RequestPool", request);
    plugin.rig.plan.fail({1});
    plugin.error("/IpamDriver.ReleasePool", {{"PoolID", "hostlo:podA"}}, 500);
    plugin.rig.plan.fail({});
    plugin.ok("/IpamDriver.RequestPool", request);  // Docker made a network of the group again: the leave is off
    CHECK_FALSE(plugin.driver->reconcile_pending());
    CHECK(plugin.driver->reconcile().groups_left.empty());
    CHECK(plugin.rig.manager->hostlo_groups().size() == 1);
}

TEST_CASE("driver: Hostlo - a plugin killed after the shim joined, before it answered, leaves the group after the grace") {
    Plugin plugin("vm2", allow_pods);
    // The plugin's state as a kill -9 right after the shim's join would leave it on disk.
    PluginState at_the_kill;
    plugin.channel.after_shim_acted = [&] { at_the_kill = PluginStore(plugin.dir).load(); };
    plugin.ok("/IpamDriver.RequestPool", {{"AddressSpace", "brfusion"}, {"Pool", ""}, {"Options", {{"group", "podA"}}}});
    REQUIRE(plugin.rig.manager->hostlo_groups().size() == 1);
    PluginStore(plugin.dir).save(at_the_kill);
    plugin.options.answer_grace = std::chrono::seconds(0);  // Docker's retry without a body failed the network; the grace is over
    plugin.restart();
    CHECK(plugin.driver->reconcile_pending());
    CHECK(plugin.driver->reconcile().groups_left == std::vector<std::string>{"podA"});
    CHECK(plugin.rig.manager->hostlo_groups().empty());
}

TEST_CASE("driver: Hostlo - a group joined for a network Docker never created is left after the grace - one it created is kept") {
    Plugin plugin("vm2", allow_pods);
    plugin.ok("/IpamDriver.RequestPool", {{"AddressSpace", "brfusion"}, {"Pool", ""}, {"Options", {{"group", "podA"}}}});
    CHECK(plugin.driver->reconcile().groups_left.empty());  // within the grace: Docker's CreateNetwork may still come
    CHECK_FALSE(plugin.driver->reconcile_pending());
    CHECK(PluginStore(plugin.dir).load().groups_joining.count("podA") == 1);  // survives a plugin restart

    plugin.options.answer_grace = std::chrono::seconds(0);  // dockerd died before its CreateNetwork; the grace is over
    plugin.restart();
    CHECK(plugin.driver->reconcile_pending());
    CHECK(plugin.driver->reconcile().groups_left == std::vector<std::string>{"podA"});
    CHECK(plugin.rig.manager->hostlo_groups().empty());

    plugin.create_network("net1", json::object(), "");  // a plain network, then a Hostlo one Docker did create
    plugin.ok("/IpamDriver.RequestPool", {{"AddressSpace", "brfusion"}, {"Pool", ""}, {"Options", {{"group", "podB"}}}});
    plugin.ok("/NetworkDriver.CreateNetwork", {{"NetworkID", "hl"},
                                               {"Options", {{"com.docker.network.generic", json::object()}}},
                                               {"IPv4Data", {{{"AddressSpace", "brfusion"}, {"Pool", "192.0.2.0/28"}, {"Gateway", "192.0.2.1/28"}}}}});
    CHECK_FALSE(plugin.driver->reconcile_pending());
    CHECK(plugin.driver->reconcile().groups_left.empty());
    CHECK(plugin.rig.manager->hostlo_groups().size() == 1);
}

TEST_CASE("driver: a network Docker lost is forgotten after the grace, its Hostlo group left - "
          "not while Docker has it, an endpoint is on it, or Docker cannot be asked") {
    Plugin plugin("vm2", allow_pods);
    plugin.create_network("kept");
    plugin.create_network("in-use");
    plugin.create_endpoint("in-use", "ep1");
    plugin.ok("/NetworkDriver.Join", {{"NetworkID", "in-use"}, {"EndpointID", "ep1"}, {"SandboxKey", "/var/run/docker/netns/x"}});
    // A Hostlo network whose CreateNetwork answer dockerd read, then died before storing it.
    const json pool = plugin.ok("/IpamDriver.RequestPool", {{"AddressSpace", "brfusion"}, {"Pool", ""}, {"Options", {{"group", "podA"}}}});
    plugin.ok("/NetworkDriver.CreateNetwork", {{"NetworkID", "hl"},
                                               {"Options", {{"com.docker.network.generic", json::object()}}},
                                               {"IPv4Data", {{{"AddressSpace", "brfusion"}, {"Pool", pool["Pool"]}}}}});
    REQUIRE(plugin.rig.manager->hostlo_groups().size() == 1);
    plugin.docker.networks = std::set<std::string>{"kept"};  // Docker has only this one of ours
    CHECK(plugin.driver->reconcile().networks_lost.empty());  // within the grace: Docker may be storing it right now
    CHECK_FALSE(plugin.driver->reconcile_pending());

    plugin.options.answer_grace = std::chrono::seconds(0);
    plugin.restart();
    plugin.docker.networks.reset();  // dockerd is not running: nothing is concluded
    CHECK(plugin.driver->reconcile().networks_lost.empty());
    plugin.docker.networks = std::set<std::string>{"kept"};
    const PluginReconcileReport report = plugin.driver->reconcile();
    CHECK(report.networks_lost == std::vector<std::string>{"hl"});  // "in-use" has an endpoint: kept until Docker loses that too
    CHECK(report.groups_left == std::vector<std::string>{"podA"});
    CHECK(plugin.rig.manager->hostlo_groups().empty());
    CHECK(PluginStore(plugin.dir).load().networks.size() == 2);
    CHECK_FALSE(plugin.driver->reconcile_pending());
    plugin.ok("/NetworkDriver.DeleteNetwork", {{"NetworkID", "hl"}});  // a late DeleteNetwork finds nothing
    plugin.delete_endpoint("in-use", "ep1", "198.51.100.2");
}

TEST_CASE("driver: a DeleteEndpoint whose detach fails forgets the endpoint all the same - the reconcile detaches its NIC at once") {
    Plugin plugin;
    plugin.create_network("net1");
    plugin.create_endpoint("net1", "ep1");
    REQUIRE(plugin.rig.manager->nics("vm2").size() == 1);
    plugin.rig.plan.fail({1, 2, 3, 4, 5, 6});  // the shim cannot detach (Docker's rm -f goes on regardless)
    CHECK_THAT(plugin.error("/NetworkDriver.DeleteEndpoint", {{"NetworkID", "net1"}, {"EndpointID", "ep1"}}, 500),
               Catch::Contains("detaches it when it next reconciles"));
    CHECK(plugin.driver->state().endpoints.empty());  // Docker forgot it: so do we
    CHECK(plugin.driver->reconcile_pending());
    plugin.rig.plan.fail({});
    CHECK(plugin.driver->reconcile().orphans_detached.size() == 1);
    CHECK_FALSE(plugin.driver->reconcile_pending());
    CHECK(plugin.rig.manager->nics("vm2").empty());
}

TEST_CASE("driver: Hostlo - a join whose answer was lost (the shim died) is left again - unless a network uses the group") {
    Plugin plugin("vm2", allow_pods);
    const json request = {{"AddressSpace", "brfusion"}, {"Pool", ""}, {"Options", {{"group", "podA"}}}};
    plugin.channel.answer_lost = true;
    plugin.error("/IpamDriver.RequestPool", request, 503);
    plugin.channel.answer_lost = false;
    CHECK(plugin.rig.manager->hostlo_groups().size() == 1);  // the shim did join
    CHECK(plugin.driver->reconcile_pending());
    CHECK(plugin.driver->reconcile().groups_left == std::vector<std::string>{"podA"});
    CHECK(plugin.rig.manager->hostlo_groups().empty());

    // A VM whose network of the group exists keeps it: a second network's lost answer leaves nothing.
    plugin.ok("/IpamDriver.RequestPool", request);
    plugin.ok("/NetworkDriver.CreateNetwork", {{"NetworkID", "hl"},
                                               {"Options", {{"com.docker.network.generic", json::object()}}},
                                               {"IPv4Data", {{{"AddressSpace", "brfusion"}, {"Pool", "192.0.2.0/28"}, {"Gateway", "192.0.2.1/28"}}}}});
    plugin.channel.answer_lost = true;
    plugin.error("/IpamDriver.RequestPool", request, 503);
    plugin.channel.answer_lost = false;
    CHECK_FALSE(plugin.driver->reconcile_pending());
    CHECK(plugin.rig.manager->hostlo_groups().size() == 1);
}

namespace {

// Docker's calls for network hl of group podA and an endpoint ep1 on it.
void hostlo_endpoint(Plugin& plugin) {
    plugin.ok("/IpamDriver.RequestPool", {{"AddressSpace", "brfusion"}, {"Pool", ""}, {"Options", {{"group", "podA"}}}});
    plugin.ok("/NetworkDriver.CreateNetwork", {{"NetworkID", "hl"},
                                               {"Options", {{"com.docker.network.generic", json::object()}}},
                                               {"IPv4Data", {{{"AddressSpace", "brfusion"}, {"Pool", "192.0.2.0/28"}, {"Gateway", "192.0.2.1/28"}}}}});
    const json address = plugin.ok("/IpamDriver.RequestAddress", {{"PoolID", "hostlo:podA"}, {"Address", ""}, {"Options", json::object()}});
    plugin.ok("/NetworkDriver.CreateEndpoint", {{"NetworkID", "hl"}, {"EndpointID", "ep1"},
                                                {"Interface", {{"Address", address["Address"]}, {"AddressIPv6", ""}, {"MacAddress", ""}}}});
}

}  // namespace

TEST_CASE("driver: Hostlo - the shim away for docker rm -f and network rm - the reconcile detaches the orphan NIC first, then leaves") {
    Plugin plugin("vm2", allow_pods);
    hostlo_endpoint(plugin);
    plugin.channel.unreachable = true;  // Docker goes on: rm -f, then network rm
    plugin.error("/NetworkDriver.DeleteEndpoint", {{"NetworkID", "hl"}, {"EndpointID", "ep1"}}, 500);
    plugin.ok("/NetworkDriver.DeleteNetwork", {{"NetworkID", "hl"}});
    plugin.error("/IpamDriver.ReleasePool", {{"PoolID", "hostlo:podA"}}, 500);
    plugin.channel.unreachable = false;
    const PluginReconcileReport report = plugin.driver->reconcile();
    CHECK(report.orphans_detached.size() == 1);
    CHECK(report.groups_left == std::vector<std::string>{"podA"});
    CHECK(plugin.rig.manager->hostlo_groups().empty());
    CHECK(plugin.rig.manager->nics("vm2").empty());
}

TEST_CASE("driver: Hostlo - a NIC whose detach failed makes the shim refuse network rm's leave - the reconcile detaches it, then leaves") {
    Plugin plugin("vm2", allow_pods);
    hostlo_endpoint(plugin);
    plugin.rig.plan.fail({1});  // the detach's first step on the host fails (ovs-vswitchd killed): the NIC stays, detaching
    plugin.error("/NetworkDriver.DeleteEndpoint", {{"NetworkID", "hl"}, {"EndpointID", "ep1"}}, 500);
    plugin.ok("/IpamDriver.ReleasePool", {{"PoolID", "hostlo:podA"}});  // Docker 28's order: the leave waits for DeleteNetwork
    plugin.ok("/NetworkDriver.DeleteNetwork", {{"NetworkID", "hl"}});    // the shim refuses the leave there: the NIC is still on the group
    CHECK(plugin.rig.manager->hostlo_groups().size() == 1);
    CHECK(plugin.driver->state().groups_to_leave == std::set<std::string>{"podA"});
    CHECK(plugin.driver->reconcile_pending());
    const PluginReconcileReport report = plugin.driver->reconcile();
    CHECK(report.orphans_detached.size() == 1);
    CHECK(report.groups_left == std::vector<std::string>{"podA"});
    CHECK(plugin.rig.manager->hostlo_groups().empty());
    CHECK(plugin.rig.manager->nics("vm2").empty());
}
