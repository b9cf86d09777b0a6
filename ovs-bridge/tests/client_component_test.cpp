// OvsClient against a real ovsdb-server + ovs-vswitchd (userspace datapath) in a private netns.
// ovs-vsctl is the oracle: what our client creates, ovs-vsctl sees, and the other way round.

#include "brfusion/ovs/client.hpp"
#include "brfusion/ovs/port_batcher.hpp"
#include "brfusion/ovs/port_rules.hpp"
#include "brfusion/testing/command.hpp"
#include "brfusion/testing/ovs_sandbox.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <mutex>
#include <thread>

using namespace brfusion::ovs;
using brfusion::testing::OvsSandbox;
using brfusion::testing::trim_end;
using namespace std::chrono_literals;

namespace {

ClientOptions options_for(const OvsSandbox& sandbox, std::chrono::milliseconds timeout = 5000ms) {
    ClientOptions options;
    options.socket_path = sandbox.db_socket();
    options.timeout = timeout;
    return options;
}

OvsError error_of(const std::function<void()>& action) {
    try {
        action();
    } catch (const OvsError& e) {
        return e;
    }
    FAIL("expected an OvsError");
    throw std::logic_error("unreachable");
}

const StringMap kVm1Ids = {{"brfusion-vm", "vm1"}, {"brfusion-network", "web"}, {"brfusion-endpoint", "ep1"}};

}  // namespace

TEST_CASE("what the client creates - ovs-vsctl sees - with our external_ids") {
    OvsSandbox sandbox;
    OvsClient client(options_for(sandbox));
    client.ensure_bridge({"br-int", "netdev", {{"brfusion-bridge", "integration"}}});
    const InterfaceRow iface = client.ensure_port({"br-int", "bft-p1", PortType::Internal, 10, kVm1Ids, ""});

    CHECK(iface.ofport.value_or(-1) > 0);
    CHECK_FALSE(iface.error);
    CHECK(trim_end(sandbox.vsctl("get Bridge br-int datapath_type")) == "netdev");
    CHECK(trim_end(sandbox.vsctl("list-ports br-int")) == "bft-p1");
    CHECK(trim_end(sandbox.vsctl("get Port bft-p1 tag")) == "10");
    CHECK(trim_end(sandbox.vsctl("get Interface bft-p1 ofport")) == std::to_string(*iface.ofport));
    CHECK(trim_end(sandbox.vsctl("--bare --columns=name find Interface external_ids:brfusion-vm=vm1")) == "bft-p1");
    CHECK(trim_end(sandbox.vsctl("--bare --columns=name find Port external_ids:brfusion-endpoint=ep1")) == "bft-p1");
    // ovs-vswitchd really made the device in the sandbox's namespace.
    CHECK_THAT(sandbox.in_netns("ip link show bft-p1"), Catch::Contains("bft-p1"));

    // A tap port: ovs-vswitchd creates the TAP device itself.
    const InterfaceRow tap = client.ensure_port({"br-int", "bft-tap1", PortType::Tap, 11, {{"brfusion-vm", "vm2"}}, ""});
    CHECK(tap.ofport.value_or(-1) > 0);
    CHECK(trim_end(sandbox.vsctl("get Interface bft-tap1 type")) == "tap");
    CHECK_THAT(sandbox.in_netns("ip -d link show bft-tap1"), Catch::Contains("tun type tap"));

    client.remove_port("bft-p1");
    client.remove_port("bft-tap1");
    CHECK(trim_end(sandbox.vsctl("list-ports br-int")).empty());
    CHECK(trim_end(sandbox.vsctl("--bare --columns=name find Interface external_ids:brfusion-vm=vm1")).empty());
    client.remove_bridge("br-int");
    CHECK(trim_end(sandbox.vsctl("list-br")).empty());
}

