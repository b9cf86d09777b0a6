// The libvirt backend for real: a libvirtd (run in the test's host netns, where the shim makes
// TAPs) and a QEMU domain (TCG) behind a real OVS, through the same round trip as the qmp backend;
// and `brfusionctl vm prepare` against that libvirtd.

#include "brfusion/shim/backends/libvirt_xml.hpp"
#include "brfusion/shim/error.hpp"
#include "brfusion/testing/command.hpp"
#include "real_vm_lab.hpp"

#include <catch2/catch.hpp>

#include <fstream>

using namespace brfusion;
using namespace brfusion::shim;
using brfusion::shim::test::net;

TEST_CASE("libvirt: a real domain - the guest sees the NIC at the reported PCI address - ping and 10 MB of TCP to the gateway - "
          "a shim restart loses nothing - detach and reconcile leave nothing") {
    test::RealVmLab lab("libvirt");
    test::attach_traffic_restart_detach(lab);

    // Out of root ports: both hold a NIC now.
    lab.shim->attach("vm1", net("lab"));
    lab.shim->attach("vm1", net("lab"));
    try {
        lab.shim->attach("vm1", net("lab"));
        FAIL("a third NIC found a root port");
    } catch (const ShimError& error) {
        CHECK(error.kind() == ErrorKind::Exhausted);
        CHECK_THAT(error.what(), Catch::Contains("has no free PCIe root port") && Catch::Contains("brfusionctl vm prepare " + lab.vm.name()));
    }
    CHECK(lab.shim->nics("vm1").size() == 2);
    for (const auto& nic : lab.shim->nics("vm1")) lab.shim->detach("vm1", nic.endpoint);
    CHECK(lab.leftovers().empty());
}

TEST_CASE("libvirt: brfusionctl vm prepare adds spare root ports and the guest channel to a domain - idempotent") {
    testing::OvsSandbox host;  // only for a netns to run libvirtd in
    const std::string dir = "/tmp/brfusion-prepare-" + std::to_string(::getpid());
    testing::Libvirtd libvirtd(host.netns(), dir);
    const std::string name = "bf-prepare-" + std::to_string(::getpid());
    std::ofstream(dir + "/domain.xml") << "<domain type='qemu'><name>" << name
                                       << "</name><memory unit='MiB'>256</memory><os><type arch='x86_64' machine='q35'>hvm</type></os>"
                                          "<features><acpi/></features><devices/></domain>";
    testing::run_checked(std::string("virsh -c ") + testing::Libvirtd::kUri + " define " + dir + "/domain.xml");
    const std::string ctl = std::string(BRFUSION_CTL_BINARY) + " vm prepare " + name + " --ports 3 --connect " + testing::Libvirtd::kUri;
    CHECK_THAT(testing::run_checked(ctl + " --channel " + dir + "/vm.sock"),
               Catch::Contains("3 free PCIe root port(s)") && Catch::Contains("org.brfusion.shim.0 -> " + dir + "/vm.sock"));
    CHECK_THAT(testing::run_checked(ctl + " --channel " + dir + "/vm.sock"), Catch::Contains("3 free PCIe root port(s)"));
    const auto layout = libvirt_xml::read_layout(testing::run_checked(std::string("virsh -c ") + testing::Libvirtd::kUri + " dumpxml --inactive " + name));
    CHECK(layout.free_root_ports().size() == 3);
    CHECK(layout.channel == dir + "/vm.sock");
    const auto missing = testing::run(std::string(BRFUSION_CTL_BINARY) + " vm prepare no-such-domain --connect " + testing::Libvirtd::kUri);
    CHECK(missing.exit_code == 1);
    CHECK_THAT(missing.output, Catch::Contains("no-such-domain"));
    testing::run(std::string("virsh -c ") + testing::Libvirtd::kUri + " undefine " + name);
    std::filesystem::remove_all(dir);
}
