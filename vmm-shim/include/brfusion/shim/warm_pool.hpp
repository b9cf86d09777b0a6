#pragma once
// WarmPool: keeps the VMs' warm pools (VmConfig::warm_pool) full in the background, so that a
// container's attach claims a NIC that is already plugged instead of waiting for a hot-plug.
//
// One thread. It balances the pools (NicManager::balance_warm_pool, one spare at a time) when
// woken — a spare was claimed — and every `interval` (which picks up VMs added at run time and
// retries after a failure: a VM not running yet, a VM out of hot-plug slots). Each new failure
// is logged once, not at every retry.

#include "brfusion/shim/nic_manager.hpp"

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace brfusion::shim {

class WarmPool {
public:
    using Log = std::function<void(const std::string&)>;

    // Starts the thread and wakes it once; registers itself for the manager's claims (the
    // manager must outlive the pool).
    WarmPool(NicManager& nics, Log log, std::chrono::milliseconds interval = std::chrono::seconds(2));
    // Stops the thread after the step in progress.
    ~WarmPool();
    WarmPool(const WarmPool&) = delete;
    WarmPool& operator=(const WarmPool&) = delete;

    // Balance the pools now. Never blocks.
    void wake();

private:
    void run(std::stop_token stop);

    NicManager& nics_;
    Log log_;
    std::chrono::milliseconds interval_;
    std::mutex mutex_;
    std::condition_variable_any woken_;
    bool wake_ = true;
    std::jthread thread_;  // last: started once everything above exists
};

}  // namespace brfusion::shim
