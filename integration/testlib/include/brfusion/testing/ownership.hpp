#pragma once
// Ownership: what must hold in a lab once it has settled, whatever crashed on the way (the fault
// campaign's invariants; docs/lab.md, "The fault campaign"). Read from the outside, the way an admin
// would: the shim's journal, ovs-vsctl, ovs-ofctl, ip, nft on the host, and docker in each VM.
//
//   - the journal: every NIC attached (no attach or detach left half done), every lease held by a
//     NIC at that address or a reservation younger than its grace period, every NIC holding one;
//   - OVS: the ports labelled brfusion-vm are the journal's NICs; the port-security rules
//     (cookie 0xbf05...) are on exactly those ports, on br-int and the Hostlo bridges; the Hostlo
//     bridges are the journal's groups, each labelled with its own group;
//   - the host's devices named bf<endpoint> / bfg<endpoint> are the journal's NICs';
//   - nftables: the DNATs are the journal's published ports;
//   - Docker: every endpoint on a brfusion network in a VM is a NIC of that VM (same MAC and
//     address), and every NIC of a VM is such an endpoint; a VM is a member of a Hostlo group
//     exactly when its Docker has a network of that group.

#include "brfusion/testing/lab.hpp"

#include <string>
#include <vector>

namespace brfusion::testing {

// One line per violation, naming the object and what is wrong; empty when every rule holds.
// `reservation_grace_seconds` is the shim's (reservations older than it should have expired).
std::vector<std::string> ownership_violations(Lab& lab, int reservation_grace_seconds = 300);

}  // namespace brfusion::testing
