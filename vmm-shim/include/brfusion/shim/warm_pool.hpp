#pragma once
// WarmPool: keeps the VMs' warm pools (VmConfig::warm_pool) full in the background, so that a
// container's attach claims a NIC that is already plugged instead of waiting for a hot-plug.
//
// It balances the pools (NicManager::balance_warm_pool, one spare at a time) when woken — a spare
// was claimed — and every `interval` (which picks up VMs added at run time and retries after a
// failure: a VM not running yet, a VM out of hot-plug slots, a VM whose backend was busy).

#include "brfusion/shim/background_loop.hpp"
#include "brfusion/shim/nic_manager.hpp"

namespace brfusion::shim {

class WarmPool {
public:
    // Starts balancing at once; registers itself for the manager's claims (the manager must
    // outlive the pool).
    WarmPool(NicManager& nics, BackgroundLoop::Log log, std::chrono::milliseconds interval = std::chrono::seconds(2));
    // Stops after the step in progress.
    ~WarmPool();

private:
    NicManager& nics_;
    BackgroundLoop loop_;
};

}  // namespace brfusion::shim
