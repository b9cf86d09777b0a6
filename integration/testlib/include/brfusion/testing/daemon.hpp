#pragma once
// A daemon a test starts and stops: its own child process (so that waitpid reaps it at once: PID 1
// here reaps orphans only every second or two), stdout and stderr appended to a log file.

#include <string>
#include <vector>

namespace brfusion::testing {

class Daemon {
public:
    Daemon() = default;
    ~Daemon();  // stop(), if still running
    Daemon(const Daemon&) = delete;
    Daemon& operator=(const Daemon&) = delete;

    // Starts argv (argv[0] looked up in PATH). Throws std::runtime_error if it cannot be started.
    void start(std::vector<std::string> argv, std::string log);
    // Sends `signal` and waits for the exit. Returns its exit code (128 + signal when killed), or -1
    // if it was not running.
    int stop(int signal = 15);
    bool running() const { return pid_ > 0; }
    int pid() const { return pid_; }
    // The log so far.
    std::string log() const;

private:
    int pid_ = -1;
    std::string log_;
};

}  // namespace brfusion::testing
