#include "brfusion/plugin/config.hpp"

#include "brfusion/common/json_keys.hpp"

#include <stdexcept>

namespace brfusion::plugin {

using nlohmann::json;

namespace {

void string_key(const json& config, const char* key, std::string& out) {
    if (!config.contains(key)) return;
    if (!config[key].is_string() || config[key].get<std::string>().empty())
        throw std::invalid_argument(std::string("config ") + key + " must be a non-empty string");
    out = config[key];
}

void timeout_key(const json& config, const char* key, int& out) {
    if (!config.contains(key)) return;
    if (!config[key].is_number_integer() || config[key].get<int>() < 1)
        throw std::invalid_argument(std::string("config ") + key + " must be a positive number of milliseconds");
    out = config[key];
}

}  // namespace

PluginConfig parse_plugin_config(const json& config) {
    if (!config.is_object()) throw std::invalid_argument("the config must be a JSON object");
    if (auto key = unknown_key(config, {"socket", "channel", "state_dir", "docker_socket", "join_timeout_ms", "shim_timeout_ms", "reconcile_interval_ms"}))
        throw std::invalid_argument("config " + *key + " is not a brfusion-plugin setting (see --help)");
    PluginConfig result;
    string_key(config, "socket", result.socket);
    string_key(config, "channel", result.channel);
    string_key(config, "state_dir", result.state_dir);
    if (config.contains("docker_socket")) {  // "" is a choice: never ask Docker
        if (!config["docker_socket"].is_string()) throw std::invalid_argument("config docker_socket must be a string (\"\": never ask Docker)");
        result.docker_socket = config["docker_socket"];
    }
    timeout_key(config, "join_timeout_ms", result.join_timeout_ms);
    timeout_key(config, "shim_timeout_ms", result.shim_timeout_ms);
    timeout_key(config, "reconcile_interval_ms", result.reconcile_interval_ms);
    return result;
}

}  // namespace brfusion::plugin
