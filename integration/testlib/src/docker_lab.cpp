#include "brfusion/testing/docker_lab.hpp"

#include "brfusion/testing/command.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include <unistd.h>

namespace brfusion::testing {

using nlohmann::json;

DockerLab::DockerLab(LabBinaries lab_binaries, std::string lab_dir, int vm1_spares) : binaries(std::move(lab_binaries)), dir(std::move(lab_dir)) {
    std::filesystem::create_directories(dir);
    const std::string suffix = std::to_string(::getpid());
    vm1 = std::make_unique<EmulatedVm>("bfe-vm1-" + suffix, dir + "/vm1");
    vm2 = std::make_unique<EmulatedVm>("bfe-vm2-" + suffix, dir + "/vm2");
    host.add_stub_uplink("up0", std::string(kUplinkAddress) + "/25");
    json config = {{"ovsdb", host.db_socket()},
                         {"host_netns", host.netns()},
                         {"uplink", "up0"},
                         {"state_dir", dir + "/shim-state"},
                         {"run_dir", dir + "/run"},
                         {"networks", {{{"name", "lab"}, {"subnet", "198.51.100.0/24"}, {"tag", 100}},
                                       {{"name", "lab2"}, {"subnet", "203.0.113.0/24"}, {"tag", 200}}}},
                         {"hostlo", {{"range", "192.0.2.128/25"}}},
                         {"vms", {{{"name", "vm1"}, {"netns", vm1->name()}, {"networks", {"lab", "lab2"}}, {"hostlo_groups", {"pod*"}}},
                                  {{"name", "vm2"}, {"netns", vm2->name()}, {"networks", {"lab"}}, {"hostlo_groups", {"pod*"}}}}}};
    if (vm1_spares) config["vms"][0]["warm_pool"] = {{"lab", vm1_spares}};
    std::ofstream(dir + "/shim.json") << config.dump(2);
    start_shim();
    start_plugin(*vm1);
    start_plugin(*vm2);
}

DockerLab::~DockerLab() {
    vm1.reset();
    vm2.reset();
    shim.stop(15);
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
}

void DockerLab::start_shim() {
    shim.start({binaries.shim, "--config", dir + "/shim.json"}, dir + "/shim.log");
    if (!wait_until([&] { return std::filesystem::exists(dir + "/run/shim.sock"); }, std::chrono::seconds(10))) throw std::runtime_error("brfusion-shim did not start:\n" + shim.log());
}

void DockerLab::start_plugin(EmulatedVm& vm) {
    const std::string name = &vm == vm1.get() ? "vm1" : "vm2";
    vm.start_plugin(binaries.plugin, "unix:" + dir + "/run/vm-" + name + ".sock");
}

std::string DockerLab::ctl(const std::string& args) const { return run_checked(binaries.ctl + " --socket " + dir + "/run/shim.sock " + args); }

nlohmann::json DockerLab::shim_journal() const { return nlohmann::json::parse(run_checked(binaries.ctl + " journal --state-dir " + dir + "/shim-state")); }

}  // namespace brfusion::testing
