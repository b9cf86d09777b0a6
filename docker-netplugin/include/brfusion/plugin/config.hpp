#pragma once
// brfusion-plugin's configuration (--config FILE, JSON; every key is also a flag).

#include <nlohmann/json.hpp>

#include <string>

namespace brfusion::plugin {

struct PluginConfig {
    std::string socket = "/run/docker/plugins/brfusion.sock";  // where Docker finds the plugin
    std::string channel = "virtio-serial:org.brfusion.shim.0";  // unix:PATH | virtio-serial:NAME | vsock:CID:PORT
    std::string state_dir = "/var/lib/brfusion-plugin";
    // dockerd's API socket, where the reconcile asks which networks Docker has, to forget those it
    // lost; "" never asks (then a network Docker lost stays, with its Hostlo group joined).
    std::string docker_socket = "/run/docker.sock";
    int join_timeout_ms = 30000;  // how long Join waits for a hot-plugged NIC
    int shim_timeout_ms = 60000;  // how long a call to brfusion-shim may take (a cold hot-plug)
    // How often the plugin reconciles its endpoints with the shim's NICs after the first time (at
    // start): a NIC whose attach answer was lost to a timeout is given back within this.
    int reconcile_interval_ms = 60000;
};

// Throws std::invalid_argument naming the key: unknown keys, wrong types, bad values.
PluginConfig parse_plugin_config(const nlohmann::json& config);

}  // namespace brfusion::plugin
