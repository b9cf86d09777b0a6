#pragma once
// Running shell commands from tests and benchmarks.

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace brfusion::testing {

struct CommandResult {
    int exit_code = -1;
    std::string output;  // stdout and stderr, interleaved
};

// Runs `command` with /bin/sh -c and captures its output.
CommandResult run(const std::string& command);
// Polls `condition` every 50 ms until it holds (true) or `limit` has passed (false).
bool wait_until(const std::function<bool()>& condition, std::chrono::milliseconds limit);

// `text` without the newlines and spaces at its end: a command's output as a value.
std::string trim_end(std::string text);
// The non-empty lines of `text`: a command's output as a list.
std::vector<std::string> lines_of(const std::string& text);

// `text` as one sh word: in single quotes, each ' written as '\''.
std::string shell_quoted(const std::string& text);

// Like run(), but throws std::runtime_error with the command and its output on a non-zero exit.
std::string run_checked(const std::string& command);

// Why a test needing `needs` cannot run here, or nullopt if it can. Known needs: "root", "ovs"
// (ovsdb-server, ovs-vswitchd, ovs-vsctl, ovs-ofctl), "netns" (ip netns), "nft" (nftables),
// "docker" (dockerd, containerd, runc, Debian's docker CLI, busybox: see EmulatedVm), "qemu"
// (qemu-system-x86_64 and a guest kernel: see QemuVm), "libvirt" (libvirtd, virtlogd, virsh, and no
// libvirtd running already: see Libvirtd).
std::optional<std::string> missing_prerequisite(const std::vector<std::string>& needs);

}  // namespace brfusion::testing
