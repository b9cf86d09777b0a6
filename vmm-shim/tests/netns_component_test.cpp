// The shim's core with the netns backend against a real OVS (private sandbox; its netns is the
// "host"), real nftables and real network namespaces as VMs and as the "outside" beyond the host's
// uplink: NICs appear with the reported MAC, traffic flows (ping and >= 10 MB of TCP), host NAT and
// published ports work, spoofed traffic is dropped, detach and crashes leave nothing behind.

#include "brfusion/ovs/client.hpp"
#include "brfusion/shim/firewall.hpp"
#include "brfusion/shim/nic_manager.hpp"
#include "brfusion/shim/upkeep.hpp"
#include "brfusion/testing/command.hpp"
#include "brfusion/testing/ovs_sandbox.hpp"
#include "shim_core.hpp"

#include <catch2/catch.hpp>

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <future>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

using namespace brfusion;
using namespace brfusion::shim;
using brfusion::shim::test::net;
using testing::Netns;
using testing::OvsSandbox;

namespace {

// A host (the OVS sandbox) with an uplink to an outside namespace, two VMs (namespaces) and a
// shim core over them, restartable. Outside has no route to the host networks: only NAT gets
// container traffic an answer.
struct Lab : test::ShimCore {
    OvsSandbox host;
    Netns vm1, vm2, outside;
    static constexpr const char* kHostAddress = "192.0.2.1";
    static constexpr const char* kOutsideAddress = "192.0.2.2";
    std::string state_dir = "/tmp/brfusion-shim-test-" + std::to_string(::getpid());

    Lab() {
        std::filesystem::remove_all(state_dir);
        testing::run_checked("ip -n " + host.netns() + " link add up0 type veth peer name out0 netns " + outside.name() +
                             " && ip -n " + host.netns() + " addr add " + kHostAddress + "/24 dev up0 && ip -n " + host.netns() +
                             " link set up0 up && ip -n " + outside.name() + " addr add " + kOutsideAddress + "/24 dev out0 && ip -n " +
                             outside.name() + " link set out0 up");
        config = parse_config({{"ovsdb", host.db_socket()},
                               {"host_netns", host.netns()},
                               {"uplink", "up0"},
                               {"state_dir", state_dir},
                               {"networks", {{{"name", "lab"}, {"subnet", "198.51.100.0/24"}, {"tag", 100}}}},
                               {"vms", {{{"name", "vm1"}, {"netns", vm1.name()}, {"networks", {"lab"}}},
                                        {{"name", "vm2"}, {"netns", vm2.name()}, {"networks", {"lab"}}}}}});
    }
    ~Lab() {
        stop_shim();
        std::filesystem::remove_all(state_dir);
    }
    // What the plugin will do in the guest: address the NIC and bring it up.
    void configure_guest(const Netns& vm, const AttachedNic& nic) const {
        testing::run_checked("ip -n " + vm.name() + " addr add " + nic.ip.str() + "/" + std::to_string(nic.prefix_length) + " dev " + nic.guest_if +
                             " && ip -n " + vm.name() + " link set " + nic.guest_if + " up");
    }
    // Container NIC leftovers on the host: OVS ports labelled with an endpoint, host veths.
    std::string leftovers() const {
        return host.vsctl("--bare --columns=name find Port external_ids:brfusion-endpoint!=none") +
               testing::run("ip -n " + host.netns() + " -o link show | grep -o ' bf[0-9a-f]*[:@]' || true").output;
    }
    // brfusion's port security flows (cookie 0xbf05...).
    std::string security_flows() const {
        return testing::run("ovs-ofctl --names --no-stats dump-flows unix:" + host.dir() + "/br-int.mgmt cookie=0xbf05000000000000/0xffff000000000000 | grep cookie= || true")
            .output;
    }
    std::string nat_table() const { return testing::run("ip netns exec " + host.netns() + " nft list table ip brfusion").output; }
};

// >= 10 MB of TCP from `client` to `server_ip` (an iperf3 server in `server`'s netns).
void transfer_10mb(const std::string& server_netns, const std::string& client_netns, const std::string& server_ip) {
    testing::run_checked("ip netns exec " + server_netns + " iperf3 -s -1 -D -B " + server_ip);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    const auto result = testing::run("ip netns exec " + client_netns + " iperf3 -c " + server_ip + " -n 10M");
    INFO(result.output);
    REQUIRE(result.exit_code == 0);
    CHECK_THAT(result.output, Catch::Contains("receiver"));
}

}  // namespace

