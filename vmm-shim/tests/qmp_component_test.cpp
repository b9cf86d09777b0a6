// The qmp backend for real: TAPs in a network namespace, QEMU's monitor first scripted (a failure
// at each QMP step of plug and unplug leaves nothing), then a real QEMU VM (TCG) behind a real
// OVS: the guest sees the NIC with the reported MAC at the reported PCI address, ping and >= 10 MB
// of TCP reach the host gateway, a shim restart between attach and detach loses nothing, detach
// and reconcile leave no OVS port, TAP, lease or device.

#include "brfusion/ovs/client.hpp"
#include "brfusion/shim/backends/qmp_backend.hpp"
#include "brfusion/shim/firewall.hpp"
#include "brfusion/shim/nic_manager.hpp"
#include "brfusion/testing/command.hpp"
#include "brfusion/testing/ovs_sandbox.hpp"
#include "brfusion/testing/qemu_vm.hpp"
#include "fake_qemu.hpp"
#include "real_vm_lab.hpp"
#include "shim_core.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <filesystem>
#include <thread>
#include <unistd.h>

using namespace brfusion;
using namespace brfusion::shim;
using testing::Netns;

namespace {

std::string taps_in(const Netns& netns) { return testing::run("ip -n " + netns.name() + " -o link show type tun | grep -o ' bf[0-9a-z]*:' || true").output; }

}  // namespace

TEST_CASE("qmp: a failure at each QMP step of plug and of unplug leaves no fd - netdev - device - or TAP behind") {
    Netns host;
    const std::string socket = "/tmp/brfusion-qmp-component-" + std::to_string(::getpid()) + ".sock";
    test::FakeQemu qemu(socket, 2);
    QmpBackend backend("vm1", socket, host.name(), {std::chrono::seconds(5), std::chrono::seconds(2)});
    const NicDevice nic{"bfqmptest01", "", "02:00:00:00:00:01", 1500};

    // Fail the 1st, 2nd, ... QMP command of plug until plug no longer reaches the failing one.
    int failures = 0;
    for (int step = 1;; ++step) {
        backend.create_host_device(nic);
        const int before = qemu.commands();
        qemu.fail_command(step);
        bool plugged = false;
        try {
            backend.plug(nic);
            plugged = true;
        } catch (const ShimError& error) {
            ++failures;
            INFO("plug failed at QMP step " << step << ": " << error.what());
        }
        if (plugged && qemu.commands() - before < step) break;  // plug is done before the step that would fail
        // What NicManager does with a failed attach: unplug, then remove the host side.
        backend.unplug(nic);
        backend.delete_host_device(nic);
        CHECK(qemu.inventory().empty());
        CHECK(taps_in(host).empty());
    }
    qemu.fail_command(1000000);  // none
    // query-pci, netdev_del of a leftover, getfd, netdev_add, device_add (closefd's failure is harmless)
    CHECK(failures == 5);
    CHECK(backend.plugged(nic));
    CHECK(backend.plugged_nics() == std::vector<std::string>{"bfqmptest01"});
    CHECK(qemu.inventory().devices == std::set<std::string>{"bf-nic-bfqmptest01"});
    CHECK(backend.plug(nic) == "0000:01:00.0");  // idempotent: the same port

    for (int step = 1;; ++step) {
        qemu.fail_command(step);
        try {
            backend.unplug(nic);
        } catch (const ShimError& error) {
            INFO("unplug failed at QMP step " << step << ": " << error.what());
            continue;  // retried with the next step failing, as a resumed detach would
        }
        break;
    }
    qemu.fail_command(1000000);
    backend.delete_host_device(nic);
    CHECK(qemu.inventory().empty());
    CHECK(taps_in(host).empty());
}

TEST_CASE("qmp: a VM out of root ports gets an error naming the limit and how to raise it - and a hung guest a timeout") {
    Netns host;
    const std::string socket = "/tmp/brfusion-qmp-component-" + std::to_string(::getpid()) + ".sock";
    test::FakeQemu qemu(socket, 1);
    QmpBackend backend("vm1", socket, host.name(), {std::chrono::seconds(5), std::chrono::milliseconds(600)});
    const NicDevice first{"bfqmptest01", "", "02:00:00:00:00:01", 1500}, second{"bfqmptest02", "", "02:00:00:00:00:02", 1500};
    backend.create_host_device(first);
    backend.create_host_device(second);
    CHECK(backend.plug(first) == "0000:01:00.0");
    try {
        backend.plug(second);
        FAIL("a second NIC found a port");
    } catch (const ShimError& error) {
        CHECK(error.kind() == ErrorKind::Exhausted);
        CHECK_THAT(error.what(), Catch::Contains("VM vm1 has no free PCIe root port") && Catch::Contains("all 1 of its hot-plug ports") &&
                                     Catch::Contains("pcie-root-port"));
    }
    qemu.ignore_unplug(true);
    CHECK_THROWS_WITH(backend.unplug(first), Catch::Contains("VM vm1 did not release NIC bfqmptest01") && Catch::Contains("ACPI"));
    CHECK(backend.plugged(first));  // kept for a retry
    qemu.ignore_unplug(false);
    backend.delete_host_device(second);
    backend.delete_host_device(first);
}

