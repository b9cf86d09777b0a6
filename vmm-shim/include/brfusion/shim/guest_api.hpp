#pragma once
// The shim's side of the guest channel (protocol: brfusion/common/guest_protocol.hpp): one
// routing table from method to handler, over NicManager. Pure with respect to I/O: the channel
// server parses lines and writes what this returns.

#include "brfusion/shim/nic_manager.hpp"

#include <nlohmann/json.hpp>

#include <optional>
#include <string>

namespace brfusion::shim {

// Handles one message from VM `vm` (the channel's identity). Returns the JSON-RPC response, or
// nullopt for a notification (no id). Never throws: every failure becomes an error response.
std::optional<nlohmann::json> handle_guest_message(NicManager& nics, const std::string& vm, const nlohmann::json& message);

}  // namespace brfusion::shim
