// brfusion-plugin: Docker's remote network and IPAM driver, inside a VM. Serves Docker on its
// plugin socket at once, then reaches brfusion-shim over the guest channel and reconciles.

#include "brfusion/common/command_line.hpp"
#include "brfusion/common/http_server.hpp"
#include "brfusion/plugin/config.hpp"
#include "brfusion/plugin/driver.hpp"
#include "brfusion/plugin/error.hpp"

#include <boost/asio/signal_set.hpp>

#include <atomic>
#include <cstring>
#include <iostream>
#include <optional>
#include <thread>

using namespace brfusion;
using namespace brfusion::plugin;

namespace {

constexpr const char* kUsage = R"(usage: brfusion-plugin [--config FILE] [options]

Docker network and IPAM driver "brfusion": gives each container its own NIC, hot-plugged by the host.
  docker network create -d brfusion --ipam-driver brfusion [--subnet SUBNET | --ipam-opt network=HOSTNET] NAME

Every config key can be given as a flag; flags override the file:
  --config FILE            JSON config
  --socket PATH            Docker's plugin socket (/run/docker/plugins/brfusion.sock)
  --channel ADDRESS        the guest channel to brfusion-shim: unix:PATH, virtio-serial:NAME or vsock:CID:PORT
                           (virtio-serial:org.brfusion.shim.0)
  --state-dir DIR          networks and endpoints, kept across restarts (/var/lib/brfusion-plugin)
  --docker-socket PATH     dockerd's API, asked which networks Docker has, to forget those it lost
                           (/run/docker.sock; "" never asks)
  --join-timeout-ms N      how long Join waits for the hot-plugged NIC (30000)
  --shim-timeout-ms N      how long a call to brfusion-shim may take (60000)
  --reconcile-interval-ms N  how often endpoints are reconciled with the shim's NICs after start (60000)
  --help, --version
)";

}  // namespace

int main(int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--help") == 0) return std::cout << kUsage, 0;
        if (std::strcmp(argv[i], "--version") == 0) return std::cout << "brfusion-plugin " BRFUSION_VERSION "\n", 0;
    }
    try {
        const PluginConfig config = parse_plugin_config(config_from_arguments(argc, argv,
                                                                              {{"--socket", "socket"},
                                                                               {"--channel", "channel"},
                                                                               {"--state-dir", "state_dir"},
                                                                               {"--docker-socket", "docker_socket"},
                                                                               {"--join-timeout-ms", "join_timeout_ms"},
                                                                               {"--shim-timeout-ms", "shim_timeout_ms"},
                                                                               {"--reconcile-interval-ms", "reconcile_interval_ms"}},
                                                                              {}, {"join_timeout_ms", "shim_timeout_ms", "reconcile_interval_ms"}));
        StreamShimChannel channel(config.channel, std::chrono::milliseconds(config.shim_timeout_ms));
        NetlinkLinks links;
        PluginStore store(config.state_dir);
        std::optional<DockerApiNetworks> docker;
        if (!config.docker_socket.empty()) docker.emplace(config.docker_socket);
        Driver driver(channel, links, store, {std::chrono::milliseconds(config.join_timeout_ms)}, docker ? &*docker : nullptr);

        boost::asio::io_context io;
        boost::asio::thread_pool workers(4);  // Docker calls concurrently; CreateEndpoint may wait on a hot-plug
        HttpServer server(io, workers, config.socket, 0660, [&driver](const HttpRequest& request) { return driver.handle(request); }, "Err");
        std::cerr << "brfusion-plugin: serving Docker on " << config.socket << "; brfusion-shim at " << config.channel << "\n";

        // Docker may call before the shim is reachable: calls then fail with "cannot reach", and
        // this thread tries every second until it has reconciled once; then every
        // reconcile_interval_ms, so that a NIC whose attach answer was lost (a timeout, a crash
        // between the shim's answer and the saved state) goes back to the host.
        std::atomic<bool> stopping = false;
        std::thread reconciler([&] {
            bool reconciled = false;
            std::string last_failure;
            while (!stopping) {
                try {
                    const auto report = driver.reconcile();
                    if (!reconciled || !report.orphans_detached.empty() || !report.endpoints_without_nic.empty() || !report.groups_left.empty() ||
                        !report.endpoints_lost.empty() || !report.networks_lost.empty())
                        std::cerr << "brfusion-plugin: reconciled with brfusion-shim: " << report.endpoints_lost.size()
                                  << " endpoint(s) and " << report.networks_lost.size() << " network(s) Docker lost forgotten, " << report.orphans_detached.size()
                                  << " orphan NIC(s) detached, " << report.endpoints_without_nic.size() << " endpoint(s) without a NIC, "
                                  << report.groups_left.size() << " Hostlo group(s) left\n";
                    reconciled = true;
                    last_failure.clear();
                } catch (const std::exception& e) {
                    if (e.what() != last_failure) std::cerr << "brfusion-plugin: cannot reconcile yet: " << e.what() << "\n";
                    last_failure = e.what();
                }
                const auto pause = reconciled && last_failure.empty() ? std::chrono::milliseconds(config.reconcile_interval_ms) : std::chrono::seconds(1);
                for (auto waited = std::chrono::milliseconds(0); waited < pause && !stopping; waited += std::chrono::milliseconds(100)) {
                    if (waited >= std::chrono::seconds(1) && driver.reconcile_pending()) break;  // a ReleasePool failed: retry soon
                    std::this_thread::sleep_for(std::chrono::milliseconds(100));
                }
            }
        });

        boost::asio::signal_set signals(io, SIGINT, SIGTERM);
        signals.async_wait([&](boost::system::error_code, int) {
            stopping = true;
            server.close();
            io.stop();
        });
        io.run();
        stopping = true;
        reconciler.join();
        workers.join();
        return 0;
    } catch (const std::exception& e) {
        std::cerr << "brfusion-plugin: " << e.what() << "\n";
        return 1;
    }
}
