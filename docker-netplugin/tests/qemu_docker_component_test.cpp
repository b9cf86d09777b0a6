// brfusion's main job in a real VM: a QEMU guest (TCG) runs its own containerd + dockerd and
// brfusion-plugin, which reaches brfusion-shim on the host over the virtio-serial port
// org.brfusion.shim.0 (no network). `docker run --network` gets a NIC the shim hot-plugged over
// QMP; the container talks to the host gateway through OVS; removal unplugs it again.

#include "brfusion/testing/command.hpp"
#include "brfusion/testing/daemon.hpp"
#include "brfusion/testing/emulated_vm.hpp"
#include "brfusion/testing/ovs_sandbox.hpp"
#include "brfusion/testing/qemu_vm.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <unistd.h>

using namespace brfusion;
using nlohmann::json;

namespace {

const std::string docker = "/usr/bin/docker";  // Debian's 20.10 CLI, as the daemon

// In the guest: dockerd without Docker's own networking, the test image (from `dir`), and
// brfusion-plugin on the virtio-serial guest channel.
void start_docker_and_plugin(testing::QemuVm& vm, const std::string& dir) {
    testing::start_guest_dockerd(vm, "--iptables=false --bridge=none");
    testing::load_guest_test_image(vm, dir);
    testing::start_guest_plugin(vm, BRFUSION_PLUGIN_BINARY);
}

// `docker ARGS` in the guest, which must succeed; its output.
std::string docker_ok(testing::QemuVm& vm, const std::string& args, std::chrono::seconds limit = std::chrono::seconds(120)) {
    const auto result = vm.exec(docker + " " + args, limit);
    INFO("docker " << args << " in " << vm.name() << ":\n" << result.output << "\nplugin log:\n" << vm.exec("cat /tmp/plugin.log").output);
    REQUIRE(result.exit_code == 0);
    return testing::trim_end(result.output);
}

}  // namespace

TEST_CASE("qemu: docker in a real VM - the plugin over virtio-serial - a hot-plugged NIC in the container - "
          "traffic to the gateway - rm unplugs it") {
    testing::OvsSandbox host;
    const std::string dir = "/tmp/brfusion-qemu-docker-" + std::to_string(::getpid());
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir + "/run");
    const json config = {{"ovsdb", host.db_socket()},
                         {"host_netns", host.netns()},
                         {"state_dir", dir + "/shim-state"},
                         {"run_dir", dir + "/run"},
                         {"networks", {{{"name", "lab"}, {"subnet", "198.51.100.0/24"}, {"tag", 100}, {"nat", false}}}},
                         {"vms", {{{"name", "vm1"}, {"backend", "qmp"}, {"qmp", dir + "/vm1/qmp.sock"}, {"networks", {"lab"}}}}}};
    std::ofstream(dir + "/shim.json") << config.dump(2);
    // The shim first, the VM second: reconcile defers a VM that is not running yet.
    testing::Daemon shim;
    shim.start({BRFUSION_SHIM_BINARY, "--config", dir + "/shim.json"}, dir + "/shim.log");
    REQUIRE(testing::wait_until([&] { return std::filesystem::exists(dir + "/run/vm-vm1.sock"); }, std::chrono::seconds(10)));
    {
        testing::QemuVm vm({"vm1", dir + "/vm1", 2, 1536, dir + "/run/vm-vm1.sock", "", {}});
        INFO("shim log:\n" << shim.log());
        start_docker_and_plugin(vm, dir);

        const auto created = vm.exec(docker + " network create -d brfusion --ipam-driver brfusion web");
        INFO(created.output + vm.exec("cat /tmp/plugin.log").output);
        REQUIRE(created.exit_code == 0);
        const auto run = vm.exec(docker + " run -d --name c1 --network web brfusion-test:latest sleep 600");
        INFO(run.output + vm.exec("cat /tmp/plugin.log").output);
        REQUIRE(run.exit_code == 0);

        // The container's eth0 is the NIC QEMU hot-plugged: the MAC OVS knows for the port of vm1.
        const std::string mac = testing::trim_end(vm.exec(docker + " exec c1 cat /sys/class/net/eth0/address").output);
        CHECK(mac.size() == 17);
        const std::string port = testing::trim_end(host.vsctl("--bare --columns=name find Interface external_ids:brfusion-vm=vm1"));
        CHECK(testing::trim_end(host.vsctl("get Interface " + port + " external_ids:attached-mac")) == "\"" + mac + "\"");
        // A PCI device behind the first root port, not a veth; its name under .../PCI/virtioN/net/,
        // where the plugin's Join looks for it (NetlinkLinks::names_at_pci).
        CHECK_THAT(vm.exec("readlink /sys/class/net/ 2>/dev/null; " + docker + " exec c1 readlink /sys/class/net/eth0").output,
                   Catch::Contains("0000:01:00.0/virtio") && Catch::Contains("/net/eth0"));
        const auto ping = vm.exec(docker + " exec c1 ping -c 3 -W 5 198.51.100.1");
        INFO(ping.output);
        CHECK(ping.exit_code == 0);
        // 10 MB of TCP from an HTTP server on the gateway address to the container, counted there.
        std::filesystem::create_directories(dir + "/www");
        testing::run_checked("head -c 10485760 /dev/zero > " + dir + "/www/big");
        testing::Daemon server;
        server.start({"ip", "netns", "exec", host.netns(), "busybox", "httpd", "-f", "-p", "198.51.100.1:8080", "-h", dir + "/www"}, dir + "/httpd.log");
        const auto fetched = vm.exec(docker + " exec c1 sh -c 'wget -q -O - http://198.51.100.1:8080/big | wc -c'", std::chrono::seconds(300));
        INFO(fetched.output);
        CHECK(testing::trim_end(fetched.output) == "10485760");

        REQUIRE(vm.exec(docker + " rm -f c1").exit_code == 0);
        CHECK(testing::wait_until([&] { return vm.exec("ls /sys/bus/pci/devices").output.find("0000:01:00.0") == std::string::npos; },
                                  std::chrono::seconds(10)));
        CHECK(host.vsctl("--bare --columns=name find Port external_ids:brfusion-endpoint!=none").empty());
        CHECK(vm.exec(docker + " network rm web").exit_code == 0);
    }
    shim.stop(15);
    std::filesystem::remove_all(dir);
}

