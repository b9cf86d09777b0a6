#pragma once
// The admin API (HTTP/JSON on the admin socket; brfusionctl is its client): one routing table from
// (method, path) to handler, over NicManager. Pure with respect to I/O: the HTTP session parses
// the request and writes what this returns.
//
//   GET /v1/vms             every VM with its NIC count
//   GET /v1/vms/NAME        one VM with its NICs
//   GET /v1/networks        every host network with its addresses in use
//   GET /v1/nics[?vm=NAME]  NICs: VM, network, MAC, IP, OVS port, endpoint, state
//   GET /v1/doctor          checks of OVS, the backends and the channels: what is wrong
// Errors: {"error": "<what to do>"} with the status of the ShimError kind (wire.hpp).

#include "brfusion/shim/nic_manager.hpp"

#include <nlohmann/json.hpp>

#include <functional>
#include <string>

namespace brfusion::shim {

struct AdminResponse {
    int status = 200;
    nlohmann::json body;
};

// One check of `doctor`.
struct Check {
    std::string name;
    bool ok = false;
    std::string detail;  // what was found, and what to do when !ok
};
using Doctor = std::function<std::vector<Check>()>;

// Never throws.
AdminResponse handle_admin_request(NicManager& nics, const Doctor& doctor, const std::string& method, const std::string& target);

}  // namespace brfusion::shim
