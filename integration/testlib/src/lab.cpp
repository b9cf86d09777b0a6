#include "brfusion/testing/lab.hpp"

#include "brfusion/testing/emulated_vm.hpp"
#include "brfusion/testing/libvirtd.hpp"
#include "brfusion/testing/qemu_vm.hpp"

#include <csignal>
#include <filesystem>
#include <fstream>
#include <future>
#include <stdexcept>

namespace brfusion::testing {

using nlohmann::json;

namespace {

// The lab's fixed addresses.
constexpr const char* kMgmtGateway = "192.0.2.129";
constexpr int kMgmtTag = 300;
// The host side of vmN's primary NIC, in the host netns.
std::string primary_port(int vm) { return "pvm" + std::to_string(vm); }
// Makes the host side of vmN's primary NIC only a port of OVS, as the shim does with its NICs'
// (tools::keep_out_of_host_stack): the host's kernel answers no ARP on it and takes no IPv4 or
// IPv6 from it, so the VM's traffic to the host goes through OVS to the mgmt gateway.
std::string keep_primary_port_out_of_host_stack(const std::string& host_netns, int vm) {
    const std::string port = primary_port(vm);
    return "ip netns exec " + host_netns + " sysctl -q -w net.ipv4.conf." + port + ".arp_ignore=8 net.ipv4.conf." + port +
           ".rp_filter=1 net.ipv6.conf." + port + ".disable_ipv6=1";
}
// Locally administered; the last byte is the VM's number.
std::string primary_mac(int vm) { return "02:bf:1a:b0:00:0" + std::to_string(vm); }

// In a VM's root netns: the primary NIC (found by MAC) as eth0 on mgmt with the default route.
// TX checksum offload off unless OVS takes it (userspace TSO): the userspace datapath needs real
// checksums, also on packets the VM forwards for its containers (Docker's bridge and NAT: the
// nested-NAT path).
std::string configure_primary(int vm, bool userspace_tso) {
    return "nic=$(ip -o link show | grep " + primary_mac(vm) + " | cut -d: -f2 | cut -d@ -f1 | tr -d ' ') && [ -n \"$nic\" ] && ip link set \"$nic\" down && "
           "{ [ \"$nic\" = eth0 ] || ip link set \"$nic\" name eth0; } && ip addr add " + Lab::primary_address(vm) + "/26 dev eth0 && "
           "ip link set eth0 up && ip route add default via " + std::string(kMgmtGateway) + (userspace_tso ? "" : " && ethtool -K eth0 tx off >/dev/null");
}

// --- netns VMs --------------------------------------------------------------------------------

class NetnsLabVm final : public LabVm {
public:
    NetnsLabVm(const Lab& lab, int number, const std::string& dir)
        : vm_(lab.options().name + "-vm" + std::to_string(number), dir, lab.options().docker_live_restore), plugin_(lab.options().binaries.plugin), channel_(channel(lab, number)) {
        run_checked("ip -n " + lab.host().netns() + " link add " + primary_port(number) + " type veth peer name bfprimary netns " + vm_.name() +
                    " && ip -n " + vm_.name() + " link set bfprimary address " + primary_mac(number) + " && " +
                    keep_primary_port_out_of_host_stack(lab.host().netns(), number) + " && ip -n " + lab.host().netns() + " link set " +
                    primary_port(number) + " up");
        const auto configured = vm_.exec(configure_primary(number, lab.options().userspace_tso));
        if (configured.exit_code != 0) throw std::runtime_error(vm_.name() + ": primary NIC: " + configured.output);
        vm_.start_plugin(plugin_, channel_);
    }
    static std::string channel(const Lab& lab, int number) { return "unix:" + lab.options().dir + "/run/vm-vm" + std::to_string(number) + ".sock"; }
    CommandResult exec(const std::string& command) override {
        return vm_.exec("export DOCKER_HOST=unix://" + vm_.dir() + "/docker.sock; " + command);
    }
    void restart_plugin(int signal) override {
        vm_.stop_plugin(signal);
        vm_.start_plugin(plugin_, channel_);
    }
    void restart_dockerd(int signal) override {
        vm_.stop_dockerd(signal);
        vm_.start_dockerd();
    }
    json status() override { return {{"name", vm_.name()}, {"netns", vm_.name()}, {"dir", vm_.dir()}}; }

private:
    EmulatedVm vm_;
    std::string plugin_, channel_;
};

// --- QEMU VMs ---------------------------------------------------------------------------------

class QemuLabVm final : public LabVm {
public:
    QemuLabVm(const Lab& lab, int number, const std::string& dir, const std::string& libvirt_uri)
        : plugin_(lab.options().binaries.plugin), dockerd_flags_(lab.options().docker_live_restore ? "--live-restore" : ""),
          vm_(boot(lab, number, dir, libvirt_uri)) {
        const auto configured = vm_.exec(configure_primary(number, lab.options().userspace_tso));
        if (configured.exit_code != 0) throw std::runtime_error(vm_.name() + ": primary NIC: " + configured.output);
        start_guest_dockerd(vm_, dockerd_flags_);
        load_guest_test_image(vm_, lab.options().dir);
        start_guest_plugin(vm_, plugin_);
    }
    CommandResult exec(const std::string& command) override { return vm_.exec(command, std::chrono::seconds(600)); }
    void restart_plugin(int signal) override {
        // -r: a process the agent started is reparented to guest-init, which leaves zombies.
        vm_.exec("pkill -" + std::to_string(signal) + " -x brfusion-plugin; while pgrep -r R,S,D -x brfusion-plugin >/dev/null; do sleep 0.1; done");
        start_guest_plugin(vm_, plugin_);
    }
    void restart_dockerd(int signal) override {
        vm_.exec("pkill -" + std::to_string(signal) + " -x dockerd; while pgrep -r R,S,D -x dockerd >/dev/null; do sleep 0.1; done");
        start_guest_dockerd(vm_, dockerd_flags_);
    }
    json status() override { return {{"name", vm_.name()}, {"boot_ms", vm_.boot_time().count()}, {"console", vm_dir_ + "/console.log"}}; }

private:
    QemuVm& boot(const Lab& lab, int number, const std::string& dir, const std::string& libvirt_uri) {
        vm_dir_ = dir;
        const std::string tap = primary_port(number);
        run_checked("ip -n " + lab.host().netns() + " tuntap add name " + tap + " mode tap && " +
                    keep_primary_port_out_of_host_stack(lab.host().netns(), number) + " && ip -n " + lab.host().netns() + " link set " + tap + " up");
        const QemuVmOptions options{lab.options().name + "-vm" + std::to_string(number), dir, lab.options().root_ports, 1536,
                                    lab.options().dir + "/run/vm-vm" + std::to_string(number) + ".sock", libvirt_uri,
                                    {tap, primary_mac(number), lab.host().netns()}};
        holder_ = std::make_unique<QemuVm>(options);
        return *holder_;
    }