TEST_CASE("qmp: a real QEMU VM - the guest sees the NIC at the reported PCI address - ping and 10 MB of TCP to the gateway - "
          "a shim restart loses nothing - detach and reconcile leave nothing") {
    test::RealVmLab lab("qmp");
    test::attach_traffic_restart_detach(lab);
}

TEST_CASE("qmp: userspace TSO - the hot-plugged NIC keeps TX checksum offload and TSO - ping and 10 MB of TCP to the gateway") {
    test::RealVmLab lab("qmp");
    INFO("console:\n" << lab.vm.console());
    lab.use_userspace_tso();
    lab.start_shim();
    const AttachedNic nic = lab.shim->attach("vm1", test::net("lab"));
    CHECK(nic.checksum_offload);
    const std::string eth = lab.guest_nic_at(nic.pci);
    REQUIRE_FALSE(eth.empty());
    const std::string offloads = lab.vm.exec("ethtool -k " + eth).output;
    CHECK_THAT(offloads, Catch::Contains("tx-checksumming: on") && Catch::Contains("tcp-segmentation-offload: on"));
    lab.traffic_to_gateway(nic, eth);
    lab.shim->detach("vm1", nic.endpoint);
    CHECK(lab.leftovers().empty());
}

TEST_CASE("qmp: a guest that keeps its offloads against the shim's word harms only its own traffic - OVS and the NIC work on") {
    // The TAP's vnet header lets a guest hand the host partial checksums and 64-KB segments; a
    // hostile one ignores checksum_offload=false. OVS (no userspace TSO) must survive it.
    test::RealVmLab lab("qmp");
    INFO("console:\n" << lab.vm.console());
    lab.start_shim();
    const AttachedNic nic = lab.shim->attach("vm1", test::net("lab"));
    REQUIRE_FALSE(nic.checksum_offload);
    const std::string eth = lab.guest_nic_at(nic.pci);
    REQUIRE_FALSE(eth.empty());
    REQUIRE_THAT(lab.vm.exec("ethtool -k " + eth).output, Catch::Contains("tx-checksumming: on") && Catch::Contains("tcp-segmentation-offload: on"));
    lab.vm.exec("ip addr add " + nic.ip.str() + "/24 dev " + eth + " && ip link set " + eth + " up");
    const std::string pidfile = lab.dir + "/hostile-iperf3.pid";  // a server of its own port, stopped by its pid
    testing::run_checked("ip netns exec " + lab.host.netns() + " iperf3 -s -1 -D -p 5299 -I " + pidfile + " -B " + nic.gateway.str());
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    lab.vm.exec("timeout 20 iperf3 -c " + nic.gateway.str() + " -p 5299 -n 10M --connect-timeout 3000", std::chrono::seconds(60));  // whatever it gets
    testing::run("kill $(cat " + pidfile + ") 2>/dev/null");
    CHECK(testing::run("ovs-appctl -t " + lab.host.dir() + "/ovs-vswitchd.ctl version").exit_code == 0);  // still running

    // Once the guest does as told, its NIC carries TCP again.
    REQUIRE(lab.vm.exec("ethtool -K " + eth + " tx off").exit_code == 0);
    lab.traffic_to_gateway(nic, eth);  // the address is there already; the rest runs as usual
    lab.shim->detach("vm1", nic.endpoint);
    CHECK(lab.leftovers().empty());
}

TEST_CASE("qmp: a guest that never acknowledges its unplug stalls only its own VM - another VM attaches and detaches meanwhile - the views answer") {
    test::RealVmLab lab("qmp");  // vm1: a real QEMU VM
    Netns other;                 // vm2: a netns VM on the same shim
    lab.config.vms.push_back(parse_vm({{"name", "vm2"}, {"netns", other.name()}, {"networks", {"lab"}}}));
    lab.start_shim();
    const AttachedNic stuck = lab.shim->attach("vm1", test::net("lab"));
    REQUIRE_FALSE(lab.guest_nic_at(stuck.pci).empty());

    lab.vm.set_paused(true);  // vm1's guest runs nothing: its unplug is never acknowledged
    std::atomic<bool> detach_returned = false;
    std::string detach_failure;
    std::thread detaching([&] {
        try {
            lab.shim->detach("vm1", stuck.endpoint);
        } catch (const ShimError& e) {
            detach_failure = e.what();
        }
        detach_returned = true;
    });
    REQUIRE(testing::wait_until([&] { return lab.shim->nics("vm1").front().phase == NicPhase::Detaching; }, std::chrono::seconds(10)));

    // vm2 at its own pace while vm1's unplug waits for a guest that does nothing.
    for (int round = 0; round < 3; ++round) {
        const AttachedNic nic = lab.shim->attach("vm2", test::net("lab"));
        CHECK(other.exec("ip -o link show " + nic.guest_if).exit_code == 0);
        lab.shim->detach("vm2", nic.endpoint);
    }
    CHECK(lab.shim->nics().size() == 1);  // the views answer too
    CHECK_FALSE(detach_returned);         // all of that while vm1's detach still waited

    lab.vm.set_paused(false);
    detaching.join();
    INFO("the detach said: " << detach_failure);
    if (!detach_failure.empty()) {  // it gave up before the guest woke: a retry finishes it
        CHECK_THAT(detach_failure, Catch::Contains("VM vm1 did not release NIC"));
        lab.shim->detach("vm1", stuck.endpoint);
    }
    CHECK(lab.shim->nics().empty());
    CHECK(lab.leftovers().find("bf") == std::string::npos);
}
