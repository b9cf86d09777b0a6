#include "brfusion/testing/chaos.hpp"

#include "brfusion/testing/command.hpp"
#include "brfusion/testing/ownership.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <fstream>
#include <future>
#include <random>
#include <sstream>
#include <thread>
#include <unistd.h>

namespace brfusion::testing {

namespace {

using Clock = std::chrono::steady_clock;

enum class Operation { Attach, Detach, Publish, HostloJoin, HostloLeave };

const char* name_of(Operation operation) {
    switch (operation) {
    case Operation::Attach: return "attach";
    case Operation::Detach: return "detach";
    case Operation::Publish: return "publish";
    case Operation::HostloJoin: return "Hostlo join";
    case Operation::HostloLeave: return "Hostlo leave";
    }
    return "?";
}

// What the campaign creates is named so that it can find it again: containers cN (N: the run),
// Hostlo networks hlA / hlB of groups podA / podB, and in each VM an anchor container on network
// web that traffic is checked through (vm1's serves HTTP, also published on the host's port 8000).
constexpr int kMaxContainersPerVm = 6;
constexpr const char* kGroups[] = {"A", "B"};
constexpr const char* kTestPage = "brfusion-test-page";

class Campaign {
public:
    Campaign(Lab& lab, std::uint64_t seed, std::ostream& log) : lab_(lab), rng_(seed), log_(log) {}

    void set_up() {
        for (const char* vm : {"vm1", "vm2"}) must(vm, "docker network create -d brfusion --ipam-driver brfusion --subnet 198.51.100.0/24 web");
        must("vm1", "docker run -d --name anchor --network web -p 8000:80 brfusion-test httpd -f -p 80 -h /www");
        must("vm2", "docker run -d --name anchor --network web brfusion-test sleep 1000000");
        anchor_ip_ = must("vm1", "docker inspect -f '{{.NetworkSettings.Networks.web.IPAddress}}' anchor");
    }

    // One run; false (with `violations` filled) when the lab did not settle into a good state.
    bool run(int number, int runs, ChaosReport& report) {
        const std::string vm = pick({"vm1", "vm2"});
        const auto [operation, command] = plan(vm, number);
        static const std::vector<std::pair<std::string, std::string>> kVictims = {
            {"host", "shim"}, {"host", "ovsdb-server"}, {"host", "ovs-vswitchd"}, {"", "plugin"}, {"", "dockerd"}};
        const auto& victim = kVictims[static_cast<std::size_t>(below(static_cast<int>(kVictims.size())))];
        const std::string node = victim.first.empty() ? vm : victim.first;
        const auto delay = std::chrono::milliseconds(below(1200));  // an operation takes 0.5-2 s here

        const auto started = Clock::now();
        auto running = std::async(std::launch::async, [&, command = command] { return lab_.exec(vm, "timeout 150 sh -c " + shell_quoted(command)); });
        std::this_thread::sleep_for(delay);
        lab_.crash(node, victim.second);
        const CommandResult result = running.get();
        if (result.exit_code != 0) ++report.operations_failed;
        const auto settled = settle();
        std::ostringstream line;
        line << "run " << number << "/" << runs << ": kill -9 " << victim.second << (node == "host" ? "" : " in " + node) << " " << delay.count()
             << " ms into " << name_of(operation) << " on " << vm << ": the operation "
             << (result.exit_code == 0 ? "succeeded" : "failed (" + std::to_string(result.exit_code) + ")") << "; ";
        if (!settled.empty()) {
            log_ << line.str() << "VIOLATED\n  operation: " << command << "\n  its output: " << trim_end(result.output) << "\n"
                 << "  the shim's log:\n" << testing::run("tail -n 40 " + lab_.options().dir + "/shim.log").output
                 << "  " << vm << "'s plugin log:\n" << testing::run("tail -n 20 " + lab_.options().dir + "/" + vm + "/plugin.log").output
                 << "  " << vm << "'s plugin state:\n" << testing::run("cat " + lab_.options().dir + "/" + vm + "/plugin-state/*.json").output
                 << "\n  " << vm << "'s dockerd, what it said of its plugins:\n"
                 << testing::run("grep -E 'NetworkDriver|IpamDriver|release' " + lab_.options().dir + "/" + vm + "/dockerd.log | tail -n 15").output;
            for (const auto& violation : settled) report.violations.push_back("run " + std::to_string(number) + ": " + violation);
            return false;
        }
        line << "settled and checked in " << std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started - delay).count() << " ms";
        log_ << line.str() << std::endl;
        // What a failed operation left in Docker goes (no fault now), so the next runs find their
        // names free.
        if (result.exit_code != 0 && (operation == Operation::Attach || operation == Operation::Publish || operation == Operation::HostloJoin))
            lab_.exec(vm, "docker rm -f c" + std::to_string(number) + " >/dev/null 2>&1");
        return true;
    }

