#pragma once
// The fault campaign (docs/lab.md, "The fault campaign"): on a fresh two-VM lab, each run starts one
// operation through Docker in a VM (attach: docker run; detach: docker rm -f; publish: docker
// run -p; Hostlo join: a group's network and a container on it; Hostlo leave: both removed) and,
// at a random moment while it runs, kills one component with SIGKILL (the shim, ovsdb-server,
// ovs-vswitchd, or that VM's plugin or dockerd) and starts it again, as systemd would. Whether the
// operation succeeds does not matter; once the lab has settled, every ownership rule
// (ownership.hpp) must hold and traffic must flow: container to container across VMs, out through
// the host's NAT, and from the outside to a published port. At the end everything is removed and
// nothing may be left.

#include "brfusion/testing/lab.hpp"

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

namespace brfusion::testing {

struct ChaosOptions {
    int runs = 50;
    std::uint64_t seed = 0;         // 0: from the clock; the seed is printed, and replays the choices
    std::string backend = "netns";  // netns | qmp
    std::string name;               // the lab's; default bflPID (test-all sweeps what a crash left)
    LabBinaries binaries;
};

struct ChaosReport {
    std::uint64_t seed = 0;
    int runs = 0;                    // runs done (the campaign stops at the first violation)
    int operations_failed = 0;       // operations Docker reported as failed (expected under faults)
    std::vector<std::string> violations;  // empty: every run held
};

// Runs the campaign, one line per run on `log`. Throws std::runtime_error if the lab cannot be
// set up; a violation is reported, not thrown.
ChaosReport run_chaos(const ChaosOptions& options, std::ostream& log);

}  // namespace brfusion::testing
