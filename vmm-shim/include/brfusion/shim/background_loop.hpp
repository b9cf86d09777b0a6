#pragma once
// BackgroundLoop: one thread that does `work` when woken and every `interval`, for what the shim
// keeps up in the background (warm pools, upkeep). A failure is logged once, not at every retry,
// and again only when it changes; the next round retries.

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace brfusion::shim {

class BackgroundLoop {
public:
    using Log = std::function<void(const std::string&)>;

    // Starts the thread, which does a first round at once. `what` names the loop in the log.
    BackgroundLoop(std::string what, Log log, std::chrono::milliseconds interval, std::function<void()> work);
    // Stops the thread after the round in progress.
    ~BackgroundLoop();
    BackgroundLoop(const BackgroundLoop&) = delete;
    BackgroundLoop& operator=(const BackgroundLoop&) = delete;

    // A round now. Never blocks.
    void wake();

private:
    void run(std::stop_token stop);

    std::string what_;
    Log log_;
    std::chrono::milliseconds interval_;
    std::function<void()> work_;
    std::mutex mutex_;
    std::condition_variable_any woken_;
    bool wake_ = true;
    std::jthread thread_;  // last: started once everything above exists
};

}  // namespace brfusion::shim
