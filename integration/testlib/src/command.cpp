#include "brfusion/testing/command.hpp"

#include "brfusion/common/process.hpp"

#include <sstream>
#include <stdexcept>
#include <thread>
#include <unistd.h>

namespace brfusion::testing {

CommandResult run(const std::string& command) {
    const ProcessResult result = run_process({"/bin/sh", "-c", command});
    return {result.exit_code, result.output};
}

bool wait_until(const std::function<bool()>& condition, std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!condition()) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return true;
}

std::string trim_end(std::string text) {
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
    return text;
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);)
        if (!line.empty()) lines.push_back(line);
    return lines;
}

std::string shell_quoted(const std::string& text) {
    std::string quoted = "'";
    for (char c : text) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return quoted + "'";
}

std::string run_checked(const std::string& command) {
    CommandResult result = run(command);
    if (result.exit_code != 0)
        throw std::runtime_error("command failed (exit " + std::to_string(result.exit_code) + "): " + command + "\n" + result.output);
    return result.output;
}

std::optional<std::string> missing_prerequisite(const std::vector<std::string>& needs) {
    auto has = [](const char* tool) { return run(std::string("command -v ") + tool).exit_code == 0; };
    for (const auto& need : needs) {
        if (need == "root" && ::geteuid() != 0) return "needs root (network namespaces, OVS daemons)";
        if (need == "ovs" && !(has("ovsdb-server") && has("ovs-vswitchd") && has("ovs-vsctl") && has("ovs-ofctl")))
            return "needs Open vSwitch (ovsdb-server, ovs-vswitchd, ovs-vsctl, ovs-ofctl): run packaging/install-deps.sh";
        if (need == "nft" && !has("nft")) return "needs nftables (nft): run packaging/install-deps.sh";
        if (need == "netns" && run("ip netns list").exit_code != 0) return "needs 'ip netns' (iproute2) and network namespace support";
        if (need == "docker" && !(has("dockerd") && has("containerd") && has("runc") && has("/usr/bin/docker") && has("busybox") && has("nsenter")))
            return "needs Docker (dockerd, containerd, runc, /usr/bin/docker), busybox and nsenter: run packaging/install-deps.sh";
        if (need == "libvirt" && !(has("libvirtd") && has("virtlogd") && has("virsh")))
            return "needs libvirt (libvirtd, virtlogd, virsh): run packaging/install-deps.sh";
        // Whether one answers, not whether a process has the name: a test's libvirtd that was just
        // stopped can linger as a zombie until PID 1 reaps it.
        if (need == "libvirt" && run("virsh -c qemu:///system version").exit_code == 0)
            return "a libvirtd answers already at qemu:///system; the libvirt tests start their own inside their host netns (it opens the TAPs there): stop it first";
        if (need == "qemu" && !(has("qemu-system-x86_64") && has("cpio") && run("ls /boot/vmlinuz-*").exit_code == 0))
            return "needs QEMU (qemu-system-x86_64), cpio and a Debian kernel in /boot (linux-image-amd64): run packaging/install-deps.sh";
    }
    return std::nullopt;
}

}  // namespace brfusion::testing
