#pragma once
// The admin API (HTTP/JSON on the admin socket; brfusionctl is its client): one routing table from
// (method, resource) to handler, over NicManager. Pure with respect to I/O: the HTTP session parses
// the request and writes what this returns.
//
//   GET    /v1/vms               every VM with its NIC count and origin (config | api)
//   POST   /v1/vms               add a VM; body as a config file's VM entry -> 201 and the VM
//   GET    /v1/vms/NAME          one VM with its NICs
//   DELETE /v1/vms/NAME          detach its NICs (addresses back to the pools), forget it
//   GET    /v1/networks          every host network with its addresses in use
//   POST   /v1/networks          add a host network; body as a config file's network entry -> 201
//   GET    /v1/networks/NAME     one host network
//   DELETE /v1/networks/NAME     remove an unused host network
//   GET    /v1/nics[?vm=NAME]    NICs: VM, network, MAC, IP, OVS port, endpoint, state, published ports
//   GET    /v1/hostlo            every Hostlo group: subnet, segment (OVS bridge), members and their NICs
//   GET    /v1/hostlo/NAME       one Hostlo group
//   GET    /v1/doctor            checks of OVS, nftables, the backends and the channels: what is wrong
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

// What the admin API works on: the core, and the daemon's part of adding and removing a VM (its
// guest channel). vm_added throws if the VM cannot be served; the VM is then removed again.
struct AdminContext {
    NicManager& nics;
    Doctor doctor;
    std::function<void(const VmConfig&)> vm_added = [](const VmConfig&) {};
    std::function<void(const std::string&)> vm_removed = [](const std::string&) {};
};

// Never throws.
AdminResponse handle_admin_request(AdminContext& context, const std::string& method, const std::string& target, const std::string& body = "");

}  // namespace brfusion::shim
