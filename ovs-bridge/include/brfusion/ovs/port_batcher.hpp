#pragma once
// PortBatcher: OvsClient::ensure_port for callers on many threads, whose concurrent requests
// share one transaction (brfusion/common/coalescer.hpp). When a shared transaction fails for a
// reason one port may have caused (Conflict, Vswitchd, Rejected, NotFound), each of its ports is
// tried alone, so that every caller gets its own answer; any other failure (OVS unreachable, or
// not applying changes) is every caller's.

#include "brfusion/common/coalescer.hpp"
#include "brfusion/ovs/client.hpp"

namespace brfusion::ovs {

class PortBatcher {
public:
    explicit PortBatcher(OvsClient& client);
    // As OvsClient::ensure_port (the same errors), in a transaction it may share. Thread-safe.
    void ensure_port(const PortSpec& spec) { ports_.run(spec); }

private:
    std::vector<std::exception_ptr> ensure_together(const std::vector<PortSpec>& specs);
    OvsClient& client_;
    Coalescer<PortSpec> ports_;
};

}  // namespace brfusion::ovs
