// brfusion end to end with a real Docker: two emulated VMs (each its own netns, mount namespace,
// dockerd and brfusion-plugin) and a "host" netns with a private OVS and brfusion-shim. Every check
// goes through the docker CLI in a VM and ovs-vsctl/nft on the host, as a user would.

#include "brfusion/plugin/docker_networks.hpp"
#include "brfusion/plugin/plugin_state.hpp"
#include "brfusion/testing/command.hpp"
#include "brfusion/testing/docker_lab.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <set>

#include <unistd.h>

using namespace brfusion;
using nlohmann::json;
using Catch::Contains;

namespace {

// The lab of testlib, with the checks every scenario uses.
struct DockerLab : testing::DockerLab {
    explicit DockerLab(int vm1_spares = 0)
        : testing::DockerLab({BRFUSION_SHIM_BINARY, BRFUSION_CTL_BINARY, BRFUSION_PLUGIN_BINARY}, "/tmp/bfe-" + std::to_string(::getpid()), vm1_spares) {}

    // `docker ARGS` in `vm`, which must succeed; its output.
    static std::string docker_ok(const testing::EmulatedVm& vm, const std::string& args) {
        const auto result = vm.docker(args);
        INFO("docker " << args << " in " << vm.name() << ":\n" << result.output << "\nplugin log:\n" << vm.plugin_log());
        REQUIRE(result.exit_code == 0);
        return testing::trim_end(result.output);
    }
    static std::string container_ip(const testing::EmulatedVm& vm, const std::string& container, const std::string& network) {
        return docker_ok(vm, "inspect -f '{{(index .NetworkSettings.Networks \"" + network + "\").IPAddress}}' " + container);
    }
    // The OVS interface whose attached-mac is the MAC of `container`'s `interface`, and its labels.
    std::string ovs_port_of(const testing::EmulatedVm& vm, const std::string& container, const std::string& interface = "eth0") {
        const std::string mac = docker_ok(vm, "exec " + container + " cat /sys/class/net/" + interface + "/address");
        return host.vsctl("--bare --columns=name,external_ids find Interface external_ids:attached-mac=\\\"" + mac + "\\\"");
    }
    // Nothing of any container is left on the host, in the VMs or in the plugins' state.
    void require_nothing_left() {
        CHECK(testing::trim_end(host.vsctl("--bare --columns=name find Interface external_ids:brfusion-vm=vm1")).empty());
        CHECK(testing::trim_end(host.vsctl("--bare --columns=name find Interface external_ids:brfusion-vm=vm2")).empty());
        CHECK(json::parse(ctl("--json nics")).empty());
        CHECK_THAT(host.in_netns("nft list table ip brfusion"), !Contains("dnat to"));
        const json shim_state = shim_journal();
        CHECK(shim_state["nics"].empty());
        for (const auto& [network, pool] : shim_state["ipam"].items()) CHECK(pool["leases"].empty());
        for (const auto* vm : {vm1.get(), vm2.get()}) {
            CHECK(testing::trim_end(vm->exec("ip -o link | grep -E ' bf[cg]' || true").output).empty());
            const brfusion::plugin::PluginState plugin = brfusion::plugin::PluginStore(vm->plugin_state_dir()).load();  // reads, writes nothing
            CHECK(plugin.endpoints.empty());
            CHECK(plugin.reservations.empty());
        }
    }
};

}  // namespace

