// main() of every unit-test binary (brfusion_add_tests without COMPONENT), compiled once.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
