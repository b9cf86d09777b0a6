// main() of every component-test binary. When a prerequisite is missing, each test prints
// "SKIPPED: <reason>" and exits with the skip code, so ctest reports it as skipped, not passed.
// brfusion_test_requires (generated per binary by brfusion_add_tests ... REQUIRES) lists the
// prerequisites.

#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include "brfusion/testing/command.hpp"

#include <iostream>
#include <sstream>

extern const char* const brfusion_test_requires;

int main(int argc, char** argv) {
    Catch::Session session;
    if (int rc = session.applyCommandLine(argc, argv); rc != 0) return rc;
    const auto& config = session.configData();
    const bool listing = config.listTests || config.listTestNamesOnly || config.listTags || config.listReporters;
    if (!listing) {
        std::vector<std::string> needs;
        std::istringstream words(brfusion_test_requires);
        for (std::string word; words >> word;) needs.push_back(word);
        if (auto why = brfusion::testing::missing_prerequisite(needs)) {
            std::cout << "SKIPPED: " << *why << std::endl;
            return BRFUSION_SKIP_RETURN_CODE;
        }
    }
    return session.run();
}
