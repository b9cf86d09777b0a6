#pragma once
// PortRules: port security (brfusion::PortSecurity) as OpenFlow rules on one bridge, through
// `ovs-ofctl --bundle` on the bridge's management socket (each change is one atomic bundle).
//
// Every rule of a port carries a cookie: 0xbf05 in the top 16 bits (brfusion's), a hash of the
// port's name below. It finds a port's rules even after the port itself is gone: OVS keeps a
// removed port's flows, and a later port may get its OpenFlow number. Remove a port's rules
// before the port.
//
// Blocking; throws OvsError(Rejected) with ovs-ofctl's own message. Thread-safe (each call is a
// process of its own).

#include "brfusion/common/port_security.hpp"

#include <map>
#include <set>
#include <string>

namespace brfusion::ovs {

class PortRules {
public:
    // `openflow`: the bridge's management socket as ovs-ofctl names it ("unix:/run/openvswitch/br-int.mgmt").
    explicit PortRules(std::string openflow) : openflow_(std::move(openflow)) {}
    // ovs-vswitchd puts BRIDGE.mgmt in its run directory, where ovsdb-server's socket is too.
    static std::string socket_of(const std::string& ovsdb_socket, const std::string& bridge);

    // Each port's rules become exactly these (replacing what it had), all in one bundle: if one
    // port is unknown to the switch, nothing changes.
    void secure(const std::map<std::string, PortSecurity>& ports);
    // The port's rules are gone; idempotent.
    void unsecure(const std::string& port);
    // Which of `ports` have rules.
    std::set<std::string> secured(const std::set<std::string>& ports);
    // Removes the rules of every port not in `keep`; returns how many ports' rules went.
    int prune(const std::set<std::string>& keep);

    // The flow mods that make `port`'s rules (for tests and ovs-ofctl).
    static std::string flow_mods(const std::string& port, const PortSecurity& allowed);

private:
    std::set<std::uint64_t> cookies();
    void apply(const std::string& flow_mods);

    std::string openflow_;
};

}  // namespace brfusion::ovs
