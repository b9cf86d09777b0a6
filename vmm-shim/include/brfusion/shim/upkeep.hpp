#pragma once
// Upkeep: what drifts while the shim runs, put right every second (NicManager::maintain): port
// rules that ovs-vswitchd lost in a restart, or a bridge an admin made again; address
// reservations no NIC took within the grace period; the firewall's addresses when the host's
// change; and, on a thread of its own, NICs a failed attach or detach left half made
// (NicManager::finish_unfinished). Each repair is logged.

#include "brfusion/shim/background_loop.hpp"
#include "brfusion/shim/nic_manager.hpp"

namespace brfusion::shim {

class Upkeep {
public:
    // Starts at once (the manager must outlive it).
    Upkeep(NicManager& nics, BackgroundLoop::Log log, std::chrono::milliseconds interval = std::chrono::seconds(1));

private:
    BackgroundLoop loop_;       // NicManager::maintain
    BackgroundLoop finishing_;  // NicManager::finish_unfinished, apart: it waits on VM backends
};

}  // namespace brfusion::shim
