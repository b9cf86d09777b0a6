// The libvirt domain XML the libvirt backend reads and `brfusionctl vm prepare` writes; prepared
// definitions are checked by libvirt itself (its test driver, test:///default, which validates and
// defines domains without a daemon; it cannot hot-plug, so attach is tested with a real libvirtd).

#include "brfusion/shim/backends/libvirt_xml.hpp"
#include "brfusion/shim/error.hpp"

#include <catch2/catch.hpp>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include <memory>

using namespace brfusion;
using namespace brfusion::shim;
namespace lx = brfusion::shim::libvirt_xml;

namespace {

// A running q35 domain as libvirt reports it (trimmed): root ports 1-4; the serial controller
// behind port 2, a brfusion NIC behind port 3.
const std::string kLiveDomain = R"(<domain type='qemu' id='3'>
  <name>vm1</name>
  <features><acpi/><apic/></features>
  <devices>
    <controller type='pci' index='0' model='pcie-root'><alias name='pcie.0'/></controller>
    <controller type='pci' index='1' model='pcie-root-port'><address type='pci' domain='0x0000' bus='0x00' slot='0x10' function='0x0' multifunction='on'/></controller>
    <controller type='pci' index='2' model='pcie-root-port'><address type='pci' domain='0x0000' bus='0x00' slot='0x10' function='0x1'/></controller>
    <controller type='pci' index='3' model='pcie-root-port'><address type='pci' domain='0x0000' bus='0x00' slot='0x10' function='0x2'/></controller>
    <controller type='pci' index='4' model='pcie-root-port'><address type='pci' domain='0x0000' bus='0x00' slot='0x10' function='0x3'/></controller>
    <controller type='virtio-serial' index='0'><address type='pci' domain='0x0000' bus='0x02' slot='0x00' function='0x0'/></controller>
    <interface type='ethernet'>
      <mac address='02:aa:bb:cc:dd:ee'/><target dev='bf0123456789ab' managed='no'/><model type='virtio'/>
      <alias name='ua-bf-nic-bf0123456789ab'/>
      <address type='pci' domain='0x0000' bus='0x03' slot='0x00' function='0x0'/>
    </interface>
    <interface type='network'><source network='default'/><alias name='net0'/><address type='pci' domain='0x0000' bus='0x00' slot='0x05' function='0x0'/></interface>
    <channel type='unix'>
      <source mode='connect' path='/run/brfusion/vm-vm1.sock'/>
      <target type='virtio' name='org.brfusion.shim.0'/>
    </channel>
  </devices>
</domain>)";

// A minimal definition for libvirt's test driver, with no ports and no channel.
const std::string kBareDomain = R"(<domain type='test'>
  <name>bf-prepare-test</name>
  <memory unit='MiB'>256</memory>
  <os><type arch='x86_64' machine='q35'>hvm</type></os>
  <devices/>
</domain>)";

}  // namespace

TEST_CASE("libvirt XML: the layout says which root ports are free and which NICs are brfusion's") {
    const lx::DomainLayout layout = lx::read_layout(kLiveDomain);
    CHECK(layout.root_ports == std::vector<int>{1, 2, 3, 4});
    CHECK(layout.free_root_ports() == std::vector<int>{1, 4});
    CHECK(layout.interfaces.at("ua-bf-nic-bf0123456789ab") == 3);
    CHECK(layout.interfaces.at("net0") == 0);
    CHECK(lx::host_if_of_alias("ua-bf-nic-bf0123456789ab") == "bf0123456789ab");
    CHECK(lx::host_if_of_alias("net0").empty());
    CHECK(layout.acpi);
    CHECK(layout.channel == "/run/brfusion/vm-vm1.sock");
    CHECK(pci_address_behind_port(3) == "0000:03:00.0");
    CHECK_THROWS_WITH(lx::read_layout("<network/>"), Catch::Contains("not a libvirt domain XML"));
    CHECK_THROWS_AS(lx::read_layout("not xml"), ShimError);
}

TEST_CASE("libvirt XML: a NIC is an unmanaged ethernet interface on the TAP, aliased, at slot 0 of its port") {
    const std::string xml = lx::interface_xml({"bf0123456789ab", "", "02:aa:bb:cc:dd:ee", 1400}, 12);
    CHECK_THAT(xml, Catch::Contains("<interface type='ethernet'>"));
    CHECK_THAT(xml, Catch::Contains("<target dev='bf0123456789ab' managed='no'/>"));
    CHECK_THAT(xml, Catch::Contains("<mac address='02:aa:bb:cc:dd:ee'/>"));
    CHECK_THAT(xml, Catch::Contains("<mtu size='1400'/>"));
    CHECK_THAT(xml, !Catch::Contains("csum"));  // the guest is offered checksum offload (a vnet header): it keeps scatter-gather
    CHECK_THAT(xml, Catch::Contains("<alias name='ua-bf-nic-bf0123456789ab'/>"));
    CHECK_THAT(xml, Catch::Contains("bus='0x0c' slot='0x00' function='0x0'"));
    // As libvirt reports it back in the domain: found by its alias, on that bus.
    std::string domain = kLiveDomain;
    domain.insert(domain.find("</devices>"), xml);
    CHECK(lx::read_layout(domain).interfaces.at("ua-bf-nic-bf0123456789ab") == 12);
}

TEST_CASE("libvirt XML: prepare adds spare root ports and the guest channel - idempotent - libvirt accepts it") {
    const std::string once = lx::prepare_domain(kBareDomain, 3, "/run/brfusion/vm-a.sock");
    lx::DomainLayout layout = lx::read_layout(once);
    CHECK(layout.free_root_ports().size() == 3);
    CHECK(layout.channel == "/run/brfusion/vm-a.sock");

    const std::string twice = lx::prepare_domain(once, 3, "/run/brfusion/vm-b.sock");
    layout = lx::read_layout(twice);
    CHECK(layout.root_ports.size() == 3);  // enough already: none added
    CHECK(layout.channel == "/run/brfusion/vm-b.sock");  // moved, not doubled
    CHECK(std::count(twice.begin(), twice.end(), '\n') == std::count(once.begin(), once.end(), '\n'));
    CHECK(lx::read_layout(lx::prepare_domain(kLiveDomain, 4, "/x.sock")).free_root_ports() == std::vector<int>{1, 4, 5, 6});

    virSetErrorFunc(nullptr, [](void*, virErrorPtr) {});
    std::unique_ptr<virConnect, decltype(&virConnectClose)> test_driver(virConnectOpen("test:///default"), &virConnectClose);
    REQUIRE(test_driver);
    std::unique_ptr<virDomain, decltype(&virDomainFree)> defined(virDomainDefineXML(test_driver.get(), twice.c_str()), &virDomainFree);
    INFO((virGetLastErrorMessage() ? virGetLastErrorMessage() : "") << "\n" << twice);
    REQUIRE(defined);
    char* back = virDomainGetXMLDesc(defined.get(), VIR_DOMAIN_XML_INACTIVE);
    REQUIRE(back);
    const lx::DomainLayout stored = lx::read_layout(back);
    free(back);
    CHECK(stored.free_root_ports().size() == 3);
    CHECK(stored.channel == "/run/brfusion/vm-b.sock");
}
