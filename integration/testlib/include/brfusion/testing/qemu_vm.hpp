#pragma once
// QemuVm: a real QEMU VM for tests, the lab and benchmarks. q35 under TCG (KVM does not boot a
// guest on these machines), Debian's kernel with the initramfs of integration/guest, the host's
// root read-only over 9p under a tmpfs overlay (the guest runs the freshly built binaries), spare
// pcie-root-ports bfport1..N for hot-plug (ACPI hot-plug, the q35 default), a QMP socket, and
// virtio-serial ports: org.brfusion.exec.0 (the exec agent, for exec()) and, if asked,
// org.brfusion.shim.0 connected to the shim's guest channel for this VM.
//
// The VM's files (sockets, console log, initramfs) are in `dir`. The destructor stops QEMU.

#include "brfusion/testing/command.hpp"
#include "brfusion/testing/daemon.hpp"

#include <chrono>
#include <mutex>
#include <string>

namespace brfusion::testing {

// A NIC the VM has from boot (a cloud VM's primary NIC), on pcie.0: QEMU opens the existing TAP
// `tap` of network namespace `netns` (where QEMU then runs; with libvirt, where libvirtd runs).
struct PrimaryNic {
    std::string tap;
    std::string mac;
    std::string netns;
};

struct QemuVmOptions {
    std::string name;          // the guest's hostname
    std::string dir;           // made if missing
    int root_ports = 4;        // spare pcie-root-ports (1-112)
    int memory_mb = 1024;
    std::string shim_channel;  // the unix socket the shim listens on for this VM ("" = no guest channel)
    // "" = QEMU started directly (with a QMP socket); else a transient libvirt domain named `name`
    // on this libvirt (its libvirtd must run where the VM's TAPs will be: see Libvirtd). The same
    // machine either way.
    std::string libvirt_uri;
    PrimaryNic primary_nic;  // tap "" = none
};

class QemuVm {
public:
    // Boots the VM and waits for its exec agent. Throws std::runtime_error with the end of the
    // console log if it does not come up within 3 minutes.
    explicit QemuVm(QemuVmOptions options);
    ~QemuVm();
    QemuVm(const QemuVm&) = delete;
    QemuVm& operator=(const QemuVm&) = delete;

    const std::string& name() const { return options_.name; }
    std::string qmp_socket() const { return options_.dir + "/qmp.sock"; }  // without libvirt
    // How long the boot took, until the exec agent answered.
    std::chrono::milliseconds boot_time() const { return boot_time_; }
    // Runs `command` with sh in the guest (as root, in its root netns); stdout and stderr.
    // Throws std::runtime_error if the agent does not answer within `limit`. Thread-safe: the
    // agent takes one command at a time, so concurrent calls wait for each other.
    CommandResult exec(const std::string& command, std::chrono::seconds limit = std::chrono::seconds(120));
    std::string console() const;
    // Stops the guest's vCPUs (true), or lets them run again: a guest that does nothing and
    // acknowledges no unplug, while QEMU still answers the shim's monitor. Through a QMP monitor of
    // the test's own (or virsh suspend / resume). Throws std::runtime_error if QEMU refuses.
    void set_paused(bool paused);

private:
    QemuVmOptions options_;
    Daemon qemu_;
    int agent_ = -1;
    std::mutex agent_mutex_;  // one command at a time over the agent
    std::string buffer_;
    std::chrono::milliseconds boot_time_{0};
};

// Docker in a test guest: dockerd, containerd and the plugin are the host's own binaries, seen
// over the 9p root. Each throws std::runtime_error with the guest's log if it does not come up.
// containerd (unless it runs already, e.g. after a dockerd restart) and dockerd with
// `dockerd_flags`; returns once dockerd answers.
void start_guest_dockerd(QemuVm& vm, const std::string& dockerd_flags);
// The test image (test_image_tarball(image_dir), which the guest sees under the host's /tmp) as
// brfusion-test:latest.
void load_guest_test_image(QemuVm& vm, const std::string& image_dir);
// brfusion-plugin `binary` on the virtio-serial guest channel; returns once Docker can find it.
void start_guest_plugin(QemuVm& vm, const std::string& binary);

}  // namespace brfusion::testing
