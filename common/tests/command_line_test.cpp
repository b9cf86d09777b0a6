#include "brfusion/common/command_line.hpp"

#include <catch2/catch.hpp>

#include <vector>

using nlohmann::json;

namespace {
json parse(std::vector<std::string> arguments) {
    arguments.insert(arguments.begin(), "daemon");
    std::vector<char*> argv;
    for (auto& argument : arguments) argv.push_back(argument.data());
    return brfusion::config_from_arguments(static_cast<int>(argv.size()), argv.data(), {{"--name", "name"}, {"--port", "port"}, {"--fast", "fast"}},
                                           {{"--item", "items"}}, {"port"}, {"fast"});
}
}  // namespace

TEST_CASE("command line: each flag sets its key as a string, a number, a boolean or a list item") {
    CHECK(parse({"--name", "web", "--port", "80", "--fast", "true", "--item", R"({"a":1})", "--item", "2"}) ==
          json({{"name", "web"}, {"port", 80}, {"fast", true}, {"items", {{{"a", 1}}, 2}}}));
    CHECK(parse({"--fast", "false"})["fast"] == false);
    CHECK(parse({}) == json::object());
}

TEST_CASE("command line: a value of the wrong kind, a missing value or an unknown flag is named") {
    CHECK_THROWS_WITH(parse({"--port", "eighty"}), "--port takes a number, got: eighty");
    CHECK_THROWS_WITH(parse({"--fast", "yes"}), "--fast takes true or false, got: yes");
    CHECK_THROWS_WITH(parse({"--item", "{"}), "--item takes a JSON object, got: {");
    CHECK_THROWS_WITH(parse({"--name"}), "--name needs a value (see --help)");
    CHECK_THROWS_WITH(parse({"--colour", "red"}), "unknown option --colour (see --help)");
}
