// The lab command's contract (integration/lab, i.e. brfusion-lab): up, exec (output and exit
// code), restart, status and down, and their refusals, on a 1-VM netns lab.

#include "brfusion/testing/command.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <unistd.h>

using namespace brfusion;
using Catch::Contains;

TEST_CASE("lab command: up - exec - restart - status - down - and what each refuses") {
    const std::string name = "bflc" + std::to_string(::getpid() % 100000);
    const std::string lab = std::string(BRFUSION_LAB_BINARY) + " ";
    const auto up = testing::run(lab + "up --vms 1 --name " + name);
    INFO(up.output);
    REQUIRE(up.exit_code == 0);
    CHECK_THAT(up.output, Contains("lab " + name + " is up"));
    CHECK_THAT(testing::run(lab + "up --name " + name).output, Contains("is up already"));

    // exec: output and exit code of the command, on every kind of node.
    CHECK(testing::run(lab + "exec " + name + " vm1 -- docker run --rm brfusion-test echo from-a-container").output == "from-a-container\n");
    CHECK(testing::run(lab + "exec " + name + " vm1 -- 'exit 3'").exit_code == 3);
    CHECK_THAT(testing::run(lab + "exec " + name + " host -- brfusionctl vms").output, Contains("vm1"));
    CHECK_THAT(testing::run(lab + "exec " + name + " host -- ovs-vsctl br-exists br-int && echo bridge").output, Contains("bridge"));
    CHECK(testing::run(lab + "exec " + name + " outside -- ip -4 -o addr show eth0").output.find("192.0.2.2/25") != std::string::npos);
    const auto unknown = testing::run(lab + "exec " + name + " vm7 -- true");
    CHECK(unknown.exit_code == 1);
    CHECK_THAT(unknown.output, Contains("no node vm7 in lab " + name));

    CHECK(testing::run(lab + "restart " + name + " vm1 plugin").exit_code == 0);
    CHECK(testing::run(lab + "restart " + name + " host shim").exit_code == 0);
    CHECK_THAT(testing::run(lab + "restart " + name + " vm1 shim").output, Contains("cannot restart shim on vm1"));
    const auto status = nlohmann::json::parse(testing::run_checked(lab + "status " + name));
    CHECK(status["backend"] == "netns");
    CHECK(status["host"]["shim"] == "running");
    CHECK(status["vms"]["vm1"]["netns"] == name + "-vm1");

    const auto down = testing::run(lab + "down " + name);
    INFO(down.output);
    CHECK(down.exit_code == 0);
    CHECK_THAT(testing::run(lab + "status " + name).output, Contains("lab " + name + " is not up"));
    CHECK(testing::run("ip netns list | grep -c '^" + name + "-' || true").output == "0\n");
    CHECK_FALSE(std::filesystem::exists("/tmp/brfusion-lab/" + name));
}
