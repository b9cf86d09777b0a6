#include "host_tools.hpp"

#include "brfusion/common/process.hpp"
#include "brfusion/shim/error.hpp"

namespace brfusion::shim::tools {

namespace {

std::vector<std::string> ip_argv(const std::string& netns, const std::vector<std::string>& args) {
    std::vector<std::string> argv = {"ip"};
    if (!netns.empty()) argv.insert(argv.end(), {"-n", netns});
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
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

void disable_tx_offload(const std::string& netns, const std::string& name) { run(netns, {"ethtool", "-K", name, "tx", "off"}); }

}  // namespace brfusion::shim::tools
