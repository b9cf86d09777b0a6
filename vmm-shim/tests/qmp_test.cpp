// The QMP client against a scripted monitor that sends decoy events before every reply, and the
// parsing of QEMU's PCI topology. No root, no QEMU: the qmp backend against the same fake (TAPs
// need root) and against a real QEMU VM are component tests.

#include "brfusion/shim/backends/qmp_backend.hpp"
#include "brfusion/shim/backends/qmp_client.hpp"
#include "fake_qemu.hpp"

#include <catch2/catch.hpp>

#include <unistd.h>

using namespace brfusion;
using namespace brfusion::shim;
using nlohmann::json;

namespace {

std::string socket_path() { return "/tmp/brfusion-qmp-test-" + std::to_string(::getpid()) + ".sock"; }

}  // namespace

TEST_CASE("the QMP client matches replies by id - keeps events that arrive meanwhile - and waits for the one asked for") {
    test::FakeQemu qemu(socket_path(), 2);
    QmpClient qmp("vm1", socket_path(), std::chrono::seconds(5));
    const json pci = qmp.execute("query-pci");
    CHECK(root_ports(pci).size() == 2);

    // No device named "bf-nic-a" was ever deleted: the decoys (another device's DEVICE_DELETED,
    // one without a device) must not satisfy the wait, and the wait ends at its deadline.
    const auto soon = QmpClient::Clock::now() + std::chrono::milliseconds(300);
    const auto is_ours = [](const json& data) { return data.value("device", "") == "bf-nic-a"; };
    CHECK_THROWS_WITH(qmp.wait_event("DEVICE_DELETED", is_ours, soon), Catch::Contains("vm1") && Catch::Contains("no DEVICE_DELETED event in time"));
    // A decoy it kept is still there for a wait that wants it.
    CHECK(qmp.wait_event("DEVICE_DELETED", [](const json& data) { return data.value("device", "") == "somebody-else"; },
                         QmpClient::Clock::now() + std::chrono::seconds(1))
              .value("path", "") == "/machine/peripheral/somebody-else");
    // The connection survived the missed deadline.
    CHECK(qmp.execute("qom-list", {{"path", "/machine/peripheral"}}).size() == 3);
}

TEST_CASE("the QMP client reports QEMU's errors with their class - and names the VM and the command") {
    test::FakeQemu qemu(socket_path(), 1);
    QmpClient qmp("vm1", socket_path(), std::chrono::seconds(5));
    try {
        qmp.execute("device_del", {{"id", "nothing"}});
        FAIL("device_del of an unknown device succeeded");
    } catch (const QmpError& error) {
        CHECK(error.error_class() == "DeviceNotFound");
        CHECK(std::string(error.what()) == "VM vm1: device_del failed: Device 'nothing' not found");
    }
    CHECK_THROWS_WITH(qmp.execute("no-such-command"), Catch::Contains("CommandNotFound") || Catch::Contains("has not been found"));
}

TEST_CASE("the QMP client says how to fix a missing monitor - and connects once it exists") {
    ::unlink(socket_path().c_str());
    QmpClient qmp("vm1", socket_path(), std::chrono::seconds(2));
    CHECK_THROWS_WITH(qmp.execute("query-pci"), Catch::Contains("VM vm1: QMP " + socket_path() + ": cannot connect") &&
                                                     Catch::Contains("-qmp unix:" + socket_path() + ",server=on,wait=off"));
    test::FakeQemu qemu(socket_path(), 1);
    CHECK(root_ports(qmp.execute("query-pci")).size() == 1);
}

TEST_CASE("root ports come from query-pci as QEMU 7.2 reports them: bridges with an id on bus 0, with what they hold") {
    // Trimmed from a real q35 VM: two spare root ports, one holding a NIC, plus devices that are
    // not hot-plug ports (a bridge without an id, the ISA bridge).
    const json pci = json::parse(R"([{"bus": 0, "devices": [
        {"bus": 0, "slot": 16, "function": 0, "qdev_id": "bfport1",
         "pci_bridge": {"bus": {"number": 0, "secondary": 1, "subordinate": 1}, "devices": [
            {"bus": 1, "slot": 0, "function": 0, "qdev_id": "bf-nic-bfabc"}]}},
        {"bus": 0, "slot": 17, "function": 0, "qdev_id": "bfport2",
         "pci_bridge": {"bus": {"number": 0, "secondary": 2, "subordinate": 2}}},
        {"bus": 0, "slot": 30, "function": 0, "qdev_id": "",
         "pci_bridge": {"bus": {"number": 0, "secondary": 3, "subordinate": 3}, "devices": []}},
        {"bus": 0, "slot": 31, "function": 0, "qdev_id": ""}]}])");
    const auto ports = root_ports(pci);
    REQUIRE(ports.size() == 2);
    CHECK(ports[0].id == "bfport1");
    CHECK(ports[0].devices == std::vector<std::string>{"bf-nic-bfabc"});
    CHECK(pci_address_behind_port(ports[0].bus) == "0000:01:00.0");
    CHECK(ports[1].id == "bfport2");
    CHECK(ports[1].devices.empty());
    CHECK(pci_address_behind_port(ports[1].bus) == "0000:02:00.0");
}
