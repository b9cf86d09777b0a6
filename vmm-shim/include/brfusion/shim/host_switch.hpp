#pragma once
// HostSwitch: the host side of networks and NICs, as the shim's core needs it: the integration
// bridge, container ports, and each network's gateway (an OVS internal port with the gateway
// address). OvsHostSwitch is the real one (ovs-bridge + iproute2); unit tests use fakes that fail
// on demand.
//
// Contract: idempotent; blocks until ovs-vswitchd has applied the change; throws
// ShimError(Backend) with OVS's or the kernel's own explanation.

#include <map>
#include <string>

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
    // An access port of VLAN `tag` for an existing host device.
    virtual void add_port(const std::string& name, int tag, const Labels& labels) = 0;
    virtual void remove_port(const std::string& name) = 0;
    // Ports carrying the label `key`, as port name -> that label's value.
    virtual std::map<std::string, std::string> ports_labelled(const std::string& key) = 0;
    // An internal port of VLAN `tag` whose host device holds `address_cidr` (e.g.
    // "198.51.100.1/24"), is up, has `mtu`, and TX checksum offload off.
    virtual void ensure_gateway(const std::string& port, int tag, const Labels& labels, const std::string& address_cidr, int mtu) = 0;
};

class OvsHostSwitch final : public HostSwitch {
public:
    // `host_netns`: where OVS runs and its internal ports appear ("" = the shim's own).
    OvsHostSwitch(ovs::OvsClient& client, std::string bridge, std::string host_netns)
        : client_(client), bridge_(std::move(bridge)), host_netns_(std::move(host_netns)) {}
    void ensure_bridge() override;
    void add_port(const std::string& name, int tag, const Labels& labels) override;
    void remove_port(const std::string& name) override;
    std::map<std::string, std::string> ports_labelled(const std::string& key) override;
    void ensure_gateway(const std::string& port, int tag, const Labels& labels, const std::string& address_cidr, int mtu) override;

private:
    ovs::OvsClient& client_;
    std::string bridge_;
    std::string host_netns_;
};

}  // namespace brfusion::shim