    std::string plugin_;
    std::string dockerd_flags_;  // dockerd with Docker's own bridge and NAT: the nested-NAT baseline
    std::string vm_dir_;
    std::unique_ptr<QemuVm> holder_;
    QemuVm& vm_;
};

}  // namespace

struct Lab::Backing {
    std::unique_ptr<Libvirtd> libvirtd;
};

Lab::Lab(LabOptions options) : options_(std::move(options)), backing_(std::make_unique<Backing>()) {
    if (options_.dir.empty()) options_.dir = "/tmp/brfusion-lab/" + options_.name;
    if (options_.vms < 1 || options_.vms > 9) throw std::invalid_argument("a lab has 1-9 VMs, not " + std::to_string(options_.vms));
    if (options_.backend != "netns" && options_.backend != "qmp" && options_.backend != "libvirt")
        throw std::invalid_argument("backend " + options_.backend + " is not one of netns, qmp, libvirt");
    const std::string& name = options_.name;
    std::filesystem::remove_all(options_.dir);
    std::filesystem::create_directories(options_.dir + "/run");
    host_ = std::make_unique<OvsSandbox>(options_.dir + "/ovs", name + "-host");
    outside_ = std::make_unique<Netns>(name + "-outside");
    const std::string host_ns = host_->netns(), outside_ns = outside_->name();
    run_checked("ip -n " + host_ns + " link add up0 type veth peer name eth0 netns " + outside_ns + " && ip -n " + host_ns + " addr add " +
                kHostUplinkAddress + "/25 dev up0 && ip -n " + host_ns + " link set up0 up && ip -n " + outside_ns + " addr add " +
                kOutsideAddress + "/25 dev eth0 && ip -n " + outside_ns + " link set eth0 up && ip netns exec " + outside_ns +
                " ethtool -K eth0 tx off >/dev/null");
    std::filesystem::create_directories(options_.dir + "/outside-www");
    std::ofstream(options_.dir + "/outside-www/index.html") << "brfusion-outside-page\n";
    outside_http_.start({"ip", "netns", "exec", outside_ns, "busybox", "httpd", "-f", "-p", std::string(kOutsideAddress) + ":80", "-h",
                         options_.dir + "/outside-www"},
                        options_.dir + "/outside-httpd.log");
    outside_iperf_.start({"ip", "netns", "exec", outside_ns, "iperf3", "-s", "-B", kOutsideAddress}, options_.dir + "/outside-iperf3.log");

    json vms = json::array();
    for (int i = 1; i <= options_.vms; ++i) {
        json vm = {{"name", "vm" + std::to_string(i)}, {"networks", i == 1 ? json{"lab", "lab2"} : json{"lab"}}, {"hostlo_groups", {"*"}},
                   {"channel", options_.dir + "/run/vm-vm" + std::to_string(i) + ".sock"}, {"quotas", {{"nics", options_.nic_quota}}}};
        if (i == 1 && options_.warm_pool > 0) vm["warm_pool"] = {{"lab2", options_.warm_pool}};
        if (options_.backend == "netns") vm["netns"] = name + "-vm" + std::to_string(i);
        else if (options_.backend == "qmp") vm.update({{"backend", "qmp"}, {"qmp", options_.dir + "/vm" + std::to_string(i) + "/qmp.sock"}});
        else vm.update({{"backend", "libvirt"}, {"domain", name + "-vm" + std::to_string(i)}, {"libvirt_uri", Libvirtd::kUri}});
        vms.push_back(vm);
    }
    if (options_.userspace_tso) host_->enable_userspace_tso();
    const json config = {{"ovsdb", host_->db_socket()},
                         {"host_netns", host_ns},
                         {"userspace_tso", options_.userspace_tso},
                         {"uplink", "up0"},
                         {"state_dir", options_.dir + "/shim-state"},
                         {"run_dir", options_.dir + "/run"},
                         {"networks",
                          {{{"name", "lab"}, {"subnet", options_.lab_subnet}, {"tag", 100}},
                           {{"name", "lab2"}, {"subnet", "203.0.113.0/24"}, {"tag", 200}},
                           {{"name", "mgmt"}, {"subnet", "192.0.2.128/26"}, {"tag", kMgmtTag}}}},
                         {"hostlo", {{"range", "192.0.2.192/26"}}},
                         {"vms", vms}};
    std::ofstream(options_.dir + "/shim.json") << config.dump(2);
    // The shim first (it makes the bridge), the VMs second: reconcile defers VMs not running yet.
    start_shim();
    if (options_.backend == "libvirt") backing_->libvirtd = std::make_unique<Libvirtd>(host_ns, options_.dir + "/libvirtd");
    for (int i = 1; i <= options_.vms; ++i)
        host_->vsctl("--may-exist add-port br-int " + primary_port(i) + " tag=" + std::to_string(kMgmtTag) + " -- set Interface " +
                     primary_port(i) + " external_ids:lab-primary-nic=vm" + std::to_string(i));
    // The VMs come up side by side: under TCG a boot keeps one core busy for most of a minute.
    // What they share is made first: the test image's tarball.
    test_image_tarball(options_.dir);
    std::vector<std::future<std::unique_ptr<LabVm>>> booting;
    for (int i = 1; i <= options_.vms; ++i)
        booting.push_back(std::async(std::launch::async, [this, i]() -> std::unique_ptr<LabVm> {
            const std::string dir = options_.dir + "/vm" + std::to_string(i);
            if (options_.backend == "netns") return std::make_unique<NetnsLabVm>(*this, i, dir);
            return std::make_unique<QemuLabVm>(*this, i, dir, options_.backend == "libvirt" ? Libvirtd::kUri : "");
        }));
    std::exception_ptr failure;  // the first VM's that failed; every other VM is awaited, then torn down with the lab
    for (auto& vm : booting) {
        try {
            vms_.push_back(vm.get());
        } catch (...) {
            if (!failure) failure = std::current_exception();
        }
    }
    if (failure) std::rethrow_exception(failure);
}

Lab::~Lab() {
    vms_.clear();
    backing_.reset();
    shim_.stop(15);
    outside_iperf_.stop(9);
    outside_http_.stop(9);
    outside_.reset();
    host_.reset();
    std::error_code ignored;
    std::filesystem::remove_all(options_.dir, ignored);
}

void Lab::start_shim() {
    std::filesystem::remove(options_.dir + "/run/shim.sock");
    shim_.start({options_.binaries.shim, "--config", options_.dir + "/shim.json"}, options_.dir + "/shim.log");
    if (!wait_until([&] { return std::filesystem::exists(options_.dir + "/run/shim.sock"); }, std::chrono::seconds(20)))
        throw std::runtime_error("brfusion-shim did not start:\n" + shim_.log());
}

std::string Lab::ctl(const std::string& args) const { return run_checked(options_.binaries.ctl + " --socket " + options_.dir + "/run/shim.sock " + args); }

json Lab::shim_journal() const { return json::parse(run_checked(options_.binaries.ctl + " journal --state-dir " + options_.dir + "/shim-state")); }

LabVm& Lab::vm(const std::string& node) {
    for (int i = 1; i <= options_.vms; ++i)
        if (node == "vm" + std::to_string(i)) return *vms_[static_cast<std::size_t>(i - 1)];
    throw std::invalid_argument("no node " + node + " in lab " + options_.name + " (nodes: host, outside, vm1..vm" + std::to_string(options_.vms) + ")");
}

CommandResult Lab::exec(const std::string& node, const std::string& command) {
    if (node == "host") {
        // ovs-vsctl and ovs-appctl find the lab's OVS through OVS_RUNDIR; brfusionctl its shim.
        const std::string prelude = "export OVS_RUNDIR=" + host_->dir() + "; brfusionctl() { " + options_.binaries.ctl + " --socket " + options_.dir +
                                    "/run/shim.sock \"$@\"; }; ";
        return run("ip netns exec " + host_->netns() + " sh -c " + shell_quoted(prelude + command));
    }
    if (node == "outside") return run("ip netns exec " + outside_->name() + " sh -c " + shell_quoted(command));
    return vm(node).exec(command);
}

void Lab::restart(const std::string& node, const std::string& component) { restart(node, component, SIGTERM); }
void Lab::crash(const std::string& node, const std::string& component) { restart(node, component, SIGKILL); }

void Lab::restart(const std::string& node, const std::string& component, int signal) {
    if (node == "host" && component == "shim") {
        shim_.stop(signal);
        start_shim();
    } else if (node == "host" && component == "ovs") {
        host_->kill_vswitchd();
        host_->kill_db();
        host_->start_db();
        host_->start_vswitchd();
    } else if (node == "host" && component == "ovsdb-server") {
        host_->kill_db();
        host_->start_db();
    } else if (node == "host" && component == "ovs-vswitchd") {
        host_->kill_vswitchd();
        host_->start_vswitchd();
    } else if (node != "host" && node != "outside" && component == "plugin") {
        vm(node).restart_plugin(signal);
    } else if (node != "host" && node != "outside" && component == "dockerd") {
        vm(node).restart_dockerd(signal);
    } else {
        vm(node);  // names an unknown node
        throw std::invalid_argument("cannot restart " + component + " on " + node +
                                    ": a VM has plugin and dockerd, the host shim, ovs, ovsdb-server and ovs-vswitchd");
    }
}

json Lab::status() {
    json vms = json::object();
    for (int i = 1; i <= options_.vms; ++i) vms["vm" + std::to_string(i)] = vms_[static_cast<std::size_t>(i - 1)]->status();
    return {{"name", options_.name},
            {"backend", options_.backend},
            {"userspace_tso", options_.userspace_tso},
            {"dir", options_.dir},
            {"host", {{"netns", host_->netns()}, {"ovsdb", host_->db_socket()}, {"shim", shim_.running() ? "running" : "stopped"},
                      {"admin_socket", options_.dir + "/run/shim.sock"}}},
            {"outside", {{"netns", outside_->name()}, {"address", kOutsideAddress}}},
            {"vms", vms}};
}

}  // namespace brfusion::testing