TEST_CASE("netns: attach - the VM sees the NIC - ping and TCP to the gateway and across VMs - detach leaves nothing") {
    Lab lab;
    lab.start_shim();
    const AttachedNic a = lab.shim->attach("vm1", net("lab"));
    const AttachedNic b = lab.shim->attach("vm2", net("lab"));

    // The VM has a NIC with the reported MAC, down, and OVS knows whose it is.
    const auto link = lab.vm1.exec("ip -o link show " + a.guest_if);
    REQUIRE(link.exit_code == 0);
    CHECK_THAT(link.output, Catch::Contains("link/ether " + a.mac));
    CHECK_THAT(link.output, Catch::Contains("state DOWN"));
    CHECK_THAT(lab.host.vsctl("--bare --columns=name find Interface external_ids:brfusion-vm=vm1"), Catch::Contains("bf" + a.endpoint));
    CHECK_THAT(lab.host.vsctl("get Port bf" + a.endpoint + " tag"), Catch::Contains("100"));
    CHECK_THAT(lab.host.vsctl("get Interface bf" + a.endpoint + " external_ids:attached-mac"), Catch::Contains(a.mac));

    // Without userspace TSO the guest sends complete checksums, and says so to the plugin too.
    CHECK_FALSE(a.checksum_offload);
    CHECK_THAT(lab.vm1.exec("ethtool -k " + a.guest_if).output, Catch::Contains("tx-checksumming: off"));

    lab.configure_guest(lab.vm1, a);
    lab.configure_guest(lab.vm2, b);
    CHECK(lab.vm1.exec("ping -c 2 -W 2 " + a.gateway.str()).exit_code == 0);
    CHECK(lab.vm1.exec("ping -c 2 -W 2 " + b.ip.str()).exit_code == 0);
    transfer_10mb(lab.vm2.name(), lab.vm1.name(), b.ip.str());
    transfer_10mb(lab.host.netns(), lab.vm1.name(), a.gateway.str());

    lab.shim->detach("vm1", a.endpoint);
    lab.shim->detach("vm2", b.endpoint);
    CHECK(lab.leftovers().find("bf") == std::string::npos);
    CHECK(lab.security_flows().empty());
    CHECK(lab.vm1.exec("ip -o link show " + a.guest_if).exit_code != 0);
    CHECK(Journal(lab.state_dir).load().ipam.leases("lab").empty());
}

TEST_CASE("netns: attaches started together in one VM all work - each port on the switch with its own rules - traffic flows") {
    Lab lab;
    lab.start_shim();
    std::vector<std::future<AttachedNic>> started;
    for (int i = 0; i < 6; ++i) started.push_back(std::async(std::launch::async, [&] { return lab.shim->attach("vm1", net("lab")); }));
    std::vector<AttachedNic> nics;
    for (auto& nic : started) nics.push_back(nic.get());
    const std::string flows = lab.security_flows();
    for (const auto& nic : nics) {
        INFO(nic.endpoint);
        CHECK_THAT(lab.host.vsctl("get Port bf" + nic.endpoint + " tag"), Catch::Contains("100"));
        CHECK_THAT(flows, Catch::Contains("nw_src=" + nic.ip.str()));  // its own address, on its own port
        CHECK(lab.vm1.exec("ip -o link show " + nic.guest_if).exit_code == 0);
    }
    const AttachedNic peer = lab.shim->attach("vm2", net("lab"));
    lab.configure_guest(lab.vm2, peer);
    lab.configure_guest(lab.vm1, nics.back());
    CHECK(lab.vm1.exec("ping -c 2 -W 2 " + peer.ip.str()).exit_code == 0);
    for (const auto& nic : nics) lab.shim->detach("vm1", nic.endpoint);
    lab.shim->detach("vm2", peer.endpoint);
    CHECK(lab.leftovers().find("bf") == std::string::npos);
    CHECK(lab.security_flows().empty());
}

