// brfusion-plugin's config: defaults, each key's checks, and "" for docker_socket as a choice.

#include "brfusion/plugin/config.hpp"

#include <catch2/catch.hpp>

using namespace brfusion::plugin;
using nlohmann::json;

TEST_CASE("plugin config: defaults - docker_socket \"\" never asks Docker - wrong types and unknown keys are refused by name") {
    const PluginConfig defaults = parse_plugin_config(json::object());
    CHECK(defaults.socket == "/run/docker/plugins/brfusion.sock");
    CHECK(defaults.docker_socket == "/run/docker.sock");
    CHECK(defaults.reconcile_interval_ms == 60000);

    const PluginConfig set = parse_plugin_config({{"docker_socket", ""}, {"state_dir", "/tmp/x"}, {"reconcile_interval_ms", 1000}});
    CHECK(set.docker_socket.empty());
    CHECK(set.state_dir == "/tmp/x");
    CHECK(set.reconcile_interval_ms == 1000);

    CHECK_THROWS_WITH(parse_plugin_config({{"docker_socket", 5}}), Catch::Contains("docker_socket must be a string"));
    CHECK_THROWS_WITH(parse_plugin_config({{"state_dir", ""}}), Catch::Contains("state_dir must be a non-empty string"));
    CHECK_THROWS_WITH(parse_plugin_config({{"join_timeout_ms", 0}}), Catch::Contains("join_timeout_ms must be a positive number"));
    CHECK_THROWS_WITH(parse_plugin_config({{"dockersocket", "/x"}}), Catch::Contains("dockersocket is not a brfusion-plugin setting"));
    CHECK_THROWS_WITH(parse_plugin_config(json::array()), Catch::Contains("must be a JSON object"));
}
