#include "brfusion/shim/background_loop.hpp"

namespace brfusion::shim {

BackgroundLoop::BackgroundLoop(std::string what, Log log, std::chrono::milliseconds interval, std::function<void()> work)
    : what_(std::move(what)), log_(std::move(log)), interval_(interval), work_(std::move(work)), thread_([this](std::stop_token stop) { run(stop); }) {}

BackgroundLoop::~BackgroundLoop() {
    thread_.request_stop();
    thread_.join();
}

void BackgroundLoop::wake() {
    {
        std::lock_guard lock(mutex_);
        wake_ = true;
    }
    woken_.notify_one();
}

void BackgroundLoop::run(std::stop_token stop) {
    std::string last_failure;
    while (!stop.stop_requested()) {
        {
            std::unique_lock lock(mutex_);
            woken_.wait_for(lock, stop, interval_, [this] { return wake_; });
            wake_ = false;
        }
        if (stop.stop_requested()) break;
        try {
            work_();
            last_failure.clear();
        } catch (const std::exception& e) {
            if (e.what() != last_failure) log_(what_ + ": " + e.what() + "; retrying every " + std::to_string(interval_.count()) + " ms");
            last_failure = e.what();
        }
    }
}

}  // namespace brfusion::shim