    // Removes everything; what is left afterwards is a violation.
    std::vector<std::string> tear_down() {
        for (const char* vm : {"vm1", "vm2"}) {
            lab_.exec(vm, "docker rm -f $(docker ps -aq) >/dev/null 2>&1; docker network rm $(docker network ls -q --filter driver=brfusion) >/dev/null");
        }
        auto violations = owned();
        const std::string left = trim_end(lab_.exec("host", "ovs-vsctl --bare --columns=name find Interface external_ids:brfusion-vm!=none").output);
        if (!left.empty()) violations.push_back("after removing everything, OVS ports are left: " + left);
        nlohmann::json state;
        try {
            state = lab_.shim_journal();
        } catch (const std::exception&) {
            state = nullptr;
        }
        if (state.is_null() || !state["nics"].empty() || !state["hostlo_groups"].empty())
            violations.push_back("after removing everything, the journal still has NICs or Hostlo groups");
        return violations;
    }

private:
    int below(int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng_); }
    std::string pick(std::vector<std::string> from) { return from[static_cast<std::size_t>(below(static_cast<int>(from.size())))]; }

    std::string must(const std::string& node, const std::string& command) {
        const auto result = lab_.exec(node, command);
        if (result.exit_code != 0) throw std::runtime_error(node + "$ " + command + ": " + result.output);
        return trim_end(result.output);
    }

    // The operation for this run, from what the VM has now: its containers cN and Hostlo networks.
    std::pair<Operation, std::string> plan(const std::string& vm, int number) {
        std::vector<std::string> containers, joined, free_groups;
        for (const auto& name : lines_of(lab_.exec(vm, "docker ps -a --format '{{.Names}}'").output))
            if (name.size() > 1 && name[0] == 'c' && std::isdigit(static_cast<unsigned char>(name[1]))) containers.push_back(name);
        const auto networks = lines_of(lab_.exec(vm, "docker network ls --format '{{.Name}}'").output);
        for (const char* group : kGroups)
            (std::find(networks.begin(), networks.end(), std::string("hl") + group) != networks.end() ? joined : free_groups).push_back(group);
        const std::string container = "c" + std::to_string(number);
        std::vector<Operation> possible = {Operation::Attach, Operation::Publish};
        if (!containers.empty()) possible.push_back(Operation::Detach);
        if (!free_groups.empty()) possible.push_back(Operation::HostloJoin);
        if (!joined.empty()) possible.push_back(Operation::HostloLeave);
        if (static_cast<int>(containers.size()) >= kMaxContainersPerVm) possible = {Operation::Detach};
        switch (const Operation operation = possible[static_cast<std::size_t>(below(static_cast<int>(possible.size())))]) {
        case Operation::Attach:
            return {operation, "docker run -d --name " + container + " --network web brfusion-test sleep 1000000"};
        case Operation::Publish:
            return {operation, "docker run -d --name " + container + " --network web -p " + std::to_string(20000 + number) +
                                   ":80 brfusion-test httpd -f -p 80 -h /www"};
        case Operation::Detach: return {operation, "docker rm -f " + pick(containers)};
        case Operation::HostloJoin: {
            const std::string group = pick(free_groups);
            return {operation, "docker network create -d brfusion --ipam-driver brfusion --ipam-opt group=pod" + group + " -o mode=hostlo hl" + group +
                                   " && docker run -d --name " + container + " --network hl" + group + " brfusion-test sleep 1000000"};
        }
        case Operation::HostloLeave: {
            const std::string group = pick(joined);
            return {operation, "docker rm -f $(docker ps -aq --filter network=hl" + group + ") >/dev/null 2>&1; docker network rm hl" + group};
        }
        }
        throw std::logic_error("no operation");
    }