TEST_CASE("docker: network create - run - containers in two VMs talk over host NICs - -p - connect - rm leaves nothing") {
    DockerLab lab;
    auto& vm1 = *lab.vm1;
    auto& vm2 = *lab.vm2;

    // Refusals reach the user through docker's CLI.
    CHECK_THAT(vm1.docker("network create -d brfusion --ipam-driver brfusion lab").output,
               Contains("which host network should this Docker network use? This VM may use lab (198.51.100.0/24), lab2 (203.0.113.0/24)"));
    CHECK_THAT(vm2.docker("network create -d brfusion lab").output, Contains("create the network with --ipam-driver brfusion"));
    CHECK_THAT(vm2.docker("network create -d brfusion --ipam-driver brfusion -o vlan=3 lab").output, Contains("-o vlan is not a brfusion option"));
    CHECK_THAT(vm2.docker("network create -d brfusion --ipam-driver brfusion --ipam-opt network=lab2 lab").output,
               Contains("host network lab2 is not available to this VM; it may use: lab (198.51.100.0/24)"));


    DockerLab::docker_ok(vm1, "network create -d brfusion --ipam-driver brfusion --subnet 198.51.100.0/24 lab");
    // --ip needs a network with a user-given subnet (Docker's rule); the restart test covers a
    // network created with neither --subnet nor --ipam-opt.
    DockerLab::docker_ok(vm2, "network create -d brfusion --ipam-driver brfusion --subnet 198.51.100.0/24 lab");
    CHECK_THAT(DockerLab::docker_ok(vm2, "network inspect lab --format '{{.Driver}} {{json .IPAM}}'"),
               Contains("brfusion") && Contains(R"("Driver":"brfusion")") && Contains(R"("Subnet":"198.51.100.0/24")"));
    // What the plugin's reconcile asks dockerd: the networks it has (and nothing where no dockerd is).
    const auto docker_networks = brfusion::plugin::DockerApiNetworks(vm1.dir() + "/docker.sock").ids();
    REQUIRE(docker_networks);
    CHECK(docker_networks->contains(DockerLab::docker_ok(vm1, "network inspect lab --format '{{.ID}}'")));
    CHECK_FALSE(brfusion::plugin::DockerApiNetworks(vm1.dir() + "/no-docker.sock").ids());

    // Containers get the host's NIC: same MAC as the OVS port, no veth on docker0.
    DockerLab::docker_ok(vm1, "run -d --name c1 --network lab brfusion-test httpd -f -p 80 -h /www");
    DockerLab::docker_ok(vm2, "run -d --name c2 --network lab --ip 198.51.100.50 brfusion-test sleep 3600");
    const std::string c1 = DockerLab::container_ip(vm1, "c1", "lab");
    CHECK(DockerLab::container_ip(vm2, "c2", "lab") == "198.51.100.50");
    CHECK_THAT(lab.ovs_port_of(vm1, "c1"), Contains("brfusion-vm=vm1") && Contains("brfusion-network=lab"));
    CHECK_THAT(lab.ovs_port_of(vm2, "c2"), Contains("brfusion-vm=vm2"));
    CHECK(testing::trim_end(vm1.exec("ip -o link show master docker0").output).empty());
    CHECK_THAT(DockerLab::docker_ok(vm1, "exec c1 ip -o -4 addr show eth0"), Contains(c1 + "/24"));
    CHECK_THAT(DockerLab::docker_ok(vm1, "exec c1 ip route"), Contains("default via 198.51.100.1"));

    // Across VMs, and to the host's gateway; a 10 MB transfer, not just a ping.
    DockerLab::docker_ok(vm2, "exec c2 ping -c 1 -W 5 " + c1);
    DockerLab::docker_ok(vm2, "exec c2 ping -c 1 -W 5 198.51.100.1");
    CHECK(DockerLab::docker_ok(vm2, "exec c2 wget -qO- http://" + c1 + "/") == "brfusion-test-page");
    DockerLab::docker_ok(vm1, "exec c1 dd if=/dev/zero of=/www/big bs=1M count=10");
    CHECK(DockerLab::docker_ok(vm2, "exec c2 sh -c 'wget -qO- http://" + c1 + "/big | wc -c'") == "10485760");

    // -p publishes on the host, once: a DNAT in the shim's table, reachable at the host's address.
    DockerLab::docker_ok(vm1, "run -d --name c3 --network lab -p 8080:80 brfusion-test httpd -f -p 80 -h /www");
    const std::string c3 = DockerLab::container_ip(vm1, "c3", "lab");
    CHECK_THAT(lab.host.in_netns("nft list table ip brfusion"), Contains("dnat to " + c3 + ":80"));
    CHECK_THAT(lab.host.in_netns("busybox wget -qO- http://192.0.2.1:8080/"), Contains("brfusion-test-page"));
    // Published on the host's own address only: not on the gateway's, nor on loopback.
    CHECK(lab.host.in_netns("timeout 5 busybox wget -qO- http://198.51.100.1:8080/ 2>&1; echo exit=$?").find("brfusion-test-page") == std::string::npos);
    CHECK_THAT(lab.ctl("nics --vm vm1"), Contains("tcp:8080->80"));
    // A host port range on one host address takes the range's lowest free port (c3 holds 8080);
    // UDP is published too (iperf3 -u: its control connection is TCP on the same port).
    DockerLab::docker_ok(vm1, "run -d --name c4 --network lab -p 192.0.2.1:8080-8090:80 -p 5201:5201 -p 5201:5201/udp brfusion-test httpd -f -p 80 -h /www");
    CHECK_THAT(lab.host.in_netns("busybox wget -qO- http://192.0.2.1:8081/"), Contains("brfusion-test-page"));
    CHECK_THAT(lab.ctl("nics --vm vm1"), Contains("tcp:192.0.2.1:8081->80"));
    DockerLab::docker_ok(vm1, "exec -d c4 iperf3 -s -1");
    DockerLab::docker_ok(vm1, "exec c4 sh -c 'for i in $(seq 50); do netstat -ln | grep -q :5201 && exit 0; sleep 0.1; done; exit 1'");
    const json udp = json::parse(lab.host.in_netns("iperf3 -u -b 10M -n 1M -J -p 5201 -c 192.0.2.1"));
    INFO(udp.dump());
    CHECK(udp["end"]["sum"]["packets"].get<int>() > 0);
    CHECK(udp["end"]["sum"]["lost_percent"].get<double>() < 20);

    // A second network, connected and disconnected at run time.
    DockerLab::docker_ok(vm1, "network create -d brfusion --ipam-driver brfusion --ipam-opt network=lab2 --subnet 203.0.113.0/24 lab2");
    DockerLab::docker_ok(vm1, "network connect --ip 203.0.113.9 lab2 c1");
    CHECK_THAT(DockerLab::docker_ok(vm1, "exec c1 ip -o -4 addr show eth1"), Contains("203.0.113.9/24"));
    CHECK_THAT(lab.ovs_port_of(vm1, "c1", "eth1"), Contains("brfusion-network=lab2"));
    DockerLab::docker_ok(vm1, "network disconnect lab2 c1");
    CHECK(testing::trim_end(lab.host.vsctl("--bare --columns=name find Interface external_ids:brfusion-network=lab2 external_ids:brfusion-vm=vm1")).empty());

    // Stop and start keep working (a new endpoint each time).
    DockerLab::docker_ok(vm2, "stop -t 1 c2");
    DockerLab::docker_ok(vm2, "start c2");
    CHECK(DockerLab::docker_ok(vm2, "exec c2 wget -qO- http://" + c1 + "/") == "brfusion-test-page");

    DockerLab::docker_ok(vm1, "rm -f c1 c3 c4");
    DockerLab::docker_ok(vm2, "rm -f c2");
    DockerLab::docker_ok(vm1, "network rm lab lab2");
    DockerLab::docker_ok(vm2, "network rm lab");
    lab.require_nothing_left();
}

