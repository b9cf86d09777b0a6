#pragma once
// RealVmLab: a host (private OVS sandbox) and one real QEMU VM (TCG) served by the shim's core,
// with the qmp backend (QEMU started directly) or the libvirt backend (a libvirt domain on a
// libvirtd run in the host netns). attach_traffic_restart_detach is the round trip every
// real-VM backend must pass.

#include "brfusion/shim/nic_manager.hpp"
#include "brfusion/testing/command.hpp"
#include "brfusion/testing/libvirtd.hpp"
#include "brfusion/testing/ovs_sandbox.hpp"
#include "brfusion/testing/qemu_vm.hpp"
#include "shim_core.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <thread>
#include <unistd.h>

namespace brfusion::shim::test {

struct RealVmLab : ShimCore {
    testing::OvsSandbox host;
    std::string dir = "/tmp/brfusion-vm-lab-" + std::to_string(::getpid());
    std::unique_ptr<testing::Libvirtd> libvirtd;  // libvirt only
    std::unique_ptr<testing::QemuVm> vm_holder;
    testing::QemuVm& vm;

    // `backend`: "qmp" or "libvirt". The VM has `root_ports` spare ports for hot-plug.
    explicit RealVmLab(const std::string& backend, int root_ports = 2) : vm(boot(backend, root_ports)) {
        nlohmann::json vm_config = {{"name", "vm1"}, {"backend", backend}, {"networks", {"lab"}}};
        if (backend == "qmp") vm_config["qmp"] = vm.qmp_socket();
        else vm_config.update({{"domain", vm.name()}, {"libvirt_uri", testing::Libvirtd::kUri}});
        config = parse_config({{"ovsdb", host.db_socket()},
                               {"host_netns", host.netns()},
                               {"state_dir", dir + "/state"},
                               {"networks", {{{"name", "lab"}, {"subnet", "198.51.100.0/24"}, {"tag", 100}, {"nat", false}}}},
                               {"vms", {vm_config}}});
    }
    ~RealVmLab() {
        stop_shim();
        vm_holder.reset();
        libvirtd.reset();
        std::filesystem::remove_all(dir);
    }
    // The guest's name for the NIC at `pci`, once its kernel has it ("" if it does not).
    std::string guest_nic_at(const std::string& pci) {
        std::string name;
        testing::wait_until(
            [&] {
                name = testing::trim_end(vm.exec("ls /sys/bus/pci/devices/" + pci + "/virtio*/net 2>/dev/null").output);
                return !name.empty();
            },
            std::chrono::seconds(10));
        return name;
    }
    // Open vSwitch takes the guests' offloads from now on, and so does the shim's next start.
    void use_userspace_tso() {
        host.enable_userspace_tso();
        config.userspace_tso = true;
    }
    // Addresses the guest's NIC `eth` as the plugin would, then pings the gateway and sends it
    // 10 MB of TCP.
    void traffic_to_gateway(const AttachedNic& nic, const std::string& eth) {
        vm.exec("ip addr add " + nic.ip.str() + "/24 dev " + eth + " && ip link set " + eth + " up");
        const auto ping = vm.exec("ping -c 3 -W 5 " + nic.gateway.str());
        INFO(ping.output);
        CHECK(ping.exit_code == 0);
        testing::run_checked("ip netns exec " + host.netns() + " iperf3 -s -1 -D -B " + nic.gateway.str());
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        const auto transfer = vm.exec("iperf3 -c " + nic.gateway.str() + " -n 10M", std::chrono::seconds(300));
        INFO(transfer.output);
        CHECK(transfer.exit_code == 0);
        CHECK_THAT(transfer.output, Catch::Contains("receiver"));
    }
    std::string leftovers() const {
        return host.vsctl("--bare --columns=name find Port external_ids:brfusion-endpoint!=none") +
               testing::run("ip -n " + host.netns() + " -o link show | grep -o ' bf[0-9a-f]*[:@]' || true").output;
    }

private:
    testing::QemuVm& boot(const std::string& backend, int root_ports) {
        testing::QemuVmOptions options{"vm1", dir + "/vm1", root_ports, 1024, "", "", {}};
        if (backend == "libvirt") {
            libvirtd = std::make_unique<testing::Libvirtd>(host.netns(), dir + "/libvirt");
            options.name = "bf-test-vm1-" + std::to_string(::getpid());  // a domain name unique on this libvirtd
            options.libvirt_uri = testing::Libvirtd::kUri;
        }
        vm_holder = std::make_unique<testing::QemuVm>(options);
        return *vm_holder;
    }
};

// Attach: the guest sees the MAC at the reported PCI address; a shim restart finds it intact;
// ping and 10 MB of TCP to the gateway; detach: the guest loses it and nothing is left; a NIC no
// journal knows is unplugged by the next start.
inline void attach_traffic_restart_detach(RealVmLab& lab) {

    INFO("console:\n" << lab.vm.console());
    lab.start_shim();
    const AttachedNic nic = lab.shim->attach("vm1", net("lab"));
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

    // As the plugin does at Join: TX checksums in the guest unless the host completes them. The
    // NIC keeps scatter-gather and GSO (its TAP has a vnet header, so the guest was offered
    // checksum offload; without it the guest's virtio-net turns both off).
    if (!nic.checksum_offload) CHECK(lab.vm.exec("ethtool -K " + eth + " tx off").exit_code == 0);
    const std::string offloads = lab.vm.exec("ethtool -k " + eth).output;
    CHECK_THAT(offloads, Catch::Contains("scatter-gather: on") && Catch::Contains("generic-segmentation-offload: on"));
    lab.traffic_to_gateway(nic, eth);

    lab.shim->detach("vm1", nic.endpoint);
    CHECK(lab.vm.exec("test -e /sys/class/net/" + eth).exit_code != 0);
    CHECK_THAT(lab.vm.exec("ls /sys/bus/pci/devices").output, !Catch::Contains("0000:01:00.0"));
    CHECK(lab.leftovers().empty());
    CHECK(Journal(lab.config.state_dir).load().ipam.leases("lab").empty());

    // A NIC in the VM that no journal knows (a journal moved away): the next start unplugs it.
    const AttachedNic lost = lab.shim->attach("vm1", net("lab"));
    lab.stop_shim();
    std::filesystem::remove_all(lab.config.state_dir);
    const ReconcileReport cleanup = lab.start_shim();
    CHECK(std::find(cleanup.orphans.begin(), cleanup.orphans.end(), "bf" + lost.endpoint) != cleanup.orphans.end());
    CHECK(lab.leftovers().empty());
    CHECK_THAT(lab.vm.exec("ls /sys/bus/pci/devices").output, !Catch::Contains("0000:01:00.0"));
}

}  // namespace brfusion::shim::test
