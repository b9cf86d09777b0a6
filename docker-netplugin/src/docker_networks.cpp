#include "brfusion/plugin/docker_networks.hpp"

#include "brfusion/common/http_client.hpp"

#include <nlohmann/json.hpp>

#include <stdexcept>
#include <utility>

namespace brfusion::plugin {

DockerApiNetworks::DockerApiNetworks(std::string socket, std::chrono::milliseconds timeout) : socket_(std::move(socket)), timeout_(timeout) {}

std::optional<std::set<std::string>> DockerApiNetworks::ids() {
    HttpReply reply;
    try {
        reply = http_call(socket_, "dockerd", "GET", "/networks", "", timeout_);
    } catch (const std::runtime_error&) {
        return std::nullopt;
    }
    const auto networks = nlohmann::json::parse(reply.body, nullptr, false);
    if (reply.status != 200 || !networks.is_array()) return std::nullopt;
    std::set<std::string> ids;
    for (const auto& network : networks) {
        if (!network.is_object() || !network.contains("Id") || !network["Id"].is_string()) return std::nullopt;
        ids.insert(network["Id"].get<std::string>());
    }
    return ids;
}

}  // namespace brfusion::plugin
