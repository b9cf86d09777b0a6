// The admin API's routing, bodies and error mapping, over NicManager with fakes.

#include "brfusion/shim/admin_api.hpp"

#include "fakes.hpp"

using namespace brfusion;
using namespace brfusion::shim;
using namespace brfusion::shim::test;
using nlohmann::json;

namespace {
struct Admin {
    Rig rig{[](ShimConfig& config) {
        config.hostlo.subnets = {*Ipv4Prefix::parse("192.0.2.128/25"), 28};
        for (auto& vm : config.vms) vm.hostlo_groups = {"*"};
    }};
    std::vector<std::string> served, stopped;  // what the daemon was told to do with channels
    bool refuse_channel = false;
    AdminContext context{*rig.manager, [] { return std::vector<Check>{{"ovs", true, "fine"}}; },
                         [this](const VmConfig& vm) {
                             if (refuse_channel) throw std::runtime_error("cannot listen on " + vm.channel);
                             served.push_back(vm.name);
                         },
                         [this](const std::string& vm) { stopped.push_back(vm); }};
    AdminResponse operator()(const std::string& method, const std::string& target, const json& body = nullptr) {
        return handle_admin_request(context, method, target, body.is_null() ? "" : body.dump());
    }
};
}  // namespace

TEST_CASE("admin: list and show VMs - networks - NICs - doctor") {
    Admin admin;
    const AttachedNic nic = admin.rig.manager->attach("vm1", net("lab"));
    const auto vms = admin("GET", "/v1/vms");
    CHECK(vms.status == 200);
    REQUIRE(vms.body.size() == 2);
    CHECK(vms.body[0]["name"] == "vm1");
    CHECK(vms.body[0]["nics"] == 1);
    CHECK(vms.body[0]["origin"] == "config");
    const auto vm = admin("GET", "/v1/vms/vm1");
    CHECK(vm.body["nics"][0]["endpoint"] == nic.endpoint);
    CHECK(vm.body["nics"][0]["port"] == "bf" + nic.endpoint);
    CHECK(admin("GET", "/v1/networks").body[0]["leases"][0]["ip"] == nic.ip.str());
    CHECK(admin("GET", "/v1/networks/lab2").body["gateway_port"] == "bfgw200");
    CHECK(admin("GET", "/v1/nics?vm=vm2").body.empty());
    CHECK(admin("GET", "/v1/nics").body.size() == 1);
    CHECK(admin("GET", "/v1/doctor").body == json({{"healthy", true}, {"checks", {{{"name", "ovs"}, {"ok", true}, {"detail", "fine"}}}}}));
}

TEST_CASE("admin: add and remove a network and a VM - the daemon serves and stops its channel") {
    Admin admin;
    const auto network = admin("POST", "/v1/networks", {{"name", "extra"}, {"subnet", "192.0.2.0/28"}, {"tag", 300}});
    CHECK(network.status == 201);
    CHECK(network.body["origin"] == "api");
    CHECK(network.body["gateway"] == "192.0.2.1");
    const auto vm = admin("POST", "/v1/vms", {{"name", "vm3"}, {"netns", "ns3"}, {"networks", {"extra"}}});
    CHECK(vm.status == 201);
    CHECK(admin.served == std::vector<std::string>{"vm3"});
    CHECK(admin("POST", "/v1/vms", {{"name", "vm3"}, {"netns", "ns3"}}).status == 409);

    CHECK(admin("DELETE", "/v1/networks/extra").status == 409);  // vm3 may use it
    CHECK(admin("DELETE", "/v1/vms/vm3").body == json({{"removed", "vm3"}}));
    CHECK(admin.stopped == std::vector<std::string>{"vm3"});
    CHECK(admin("DELETE", "/v1/networks/extra").status == 200);
    CHECK(admin("GET", "/v1/networks/extra").status == 404);
    CHECK(admin("DELETE", "/v1/vms/vm1").status == 403);  // from the config file
}

TEST_CASE("admin: a VM whose channel cannot be served is not kept") {
    Admin admin;
    admin.refuse_channel = true;
    const auto vm = admin("POST", "/v1/vms", {{"name", "vm3"}, {"netns", "ns3"}});
    CHECK(vm.status == 502);
    CHECK_THAT(vm.body["error"].get<std::string>(), Catch::Contains("cannot serve VM vm3's channel: cannot listen on /run/brfusion/vm-vm3.sock"));
    CHECK_FALSE(admin.rig.manager->config().vm("vm3"));
}

TEST_CASE("admin: bad requests name the problem") {
    Admin admin;
    CHECK(admin("GET", "/v1/bogus").status == 404);
    const auto wrong_method = admin("PUT", "/v1/vms");
    CHECK(wrong_method.status == 405);
    CHECK(wrong_method.body["error"] == "PUT /v1/vms is not supported; use GET, POST");
    const auto not_json = handle_admin_request(admin.context, "POST", "/v1/networks", "{oops");
    CHECK(not_json.status == 400);
    CHECK_THAT(not_json.body["error"].get<std::string>(), Catch::Contains("takes a JSON object"));
    const auto bad_field = admin("POST", "/v1/networks", {{"name", "x"}, {"subnet", "192.0.2.0/24"}});
    CHECK(bad_field.status == 400);
    CHECK(bad_field.body["error"] == "network.tag: is required");
    CHECK(admin("GET", "/v1/vms/nope").body["error"] == "VM nope is not configured on this host");
}

TEST_CASE("admin: Hostlo groups - list and show with members and their NICs - an unknown group is 404") {
    Admin admin;
    CHECK(admin("GET", "/v1/hostlo").body == json::array());
    admin.rig.manager->join_hostlo("vm1", "podA", std::nullopt);
    admin.rig.manager->join_hostlo("vm2", "podA", std::nullopt);
    const AttachedNic nic = admin.rig.manager->attach("vm1", NicManager::hostlo_network("podA"));
    const auto groups = admin("GET", "/v1/hostlo");
    REQUIRE(groups.body.size() == 1);
    CHECK(groups.body[0]["name"] == "podA");
    CHECK(groups.body[0]["subnet"] == "192.0.2.128/28");
    CHECK(groups.body[0]["network"] == "hostlo:podA");
    CHECK(groups.body[0]["segment"] == "seg-0");  // its slot's
    const auto group = admin("GET", "/v1/hostlo/podA").body;
    REQUIRE(group["members"].size() == 2);
    CHECK(group["members"][0]["vm"] == "vm1");
    CHECK(group["members"][0]["nic"]["endpoint"] == nic.endpoint);
    CHECK(group["members"][0]["nic"]["ip"] == nic.ip.str());
    CHECK(group["members"][1]["vm"] == "vm2");
    CHECK(group["members"][1]["nic"].is_null());  // a member whose container has not started yet
    const auto unknown = admin("GET", "/v1/hostlo/podB");
    CHECK(unknown.status == 404);
    CHECK(unknown.body["error"] == "Hostlo group podB does not exist (its first member creates it)");
}