TEST_CASE("what ovs-vsctl changes - the replica sees") {
    OvsSandbox sandbox;
    OvsClient client(options_for(sandbox));
    client.wait_ready();
    sandbox.vsctl("add-br br0 -- set Bridge br0 datapath_type=netdev -- add-port br0 p9 tag=7 -- set Interface p9 type=internal "
                  "external_ids:brfusion-vm=vm3");
    REQUIRE(client.wait_until([](const Replica& r) { return r.port("p9") && r.interface("p9"); }, 5s));
    CHECK(client.port("p9")->bridge == "br0");
    CHECK(client.port("p9")->port.tag == 7);
    CHECK(client.find_interfaces({{"brfusion-vm", "vm3"}}).size() == 1);

    sandbox.vsctl("set Port p9 tag=8 external_ids:brfusion-vm=vm4");
    REQUIRE(client.wait_until([](const Replica& r) { return r.port("p9")->tag == 8; }, 5s));
    CHECK(client.find_ports({{"brfusion-vm", "vm4"}}).size() == 1);

    sandbox.vsctl("del-port p9");
    CHECK(client.wait_until([](const Replica& r) { return !r.port("p9"); }, 5s));
}

TEST_CASE("operations are idempotent - list_owned and find_* answer from external_ids") {
    OvsSandbox sandbox;
    OvsClient client(options_for(sandbox));
    client.ensure_bridge({"br-int", "netdev", {}});
    client.ensure_bridge({"br-int", "netdev", {}});
    const PortSpec spec{"br-int", "bft-p1", PortType::Internal, 3, kVm1Ids, ""};
    const auto first = client.ensure_port(spec);
    const auto second = client.ensure_port(spec);
    CHECK(first.uuid == second.uuid);
    client.ensure_port({"br-int", "other", PortType::Internal, {}, {}, ""});

    const OwnedObjects owned = client.list_owned();
    REQUIRE(owned.ports.size() == 1);
    CHECK(owned.ports[0].port.name == "bft-p1");
    CHECK(owned.ports[0].bridge == "br-int");
    CHECK(owned.interfaces.size() == 1);
    CHECK(client.find_ports({{"brfusion-vm", "vm1"}, {"brfusion-endpoint", "ep1"}}).size() == 1);
    CHECK(client.find_ports({{"brfusion-vm", "vm2"}}).empty());

    client.set_external_ids(Table::Interface, "bft-p1", {{"brfusion-spare", "true"}});
    CHECK(trim_end(sandbox.vsctl("get Interface bft-p1 external_ids:brfusion-spare")) == "\"true\"");
    client.clear_external_ids(Table::Interface, "bft-p1", {"brfusion-spare"});
    CHECK(sandbox.vsctl("get Interface bft-p1 external_ids").find("brfusion-spare") == std::string::npos);

    client.remove_port("bft-p1");
    client.remove_port("bft-p1");
    client.remove_bridge("br-int");
    client.remove_bridge("br-int");
    CHECK(trim_end(sandbox.vsctl("list-br")).empty());
}

TEST_CASE("patch ports join two bridges") {
    OvsSandbox sandbox;
    OvsClient client(options_for(sandbox));
    client.ensure_bridge({"br-a", "netdev", {}});
    client.ensure_bridge({"br-b", "netdev", {}});
    const PatchPairSpec pair{"br-a", "a-to-b", "br-b", "b-to-a", {{"brfusion-patch", "ab"}}};
    client.ensure_patch_pair(pair);
    client.ensure_patch_pair(pair);
    CHECK(trim_end(sandbox.vsctl("get Interface a-to-b options:peer")) == "b-to-a");
    CHECK(trim_end(sandbox.vsctl("get Interface b-to-a type")) == "patch");
    CHECK(trim_end(sandbox.vsctl("get Interface b-to-a error")) == "[]");
    CHECK(std::stoi(sandbox.vsctl("get Interface b-to-a ofport")) > 0);
    CHECK(client.find_ports({{"brfusion-patch", "ab"}}).size() == 2);
}