TEST_CASE("docker: restarting the plugin - dockerd - the shim with running containers keeps their network - nothing leaks") {
    DockerLab lab;
    auto& vm1 = *lab.vm1;
    auto& vm2 = *lab.vm2;
    DockerLab::docker_ok(vm1, "network create -d brfusion --ipam-driver brfusion --subnet 198.51.100.0/24 lab");
    DockerLab::docker_ok(vm2, "network create -d brfusion --ipam-driver brfusion lab");
    DockerLab::docker_ok(vm1, "run -d --name c1 --network lab brfusion-test httpd -f -p 80 -h /www");
    DockerLab::docker_ok(vm2, "run -d --name c2 --network lab brfusion-test sleep 3600");
    const std::string c1 = DockerLab::container_ip(vm1, "c1", "lab");
    const auto reachable = [&] { return DockerLab::docker_ok(vm2, "exec c2 wget -qO- http://" + c1 + "/") == "brfusion-test-page"; };
    REQUIRE(reachable());

    SECTION("the plugin is killed and restarted") {
        vm1.stop_plugin(SIGKILL);
        lab.start_plugin(vm1);
        CHECK(reachable());
    }
    SECTION("dockerd restarts (live restore)") {
        vm1.stop_dockerd();
        vm1.start_dockerd();
        CHECK(reachable());
    }
    SECTION("brfusion-shim restarts") {
        lab.stop_shim();
        lab.start_shim();
        CHECK(reachable());
    }
    // Later operations work in both VMs.
    DockerLab::docker_ok(vm1, "run -d --name c4 --network lab brfusion-test httpd -f -p 80 -h /www");
    const std::string c4 = DockerLab::container_ip(vm1, "c4", "lab");
    CHECK(DockerLab::docker_ok(vm2, "exec c2 wget -qO- http://" + c4 + "/") == "brfusion-test-page");
    DockerLab::docker_ok(vm2, "run --rm --network lab brfusion-test ping -c 1 -W 5 " + c1);

    DockerLab::docker_ok(vm1, "rm -f c1 c4");
    DockerLab::docker_ok(vm2, "rm -f c2");
    DockerLab::docker_ok(vm1, "network rm lab");
    DockerLab::docker_ok(vm2, "network rm lab");
    lab.require_nothing_left();
}

