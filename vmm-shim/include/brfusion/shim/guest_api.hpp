#pragma once
// The shim's side of the guest channel (protocol: brfusion/common/guest_protocol.hpp): one
// routing table from method to handler, over NicManager. Pure with respect to I/O: the channel
// server parses lines and writes what this returns.

#include "brfusion/common/guest_protocol.hpp"
#include "brfusion/shim/nic_manager.hpp"

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace brfusion::shim {

// Handles one request from VM `vm` (the channel's identity), parsed within the channel's limits
// (guest::parse_request_line). Returns the JSON-RPC response, or nullopt for a notification (no
// id). Never throws: every failure becomes an error response.
std::optional<nlohmann::json> handle_guest_request(NicManager& nics, const std::string& vm, const guest::Request& request);
// Parses one line and handles it: what the channel server does with every line, in two steps.
std::optional<nlohmann::json> handle_guest_line(NicManager& nics, const std::string& vm, std::string_view line);

}  // namespace brfusion::shim