    // Waits until every ownership rule holds and traffic flows (busybox's wget -T crashes: timeout
    // bounds each try instead) (a restarted component takes a
    // moment: the shim reconciles, the plugin reconciles within a second, port security comes back
    // within a second). Returns what still fails after a minute.
    std::vector<std::string> settle() {
        auto violations = owned();
        if (!violations.empty()) return violations;
        const auto reaches = [&](const std::string& node, const std::string& command, const std::string& expected) {
            CommandResult last;
            if (wait_until([&] { return trim_end((last = lab_.exec(node, command)).output) == expected; }, std::chrono::seconds(30))) return;
            violations.push_back("traffic: " + node + "$ " + command + " answered '" + trim_end(last.output) + "', not '" + expected + "'");
        };
        reaches("vm2", "docker exec anchor timeout 5 wget -qO- http://" + anchor_ip_ + "/", kTestPage);
        reaches("vm2", "docker exec anchor timeout 5 wget -qO- http://" + std::string(Lab::kOutsideAddress) + "/", "brfusion-outside-page");
        reaches("outside", "timeout 5 wget -qO- http://" + std::string(Lab::kHostUplinkAddress) + ":8000/", kTestPage);
        return violations;
    }
    // What still breaks an ownership rule after a minute.
    std::vector<std::string> owned() {
        std::vector<std::string> violations;
        wait_until([&] { return (violations = ownership_violations(lab_)).empty(); }, std::chrono::seconds(60));
        return violations;
    }

    Lab& lab_;
    std::mt19937_64 rng_;
    std::ostream& log_;
    std::string anchor_ip_;
};

}  // namespace

ChaosReport run_chaos(const ChaosOptions& options, std::ostream& log) {
    ChaosReport report;
    report.seed = options.seed ? options.seed : static_cast<std::uint64_t>(Clock::now().time_since_epoch().count());
    if (options.backend != "netns" && options.backend != "qmp")
        throw std::invalid_argument("the fault campaign runs on netns or qmp, not " + options.backend);
    LabOptions lab_options;
    lab_options.name = options.name.empty() ? "bfl" + std::to_string(::getpid() % 100000) : options.name;
    lab_options.backend = options.backend;
    lab_options.binaries = options.binaries;
    log << "fault campaign: " << options.runs << " runs on a " << options.backend << " lab, seed " << report.seed << std::endl;
    Lab lab(lab_options);
    Campaign campaign(lab, report.seed, log);
    campaign.set_up();
    for (int number = 1; number <= options.runs; ++number) {
        ++report.runs;
        if (!campaign.run(number, options.runs, report)) break;
    }
    if (report.violations.empty())
        for (const auto& violation : campaign.tear_down()) report.violations.push_back("at the end: " + violation);
    for (const auto& violation : report.violations) log << "VIOLATION " << violation << "\n";
    log << "fault campaign: " << report.runs << " run(s), " << report.operations_failed << " operation(s) failed under the fault, "
        << report.violations.size() << " violation(s); seed " << report.seed << std::endl;
    return report;
}

}  // namespace brfusion::testing
