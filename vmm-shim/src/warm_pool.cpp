#include "brfusion/shim/warm_pool.hpp"

namespace brfusion::shim {

WarmPool::WarmPool(NicManager& nics, Log log, std::chrono::milliseconds interval)
    : nics_(nics), log_(std::move(log)), interval_(interval), thread_([this](std::stop_token stop) { run(stop); }) {
    nics_.on_spare_claimed([this] { wake(); });
}

WarmPool::~WarmPool() {
    nics_.on_spare_claimed(nullptr);
    thread_.request_stop();
    thread_.join();
}

void WarmPool::wake() {
    {
        std::lock_guard lock(mutex_);
        wake_ = true;
    }
    woken_.notify_one();
}

void WarmPool::run(std::stop_token stop) {
    std::string last_failure;
    while (!stop.stop_requested()) {
        {
            std::unique_lock lock(mutex_);
            woken_.wait_for(lock, stop, interval_, [this] { return wake_; });
            wake_ = false;
        }
        try {
            while (!stop.stop_requested() && nics_.balance_warm_pool()) {
            }
            last_failure.clear();
        } catch (const std::exception& e) {
            if (e.what() != last_failure) log_(std::string("warm pool: ") + e.what() + "; retrying every " + std::to_string(interval_.count()) + " ms");
            last_failure = e.what();
        }
    }
}

}  // namespace brfusion::shim
