#pragma once
// Running a program: argv, no shell (no quoting pitfalls), output captured.

#include <string>
#include <vector>

namespace brfusion {

struct ProcessResult {
    int exit_code = -1;  // 128 + signal number when killed by a signal
    std::string output;  // stdout and stderr, interleaved
};

// Runs argv[0] (looked up in PATH) with argv and `input` as its stdin, waits for it, and returns
// its exit code and output. Throws std::system_error if it cannot be started at all.
ProcessResult run_process(const std::vector<std::string>& argv, const std::string& input = "");

}  // namespace brfusion
