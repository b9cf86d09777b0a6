#include "brfusion/common/process.hpp"

#include <catch2/catch.hpp>

#include <system_error>

using brfusion::run_process;

TEST_CASE("run_process passes argv verbatim and captures stdout and stderr") {
    const auto result = run_process({"sh", "-c", "echo \"$0\"; echo err >&2; exit 3", "a b;c"});
    CHECK(result.exit_code == 3);
    CHECK(result.output == "a b;c\nerr\n");
}

TEST_CASE("a program that does not exist cannot be started") {
    CHECK_THROWS_AS(run_process({"/nonexistent/brfusion-program"}), std::system_error);
}

TEST_CASE("run_process feeds input to stdin - larger than a pipe holds - and an empty one by default") {
    const std::string big(256 * 1024, 'x');
    const auto counted = run_process({"sh", "-c", "wc -c; cat >/dev/null"}, big);
    CHECK(counted.exit_code == 0);
    CHECK(counted.output == std::to_string(big.size()) + "\n");
    CHECK(run_process({"cat"}).output.empty());
}
