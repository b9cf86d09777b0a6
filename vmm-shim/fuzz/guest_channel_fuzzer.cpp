// libFuzzer target: a hostile guest's channel. Each input is a sequence of lines, each spoken by
// vm1 or vm2 (a line's first byte picks which), handled exactly as brfusion-shim handles the
// lines of a guest channel (handle_guest_line) by a real NicManager over the shim's fakes of OVS,
// nftables, Hostlo segments and the VMM. The shim's endpoint ids are random, so "@N" in a line
// stands for the endpoint of the N-th NIC attached so far (0-9): inputs reach detach and publish. Every line must get at most one well-formed answer and
// never crash, hang or leak (ASan/UBSan are on); afterwards the journal must load again and a
// restarted shim must reconcile over it.
//
// Run it for longer: integration/fuzz guest-channel [SECONDS]. CI runs it through ctest (label fuzz).

#define CATCH_CONFIG_RUNNER  // fakes.hpp's Rig checks with Catch's macros; libFuzzer brings main
#include "fakes.hpp"

#include "brfusion/shim/guest_api.hpp"

#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

#include <unistd.h>

using namespace brfusion;
using namespace brfusion::shim;
using nlohmann::json;

namespace {

// The world a guest meets: lab (both VMs), lab2 (vm1), any Hostlo group, a warm pool, small
// quotas, so that inputs reach the refusals too.
void adjust(ShimConfig& config) {
    config.vms[0].warm_pool = {{"lab2", 1}};
    for (auto& vm : config.vms) vm.hostlo_groups = {"*"};
    config.vms[1].quotas = {3, 3, 4, 2, 16};  // vm2: 3 NICs, 3 reservations, 4 published ports, 2 Hostlo groups
    config.vms[1].host_ports = {8000, 8100};
}

// The line with each "@N" replaced by the N-th endpoint attached, when there is one.
std::string with_endpoints(std::string_view line, const std::vector<std::string>& endpoints) {
    std::string out;
    for (std::size_t i = 0; i < line.size(); ++i) {
        const bool ref = line[i] == '@' && i + 1 < line.size() && line[i + 1] >= '0' && line[i + 1] <= '9';
        if (ref && static_cast<std::size_t>(line[i + 1] - '0') < endpoints.size()) {
            out += endpoints[static_cast<std::size_t>(line[i + 1] - '0')];
            ++i;
        } else {
            out += line[i];
        }
    }
    return out;
}

bool well_formed(const json& answer) {
    return answer.is_object() && answer.value("jsonrpc", "") == "2.0" && answer.contains("id") &&
           (answer.contains("result") != answer.contains("error"));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const ShimConfig config = test::Rig::adjusted(test::test_config("/dev/shm/brfusion-guest-fuzz-" + std::to_string(::getpid())),  // tmpfs: fsyncs cost nothing
                                                         adjust);  // parsed once: every input meets the same world
    test::Rig rig(config);
    std::vector<std::string> endpoints;
    std::string_view input(reinterpret_cast<const char*>(data), size);
    while (!input.empty()) {
        const auto end = input.find('\n');
        const std::string_view line = input.substr(0, end);
        input = end == std::string_view::npos ? std::string_view() : input.substr(end + 1);
        if (line.empty()) continue;
        const std::string vm = (static_cast<unsigned char>(line[0]) & 1) ? "vm2" : "vm1";
        const auto answer = handle_guest_line(*rig.manager, vm, with_endpoints(line.substr(1), endpoints));
        if (answer && !well_formed(*answer)) std::abort();
        if (!answer) continue;
        (void)answer->dump();  // the server writes every answer
        const auto result = answer->find("result");
        if (result != answer->end() && result->is_object() && result->contains("endpoint")) endpoints.push_back((*result)["endpoint"]);
    }
    (void)Journal(rig.dir).load();  // throws (and libFuzzer reports it) if the guest made it unreadable
    rig.restart();
    return 0;
}
