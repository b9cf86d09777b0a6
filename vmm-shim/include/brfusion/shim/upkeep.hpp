#pragma once
// Upkeep: what drifts while the shim runs, put right every second (NicManager::maintain): port
// rules that ovs-vswitchd lost in a restart, or a bridge an admin made again; address
// reservations no NIC took within the grace period; the firewall's addresses when the host's
// change. Each repair is logged.

#include "brfusion/shim/background_loop.hpp"
#include "brfusion/shim/nic_manager.hpp"

namespace brfusion::shim {

class Upkeep {
public:
    // Starts at once (the manager must outlive it).
    Upkeep(NicManager& nics, BackgroundLoop::Log log, std::chrono::milliseconds interval = std::chrono::seconds(1));

private:
    BackgroundLoop loop_;
};

}  // namespace brfusion::shim
