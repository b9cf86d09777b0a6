#pragma once
// The one wrapper around iproute2 and ethtool (private to the shim). Every call names the
// namespace it works in ("" = the shim's own) and throws ShimError(Backend) with the command and
// its output on failure.

#include <string>
#include <vector>

namespace brfusion::shim::iproute {

// `ip [-n NETNS] ARGS...`
void ip(const std::string& netns, const std::vector<std::string>& args);
bool link_exists(const std::string& netns, const std::string& name);
// TX checksum offload off: OVS's userspace datapath forwards TCP from such a device only then.
void disable_tx_offload(const std::string& netns, const std::string& name);

}  // namespace brfusion::shim::iproute
