#include "brfusion/testing/emulated_vm.hpp"

#include <filesystem>
#include <fstream>
#include <stdexcept>

#include <csignal>
#include <unistd.h>

namespace brfusion::testing {

std::string test_image_tarball(const std::string& dir) {
    const std::string tarball = dir + "/brfusion-test.tar";
    if (std::filesystem::exists(tarball)) return tarball;
    const std::string root = dir + "/image-root";
    run_checked("rm -rf " + root + " && mkdir -p " + root + "/bin " + root + "/www " + root + "/tmp && cp /bin/busybox " + root +
                "/bin/ && for applet in $(" + root + "/bin/busybox --list); do [ $applet = busybox ] || ln -s busybox " + root +
                "/bin/$applet; done && echo brfusion-test-page > " + root + "/www/index.html");
    // iperf3 with the libraries it links (copied at their paths), for UDP and bulk traffic.
    run_checked("cp /usr/bin/iperf3 " + root + "/bin/ && for lib in $(ldd /usr/bin/iperf3 | grep -o '/[^ ]*'); do mkdir -p " + root +
                "$(dirname $lib) && cp -L $lib " + root + "$lib; done && tar -C " + root + " -cf " + tarball + " .");
    return tarball;
}

EmulatedVm::EmulatedVm(std::string name, std::string dir, bool live_restore) : name_(std::move(name)), dir_(std::move(dir)), live_restore_(live_restore) {
    run("ip netns del " + name_ + " 2>/dev/null");
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    run_checked("ip netns add " + name_ + " && ip -n " + name_ + " link set lo up && mkdir -p /run/docker");
    // The holder: a process in the VM's netns with a private mount namespace whose /run/docker is
    // its own tmpfs. Everything else of the VM is entered with nsenter -t HOLDER -m -n.
    const std::string ready = dir_ + "/holder-ready";
    holder_.start({"nsenter", "--net=/run/netns/" + name_, "unshare", "--mount", "--propagation", "private", "sh", "-c",
                   "mount -t tmpfs tmpfs /run/docker && mkdir -p /run/docker/plugins && touch " + ready + " && exec sleep infinity"},
                  dir_ + "/holder.log");
    if (!wait_until([&] { return std::filesystem::exists(ready); }, std::chrono::seconds(10)))
        throw std::runtime_error("the VM's namespace holder did not start: " + holder_.log());
    start_dockerd();
    const auto imported =
        docker("import -c 'ENV PATH=/bin' " + test_image_tarball(std::filesystem::path(dir_).parent_path().string()) + " brfusion-test:latest");
    if (imported.exit_code != 0) throw std::runtime_error("cannot load the test image into " + name_ + ":\n" + imported.output);
}

EmulatedVm::~EmulatedVm() {
    if (dockerd_.running()) docker("rm -f $(/usr/bin/docker -H unix://" + dir_ + "/docker.sock ps -aq) >/dev/null 2>&1");
    plugin_.stop(SIGKILL);
    dockerd_.stop(SIGTERM);
    kill_processes_in_vm();
    holder_.stop(SIGKILL);
    run("ip netns del " + name_ + " 2>/dev/null");
    std::error_code ignored;  // the VM's mounts died with its mount namespace
    std::filesystem::remove_all(dir_, ignored);
}

// containerd (left running by a dockerd with --live-restore) and its shims share the holder's
// mount namespace: every such process goes.
void EmulatedVm::kill_processes_in_vm() {
    const std::string holder_ns = std::filesystem::read_symlink("/proc/" + std::to_string(holder_.pid()) + "/ns/mnt").string();
    for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
        const std::string pid = entry.path().filename().string();
        if (pid.find_first_not_of("0123456789") != std::string::npos || std::stoi(pid) == holder_.pid()) continue;
        std::error_code ec;
        if (std::filesystem::read_symlink(entry.path() / "ns/mnt", ec).string() == holder_ns) ::kill(std::stoi(pid), SIGKILL);
    }
}

CommandResult EmulatedVm::exec(const std::string& command) const {
    return run("nsenter -t " + std::to_string(holder_.pid()) + " -m -n sh -c " + shell_quoted(command));
}

CommandResult EmulatedVm::docker(const std::string& args) const { return exec("/usr/bin/docker -H unix://" + dir_ + "/docker.sock " + args); }

void EmulatedVm::start_dockerd() {
    // The containerd a dockerd starts dies with it (a moment later), but its pidfile stays; after
    // a crash (kill -9) it names a dying containerd, a zombie not yet reaped, or a process that
    // took the PID since (pid_max is 32768 here), and dockerd would wait for that "containerd"
    // until it gives up.
    const std::string containerd_pidfile = dir_ + "/exec/containerd/containerd.pid";
    if (std::string pid; std::ifstream(containerd_pidfile) >> pid) {
        const auto gone = [&] {
            std::string stat;  // PID (COMM) STATE ...
            std::getline(std::ifstream("/proc/" + pid + "/stat"), stat);
            return stat.find("(containerd) ") == std::string::npos || stat.find("(containerd) Z") != std::string::npos;
        };
        if (wait_until(gone, std::chrono::seconds(10))) std::filesystem::remove(containerd_pidfile);
    }
    const std::string holder = std::to_string(holder_.pid());
    std::vector<std::string> command = {"nsenter", "-t", holder, "-m", "-n", "dockerd", "-H", "unix://" + dir_ + "/docker.sock", "--data-root", dir_ + "/data",
                                        "--exec-root", dir_ + "/exec", "--pidfile", dir_ + "/docker.pid"};
    if (live_restore_) command.push_back("--live-restore");
    dockerd_.start(command, dir_ + "/dockerd.log");
    if (!wait_until([&] { return docker("version --format '{{.Server.Version}}'").exit_code == 0; }, std::chrono::seconds(60)))
        throw std::runtime_error("dockerd in " + name_ + " did not come up:\n" + dockerd_.log());
}

void EmulatedVm::stop_dockerd(int signal) { dockerd_.stop(signal); }

void EmulatedVm::start_plugin(const std::string& binary, const std::string& channel) {
    plugin_.start({"nsenter", "-t", std::to_string(holder_.pid()), "-m", "-n", binary, "--socket", "/run/docker/plugins/brfusion.sock",
                   "--channel", channel, "--state-dir", plugin_state_dir(), "--docker-socket", dir_ + "/docker.sock"},
                  dir_ + "/plugin.log");
    if (!wait_until([&] { return exec("test -S /run/docker/plugins/brfusion.sock").exit_code == 0; }, std::chrono::seconds(10)))
        throw std::runtime_error("brfusion-plugin in " + name_ + " did not start:\n" + plugin_.log());
}

void EmulatedVm::stop_plugin(int signal) { plugin_.stop(signal); }

}  // namespace brfusion::testing
