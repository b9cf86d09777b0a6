#pragma once
// Port security: what one switch port may send. ARP and IPv4 from this MAC and address pass (an
// ARP's sender MAC and IP must be these too); everything else the port sends is dropped, IPv6
// included. Without an address (a warm-pool spare), nothing passes.

#include "brfusion/common/ipv4.hpp"

#include <optional>
#include <string>

namespace brfusion {

struct PortSecurity {
    std::string mac;
    std::optional<Ipv4> ip;
    bool operator==(const PortSecurity&) const = default;
};

}  // namespace brfusion
