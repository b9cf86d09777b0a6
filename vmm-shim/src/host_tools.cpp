#include "iproute.hpp"

#include "brfusion/common/process.hpp"
#include "brfusion/shim/error.hpp"

namespace brfusion::shim::iproute {

namespace {

std::vector<std::string> in_netns(const std::string& netns, std::vector<std::string> argv) {
    if (netns.empty()) return argv;
    std::vector<std::string> wrapped = {"ip", "netns", "exec", netns};
    wrapped.insert(wrapped.end(), argv.begin(), argv.end());
    return wrapped;
}

void run_checked(const std::vector<std::string>& argv) {
    const ProcessResult result = run_process(argv);
    if (result.exit_code == 0) return;
    std::string command;
    for (const auto& arg : argv) command += (command.empty() ? "" : " ") + arg;
    std::string output = result.output;
    while (!output.empty() && output.back() == '\n') output.pop_back();
    throw ShimError(ErrorKind::Backend, "'" + command + "' failed: " + output);
}

std::vector<std::string> ip_argv(const std::string& netns, const std::vector<std::string>& args) {
    std::vector<std::string> argv = {"ip"};
    if (!netns.empty()) argv.insert(argv.end(), {"-n", netns});
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
}

}  // namespace

void ip(const std::string& netns, const std::vector<std::string>& args) { run_checked(ip_argv(netns, args)); }

bool link_exists(const std::string& netns, const std::string& name) {
    return run_process(ip_argv(netns, {"link", "show", "dev", name})).exit_code == 0;
}

void disable_tx_offload(const std::string& netns, const std::string& name) {
    run_checked(in_netns(netns, {"ethtool", "-K", name, "tx", "off"}));
}

}  // namespace brfusion::shim::iproute
