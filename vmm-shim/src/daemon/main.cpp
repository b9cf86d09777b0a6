// brfusion-shim: the host daemon. Gives each container in a VM its own NIC on the host's Open
// vSwitch; serves the VMs' guest channels and the admin API.

#include "servers.hpp"

#include "brfusion/common/command_line.hpp"
#include "brfusion/ovs/client.hpp"
#include "brfusion/shim/error.hpp"
#include "brfusion/shim/admin_api.hpp"
#include "brfusion/shim/host_switch.hpp"
#include "brfusion/shim/upkeep.hpp"
#include "brfusion/shim/warm_pool.hpp"

#include <boost/asio/signal_set.hpp>

#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <set>

using namespace brfusion;
using namespace brfusion::shim;
using nlohmann::json;

namespace {

constexpr const char* kUsage = R"(usage: brfusion-shim [--config FILE] [options]

Gives each container in a VM its own NIC on the host's Open vSwitch.

Every config key can be given as a flag; flags override the file:
  --config FILE          JSON config (see the README's "brfusion-shim configuration")
  --bridge NAME          integration bridge (br-int)
  --ovsdb PATH           ovsdb-server's unix socket (/run/openvswitch/db.sock)
  --host-netns NAME      network namespace of OVS and the host devices (the shim's own)
  --uplink IF            the host's uplink interface
  --userspace-tso BOOL   guests leave checksums and TSO to Open vSwitch, which must have
                         other_config:userspace-tso-enable=true (false)
  --state-dir DIR        the journal (/var/lib/brfusion)
  --run-dir DIR          sockets (/run/brfusion)
  --admin-socket PATH    admin API socket (RUN_DIR/shim.sock)
  --network JSON         add a host network, e.g. '{"name":"web","subnet":"198.51.100.0/24","tag":100}'
  --vm JSON              add a VM, e.g. '{"name":"vm1","netns":"vm1","networks":["web"]}'
  --help, --version
)";

std::vector<Check> doctor(ovs::OvsClient& ovs, OvsHostSwitch& host, NftHostFirewall& firewall, NicManager& nics) {
    const ShimConfig config = nics.config();
    std::vector<Check> checks;
    checks.push_back({"ovsdb-server", ovs.ready(), ovs.ready() ? "connected to " + config.ovsdb : "not connected to " + config.ovsdb + "; is ovsdb-server running?"});
    if (config.userspace_tso) {
        const bool tso = ovs.ready() && host.userspace_tso();  // not connected: the ovsdb-server check says so
        checks.push_back({"userspace TSO", tso,
                          tso ? "Open vSwitch takes the guests' checksums and segmentation"
                              : "other_config:userspace-tso-enable is not true, so guests' offloaded packets arrive with bad checksums; set it and restart "
                                "ovs-vswitchd, or set userspace_tso to false and restart brfusion-shim"});
    }
    const bool bridge = ovs.bridge(config.bridge).has_value();
    checks.push_back({"bridge " + config.bridge, bridge, bridge ? "present" : "missing; restart brfusion-shim to recreate it"});
    for (const auto& network : config.networks) {
        const auto port = ovs.interface(NicManager::gateway_port(network));
        const bool ok = port && port->ofport.value_or(-1) > 0 && !port->error;
        checks.push_back({"gateway of " + network.name, ok,
                          ok ? NicManager::gateway_port(network) + " up with " + network.gateway.str()
                             : NicManager::gateway_port(network) + " is missing or broken in OVS" + (port && port->error ? ": " + *port->error : "") +
                                   "; restart brfusion-shim"});
    }
    const auto table = firewall.listing();
    const auto published = nics.firewall_rules().published;
    std::string missing_rules;
    if (table)
        for (const auto& forward : published) {
            const std::string dnat = "dnat to " + forward.container_ip.str() + ":" + std::to_string(forward.port.container_port);
            if (table->find(dnat) == std::string::npos) missing_rules += (missing_rules.empty() ? "" : ", ") + describe(forward.port);
        }
    checks.push_back({"nftables table ip brfusion", table && missing_rules.empty(),
                      !table                   ? "missing (is nftables usable here?); restart brfusion-shim to rewrite it"
                      : missing_rules.empty() ? "present; " + std::to_string(published.size()) + " published port(s)"
                                              : "lacks published port(s) " + missing_rules + "; restart brfusion-shim to rewrite it"});
    std::set<std::string> attached;
    for (const auto& nic : nics.nics())
        if (nic.phase == NicPhase::Attached) attached.insert(nic.host_if);
    try {
        const auto secured = host.secured_ports(attached);
        std::string insecure;
        for (const auto& port : attached)
            if (!secured.count(port)) insecure += (insecure.empty() ? "" : ", ") + port;
        checks.push_back({"port security", insecure.empty(),
                          insecure.empty() ? std::to_string(secured.size()) + " container port(s) secured"
                                           : "no rules on " + insecure + "; restart brfusion-shim to repair them"});
    } catch (const std::exception& e) {
        checks.push_back({"port security", false, std::string("cannot read the OpenFlow rules: ") + e.what()});
    }
    for (const auto& vm : config.vms) {
        const bool netns = vm.backend != "netns" || std::ifstream("/run/netns/" + vm.netns).good();
        checks.push_back({"VM " + vm.name, netns,
                          netns ? std::to_string(nics.nics(vm.name).size()) + " NIC(s); channel " + vm.channel
                                : "network namespace " + vm.netns + " does not exist; create it or fix the VM's config"});
    }
    return checks;
}

}  // namespace

int main(int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--help") == 0) return std::cout << kUsage, 0;
        if (std::strcmp(argv[i], "--version") == 0) return std::cout << "brfusion-shim " BRFUSION_VERSION "\n", 0;
    }
    try {
        const ShimConfig config = parse_config(config_from_arguments(argc, argv,
                                                                     {{"--bridge", "bridge"},
                                                                      {"--ovsdb", "ovsdb"},
                                                                      {"--host-netns", "host_netns"},
                                                                      {"--uplink", "uplink"},
                                                                      {"--userspace-tso", "userspace_tso"},
                                                                      {"--state-dir", "state_dir"},
                                                                      {"--run-dir", "run_dir"},
                                                                      {"--admin-socket", "admin_socket"}},
                                                                     {{"--network", "networks"}, {"--vm", "vms"}}, {}, {"userspace_tso"}));
        ovs::ClientOptions ovs_options;
        ovs_options.socket_path = config.ovsdb;
        ovs_options.timeout = config.ovs_timeout;
        ovs::OvsClient ovs(ovs_options);
        OvsHostSwitch host(ovs, config.bridge, config.host_netns, config.ovsdb);
        NftHostFirewall firewall(config.host_netns);
        ProcHostStack stack(config.host_netns);
        Journal journal(config.state_dir);
        const auto hostlo = hostlo::make_segment(config.hostlo.backend, ovs, config.ovsdb);
        NicManager nics(config, journal, {host, firewall, *hostlo, stack}, [&config](const VmConfig& vm) { return make_backend(vm, {config.host_netns, config.userspace_tso}); });
        const ReconcileReport report = nics.start();
        std::cerr << "brfusion-shim: reconciled: " << report.undone.size() << " unfinished attach(es) undone, " << report.finished.size()
                  << " detach(es) finished, " << report.repaired.size() << " NIC(s) repaired, " << report.orphans.size()
                  << " orphan port(s) removed, " << report.stale_port_rules << " stale port rule set(s) removed\n";
        for (const auto& why : report.deferred) std::cerr << "brfusion-shim: reconcile deferred: " << why << "\n";
        const auto log = [](const std::string& message) { std::cerr << "brfusion-shim: " << message << "\n"; };
        WarmPool warm_pool(nics, log);
        Upkeep upkeep(nics, log);

        boost::asio::io_context io;
        boost::asio::thread_pool workers(2);  // the admin API's requests (each VM's run on threads of its own)
        GuestChannelServer channels(io, nics);
        for (const auto& vm : nics.config().vms) channels.listen(vm);
        AdminContext admin_context{nics, [&] { return doctor(ovs, host, firewall, nics); },
                                   [&](const VmConfig& vm) { channels.listen(vm); }, [&](const std::string& vm) { channels.stop(vm); }};
        HttpServer admin(
            io, workers, config.admin_socket, 0660,
            [&admin_context](const HttpRequest& request) {
                const AdminResponse answer = handle_admin_request(admin_context, request.method, request.target, request.body);
                return HttpAnswer{answer.status, answer.body.dump(2) + "\n"};
            },
            "error");
        boost::asio::signal_set signals(io, SIGINT, SIGTERM);
        signals.async_wait([&](boost::system::error_code, int) {
            channels.close();
            admin.close();
            io.stop();
        });
        std::cerr << "brfusion-shim: serving " << nics.config().vms.size() << " VM(s), " << nics.config().networks.size() << " network(s); admin API on "
                  << config.admin_socket << "\n";
        io.run();
        workers.join();
        return 0;
    } catch (const std::exception& e) {
        std::cerr << "brfusion-shim: " << e.what() << "\n";
        return 1;
    }
}