TEST_CASE("netns: userspace TSO - refused until Open vSwitch takes the guests' offloads - then NICs keep them and carry TCP everywhere") {
    Lab lab;
    lab.config.userspace_tso = true;
    CHECK_THROWS_WITH(lab.start_shim(), Catch::Contains("run 'ovs-vsctl set Open_vSwitch . other_config:userspace-tso-enable=true' and restart ovs-vswitchd"));
    CHECK(lab.host.vsctl("list-br").empty());  // refused before it changed anything

    lab.host.enable_userspace_tso();
    lab.start_shim();
    const AttachedNic a = lab.shim->attach("vm1", net("lab"));
    const AttachedNic b = lab.shim->attach("vm2", net("lab"));
    CHECK(a.checksum_offload);  // the plugin leaves the guest's offloads on
    const std::string features = lab.vm1.exec("ethtool -k " + a.guest_if).output;
    CHECK_THAT(features, Catch::Contains("tx-checksumming: on"));
    CHECK_THAT(features, Catch::Contains("tcp-segmentation-offload: on"));

    // Partial checksums and 64-KB segments cross OVS to another VM, to the host and out through NAT.
    lab.configure_guest(lab.vm1, a);
    lab.configure_guest(lab.vm2, b);
    lab.vm1.exec("ip route add default via " + a.gateway.str());
    transfer_10mb(lab.vm2.name(), lab.vm1.name(), b.ip.str());
    transfer_10mb(lab.host.netns(), lab.vm1.name(), a.gateway.str());
    transfer_10mb(lab.outside.name(), lab.vm1.name(), Lab::kOutsideAddress);
    lab.shim->detach("vm1", a.endpoint);
    lab.shim->detach("vm2", b.endpoint);
    CHECK(lab.leftovers().find("bf") == std::string::npos);
}

