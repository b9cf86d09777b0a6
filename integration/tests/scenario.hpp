#pragma once
// Scenario: a Lab for one test, named after the test process, for BRFUSION_LAB_BACKEND, with the
// helpers the end-to-end scenarios share: a command that must succeed (showing the network's
// state when it does not), container addresses, and traffic checks.

#include "brfusion/testing/command.hpp"
#include "brfusion/testing/lab.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <string>
#include <unistd.h>

namespace brfusion::testing::scenarios {

struct Scenario {
    testing::Lab lab{options()};

    static testing::LabOptions options() {
        testing::LabOptions options;
        options.name = "bfl" + std::to_string(::getpid() % 100000);
        options.backend = BRFUSION_LAB_BACKEND;
        options.binaries = {BRFUSION_SHIM_BINARY, BRFUSION_CTL_BINARY, BRFUSION_PLUGIN_BINARY};
        return options;
    }

    // CMD on NODE, which must succeed; its output. A failure also shows the network as it was.
    std::string ok(const std::string& node, const std::string& command) {
        const auto result = lab.exec(node, command);
        INFO(node << "$ " << command << "\n" << result.output << (result.exit_code == 0 ? "" : network_state(node)));
        REQUIRE(result.exit_code == 0);
        return testing::trim_end(result.output);
    }
    // What tells a lost packet's whereabouts: a VM's neighbours and primary NIC counters, the
    // counters of that NIC's host side (pvmN: what QEMU handed the host), the host's neighbours
    // and OVS's port counters.
    std::string network_state(const std::string& node) {
        std::string state;
        const auto show = [&](const std::string& where, const std::string& command) {
            state += "\n--- " + where + "$ " + command + "\n" + lab.exec(where, command).output;
        };
        if (node.rfind("vm", 0) == 0) {
            show(node, "ip neigh; ip -s link show eth0");
            show("host", "ip -s link show p" + node);
        }
        show("host", "ip neigh; ovs-ofctl --names dump-ports br-int");
        return state;
    }
    int code(const std::string& node, const std::string& command) { return lab.exec(node, command).exit_code; }
    std::string ip_of(const std::string& vm, const std::string& container, const std::string& network) {
        return ok(vm, "docker inspect -f '{{(index .NetworkSettings.Networks \"" + network + "\").IPAddress}}' " + container);
    }
    // The container's traffic works: to a container of the other VM, and out through host NAT.
    void check_traffic(const std::string& server_ip) {
        CHECK(ok("vm2", "docker exec c2 wget -qO- http://" + server_ip + "/") == "brfusion-test-page");
        CHECK(ok("vm2", "docker exec c2 wget -qO- http://" + std::string(testing::Lab::kOutsideAddress) + "/") == "brfusion-outside-page");
    }
};
}  // namespace brfusion::testing::scenarios
