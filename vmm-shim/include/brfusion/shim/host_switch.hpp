#pragma once
// HostSwitch: the host side of networks and NICs, as the shim's core needs it: the integration
// bridge, container ports and their port security, and each network's gateway (an OVS internal
// port with the gateway address). OvsHostSwitch is the real one (ovs-bridge, iproute2, ovs-ofctl);
// unit tests use fakes that fail on demand.
//
// Contract: idempotent; blocks until ovs-vswitchd has applied the change; throws
// ShimError(Backend) with OVS's or the kernel's own explanation.

#include "brfusion/common/coalescer.hpp"
#include "brfusion/common/ipv4.hpp"
#include "brfusion/common/port_security.hpp"
#include "brfusion/ovs/port_batcher.hpp"
#include "brfusion/ovs/port_rules.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace brfusion::ovs {
class OvsClient;
}

namespace brfusion::shim {

using Labels = std::map<std::string, std::string>;  // external_ids

class HostSwitch {
public:
    virtual ~HostSwitch() = default;
    // The integration bridge, created if missing.
    virtual void ensure_bridge() = 0;
    // An access port of VLAN `tag` for an existing host device. Concurrent calls may share one
    // OVS transaction (each still gets its own answer).
    virtual void add_port(const std::string& name, int tag, const Labels& labels) = 0;
    virtual void remove_port(const std::string& name) = 0;
    // Removes the label `key` from the port (and its interface); idempotent.
    virtual void remove_label(const std::string& port, const std::string& key) = 0;
    // Ports carrying the label `key`, as port name -> that label's value.
    virtual std::map<std::string, std::string> ports_labelled(const std::string& key) = 0;
    // An internal port of VLAN `tag` whose host device holds `address_cidr` (e.g.
    // "198.51.100.1/24"), is up, has `mtu`, and TX checksum offload off.
    virtual void ensure_gateway(const std::string& port, int tag, const Labels& labels, const std::string& address_cidr, int mtu) = 0;

    // Port security (brfusion/common/port_security.hpp) on existing ports, replacing what each
    // had, all at once: if one port is unknown to the switch, nothing changes. Concurrent calls
    // may share one flow-table change (each still gets its own answer).
    virtual void secure_ports(const std::map<std::string, PortSecurity>& ports) = 0;
    // Removes the port's security rules; idempotent. Call it before remove_port: OVS keeps the
    // flows of a removed port, and a later port may get its number.
    virtual void unsecure_port(const std::string& port) = 0;
    // Which of `ports` have security rules.
    virtual std::set<std::string> secured_ports(const std::set<std::string>& ports) = 0;
    // Removes the security rules of every port not in `keep` (left by a crash); returns how many
    // ports' rules it removed.
    virtual int prune_port_security(const std::set<std::string>& keep) = 0;
    // Changes whenever the switch may have lost its rules: ovs-vswitchd restarted, or the bridge
    // was made again. Cheap (no process, no round trip): polled every second.
    virtual std::string generation() = 0;
    // Whether Open vSwitch is set to segment and checksum in software what guests leave to it
    // (Open_vSwitch other_config:userspace-tso-enable=true; ovs-vswitchd reads it when it starts).
    virtual bool userspace_tso() = 0;
};

class OvsHostSwitch final : public HostSwitch {
public:
    // `host_netns`: where OVS runs and its internal ports appear ("" = the shim's own).
    // `ovsdb_socket`: ovsdb-server's; the bridge's OpenFlow management socket is beside it.
    OvsHostSwitch(ovs::OvsClient& client, std::string bridge, std::string host_netns, const std::string& ovsdb_socket);
    void ensure_bridge() override;
    void add_port(const std::string& name, int tag, const Labels& labels) override;
    void remove_port(const std::string& name) override;
    void remove_label(const std::string& port, const std::string& key) override;
    std::map<std::string, std::string> ports_labelled(const std::string& key) override;
    void ensure_gateway(const std::string& port, int tag, const Labels& labels, const std::string& address_cidr, int mtu) override;
    void secure_ports(const std::map<std::string, PortSecurity>& ports) override;
    void unsecure_port(const std::string& port) override;
    std::set<std::string> secured_ports(const std::set<std::string>& ports) override;
    int prune_port_security(const std::set<std::string>& keep) override;
    std::string generation() override;
    bool userspace_tso() override;

private:
    ovs::OvsClient& client_;
    std::string bridge_;
    std::string host_netns_;
    std::string management_socket_;  // the bridge's, as a path
    ovs::PortRules rules_;
    ovs::PortBatcher ports_;  // container ports, added together when attaches run at once
    using PortRulesChange = std::map<std::string, PortSecurity>;
    Coalescer<PortRulesChange> rules_changes_;  // secure_ports calls, made together when they run at once
    std::vector<std::exception_ptr> secure_together(const std::vector<PortRulesChange>& changes);
};

}  // namespace brfusion::shim
