#include "brfusion/bench/report.hpp"

#include "brfusion/testing/command.hpp"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace brfusion::bench {

std::string to_markdown(const Table& table) {
    const auto row = [](const std::vector<std::string>& cells) {
        std::string line = "|";
        for (const auto& cell : cells) line += " " + cell + " |";
        return line + "\n";
    };
    std::string text = "### " + table.title + "\n\n" + row(table.columns) + "|";
    for (std::size_t i = 0; i < table.columns.size(); ++i) text += i == 0 ? "---|" : "---:|";
    text += "\n";
    for (const auto& cells : table.rows) text += row(cells);
    if (!table.notes.empty()) text += "\n";
    for (const auto& note : table.notes) text += "- " + note + "\n";
    return text;
}

std::string fixed(double value, int decimals) {
    char text[64];
    std::snprintf(text, sizeof text, "%.*f", decimals, value);
    return text;
}

std::string ratio_cell(const Spread& ratio) {
    return fixed(ratio.median, 2) + "x (" + fixed(ratio.min, 2) + "-" + fixed(ratio.max, 2) + ")";
}

Report::Report(std::string dir, std::string plots_dir, std::string heading)
    : dir_(std::move(dir)), plots_dir_(std::move(plots_dir)), heading_(std::move(heading)) {
    std::filesystem::create_directories(dir_);
    std::printf("%s\n", heading_.c_str());
    std::fflush(stdout);
    write();
}

void Report::add(const Table& table) {
    add_text(to_markdown(table));
}

void Report::add_text(const std::string& markdown) {
    std::printf("\n%s", markdown.c_str());
    std::fflush(stdout);
    parts_.push_back(markdown);
    write();
}

void Report::plot(const std::string& name, const std::string& data, const std::string& caption) {
    std::ofstream(dir_ + "/" + name + ".dat") << data;
    const std::string png = dir_ + "/" + name + ".png";
    std::filesystem::remove(png);
    const auto drawn = testing::run("gnuplot -e \"dir='" + dir_ + "'\" " + plots_dir_ + "/" + name + ".gp 2>&1");
    if (drawn.exit_code != 0 || !std::filesystem::exists(png)) throw std::runtime_error("gnuplot drew no " + png + ":\n" + drawn.output);
    parts_.push_back("![" + caption + "](" + name + ".png)\n");
    write();
}

void Report::write() const {
    std::ofstream out(dir_ + "/results.md");
    out << heading_ << "\n";
    for (const auto& part : parts_) out << "\n" << part;
}

}  // namespace brfusion::bench
