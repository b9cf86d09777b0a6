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