TEST_CASE("netns: host NAT - outside sees the host's address - a published port is reachable - detach removes the rule") {
    Lab lab;
    lab.start_shim();
    const AttachedNic a = lab.shim->attach("vm1", net("lab"));
    lab.configure_guest(lab.vm1, a);
    lab.vm1.exec("ip route add default via " + a.gateway.str());

    // Out through NAT: the outside server sees the host's uplink address, not the container's.
    const std::string log = "/tmp/brfusion-nat-" + std::to_string(::getpid()) + ".log";
    testing::run_checked("ip netns exec " + lab.outside.name() + " iperf3 -s -1 -D --logfile " + log + " -B " + Lab::kOutsideAddress);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    const auto out = lab.vm1.exec(std::string("iperf3 -c ") + Lab::kOutsideAddress + " -n 10M");
    INFO(out.output);
    REQUIRE(out.exit_code == 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    CHECK_THAT(testing::run("cat " + log).output, Catch::Contains(std::string("Accepted connection from ") + Lab::kHostAddress));
    std::filesystem::remove(log);

    // In through a published port: outside reaches the container at the host's address.
    const std::string published = std::string("iperf3 -c ") + Lab::kHostAddress + " -p 8080 -n 10M";
    testing::run_checked("ip netns exec " + lab.vm1.name() + " iperf3 -s -1 -D -B " + a.ip.str() + " -p 5201");
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    CHECK(lab.outside.exec(published).exit_code != 0);  // not published yet
    const auto ports = lab.shim->publish("vm1", a.endpoint, {{"tcp", std::nullopt, 8080, 5201}});
    CHECK(ports == std::vector<PublishedPort>{{"tcp", std::nullopt, 8080, 5201}});
    CHECK_THAT(lab.nat_table(), Catch::Contains("dnat to " + a.ip.str() + ":5201"));
    const auto in = lab.outside.exec(published);
    INFO(in.output);
    CHECK(in.exit_code == 0);

    // A restart keeps the rule (it is rewritten from the journal); detach removes it.
    lab.start_shim();
    CHECK_THAT(lab.nat_table(), Catch::Contains("dnat to " + a.ip.str() + ":5201"));
    lab.shim->detach("vm1", a.endpoint);
    CHECK_THAT(lab.nat_table(), !Catch::Contains("dnat to"));
    CHECK_THAT(lab.nat_table(), Catch::Contains("masquerade"));
    CHECK(lab.leftovers().find("bf") == std::string::npos);
    CHECK(lab.security_flows().empty());
}

TEST_CASE("netns: port security - a container port's spoofed source IP or MAC is dropped") {
    Lab lab;
    lab.start_shim();
    const AttachedNic a = lab.shim->attach("vm1", net("lab"));
    lab.configure_guest(lab.vm1, a);
    CHECK_THAT(lab.security_flows(), Catch::Contains("in_port=bf" + a.endpoint));
    const std::string gateway = a.gateway.str();
    REQUIRE(lab.vm1.exec("ping -c 2 -W 2 " + gateway).exit_code == 0);  // its own MAC and IP pass (and the gateway's MAC is learnt)

    // Another address on the same NIC: the ICMP leaves with that source and is dropped.
    lab.vm1.exec("ip addr add 198.51.100.77/24 dev " + a.guest_if);
    CHECK(lab.vm1.exec("ping -c 2 -W 1 -I 198.51.100.77 " + gateway).exit_code != 0);
    CHECK(lab.vm1.exec("ping -c 2 -W 2 -I " + a.ip.str() + " " + gateway).exit_code == 0);

    // Another MAC: nothing it sends passes.
    lab.vm1.exec("ip link set " + a.guest_if + " address 02:00:00:00:00:99");
    CHECK(lab.vm1.exec("ping -c 2 -W 1 -I " + a.ip.str() + " " + gateway).exit_code != 0);
    lab.shim->detach("vm1", a.endpoint);
    CHECK(lab.security_flows().empty());
}

TEST_CASE("netns: a NIC's host side is only a switch port - the host answers no ARP there and takes no traffic from it") {
    Lab lab;
    lab.start_shim();
    const AttachedNic a = lab.shim->attach("vm1", net("lab"));
    lab.configure_guest(lab.vm1, a);
    const std::string gateway = a.gateway.str(), host_if = "bf" + a.endpoint;
    const auto mac_of = [&](const std::string& link) {
        return testing::trim_end(testing::run_checked("ip netns exec " + lab.host.netns() + " cat /sys/class/net/" + link + "/address"));
    };

    // The guest learns the gateway's MAC from the gateway port (through OVS), never from its own
    // NIC's host side, on which the host's kernel would otherwise answer too (and often first).
    REQUIRE(lab.vm1.exec("ping -c 2 -W 2 " + gateway).exit_code == 0);
    const std::string learnt = lab.vm1.exec("ip neigh show " + gateway + " dev " + a.guest_if).output;
    CHECK_THAT(learnt, Catch::Contains(mac_of(NicManager::gateway_port(*lab.config.network("lab")))) && !Catch::Contains(mac_of(host_if)));

    // Sent straight to the host side's MAC, past OVS, nothing reaches the host.
    lab.vm1.exec("ip neigh replace " + gateway + " lladdr " + mac_of(host_if) + " dev " + a.guest_if + " nud permanent");
    CHECK(lab.vm1.exec("ping -c 2 -W 1 " + gateway).exit_code != 0);
    CHECK(testing::run_checked("ip -n " + lab.host.netns() + " -6 -o addr show dev " + host_if).empty());  // no IPv6 there either

    lab.shim->detach("vm1", a.endpoint);
    CHECK(lab.leftovers().find("bf") == std::string::npos);
}

TEST_CASE("netns: a shim restart keeps attached NICs working and repairs a deleted OVS port") {
    Lab lab;
    lab.start_shim();
    const AttachedNic a = lab.shim->attach("vm1", net("lab"));
    lab.configure_guest(lab.vm1, a);
    lab.host.vsctl("del-port bf" + a.endpoint);  // an admin's mistake, while the shim is down

    const ReconcileReport report = lab.start_shim();
    CHECK(report.repaired == std::vector<std::string>{a.endpoint});
    CHECK(lab.vm1.exec("ping -c 2 -W 2 " + a.gateway.str()).exit_code == 0);
    CHECK_THAT(lab.security_flows(), Catch::Contains("bf" + a.endpoint));  // rules re-made for the new port
    lab.shim->detach("vm1", a.endpoint);
    CHECK(lab.leftovers().find("bf") == std::string::npos);
}

TEST_CASE("netns: kill -9 of the shim in the middle of attaches leaks nothing after restart") {
    Lab lab;
    for (int round = 0; round < 4; ++round) {
        // The "shim" is a child process attaching in a loop; it is killed at some point mid-way.
        const pid_t child = ::fork();
        REQUIRE(child >= 0);
        if (child == 0) {
            try {
                lab.start_shim();
                for (;;) lab.shim->attach("vm1", net("lab"));
            } catch (...) {
            }
            ::_exit(0);
        }
        // Killed once it has journaled its first attach, and then some way into the next ones.
        REQUIRE(testing::wait_until([&] { return !Journal(lab.state_dir).load().nics.empty(); }, std::chrono::seconds(60)));
        std::this_thread::sleep_for(std::chrono::milliseconds(50 + 150 * round));
        ::kill(child, SIGKILL);
        ::waitpid(child, nullptr, 0);

        const ReconcileReport report = lab.start_shim();
        // The child really worked before it was killed.
        CHECK(lab.shim->nics().size() + report.undone.size() > 0);
        std::printf("kill -9 round %d: %zu attaches complete, %zu interrupted and undone\n", round, lab.shim->nics().size(),
                    report.undone.size());
        // Every NIC the journal kept is complete; nothing else exists.
        for (const auto& nic : lab.shim->nics()) {
            CHECK(nic.phase == NicPhase::Attached);
            lab.shim->detach("vm1", nic.endpoint);
        }
        CHECK(lab.leftovers().find("bf") == std::string::npos);
        CHECK(lab.security_flows().empty());
        CHECK(lab.vm1.exec("ip -o link show | grep -c bfg || true").output == "0\n");
        CHECK(Journal(lab.state_dir).load().ipam.leases("lab").empty());
        lab.stop_shim();
    }
}

TEST_CASE("netns: a warm-pool spare is in the VM and sends nothing - claimed, it carries traffic") {
    Lab lab;
    lab.config.vms[0].warm_pool = {{"lab", 1}};
    lab.start_shim();
    while (lab.shim->balance_warm_pool()) {
    }
    const auto nics = lab.shim->nics("vm1");
    REQUIRE(nics.size() == 1);
    const NicRecord spare = nics[0];
    REQUIRE(spare.spare);
    CHECK_THAT(lab.host.vsctl("--bare --columns=name find Interface external_ids:brfusion-spare=true"), Catch::Contains(spare.host_if));
    const std::string guest_if = "bfg" + spare.endpoint;
    CHECK_THAT(lab.vm1.exec("ip -o link show " + guest_if).output, Catch::Contains("link/ether " + spare.mac));

    // Whatever the guest does with a spare, its port drops it: not even ARP gets out.
    testing::run_checked("ip -n " + lab.vm1.name() + " addr add 198.51.100.200/24 dev " + guest_if + " && ip -n " + lab.vm1.name() + " link set " +
                         guest_if + " up");
    CHECK(lab.vm1.exec("ping -c 2 -W 1 198.51.100.1").exit_code != 0);
    testing::run_checked("ip -n " + lab.vm1.name() + " addr flush dev " + guest_if + " && ip -n " + lab.vm1.name() + " link set " + guest_if + " down");

    const AttachedNic nic = lab.shim->attach("vm1", net("lab"));
    CHECK(nic.endpoint == spare.endpoint);
    CHECK(nic.mac == spare.mac);
    CHECK(lab.host.vsctl("--bare --columns=name find Interface external_ids:brfusion-spare=true").find(spare.host_if) == std::string::npos);
    lab.configure_guest(lab.vm1, nic);
    CHECK(lab.vm1.exec("ping -c 2 -W 2 " + nic.gateway.str()).exit_code == 0);
    transfer_10mb(lab.host.netns(), lab.vm1.name(), nic.gateway.str());

    lab.shim->detach("vm1", nic.endpoint);
    lab.config.vms[0].warm_pool.clear();
    lab.start_shim();
    while (lab.shim->balance_warm_pool()) {
    }
    CHECK(lab.leftovers().empty());
    CHECK(lab.security_flows().empty());
}

namespace {

// Bytes a host device has received so far (its counters in the host netns).
long long rx_bytes(const OvsSandbox& host, const std::string& device) {
    return std::stoll(testing::run_checked("ip netns exec " + host.netns() + " cat /sys/class/net/" + device + "/statistics/rx_bytes"));
}

// UDP from `client_netns` to an iperf3 server at `server_ip` in `server_netns`: the share of
// datagrams lost (100 when nothing arrived).
double udp_loss_percent(const std::string& server_netns, const std::string& client_netns, const std::string& server_ip) {
    testing::run_checked("ip netns exec " + server_netns + " iperf3 -s -1 -D -B " + server_ip);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    const auto result = testing::run("ip netns exec " + client_netns + " iperf3 -u -b 20M -n 2M -J -c " + server_ip);
    INFO(result.output);
    if (result.exit_code != 0) return 100;
    const auto report = nlohmann::json::parse(result.output, nullptr, false);
    return report.is_discarded() ? 100 : report["end"]["sum"].value("lost_percent", 100.0);
}

}  // namespace

TEST_CASE("netns: Hostlo - pod A's members in two VMs exchange TCP and UDP on their own segment - pod B and the host networks see nothing") {
    Lab lab;
    Netns pod_b;  // a container of pod B in vm1, holding pod B's NIC
    lab.config.hostlo.subnets = {*Ipv4Prefix::parse("203.0.113.0/24"), 28};
    for (auto& vm : lab.config.vms) vm.hostlo_groups = {"pod*"};
    lab.start_shim();
    const NetworkRef pod_a = NicManager::hostlo_network("podA"), pod_b_network = NicManager::hostlo_network("podB");
    lab.shim->join_hostlo("vm1", "podA", std::nullopt);
    lab.shim->join_hostlo("vm2", "podA", std::nullopt);
    lab.shim->join_hostlo("vm1", "podB", std::nullopt);
    const AttachedNic a1 = lab.shim->attach("vm1", pod_a);
    const AttachedNic a2 = lab.shim->attach("vm2", pod_a);
    const AttachedNic b1 = lab.shim->attach("vm1", pod_b_network);
    const AttachedNic regular = lab.shim->attach("vm1", net("lab"));  // the pod's regular network, beside the group
    lab.configure_guest(lab.vm1, a1);
    lab.configure_guest(lab.vm2, a2);
    lab.configure_guest(lab.vm1, regular);
    testing::run_checked("ip -n " + lab.vm1.name() + " link set " + b1.guest_if + " netns " + pod_b.name());
    lab.configure_guest(pod_b, b1);

    // OVS: one bridge per group, labelled, holding exactly its members' ports.
    const std::string bridge_a = lab.host.vsctl("--bare --columns=name find Bridge external_ids:brfusion-hostlo-group=podA");
    REQUIRE_FALSE(bridge_a.empty());
    const std::string ports = lab.host.vsctl("list-ports " + bridge_a);  // sorted by name
    CHECK(ports == (a1.endpoint < a2.endpoint ? "bf" + a1.endpoint + "\nbf" + a2.endpoint : "bf" + a2.endpoint + "\nbf" + a1.endpoint) + "\n");
    CHECK(lab.host.vsctl("--bare --columns=name find Interface external_ids:brfusion-hostlo-group=podB") == "bf" + b1.endpoint + "\n");

    const auto uplink_before = rx_bytes(lab.host, "up0"), gateway_before = rx_bytes(lab.host, NicManager::gateway_port(*lab.config.network("lab")));
    CHECK(lab.vm1.exec("ping -c 2 -W 2 " + a2.ip.str()).exit_code == 0);
    transfer_10mb(lab.vm2.name(), lab.vm1.name(), a2.ip.str());
    CHECK(udp_loss_percent(lab.vm1.name(), lab.vm2.name(), a1.ip.str()) < 20);
    // 10 MB crossed the group; the uplink and the regular network's gateway saw none of it.
    CHECK(rx_bytes(lab.host, "up0") - uplink_before < 100'000);
    CHECK(rx_bytes(lab.host, NicManager::gateway_port(*lab.config.network("lab"))) - gateway_before < 100'000);
    // No gateway, no way out: the group's subnet is not routed anywhere.
    CHECK(lab.vm1.exec("ping -c 1 -W 1 " + a1.gateway.str()).exit_code != 0);
    // A member sends only from its own address and MAC on the segment.
    lab.vm1.exec("ip addr add 203.0.113.13/28 dev " + a1.guest_if);
    CHECK(lab.vm1.exec("ping -c 2 -W 1 -I 203.0.113.13 " + a2.ip.str()).exit_code != 0);
    CHECK(lab.vm1.exec("ping -c 2 -W 2 -I " + a1.ip.str() + " " + a2.ip.str()).exit_code == 0);
    lab.vm1.exec("ip addr del 203.0.113.13/28 dev " + a1.guest_if);

    // Pod B cannot reach pod A, not even with an address of pod A's subnet.
    CHECK(pod_b.exec("ping -c 2 -W 1 " + a2.ip.str()).exit_code != 0);
    testing::run_checked("ip -n " + pod_b.name() + " addr add 203.0.113.14/28 dev " + b1.guest_if);
    CHECK(pod_b.exec("ping -c 2 -W 1 " + a2.ip.str()).exit_code != 0);

    // A shim restart keeps groups, members and NICs working, and repairs nothing.
    const ReconcileReport report = lab.start_shim();
    CHECK(report.repaired.empty());
    CHECK(report.orphans.empty());
    CHECK(lab.shim->hostlo_groups().size() == 2);
    CHECK(lab.vm2.exec("ping -c 2 -W 2 " + a1.ip.str()).exit_code == 0);

    // The last member leaving removes the group's bridge; nothing of pod A is left in OVS.
    lab.shim->detach("vm1", a1.endpoint);
    lab.shim->leave_hostlo("vm1", "podA");
    CHECK(lab.host.vsctl("list-ports " + bridge_a) == "bf" + a2.endpoint + "\n");
    lab.shim->detach("vm2", a2.endpoint);
    lab.shim->leave_hostlo("vm2", "podA");
    CHECK(lab.host.vsctl("--bare --columns=name find Bridge external_ids:brfusion-hostlo-group=podA").empty());
    CHECK(lab.host.vsctl("--bare --columns=name find Interface 'external_ids:brfusion-network=\"" + pod_a.wire() + "\"'").empty());
    lab.shim->detach("vm1", b1.endpoint);
    lab.shim->leave_hostlo("vm1", "podB");
    lab.shim->detach("vm1", regular.endpoint);
    CHECK(lab.host.vsctl("--bare --columns=name find Bridge external_ids:brfusion-hostlo-group!=none").empty());
    CHECK(lab.leftovers().find("bf") == std::string::npos);
}

TEST_CASE("netns: ARP claiming another's address is dropped - port security comes back within a second of an ovs-vswitchd restart") {
    Lab lab;
    lab.start_shim();
    Upkeep upkeep(*lab.shim, [](const std::string& line) { std::printf("%s\n", line.c_str()); });
    const AttachedNic a = lab.shim->attach("vm1", net("lab")), b = lab.shim->attach("vm2", net("lab"));
    lab.configure_guest(lab.vm1, a);
    lab.configure_guest(lab.vm2, b);
    const std::string gateway = a.gateway.str();
    REQUIRE(lab.vm2.exec("ping -c 1 -W 2 " + gateway).exit_code == 0);  // vm2 knows the gateway's MAC
    const auto gateway_mac_in_vm2 = [&] { return lab.vm2.exec("ip neigh show " + gateway + " dev " + b.guest_if).output; };
    const std::string before = gateway_mac_in_vm2();
    REQUIRE_THAT(before, Catch::Contains("lladdr"));
    // vm1 claims the gateway's address (a hostile guest may put any address on its own NIC).
    const auto spoof = [&] {
        lab.vm1.exec("ip addr add " + gateway + "/32 dev " + a.guest_if + " 2>/dev/null; busybox arping -U -c 3 -w 3 -I " + a.guest_if + " " + gateway);
    };
    spoof();
    CHECK(gateway_mac_in_vm2().find(a.mac) == std::string::npos);  // vm2 still sends to the real gateway
    CHECK(lab.vm2.exec("ping -c 1 -W 2 " + gateway).exit_code == 0);
    // IPv6, even link-local from its own MAC: dropped until brfusion supports IPv6.
    const auto link_local = [&](const Netns& vm, const std::string& link) {
        const std::string shown = vm.exec("ip -6 -o addr show dev " + link + " scope link").output;
        const auto at = shown.find("inet6 ");
        return at == std::string::npos ? std::string() : shown.substr(at + 6, shown.find('/', at) - at - 6);
    };
    const std::string b_link_local = link_local(lab.vm2, b.guest_if);
    REQUIRE_FALSE(b_link_local.empty());
    CHECK(lab.vm1.exec("ping -6 -c 2 -W 1 " + b_link_local + "%" + a.guest_if).exit_code != 0);

    // ovs-vswitchd restarts: its flows are gone until the shim puts them back.
    lab.host.kill_vswitchd();
    lab.host.start_vswitchd();
    CHECK(testing::wait_until([&] { return lab.security_flows().find("in_port=bf" + a.endpoint) != std::string::npos; }, std::chrono::seconds(30)));
    CHECK_THAT(lab.security_flows(), Catch::Contains("in_port=bf" + b.endpoint));
    spoof();
    CHECK(gateway_mac_in_vm2().find(a.mac) == std::string::npos);
    CHECK(lab.vm2.exec("ping -c 1 -W 2 " + gateway).exit_code == 0);
    lab.vm1.exec("ip addr del " + gateway + "/32 dev " + a.guest_if);
    CHECK(lab.vm1.exec("ping -c 1 -W 2 " + b.ip.str()).exit_code == 0);  // its own address still passes
}
