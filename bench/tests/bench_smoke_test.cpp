// The benchmark end to end on emulated VMs, as small as it goes (--quick): every section runs and
// writes its table and plot. What it checks is the output's shape and that every figure is a
// positive number (a share of CPU time may be 0), never how fast anything was.

#include "brfusion/testing/command.hpp"

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <unistd.h>

using namespace brfusion;

namespace {

// The rows of the markdown table under "### TITLE...".
std::vector<std::vector<std::string>> table_rows(const std::string& markdown, const std::string& title) {
    std::vector<std::vector<std::string>> rows;
    std::istringstream lines(markdown.substr(markdown.find("### " + title)));
    std::string line;
    std::getline(lines, line);  // the title
    std::getline(lines, line);  // blank
    std::getline(lines, line);  // header
    std::getline(lines, line);  // |---|
    while (std::getline(lines, line) && line.rfind("|", 0) == 0) {
        std::vector<std::string> cells;
        std::istringstream cell_text(line.substr(1));
        for (std::string cell; std::getline(cell_text, cell, '|');) cells.push_back(cell.substr(1, cell.size() - 2));
        rows.push_back(cells);
    }
    return rows;
}

bool number(const std::string& cell) {
    // "12.5", "0.98x", or a ratio with its spread, "0.98x (0.91-1.05)"
    return std::regex_match(cell, std::regex(R"([0-9]+(\.[0-9]+)?(x( \([0-9.]+-[0-9.]+\))?)?)"));
}
bool positive_number(const std::string& cell) { return number(cell) && std::stod(cell) > 0; }

}  // namespace

TEST_CASE("bench: a quick run on emulated VMs writes every section's table and plot") {
    const std::string out = "/tmp/brfusion-bench-smoke-" + std::to_string(::getpid());
    std::filesystem::remove_all(out);
    const auto result = testing::run(std::string(BRFUSION_BENCH_BINARY) + " --backend netns --quick --out " + out + " 2>&1");
    INFO(result.output);
    REQUIRE(result.exit_code == 0);
    std::stringstream text;
    text << std::ifstream(out + "/results.md").rdbuf();
    const std::string markdown = text.str();
    INFO(markdown);
    CHECK(markdown.find("Machine: ") != std::string::npos);
    CHECK(markdown.find("VMs: emulated VMs") != std::string::npos);

    struct Expected {
        std::string title;
        std::size_t rows;
        bool zeros;  // a figure may be 0 (a share of CPU time: no guest on emulated VMs)
    };
    const std::vector<Expected> tables = {{"TCP throughput to the outside", 6, false},
                                          {"TCP throughput from the outside", 3, false},
                                          {"Request/response latency", 3, false},
                                          {"CPU while sending", 3, true},
                                          {"NGINX", 3, false},
                                          {"Memcached", 3, false},
                                          {"Container start-up", 4, false},
                                          {"Container start-up by phase", 4, false},
                                          {"Hostlo: two containers", 4, false},
                                          {"Hostlo: NGINX and Memcached", 4, false},
                                          {"Scale", 2, false}};
    for (const auto& table : tables) {
        const auto rows = table_rows(markdown, table.title);
        INFO(table.title);
        CHECK(rows.size() == table.rows);
        for (const auto& row : rows)
            for (std::size_t cell = 1; cell < row.size(); ++cell) {
                INFO(row[0] << ", column " << cell << ": '" << row[cell] << "'");
                CHECK(((table.zeros ? number(row[cell]) : positive_number(row[cell])) || row[cell].find(" / ") != std::string::npos));
            }
    }
    for (const char* plot : {"throughput", "ingress", "latency", "startup", "scale", "hostlo"}) {
        INFO(plot);
        CHECK(std::filesystem::file_size(out + "/" + plot + ".png") > 1000);
        CHECK(markdown.find(std::string("](") + plot + ".png)") != std::string::npos);
    }
    CHECK(testing::run("ip netns list | grep -E '^bf[bsq][0-9]+-'").output.empty());  // the labs are gone
    std::filesystem::remove_all(out);
}
