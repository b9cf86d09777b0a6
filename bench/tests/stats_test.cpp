#include "brfusion/bench/report.hpp"
#include "brfusion/bench/stats.hpp"

#include <catch2/catch.hpp>

using namespace brfusion::bench;

TEST_CASE("stats: median of odd and even counts, whatever the order") {
    CHECK(median({3, 1, 2}) == 2);
    CHECK(median({4, 1, 3, 2}) == 2.5);
    CHECK(median({7}) == 7);
}

TEST_CASE("stats: nearest-rank percentiles") {
    std::vector<double> hundred;
    for (int i = 100; i >= 1; --i) hundred.push_back(i);
    CHECK(percentile(hundred, 0.5) == 50);
    CHECK(percentile(hundred, 0.9) == 90);
    CHECK(percentile(hundred, 0.99) == 99);
    CHECK(percentile(hundred, 1.0) == 100);
    CHECK(percentile(hundred, 0.0) == 1);
    CHECK(percentile({5, 1, 9}, 0.9) == 9);  // ceil(2.7) = 3rd of 3
    CHECK(minimum({5, 1, 9}) == 1);
}

TEST_CASE("stats: a paired run's ratios and their spread - a cell shows median (min-max)") {
    const auto r = ratios({90, 100, 120}, {100, 100, 100});
    CHECK(r == std::vector<double>{0.9, 1.0, 1.2});
    const Spread s = spread(r);
    CHECK(s.min == 0.9);
    CHECK(s.median == 1.0);
    CHECK(s.max == 1.2);
    CHECK(ratio_cell(s) == "1.00x (0.90-1.20)");
    CHECK_THROWS_AS(ratios({1, 2}, {1}), std::invalid_argument);
    CHECK_THROWS_AS(ratios({1}, {0}), std::invalid_argument);
    CHECK_THROWS_AS(spread({}), std::invalid_argument);
}

TEST_CASE("stats: no samples is an error, not a zero") {
    CHECK_THROWS_AS(median({}), std::invalid_argument);
    CHECK_THROWS_AS(percentile({}, 0.5), std::invalid_argument);
    CHECK_THROWS_AS(minimum({}), std::invalid_argument);
    CHECK_THROWS_AS(percentile({1}, 1.5), std::invalid_argument);
}

TEST_CASE("report: a table in markdown, numbers right-aligned, notes as bullets") {
    const Table table{"Throughput", {"size", "Mbit/s"}, {{"64", fixed(59.64, 1)}, {"1280", fixed(175.7249, 1)}}, {"median of 3 runs"}};
    CHECK(to_markdown(table) ==
          "### Throughput\n\n"
          "| size | Mbit/s |\n"
          "|---|---:|\n"
          "| 64 | 59.6 |\n"
          "| 1280 | 175.7 |\n"
          "\n"
          "- median of 3 runs\n");
}