TEST_CASE("docker: names and aliases resolve - docker restart keeps them - docker-compose up and down with service names") {
    DockerLab lab;
    auto& vm1 = *lab.vm1;
    DockerLab::docker_ok(vm1, "network create -d brfusion --ipam-driver brfusion --ipam-opt network=lab lab");
    // Docker's embedded DNS answers for containers of any user-defined network, a remote driver's too.
    DockerLab::docker_ok(vm1, "run -d --name n1 --network lab --network-alias www brfusion-test httpd -f -p 80 -h /www");
    for (const char* name : {"n1", "www"})
        CHECK(DockerLab::docker_ok(vm1, std::string("run --rm --network lab brfusion-test wget -qO- http://") + name + "/") == "brfusion-test-page");
    // A restart makes a new endpoint; the name and alias follow it.
    DockerLab::docker_ok(vm1, "restart -t 1 n1");
    CHECK(DockerLab::docker_ok(vm1, "run --rm --network lab brfusion-test wget -qO- http://www/") == "brfusion-test-page");
    DockerLab::docker_ok(vm1, "rm -f n1");
    DockerLab::docker_ok(vm1, "network rm lab");

    // Debian's docker-compose (1.29): a project whose default network is brfusion's; service names resolve.
    const std::string project = vm1.dir() + "/compose";
    std::filesystem::create_directories(project);
    std::ofstream(project + "/docker-compose.yml") << R"(version: "2.4"
services:
  web:
    image: brfusion-test
    command: httpd -f -p 80 -h /www
  client:
    image: brfusion-test
    command: sleep 3600
networks:
  default:
    driver: brfusion
    ipam:
      driver: brfusion
      config:
        - subnet: 198.51.100.0/24
)";
    const auto compose = [&](const std::string& args) {
        const auto result = vm1.exec("cd " + project + " && DOCKER_HOST=unix://" + vm1.dir() + "/docker.sock docker-compose -p bfc " + args);
        INFO("docker-compose " << args << ":\n" << result.output << "\nplugin log:\n" << vm1.plugin_log());
        REQUIRE(result.exit_code == 0);
        return testing::trim_end(result.output);
    };
    compose("up -d");
    CHECK(compose("exec -T client wget -qO- http://web/") == "brfusion-test-page");
    CHECK_THAT(lab.ovs_port_of(vm1, "bfc_web_1"), Contains("brfusion-network=lab"));
    compose("down");
    CHECK_THAT(DockerLab::docker_ok(vm1, "network ls --format '{{.Name}}'"), !Contains("bfc_default"));
    lab.require_nothing_left();
}

