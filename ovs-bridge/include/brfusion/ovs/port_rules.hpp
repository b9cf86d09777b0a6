#pragma once
// PortRules: port security (brfusion::PortSecurity) as OpenFlow rules on one bridge, through
// `ovs-ofctl --bundle` on the bridge's management socket (each change is one atomic bundle).
//
// Every rule of a port carries a cookie: 0xbf05 in the top 16 bits (brfusion's), a hash of the
// port's name below. It finds a port's rules even after the port itself is gone: OVS keeps a
// removed port's flows, and a later port may get its OpenFlow number. Remove a port's rules
// before the port.
//
// Rules name a port by its OpenFlow number, which ovs-vswitchd records in the database (and keeps
// across its restarts), and ovs-ofctl runs with --no-names: resolving a name makes ovs-ofctl fetch
// every port of the bridge, whose cost grows with the ports (at 1000 ports, 165 ms against 35 ms).
//
// Blocking; throws OvsError(Rejected) with ovs-ofctl's own message. Thread-safe (each call is a
// process of its own; the database is read through the thread-safe client).

#include "brfusion/common/port_security.hpp"
#include "brfusion/ovs/client.hpp"

#include <map>
#include <set>
#include <string>

namespace brfusion::ovs {

class PortRules {
public:
    // The rules of `bridge`'s ports; `client` is connected to the database at `ovsdb_socket`.
    PortRules(const OvsClient& client, const std::string& ovsdb_socket, std::string bridge)
        : client_(client), bridge_(std::move(bridge)), openflow_(socket_of(ovsdb_socket, bridge_)) {}
    // ovs-vswitchd puts BRIDGE.mgmt in its run directory, where ovsdb-server's socket is too.
    static std::string socket_of(const std::string& ovsdb_socket, const std::string& bridge);

    // Each port's rules become exactly these (replacing what it had), all in one bundle. If one
    // port is not on the bridge or has no OpenFlow number yet, nothing changes (OvsError(NotFound)).
    void secure(const std::map<std::string, PortSecurity>& ports);
    // The port's rules are gone; idempotent.
    void unsecure(const std::string& port);
    // Which of `ports` have rules.
    std::set<std::string> secured(const std::set<std::string>& ports);
    // Removes the rules of every port not in `keep`; returns how many ports' rules went.
    int prune(const std::set<std::string>& keep);

    // The flow mods that make the rules of `port`, OpenFlow number `ofport`.
    static std::string flow_mods(const std::string& port, std::int64_t ofport, const PortSecurity& allowed);

private:
    std::int64_t ofport_of(const std::string& port) const;
    std::set<std::uint64_t> cookies();
    void apply(const std::string& flow_mods);

    const OvsClient& client_;
    std::string bridge_;
    std::string openflow_;
};

}  // namespace brfusion::ovs