TEST_CASE("qemu: Hostlo - pod A's containers in two real VMs exchange 10 MB of TCP and UDP over their group - network rm removes it") {
    testing::OvsSandbox host;
    const std::string dir = "/tmp/brfusion-qemu-hostlo-" + std::to_string(::getpid());
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir + "/run");
    json vms = json::array();
    for (const char* name : {"vm1", "vm2"})
        vms.push_back({{"name", name}, {"backend", "qmp"}, {"qmp", dir + "/" + name + "/qmp.sock"}, {"hostlo_groups", {"podA"}}});
    const json config = {{"ovsdb", host.db_socket()}, {"host_netns", host.netns()}, {"state_dir", dir + "/shim-state"},
                         {"run_dir", dir + "/run"},   {"hostlo", {{"range", "192.0.2.0/24"}}}, {"vms", vms}};
    std::ofstream(dir + "/shim.json") << config.dump(2);
    testing::Daemon shim;
    shim.start({BRFUSION_SHIM_BINARY, "--config", dir + "/shim.json"}, dir + "/shim.log");
    REQUIRE(testing::wait_until([&] { return std::filesystem::exists(dir + "/run/vm-vm2.sock"); }, std::chrono::seconds(10)));
    {
        testing::QemuVm vm1({"vm1", dir + "/vm1", 2, 1536, dir + "/run/vm-vm1.sock", "", {}});
        testing::QemuVm vm2({"vm2", dir + "/vm2", 2, 1536, dir + "/run/vm-vm2.sock", "", {}});
        INFO("shim log:\n" << shim.log());
        start_docker_and_plugin(vm1, dir);
        start_docker_and_plugin(vm2, dir);
        for (auto* vm : {&vm1, &vm2}) docker_ok(*vm, "network create -d brfusion --ipam-driver brfusion --ipam-opt group=podA -o mode=hostlo pod");
        docker_ok(vm1, "run -d --name a1 --network pod brfusion-test:latest httpd -f -p 80 -h /www");
        docker_ok(vm2, "run -d --name a2 --network pod brfusion-test:latest sleep 600");
        const std::string a1 = docker_ok(vm1, "inspect -f '{{.NetworkSettings.Networks.pod.IPAddress}}' a1");
        CHECK(a1.starts_with("192.0.2."));
        // Each container's NIC is one QEMU hot-plugged, on the pod's bridge.
        const std::string bridge = testing::trim_end(host.vsctl("--bare --columns=name find Bridge external_ids:brfusion-hostlo-group=podA"));
        REQUIRE_FALSE(bridge.empty());
        CHECK(testing::trim_end(host.vsctl("list-ports " + bridge)).size() == 2 * 14 + 1);
        CHECK_THAT(vm2.exec(docker + " exec a2 readlink /sys/class/net/eth0").output, Catch::Contains("0000:01:00.0"));

        docker_ok(vm2, "exec a2 ping -c 3 -W 5 " + a1);
        docker_ok(vm1, "exec a1 dd if=/dev/zero of=/www/big bs=1M count=10");
        CHECK(docker_ok(vm2, "exec a2 sh -c 'wget -q -O - http://" + a1 + "/big | wc -c'", std::chrono::seconds(300)) == "10485760");
        docker_ok(vm1, "exec -d a1 iperf3 -s -1");
        CHECK(testing::wait_until([&] { return vm1.exec(docker + " exec a1 netstat -ltn").output.find(":5201") != std::string::npos; },
                                  std::chrono::seconds(20)));
        const json udp = json::parse(docker_ok(vm2, "exec a2 iperf3 -u -b 5M -n 1M -J -c " + a1, std::chrono::seconds(120)));
        CHECK(udp["end"]["sum"]["packets"].get<int>() > 0);
        CHECK(udp["end"]["sum"]["lost_percent"].get<double>() < 20);

        docker_ok(vm1, "rm -f a1");
        docker_ok(vm2, "rm -f a2");
        docker_ok(vm1, "network rm pod");
        docker_ok(vm2, "network rm pod");
        CHECK(testing::trim_end(host.vsctl("--bare --columns=name find Bridge external_ids:brfusion-hostlo-group=podA")).empty());
        CHECK(host.vsctl("--bare --columns=name find Port external_ids:brfusion-endpoint!=none").empty());
    }
    shim.stop(15);
    std::filesystem::remove_all(dir);
}
