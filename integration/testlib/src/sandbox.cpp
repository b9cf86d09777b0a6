#include "brfusion/common/process.hpp"
#include "brfusion/testing/command.hpp"
#include "brfusion/testing/ovs_sandbox.hpp"

#include <atomic>
#include <unistd.h>

namespace brfusion::testing {

namespace {
std::string unique_suffix() {
    static std::atomic<int> counter{0};
    return std::to_string(::getpid()) + "-" + std::to_string(counter++);
}
}  // namespace

Netns::Netns() : Netns("bft-ns-" + unique_suffix()) {}

Netns::Netns(std::string name) : name_(std::move(name)) {
    run("ip netns del " + name_ + " 2>/dev/null");
    run_checked("ip netns add " + name_ + " && ip -n " + name_ + " link set lo up");
}

Netns::~Netns() { run("ip netns del " + name_); }

Netns::Result Netns::exec(const std::string& command) const {
    const ProcessResult result = run_process({"ip", "netns", "exec", name_, "sh", "-c", command});
    return {result.exit_code, result.output};
}

OvsSandbox::OvsSandbox() {
    const std::string suffix = unique_suffix();
    dir_ = "/tmp/brfusion-ovs-" + suffix;
    netns_ = "bft-ovs-" + suffix;
    start();
}

OvsSandbox::OvsSandbox(std::string dir, std::string netns) : dir_(std::move(dir)), netns_(std::move(netns)) {
    run(std::string(BRFUSION_OVS_SANDBOX) + " stop " + dir_ + " " + netns_);  // a previous run's
    start();
}

void OvsSandbox::start() {
    try {
        sandbox("start " + dir_ + " " + netns_);
    } catch (...) {
        run(std::string(BRFUSION_OVS_SANDBOX) + " stop " + dir_ + " " + netns_);
        throw;
    }
}

OvsSandbox::~OvsSandbox() { run(std::string(BRFUSION_OVS_SANDBOX) + " stop " + dir_ + " " + netns_); }

std::string OvsSandbox::sandbox(const std::string& args) const { return run_checked(std::string(BRFUSION_OVS_SANDBOX) + " " + args); }

std::string OvsSandbox::vsctl(const std::string& args) const {
    return run_checked("ovs-vsctl --timeout=10 --db=unix:" + db_socket() + " " + args);
}

std::string OvsSandbox::in_netns(const std::string& command) const { return run("ip netns exec " + netns_ + " " + command).output; }

void OvsSandbox::add_stub_uplink(const std::string& name, const std::string& address_cidr) const {
    const std::string ip = "ip -n " + netns_ + " ";
    run_checked(ip + "link add " + name + " type veth peer name " + name + "-peer && " + ip + "addr add " + address_cidr + " dev " + name + " && " + ip +
                "link set " + name + " up && " + ip + "link set " + name + "-peer up");
}

void OvsSandbox::kill_db() const { sandbox("kill-db " + dir_); }
void OvsSandbox::start_db() const { sandbox("start-db " + dir_ + " " + netns_); }
void OvsSandbox::enable_userspace_tso() const {
    vsctl("set Open_vSwitch . other_config:userspace-tso-enable=true");
    kill_vswitchd();
    start_vswitchd();
}

void OvsSandbox::kill_vswitchd() const { sandbox("kill-vswitchd " + dir_); }
void OvsSandbox::start_vswitchd() const { sandbox("start-vswitchd " + dir_ + " " + netns_); }

}  // namespace brfusion::testing
