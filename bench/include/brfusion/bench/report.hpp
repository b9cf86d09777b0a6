#pragma once
// What a benchmark run leaves in its results folder DIR:
//   results.md   the heading (machine, backend, repetitions), then every table and plot in the
//                order they were made; rewritten after each one, so an interrupted run keeps what
//                it measured;
//   NAME.dat     the data behind plot NAME (gnuplot's format: whitespace-separated columns,
//                '#' comment lines, double-quoted strings);
//   NAME.png     the plot, drawn by gnuplot from the script PLOTS_DIR/NAME.gp, which reads
//                DIR/NAME.dat (gnuplot is given dir='DIR').
// Tables are also printed on stdout as they are made.

#include "brfusion/bench/stats.hpp"

#include <string>
#include <vector>

namespace brfusion::bench {

struct Table {
    std::string title;
    std::vector<std::string> columns;
    std::vector<std::vector<std::string>> rows;
    std::vector<std::string> notes;  // lines under the table: ratios, what was measured how
};

// A markdown table under "### title", notes as a bullet list.
std::string to_markdown(const Table& table);
std::string fixed(double value, int decimals);
// A ratio's cell: "0.98x (0.91-1.05)", the median and, in brackets, the lowest and highest.
std::string ratio_cell(const Spread& ratio);

class Report {
public:
    Report(std::string dir, std::string plots_dir, std::string heading);
    const std::string& dir() const { return dir_; }

    void add(const Table& table);
    // Markdown text (a paragraph, a list) after what is there.
    void add_text(const std::string& markdown);
    // Writes NAME.dat, runs PLOTS_DIR/NAME.gp and adds the PNG, with `caption`, to results.md.
    // Throws std::runtime_error with gnuplot's output if it draws nothing.
    void plot(const std::string& name, const std::string& data, const std::string& caption);

private:
    void write() const;

    std::string dir_, plots_dir_, heading_;
    std::vector<std::string> parts_;  // markdown, in order
};

}  // namespace brfusion::bench
