#pragma once
// EmulatedVm: a "VM" made of namespaces, running a real dockerd: its own network namespace (where
// the shim's netns backend plugs NICs), its own mount namespace (so /run/docker, and with it
// /run/docker/plugins, is private), its own dockerd + containerd with data under a private
// directory, and the test image brfusion-test:latest (busybox). Constructed = dockerd answering;
// destroyed = containers, daemons, mounts, namespace and directory gone.

#include "brfusion/testing/command.hpp"
#include "brfusion/testing/daemon.hpp"

#include <string>

namespace brfusion::testing {

// The test image's tarball (busybox, every applet linked in /bin, /www/index.html), for `docker
// import -c 'ENV PATH=/bin' TARBALL brfusion-test:latest`. Built once in `dir`.
std::string test_image_tarball(const std::string& dir);

class EmulatedVm {
public:
    // `name` (unique on the machine) names the network namespace; `dir` is created and owned.
    // `live_restore`: dockerd runs with --live-restore (without, it may join a swarm).
    // Throws std::runtime_error with dockerd's log if Docker does not come up.
    EmulatedVm(std::string name, std::string dir, bool live_restore = true);
    ~EmulatedVm();
    EmulatedVm(const EmulatedVm&) = delete;
    EmulatedVm& operator=(const EmulatedVm&) = delete;

    const std::string& name() const { return name_; }
    const std::string& dir() const { return dir_; }
    // Runs `command` (sh -c) inside the VM's network and mount namespaces.
    CommandResult exec(const std::string& command) const;
    // `docker ARGS` against this VM's dockerd (Debian's CLI, /usr/bin/docker).
    CommandResult docker(const std::string& args) const;

    void start_dockerd();  // waits until it answers
    void stop_dockerd(int signal = 15);  // containers keep running (with live_restore)
    // brfusion-plugin on /run/docker/plugins/brfusion.sock, talking to the shim at `channel`.
    void start_plugin(const std::string& binary, const std::string& channel);
    void stop_plugin(int signal = 15);
    std::string plugin_log() const { return plugin_.log(); }
    std::string dockerd_log() const { return dockerd_.log(); }
    std::string plugin_state_dir() const { return dir_ + "/plugin-state"; }

private:
    void kill_processes_in_vm();
    std::string name_;
    std::string dir_;
    bool live_restore_;
    Daemon holder_;  // holds the mount namespace
    Daemon dockerd_;
    Daemon plugin_;
};

}  // namespace brfusion::testing
