#pragma once
// The one wrapper around the host tools the shim runs: iproute2, ethtool, nft, ovs-ofctl, sysctl
// (private to the shim). Every call names the network namespace it works in ("" = the shim's own)
// and throws ShimError(Backend) with the command and its output on failure.

#include <string>
#include <vector>

namespace brfusion::shim::tools {

// Runs argv in `netns` with `input` on stdin; returns its output.
std::string run(const std::string& netns, const std::vector<std::string>& argv, const std::string& input = "");
// `ip [-n NETNS] ARGS...`
void ip(const std::string& netns, const std::vector<std::string>& args);
bool link_exists(const std::string& netns, const std::string& name);
// A persistent TAP `name` in `netns`, up, with `mtu`, kept out of the host's IP stack (made if
// missing): a NIC's host side that a VMM opens. delete_link removes it (or any link); both idempotent.
void ensure_tap(const std::string& netns, const std::string& name, int mtu);
void delete_link(const std::string& netns, const std::string& name);
// The host's own IP stack ignores link `name` in `netns` (idempotent): it answers no ARP on it,
// accepts no IPv4 from it (strict reverse-path filter, and no route leads to it) and runs no IPv6
// on it. For a NIC's host side, which is only a port of the OVS bridge. OVS's userspace datapath
// reads its ports through packet sockets and leaves the kernel's own receive path in place:
// without this the host answers a guest's ARP for its gateway with this link's MAC, and what the
// guest sends then reaches the host past OVS's port security and the firewall's per-network rules.
void keep_out_of_host_stack(const std::string& netns, const std::string& name);
// An fd attached to the existing TAP `name` in `netns` (no packet info; with a vnet header, so
// that the VMM offers the guest checksum offload and the guest keeps scatter-gather and GSO), to
// hand to a VMM; the caller closes it. The netns is entered on a thread of its own, never the caller's.
int open_tap(const std::string& netns, const std::string& name);
// The contents of `path` (a /proc file) as a thread in `netns` sees it: /proc/thread-self/net/...
// and /proc/sys/net/... show that namespace's tables and settings.
std::string read_in_netns(const std::string& netns, const std::string& path);
// TX checksum offload off: OVS's userspace datapath forwards TCP from such a device only then.
void disable_tx_offload(const std::string& netns, const std::string& name);

}  // namespace brfusion::shim::tools
