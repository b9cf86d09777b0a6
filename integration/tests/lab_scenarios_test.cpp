// End-to-end scenarios over integration/lab's Lab, for one backend (BRFUSION_LAB_BACKEND: netns,
// qmp or libvirt; one test binary each). Everything goes through the docker CLI in the VMs and
// ovs-vsctl / brfusionctl on the host, as a user would: networks, host NICs in containers,
// containers in two VMs talking, host NAT to the outside, published ports, connect/disconnect,
// --ip, stop/start, restarts of every component with containers running, the nested-NAT and
// no-container baselines, and nothing left behind.

#include "scenario.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <unistd.h>

using namespace brfusion;
using nlohmann::json;
using Catch::Contains;
using brfusion::testing::scenarios::Scenario;


TEST_CASE("lab " BRFUSION_LAB_BACKEND ": Docker in two VMs on host-provided NICs - NAT - ports - restarts - baselines - nothing left") {
    std::string lab_name, lab_dir;
    {
        Scenario s;
        lab_name = s.lab.options().name;
        lab_dir = s.lab.options().dir;

        // Network create / inspect; the container's NIC is the host's (its MAC is the OVS port's).
        s.ok("vm1", "docker network create -d brfusion --ipam-driver brfusion --subnet 198.51.100.0/24 web");
        s.ok("vm2", "docker network create -d brfusion --ipam-driver brfusion --subnet 198.51.100.0/24 web");
        CHECK_THAT(s.ok("vm1", "docker network inspect web --format '{{.Driver}} {{json .IPAM.Config}}'"), Contains("brfusion") && Contains("198.51.100.0/24"));
        s.ok("vm1", "docker run -d --name c1 --network web -p 8080:80 brfusion-test httpd -f -p 80 -h /www");
        s.ok("vm2", "docker run -d --name c2 --network web --ip 198.51.100.50 brfusion-test sleep 3600");
        const std::string c1 = s.ip_of("vm1", "c1", "web");
        CHECK(s.ip_of("vm2", "c2", "web") == "198.51.100.50");
        const std::string mac = s.ok("vm1", "docker exec c1 cat /sys/class/net/eth0/address");
        CHECK_THAT(s.ok("host", "ovs-vsctl --bare --columns=external_ids find Interface external_ids:attached-mac='\"" + mac + "\"'"),
                   Contains("brfusion-vm=vm1") && Contains("brfusion-network=lab"));

        // Across VMs (10 MB, not just a ping), to the outside through the host's NAT (the outside
        // sees the host's address), and a published port reachable from outside at the host.
        s.ok("vm2", "docker exec c2 ping -c 1 -W 5 " + c1);
        s.ok("vm1", "docker exec c1 dd if=/dev/zero of=/www/big bs=1M count=10");
        CHECK(s.ok("vm2", "docker exec c2 sh -c 'wget -qO- http://" + c1 + "/big | wc -c'") == "10485760");
        s.check_traffic(c1);
        // That traffic went through OVS: the gateway's MAC is its port's (bfgw<tag>), not that of the
        // NIC's host side, on which the host's kernel answers no ARP.
        CHECK_THAT(s.ok("vm2", "docker exec c2 ip neigh"), Contains("198.51.100.1 dev eth0 lladdr " + s.ok("host", "cat /sys/class/net/bfgw100/address")));
        s.ok("vm2", "docker exec c2 iperf3 -c " + std::string(testing::Lab::kOutsideAddress) + " -n 1M");
        CHECK_THAT(s.ok("outside", "cat " + lab_dir + "/outside-iperf3.log"), Contains("Accepted connection from " + std::string(testing::Lab::kHostUplinkAddress)));
        CHECK(s.ok("outside", "wget -qO- http://" + std::string(testing::Lab::kHostUplinkAddress) + ":8080/") == "brfusion-test-page");

        // connect / disconnect; stop / start.
        s.ok("vm1", "docker network create -d brfusion --ipam-driver brfusion --ipam-opt network=lab2 --subnet 203.0.113.0/24 web2");
        s.ok("vm1", "docker network connect --ip 203.0.113.9 web2 c1");
        CHECK_THAT(s.ok("vm1", "docker exec c1 ip -o -4 addr"), Contains("203.0.113.9/24"));
        s.ok("vm1", "docker network disconnect web2 c1");
        CHECK(s.ok("host", "ovs-vsctl --bare --columns=name find Interface external_ids:brfusion-network=lab2 external_ids:brfusion-vm=vm1").empty());
        s.ok("vm2", "docker stop -t 1 c2");
        s.ok("vm2", "docker start c2");
        s.check_traffic(c1);

        // Restarts with the containers running: traffic keeps flowing after each.
        for (const auto& [node, component] : {std::pair{"vm1", "plugin"}, std::pair{"vm2", "dockerd"}, std::pair{"host", "shim"}, std::pair{"host", "ovs"}}) {
            INFO("after restarting " << component << " on " << node);
            s.lab.restart(node, component);
            CHECK(testing::wait_until([&] { return s.code("vm2", "docker exec c2 ping -c 1 -W 1 " + c1) == 0; }, std::chrono::seconds(30)));
            s.check_traffic(c1);
        }

        // The nested-NAT baseline: Docker's own bridge and NAT in the VMs, then the host's.
        s.ok("vm1", "docker run -d --name n1 -p 8081:80 brfusion-test httpd -f -p 80 -h /www");
        CHECK(s.ok("vm2", "docker run --rm brfusion-test wget -qO- http://" + std::string(testing::Lab::kOutsideAddress) + "/") == "brfusion-outside-page");
        CHECK(s.ok("vm2", "docker run --rm brfusion-test wget -qO- http://192.0.2.130:8081/") == "brfusion-test-page");  // vm1's primary NIC
        // The no-container baseline: a process directly in the VM.
        CHECK(s.ok("vm2", "wget -qO- http://" + std::string(testing::Lab::kOutsideAddress) + "/") == "brfusion-outside-page");
        CHECK_THAT(s.ok("vm2", "ip neigh"), Contains("192.0.2.129 dev eth0 lladdr " + s.ok("host", "cat /sys/class/net/bfgw300/address")));  // mgmt's gateway
        s.ok("vm2", "ping -c 1 -W 5 192.0.2.130");

        // Removal: no port, TAP, lease or record is left, on the host or in the plugins.
        s.ok("vm1", "docker rm -f c1 n1");
        s.ok("vm2", "docker rm -f c2");
        s.ok("vm1", "docker network rm web web2");
        s.ok("vm2", "docker network rm web");
        CHECK(s.ok("host", "ovs-vsctl --bare --columns=name find Port external_ids:brfusion-endpoint!=none").empty());
        CHECK(s.ok("host", "ip -o link | grep -c ' bf[0-9a-f]\\{12\\}' || true") == "0");
        const json state = s.lab.shim_journal();
        CHECK(state["nics"].empty());
        for (const auto& [network, pool] : state["ipam"].items()) CHECK(pool["leases"].empty());
        CHECK(json::parse(s.lab.ctl("--json nics")).empty());
    }
    // lab down: nothing of the lab is left.
    CHECK(testing::trim_end(testing::run("ip netns list | grep -c '^" + lab_name + "-' || true").output) == "0");
    CHECK_FALSE(std::filesystem::exists(lab_dir));
    CHECK(testing::trim_end(testing::run("pgrep -f -c '[" + lab_dir.substr(0, 1) + "]" + lab_dir.substr(1) + "' || true").output) == "0");  // [/]: not this pgrep's shell
}
