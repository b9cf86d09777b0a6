#include "host_tools.hpp"

#include "brfusion/common/process.hpp"
#include "brfusion/shim/error.hpp"

#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <thread>

namespace brfusion::shim::tools {

namespace {

std::vector<std::string> ip_argv(const std::string& netns, const std::vector<std::string>& args) {
    std::vector<std::string> argv = {"ip"};
    if (!netns.empty()) argv.insert(argv.end(), {"-n", netns});
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
}

// Runs `work` inside `netns` ("" = the shim's own) on a thread of its own, so that the caller's
// thread never changes namespace. `work` returns what failed, or "" on success; so does this.
std::string in_netns(const std::string& netns, const std::function<std::string()>& work) {
    std::string failure;
    std::thread([&] {
        if (!netns.empty()) {
            const int ns = ::open(("/run/netns/" + netns).c_str(), O_RDONLY | O_CLOEXEC);
            if (ns < 0 || ::setns(ns, CLONE_NEWNET) != 0) {
                failure = "cannot enter netns " + netns + ": " + std::strerror(errno);
                if (ns >= 0) ::close(ns);
                return;
            }
            ::close(ns);
        }
        failure = work();
    }).join();
    return failure;
}

// Writes `value` to /proc/sys/`key` (the calling thread's netns); what failed, or "".
std::string write_sysctl(const std::string& key, const std::string& value) {
    const std::string path = "/proc/sys/" + key;
    const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    const bool written = fd >= 0 && ::write(fd, value.data(), value.size()) == static_cast<ssize_t>(value.size());
    const std::string failure = written ? "" : "cannot set " + path + " to " + value + ": " + std::strerror(errno);
    if (fd >= 0) ::close(fd);
    return failure;
}

}  // namespace

std::string run(const std::string& netns, const std::vector<std::string>& command, const std::string& input) {
    std::vector<std::string> argv;
    if (!netns.empty()) argv = {"ip", "netns", "exec", netns};
    argv.insert(argv.end(), command.begin(), command.end());
    const ProcessResult result = run_process(argv, input);
    if (result.exit_code == 0) return result.output;
    std::string text;
    for (const auto& arg : argv) text += (text.empty() ? "" : " ") + arg;
    std::string output = result.output;
    while (!output.empty() && output.back() == '\n') output.pop_back();
    throw ShimError(ErrorKind::Backend, "'" + text + "' failed: " + output);
}

void ip(const std::string& netns, const std::vector<std::string>& args) { run("", ip_argv(netns, args)); }

bool link_exists(const std::string& netns, const std::string& name) {
    return run_process(ip_argv(netns, {"link", "show", "dev", name})).exit_code == 0;
}

void ensure_tap(const std::string& netns, const std::string& name, int mtu) {
    if (!link_exists(netns, name)) ip(netns, {"tuntap", "add", "dev", name, "mode", "tap"});
    keep_out_of_host_stack(netns, name);
    ip(netns, {"link", "set", name, "mtu", std::to_string(mtu), "up"});
}

void keep_out_of_host_stack(const std::string& netns, const std::string& name) {
    const std::string failure = in_netns(netns, [&]() -> std::string {
        for (const auto& [key, value] : {std::pair{"net/ipv4/conf/" + name + "/arp_ignore", "8"},  // answer no ARP request on it
                                         std::pair{"net/ipv4/conf/" + name + "/rp_filter", "1"}})  // drop IPv4 from it: no route leads there
            if (auto failed = write_sysctl(key, value); !failed.empty()) return failed;
        // No IPv6 on it (no link-local address, no neighbour discovery), where the kernel has IPv6.
        if (!std::filesystem::exists("/proc/sys/net/ipv6/conf/" + name)) return "";
        return write_sysctl("net/ipv6/conf/" + name + "/disable_ipv6", "1");
    });
    if (!failure.empty()) throw ShimError(ErrorKind::Backend, "cannot keep " + name + " out of the host's IP stack: " + failure);
}

void delete_link(const std::string& netns, const std::string& name) {
    if (link_exists(netns, name)) ip(netns, {"link", "del", name});
}

int open_tap(const std::string& netns, const std::string& name) {
    int tap = -1;
    const std::string failure = in_netns(netns, [&]() -> std::string {
        const int fd = ::open("/dev/net/tun", O_RDWR | O_CLOEXEC);
        if (fd < 0) return std::string("cannot open /dev/net/tun: ") + std::strerror(errno);
        ifreq request{};
        std::strncpy(request.ifr_name, name.c_str(), IFNAMSIZ - 1);
        request.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
        if (::ioctl(fd, TUNSETIFF, &request) != 0) {
            const std::string error = "cannot open TAP " + name + ": " + std::strerror(errno);
            ::close(fd);
            return error;
        }
        tap = fd;
        return "";
    });
    if (tap < 0) throw ShimError(ErrorKind::Backend, failure);
    return tap;
}

std::string read_in_netns(const std::string& netns, const std::string& path) {
    std::string text;
    const std::string failure = in_netns(netns, [&]() -> std::string {
        std::ifstream file(path);
        if (!file) return "cannot read " + path + ": " + std::strerror(errno);
        std::ostringstream contents;
        contents << file.rdbuf();
        text = contents.str();
        return "";
    });
    if (!failure.empty()) throw ShimError(ErrorKind::Backend, failure);
    return text;
}

void disable_tx_offload(const std::string& netns, const std::string& name) { run(netns, {"ethtool", "-K", name, "tx", "off"}); }

}  // namespace brfusion::shim::tools
