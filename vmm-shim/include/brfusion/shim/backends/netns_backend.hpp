#pragma once
// The netns backend: the "VM" is a network namespace (system containers; our fast test bed).
// A NIC is a veth pair: host_if stays in the host namespace and joins OVS; its peer moves into the
// VM's namespace as guest_if, with the MAC and MTU set and TX checksum offload off (OVS's
// userspace datapath needs that for TCP) unless Open vSwitch takes the guests' offloads
// (ShimConfig::userspace_tso). Deleting host_if deletes the peer wherever Docker moved
// it inside the VM, so unplug is one step.

#include "brfusion/shim/backend.hpp"

namespace brfusion::shim {

class NetnsBackend final : public VmmBackend {
public:
    NetnsBackend(std::string vm_netns, std::string host_netns, bool checksum_offload);

    void create_host_device(const NicDevice& nic) override;
    std::string plug(const NicDevice& nic) override;
    void unplug(const NicDevice& nic) override;
    void delete_host_device(const NicDevice& nic) override;
    bool host_device_exists(const NicDevice& nic) override;
    bool plugged(const NicDevice& nic) override;
    std::vector<std::string> plugged_nics() override { return {}; }  // a veth's host side is its only handle

private:
    std::string vm_netns_;
    std::string host_netns_;
    bool checksum_offload_;
};

}  // namespace brfusion::shim
