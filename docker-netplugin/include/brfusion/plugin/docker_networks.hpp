#pragma once
// DockerNetworks: the networks this VM's Docker has, asked from Docker's API. The reconcile
// compares them with the plugin's own: a network Docker does not have was lost by Docker
// (dockerd died after reading CreateNetwork's answer, before storing the network; or the plugin
// died during DeleteNetwork, and Docker's retry of it has no body to say which network).

#include <chrono>
#include <optional>
#include <set>
#include <string>

namespace brfusion::plugin {

class DockerNetworks {
public:
    virtual ~DockerNetworks() = default;
    // The IDs of every network Docker has; nullopt when Docker cannot be asked now (not running,
    // not answering in time, an answer that is not a list of networks): nothing is concluded then.
    virtual std::optional<std::set<std::string>> ids() = 0;
};

// GET /networks on dockerd's unix socket (Docker's Engine API; the unversioned path takes the
// daemon's own API version).
class DockerApiNetworks : public DockerNetworks {
public:
    explicit DockerApiNetworks(std::string socket, std::chrono::milliseconds timeout = std::chrono::seconds(10));
    std::optional<std::set<std::string>> ids() override;

private:
    std::string socket_;
    std::chrono::milliseconds timeout_;
};

}  // namespace brfusion::plugin