TEST_CASE("failures give clear errors: missing bridge - conflicting port - device ovs-vswitchd cannot open") {
    OvsSandbox sandbox;
    OvsClient client(options_for(sandbox));
    client.ensure_bridge({"br-int", "netdev", {}});
    client.ensure_port({"br-int", "bft-p1", PortType::Internal, 10, {}, ""});

    const OvsError missing = error_of([&] { client.ensure_port({"no-such-br", "bft-p2", PortType::Internal, {}, {}, ""}); });
    CHECK(missing.kind() == ErrorKind::NotFound);
    CHECK_THAT(missing.what(), Catch::Contains("bridge no-such-br does not exist"));

    const OvsError conflict = error_of([&] { client.ensure_port({"br-int", "bft-p1", PortType::Internal, 20, {}, ""}); });
    CHECK(conflict.kind() == ErrorKind::Conflict);
    CHECK_THAT(conflict.what(), Catch::Contains("tag 10 (wanted 20)"));
    CHECK(trim_end(sandbox.vsctl("get Port bft-p1 tag")) == "10");  // untouched

    // A system port for a device that does not exist: ovs-vswitchd reports Interface.error; the
    // client reports it and leaves nothing behind.
    const OvsError device = error_of([&] { client.ensure_port({"br-int", "no-such-dev", PortType::System, {}, {}, ""}); });
    CHECK(device.kind() == ErrorKind::Vswitchd);
    CHECK_THAT(device.what(), Catch::Contains("could not open network device no-such-dev"));
    CHECK(trim_end(sandbox.vsctl("list-ports br-int")) == "bft-p1");
}

TEST_CASE("several ports in one transaction: each gets its OpenFlow number - one that fails takes only the ports this call made") {
    OvsSandbox sandbox;
    OvsClient client(options_for(sandbox));
    client.ensure_bridge({"br-int", "netdev", {}});
    client.ensure_port({"br-int", "bft-p1", PortType::Internal, 10, {}, ""});

    client.ensure_ports({{"br-int", "bft-p1", PortType::Internal, 10, {}, ""},  // there already: kept as it is
                         {"br-int", "bft-p2", PortType::Internal, 20, {}, ""},
                         {"br-int", "bft-p3", PortType::Internal, 20, {}, ""}});
    for (const char* name : {"bft-p1", "bft-p2", "bft-p3"}) {
        INFO(name);
        CHECK(client.interface(name)->ofport.value_or(-1) > 0);
    }
    const OvsError device = error_of([&] {
        client.ensure_ports({{"br-int", "bft-p3", PortType::Internal, 20, {}, ""},
                             {"br-int", "bft-p4", PortType::Internal, 20, {}, ""},
                             {"br-int", "no-such-dev", PortType::System, {}, {}, ""}});
    });
    CHECK(device.kind() == ErrorKind::Vswitchd);
    CHECK_THAT(device.what(), Catch::Contains("could not open network device no-such-dev"));
    CHECK(trim_end(sandbox.vsctl("list-ports br-int")) == "bft-p1\nbft-p2\nbft-p3");  // bft-p4 went with the failure; bft-p3 was there before
}

TEST_CASE("ovsdb-server restarted mid-session: the client reconnects and resyncs") {
    OvsSandbox sandbox;
    // After ovsdb-server comes back, ovs-vswitchd reconnects on its own backoff (seconds), so the
    // operations after the restart get a generous budget; the "while down" check uses a second,
    // impatient client.
    OvsClient client(options_for(sandbox, 15000ms));
    OvsClient impatient(options_for(sandbox, 1000ms));
    client.ensure_bridge({"br-int", "netdev", {}});
    client.ensure_port({"br-int", "before", PortType::Internal, {}, {}, ""});
    impatient.wait_ready();

    sandbox.kill_db();
    const OvsError down = error_of([&] { impatient.ensure_port({"br-int", "during", PortType::Internal, {}, {}, ""}); });
    CHECK(down.kind() == ErrorKind::Unreachable);
    CHECK_THAT(down.what(), Catch::Contains("cannot reach ovsdb-server at " + sandbox.db_socket()));

    sandbox.start_db();
    // A change made by someone else while we were away must show up after the resync.
    sandbox.vsctl("--no-wait del-port before");
    REQUIRE(client.wait_until([](const Replica& r) { return !r.port("before"); }, 10s));
    CHECK(client.ready());
    client.ensure_port({"br-int", "after", PortType::Internal, {}, {}, ""});
    CHECK(trim_end(sandbox.vsctl("list-ports br-int")) == "after");
}

