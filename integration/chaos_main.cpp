// brfusion-chaos: the fault campaign (integration/chaos builds and runs it; docs/lab.md, "The
// fault campaign"). As root.
//
//   chaos [--runs N] [--seed S] [--backend netns|qmp] [--name LAB]
//
// Exit status: 0 when every run held, 1 at the first violation (the lab is removed either way;
// the log says what was violated), 2 when the arguments are wrong or the lab cannot be set up.

#include "brfusion/testing/chaos.hpp"

#include <cstring>
#include <iostream>
#include <string>

namespace {
constexpr const char* kUsage = R"(usage: integration/chaos [--runs N] [--seed S] [--backend netns|qmp] [--name LAB]
  --runs N      runs, each one operation through Docker with one component killed (-9) during it (50)
  --seed S      replays the choices of an earlier campaign (default: from the clock; printed)
  --backend B   netns (default) or qmp (QEMU VMs: minutes per run)
  --name LAB    the lab's name (default bflPID)
)";
}  // namespace

int main(int argc, char** argv) {
    brfusion::testing::ChaosOptions options;
    options.binaries = {BRFUSION_SHIM_BINARY, BRFUSION_CTL_BINARY, BRFUSION_PLUGIN_BINARY};
    try {
        for (int i = 1; i < argc; ++i) {
            const std::string flag = argv[i];
            if (flag == "--help") return std::cout << kUsage, 0;
            if (i + 1 >= argc) throw std::invalid_argument(flag + " needs a value");
            const std::string value = argv[++i];
            if (flag == "--runs") options.runs = std::stoi(value);
            else if (flag == "--seed") options.seed = std::stoull(value);
            else if (flag == "--backend") options.backend = value;
            else if (flag == "--name") options.name = value;
            else throw std::invalid_argument("unknown flag " + flag);
        }
        if (options.runs < 1) throw std::invalid_argument("--runs must be at least 1");
    } catch (const std::exception& e) {
        std::cerr << "brfusion-chaos: " << e.what() << "\n" << kUsage;
        return 2;
    }
    try {
        return brfusion::testing::run_chaos(options, std::cout).violations.empty() ? 0 : 1;
    } catch (const std::exception& e) {
        std::cerr << "brfusion-chaos: " << e.what() << "\n";
        return 2;
    }
}
