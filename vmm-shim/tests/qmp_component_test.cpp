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
#include "shim_core.hpp"

#include <catch2/catch.hpp>

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

namespace {

// A host (OVS sandbox) and a QEMU VM served by the shim's core with the qmp backend.
struct QemuLab : test::ShimCore {
    testing::OvsSandbox host;
    std::string dir = "/tmp/brfusion-qmp-lab-" + std::to_string(::getpid());
    testing::QemuVm vm{{"vm1", dir + "/vm1", 2, 1024, ""}};

    QemuLab() {
        config = parse_config({{"ovsdb", host.db_socket()},
                               {"host_netns", host.netns()},
                               {"state_dir", dir + "/state"},
                               {"networks", {{{"name", "lab"}, {"subnet", "198.51.100.0/24"}, {"tag", 100}, {"nat", false}}}},
                               {"vms", {{{"name", "vm1"}, {"backend", "qmp"}, {"qmp", vm.qmp_socket()}, {"networks", {"lab"}}}}}});
    }
    ~QemuLab() {
        stop_shim();
        std::filesystem::remove_all(dir);
    }
    // The guest's name for the NIC at `pci`, once its kernel has it ("" if it does not).
    std::string guest_nic_at(const std::string& pci) {
        std::string name;
        testing::wait_until(
            [&] {
                name = vm.exec("ls /sys/bus/pci/devices/" + pci + "/virtio*/net 2>/dev/null").output;
                while (!name.empty() && name.back() == '\n') name.pop_back();
                return !name.empty();
            },
            std::chrono::seconds(10));
        return name;
    }
    std::string leftovers() const {
        return host.vsctl("--bare --columns=name find Port external_ids:brfusion-endpoint!=none") +
               testing::run("ip -n " + host.netns() + " -o link show | grep -o ' bf[0-9a-f]*[:@]' || true").output;
    }
};

}  // namespace

TEST_CASE("qmp: a real QEMU VM - the guest sees the NIC at the reported PCI address - ping and 10 MB of TCP to the gateway - "
          "a shim restart loses nothing - detach and reconcile leave nothing") {
    QemuLab lab;
    INFO("console:\n" << lab.vm.console());
    lab.start_shim();
    const AttachedNic nic = lab.shim->attach("vm1", "lab");
    REQUIRE(nic.pci == "0000:01:00.0");
    const std::string eth = lab.guest_nic_at(nic.pci);
    REQUIRE_FALSE(eth.empty());
    CHECK_THAT(lab.vm.exec("cat /sys/class/net/" + eth + "/address").output, Catch::Contains(nic.mac));
    CHECK_THAT(lab.vm.exec("cat /sys/class/net/" + eth + "/operstate").output, Catch::Contains("down"));
    CHECK_THAT(lab.host.vsctl("--bare --columns=name find Interface external_ids:brfusion-vm=vm1"), Catch::Contains(nic.endpoint));
    CHECK_THAT(lab.host.vsctl("get Interface bf" + nic.endpoint + " external_ids:attached-mac"), Catch::Contains(nic.mac));

    // A shim restart between attach and detach: the NIC is found intact, nothing is redone.
    const ReconcileReport report = lab.start_shim();
    CHECK(report.repaired.empty());
    CHECK(report.orphans.empty());
    CHECK(lab.shim->nics("vm1").at(0).pci == nic.pci);

    lab.vm.exec("ip addr add " + nic.ip.str() + "/24 dev " + eth + " && ip link set " + eth + " up");
    const auto ping = lab.vm.exec("ping -c 3 -W 5 " + nic.gateway.str());
    INFO(ping.output);
    CHECK(ping.exit_code == 0);
    testing::run_checked("ip netns exec " + lab.host.netns() + " iperf3 -s -1 -D -B " + nic.gateway.str());
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    const auto transfer = lab.vm.exec("iperf3 -c " + nic.gateway.str() + " -n 10M", std::chrono::seconds(300));
    INFO(transfer.output);
    CHECK(transfer.exit_code == 0);
    CHECK_THAT(transfer.output, Catch::Contains("receiver"));

    lab.shim->detach("vm1", nic.endpoint);
    CHECK(lab.vm.exec("test -e /sys/class/net/" + eth).exit_code != 0);
    CHECK_THAT(lab.vm.exec("ls /sys/bus/pci/devices").output, !Catch::Contains("0000:01:00.0"));
    CHECK(lab.leftovers().empty());
    CHECK(Journal(lab.config.state_dir).load().ipam.leases("lab").empty());

    // A NIC in the VM that no journal knows (a journal moved away): the next start unplugs it.
    const AttachedNic lost = lab.shim->attach("vm1", "lab");
    lab.stop_shim();
    std::filesystem::remove_all(lab.config.state_dir);
    const ReconcileReport cleanup = lab.start_shim();
    CHECK(std::find(cleanup.orphans.begin(), cleanup.orphans.end(), "bf" + lost.endpoint) != cleanup.orphans.end());
    CHECK(lab.leftovers().empty());
    CHECK_THAT(lab.vm.exec("ls /sys/bus/pci/devices").output, !Catch::Contains("0000:01:00.0"));
}