TEST_CASE("ovs-vswitchd down: a timeout naming the cause - then recovery once it is back") {
    OvsSandbox sandbox;
    OvsClient client(options_for(sandbox, 1500ms));
    client.ensure_bridge({"br-int", "netdev", {}});
    sandbox.kill_vswitchd();

    const OvsError timeout = error_of([&] { client.ensure_port({"br-int", "bft-p1", PortType::Internal, {}, {}, ""}); });
    CHECK(timeout.kind() == ErrorKind::VswitchdTimeout);
    CHECK_THAT(timeout.what(), Catch::Contains("is ovs-vswitchd running?"));

    sandbox.start_vswitchd();
    // The port is in the database; ensuring it again finds it and waits for its ofport.
    const InterfaceRow iface = client.ensure_port({"br-int", "bft-p1", PortType::Internal, {}, {}, ""});
    CHECK(iface.ofport.value_or(-1) > 0);
}

TEST_CASE("wait_for_vswitchd=false returns once committed - ovs-vswitchd applies it later") {
    OvsSandbox sandbox;
    ClientOptions options = options_for(sandbox);
    options.wait_for_vswitchd = false;
    OvsClient client(options);
    client.ensure_bridge({"br-int", "netdev", {}});
    sandbox.kill_vswitchd();
    // With ovs-vswitchd down, a waiting client would time out; this one returns the committed port.
    const InterfaceRow iface = client.ensure_port({"br-int", "bft-p1", PortType::Internal, {}, kVm1Ids, ""});
    CHECK(iface.name == "bft-p1");
    CHECK_FALSE(iface.ofport);
    sandbox.start_vswitchd();
    CHECK(client.wait_until([](const Replica& r) { return r.interface("bft-p1")->ofport.value_or(-1) > 0; }, 10s));
}

TEST_CASE("concurrent operations from many threads all land") {
    OvsSandbox sandbox;
    OvsClient client(options_for(sandbox, 20000ms));
    client.ensure_bridge({"br-int", "netdev", {}});
    std::vector<std::thread> threads;
    std::mutex errors_mutex;
    std::vector<std::string> errors;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&, t] {
            for (int i = 0; i < 10; ++i) {
                try {
                    client.ensure_port({"br-int", "c" + std::to_string(t) + "-" + std::to_string(i), PortType::Internal, t + 1,
                                        {{"brfusion-vm", "vm" + std::to_string(t)}}, ""});
                } catch (const std::exception& e) {
                    std::lock_guard lock(errors_mutex);
                    errors.emplace_back(e.what());
                }
            }
        });
    for (auto& thread : threads) thread.join();
    CHECK(errors == std::vector<std::string>{});
    CHECK(client.find_ports({{"brfusion-vm", "vm2"}}).size() == 10);
    CHECK(trim_end(sandbox.vsctl("--bare --columns=name find Port tag=3")).size() > 0);
    std::string ports = sandbox.vsctl("list-ports br-int");
    CHECK(std::count(ports.begin(), ports.end(), '\n') == 40);
}