TEST_CASE("docker: with a warm pool, run claims a spare NIC - the pool refills - rm returns the address") {
    DockerLab lab(2);
    auto& vm1 = *lab.vm1;
    const auto spares = [&] {
        std::set<std::string> macs;
        for (const auto& nic : json::parse(lab.ctl("--json nics --vm vm1")))
            if (nic["state"] == "spare") macs.insert(nic["mac"].get<std::string>());
        return macs;
    };
    REQUIRE(testing::wait_until([&] { return spares().size() == 2; }, std::chrono::seconds(30)));
    CHECK(testing::trim_end(lab.host.vsctl("--bare --columns=name find Interface external_ids:brfusion-spare=true")).size() > 0);
    const auto before = spares();

    DockerLab::docker_ok(vm1, "network create -d brfusion --ipam-driver brfusion --ipam-opt network=lab lab");
    DockerLab::docker_ok(vm1, "run -d --name c1 --network lab brfusion-test sleep 3600");
    const std::string mac = DockerLab::docker_ok(vm1, "exec c1 cat /sys/class/net/eth0/address");
    CHECK(before.count(mac));  // the container got one of the spares
    CHECK_THAT(lab.ovs_port_of(vm1, "c1"), Contains("brfusion-vm=vm1") && !Contains("brfusion-spare"));
    DockerLab::docker_ok(vm1, "exec c1 ping -c 1 -W 5 198.51.100.1");
    CHECK(testing::wait_until([&] { return spares().size() == 2 && !spares().count(mac); }, std::chrono::seconds(30)));

    DockerLab::docker_ok(vm1, "rm -f c1");
    DockerLab::docker_ok(vm1, "network rm lab");
    CHECK(testing::trim_end(lab.host.vsctl("--bare --columns=name find Interface external_ids:attached-mac=\\\"" + mac + "\\\"")).empty());
    const json state = lab.shim_journal();
    CHECK(state["ipam"]["lab"]["leases"].empty());
    CHECK(state["nics"].size() == 2);  // the spares, and nothing else
}

