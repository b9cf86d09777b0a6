#pragma once
// A network as a guest names it, for tests: net("lab"), net("hostlo:pod1").

#include "brfusion/common/guest_protocol.hpp"

namespace brfusion::shim::test {

inline guest::NetworkRef net(const std::string& wire) { return *guest::NetworkRef::parse(wire); }

}  // namespace brfusion::shim::test