TEST_CASE("port rules name a port by its OpenFlow number - a port on another bridge, or unknown, changes nothing") {
    OvsSandbox sandbox;
    OvsClient client(options_for(sandbox));
    client.ensure_bridge({"br-int", "netdev", {}});
    client.ensure_bridge({"br-other", "netdev", {}});
    const InterfaceRow p1 = client.ensure_port({"br-int", "bft-p1", PortType::Internal, 10, kVm1Ids, ""});
    client.ensure_port({"br-other", "bft-p2", PortType::Internal, 10, {}, ""});
    PortRules rules(client, sandbox.db_socket(), "br-int");
    const brfusion::PortSecurity allowed{"02:00:00:00:00:01", brfusion::Ipv4::parse("198.51.100.7")};
    const auto flows = [&] { return sandbox.in_netns("ovs-ofctl --no-names dump-flows unix:" + sandbox.dir() + "/br-int.mgmt"); };

    rules.secure({{"bft-p1", allowed}});
    CHECK_THAT(flows(), Catch::Contains("in_port=" + std::to_string(*p1.ofport) + ",dl_src=02:00:00:00:00:01,nw_src=198.51.100.7"));
    CHECK(rules.secured({"bft-p1", "bft-p2"}) == std::set<std::string>{"bft-p1"});

    // bft-p2 has an OpenFlow number too, on br-other: on br-int it would name another port.
    const OvsError other = error_of([&] { rules.secure({{"bft-p1", brfusion::PortSecurity{"02:00:00:00:00:09", std::nullopt}}, {"bft-p2", allowed}}); });
    CHECK(other.kind() == ErrorKind::NotFound);
    CHECK_THAT(other.what(), Catch::Contains("port bft-p2 is not on bridge br-int but on br-other"));
    CHECK(error_of([&] { rules.secure({{"bft-nosuch", allowed}}); }).kind() == ErrorKind::NotFound);
    CHECK_THAT(flows(), Catch::Contains("dl_src=02:00:00:00:00:01"));  // bft-p1's rules as they were
    CHECK_THAT(flows(), !Catch::Contains("02:00:00:00:00:09"));

    rules.unsecure("bft-p1");
    CHECK(rules.secured({"bft-p1"}).empty());
}

TEST_CASE("port batcher: callers arriving while a transaction is in flight share the next one - a bad port fails only its caller") {
    OvsSandbox sandbox;
    OvsClient client(options_for(sandbox, 20000ms));
    client.ensure_bridge({"br-int", "netdev", {}});
    PortBatcher batcher(client);
    const auto next_cfg = [&] { return std::stol(trim_end(sandbox.vsctl("get Open_vSwitch . next_cfg"))); };
    // The first caller's transaction waits for an ovs-vswitchd that is down; seven more arrive.
    sandbox.kill_vswitchd();
    const long before = next_cfg();
    std::thread first([&] { batcher.ensure_port({"br-int", "bft-b0", PortType::Internal, 30, {}, ""}); });
    REQUIRE(client.wait_until([](const Replica& r) { return r.interface("bft-b0").has_value(); }, 10s));
    std::vector<std::thread> rest;
    for (int i = 1; i < 8; ++i) rest.emplace_back([&, i] { batcher.ensure_port({"br-int", "bft-b" + std::to_string(i), PortType::Internal, 30, {}, ""}); });
    sandbox.start_vswitchd();
    first.join();
    for (auto& thread : rest) thread.join();
    for (int i = 0; i < 8; ++i) {
        INFO("bft-b" << i);
        CHECK(client.interface("bft-b" + std::to_string(i))->ofport.value_or(-1) > 0);
    }
    const long transactions = next_cfg() - before;
    INFO(transactions << " transactions for 8 ports");
    CHECK(transactions < 8);

    // A port ovs-vswitchd cannot open, among others: only its caller hears of it.
    sandbox.kill_vswitchd();
    std::thread opener([&] { batcher.ensure_port({"br-int", "bft-c0", PortType::Internal, 30, {}, ""}); });
    REQUIRE(client.wait_until([](const Replica& r) { return r.interface("bft-c0").has_value(); }, 10s));
    std::mutex mutex;
    std::map<std::string, std::string> failed;  // port -> what its caller heard
    std::vector<std::thread> threads;
    for (const std::string name : {"bft-c1", "bad-dev", "bft-c2"})
        threads.emplace_back([&, name] {
            try {
                batcher.ensure_port({"br-int", name, name == "bad-dev" ? PortType::System : PortType::Internal, 30, {}, ""});
            } catch (const OvsError& e) {
                std::lock_guard lock(mutex);
                failed[name] = e.what();
            }
        });
    sandbox.start_vswitchd();
    opener.join();
    for (auto& thread : threads) thread.join();
    REQUIRE(failed.size() == 1);
    CHECK_THAT(failed.at("bad-dev"), Catch::Contains("could not open network device bad-dev"));
    for (const char* name : {"bft-c0", "bft-c1", "bft-c2"}) {
        INFO(name);
        CHECK(client.interface(name)->ofport.value_or(-1) > 0);
    }
    CHECK_FALSE(client.port("bad-dev"));
}