TEST_CASE("docker: Hostlo - pod A's containers in two VMs share a segment (TCP and UDP) - pod B cannot reach them - the last network rm removes it") {
    DockerLab lab;
    auto& vm1 = *lab.vm1;
    auto& vm2 = *lab.vm2;
    // The pod must reach brfusion's IPAM too: Docker asks it for the subnet before the driver sees -o.
    CHECK_THAT(vm2.docker("network create -d brfusion --ipam-driver brfusion -o mode=hostlo -o group=podA pod").output,
               Contains("add --ipam-opt group=podA"));
    const std::string create_pod = "network create -d brfusion --ipam-driver brfusion --ipam-opt group=podA -o mode=hostlo pod";
    DockerLab::docker_ok(vm1, create_pod);
    DockerLab::docker_ok(vm2, create_pod);
    DockerLab::docker_ok(vm1, "network create -d brfusion --ipam-driver brfusion --ipam-opt group=podB podb");
    DockerLab::docker_ok(vm1, "network create -d brfusion --ipam-driver brfusion --ipam-opt network=lab lab");
    CHECK_THAT(DockerLab::docker_ok(vm2, "network inspect pod --format '{{json .IPAM.Config}}'"), Contains(R"("Subnet":"192.0.2.128/28")"));

    // a1 also has a regular network for its other traffic; the group gives it no gateway.
    DockerLab::docker_ok(vm1, "run -d --name a1 --network pod brfusion-test httpd -f -p 80 -h /www");
    DockerLab::docker_ok(vm1, "network connect lab a1");
    DockerLab::docker_ok(vm2, "run -d --name a2 --network pod brfusion-test sleep 3600");
    DockerLab::docker_ok(vm1, "run -d --name b1 --network podb brfusion-test sleep 3600");
    const std::string a1 = DockerLab::container_ip(vm1, "a1", "pod"), a2 = DockerLab::container_ip(vm2, "a2", "pod");
    CHECK(a1.starts_with("192.0.2.13"));
    CHECK_THAT(DockerLab::docker_ok(vm1, "exec a1 ip route"), Contains("default via 198.51.100.1") && !Contains("via 192.0.2."));
    CHECK_THAT(lab.ovs_port_of(vm1, "a1"), Contains("brfusion-hostlo-group=podA") && Contains("brfusion-vm=vm1"));
    const std::string bridge = testing::trim_end(lab.host.vsctl("--bare --columns=name find Bridge external_ids:brfusion-hostlo-group=podA"));
    REQUIRE_FALSE(bridge.empty());
    CHECK(std::count(bridge.begin(), bridge.end(), '\n') == 0);  // one bridge for the pod
    CHECK(testing::trim_end(lab.host.vsctl("list-ports " + bridge)).size() == 2 * 14 + 1);  // two member ports, nothing else
    CHECK_THAT(lab.ctl("hostlo list"), Contains("podA") && Contains("192.0.2.128/28") && Contains(bridge) && Contains("vm1,vm2"));
    CHECK_THAT(lab.ctl("hostlo show podA"), Contains(a1) && Contains(a2));

    // Across VMs over the group: ping, 10 MB of TCP, and UDP.
    DockerLab::docker_ok(vm2, "exec a2 ping -c 1 -W 5 " + a1);
    DockerLab::docker_ok(vm1, "exec a1 dd if=/dev/zero of=/www/big bs=1M count=10");
    CHECK(DockerLab::docker_ok(vm2, "exec a2 sh -c 'wget -qO- http://" + a1 + "/big | wc -c'") == "10485760");
    DockerLab::docker_ok(vm1, "exec -d a1 iperf3 -s -1");
    CHECK(testing::wait_until([&] { return vm1.docker("exec a1 netstat -ltn").output.find(":5201") != std::string::npos; }, std::chrono::seconds(10)));
    const json udp = json::parse(DockerLab::docker_ok(vm2, "exec a2 iperf3 -u -b 20M -n 2M -J -c " + a1));
    CHECK(udp["end"]["sum"]["packets"].get<int>() > 0);
    CHECK(udp["end"]["sum"]["lost_percent"].get<double>() < 20);

    // Pod B's container in the same VM cannot reach pod A's members.
    CHECK(vm1.docker("exec b1 ping -c 1 -W 2 " + a2).exit_code != 0);
    CHECK(vm1.docker("exec b1 timeout 3 wget -qO- http://" + a1 + "/").exit_code != 0);  // busybox wget has no -T

    DockerLab::docker_ok(vm1, "rm -f a1 b1");
    DockerLab::docker_ok(vm2, "rm -f a2");
    DockerLab::docker_ok(vm1, "network rm pod podb lab");
    CHECK_FALSE(testing::trim_end(lab.host.vsctl("--bare --columns=name find Bridge external_ids:brfusion-hostlo-group=podA")).empty());  // vm2 still holds it
    DockerLab::docker_ok(vm2, "network rm pod");
    CHECK(testing::trim_end(lab.host.vsctl("--bare --columns=name find Bridge external_ids:brfusion-hostlo-group!=none")).empty());
    CHECK(json::parse(lab.ctl("--json hostlo list")).empty());
    lab.require_nothing_left();
}
