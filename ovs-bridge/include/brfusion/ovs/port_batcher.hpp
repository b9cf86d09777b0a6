#pragma once
// PortBatcher: OvsClient::ensure_port for callers on many threads, whose concurrent requests
// share one transaction. ovs-vswitchd reconfigures once per transaction, and in its userspace
// datapath that costs about as much for ten new ports as for one, more with every port on the
// bridge (docs/performance.md). A caller that finds no transaction in flight sends its own at once,
// so a lone caller waits no longer than before; callers that arrive while one is in flight are
// sent together, next. When a shared transaction fails for a reason one port may have caused
// (Conflict, Vswitchd, Rejected, NotFound), each of its ports is tried alone, so that every
// caller gets its own answer; any other failure (OVS unreachable or not applying changes) is
// every caller's.

#include "brfusion/ovs/client.hpp"

#include <condition_variable>
#include <exception>
#include <mutex>
#include <vector>

namespace brfusion::ovs {

class PortBatcher {
public:
    explicit PortBatcher(OvsClient& client) : client_(client) {}
    // As OvsClient::ensure_port (the same errors), in a transaction it may share. Thread-safe.
    void ensure_port(const PortSpec& spec);

private:
    struct Request {
        PortSpec spec;
        std::exception_ptr failure;
        bool answered = false;  // under mutex_
    };
    // Sends `batch`, setting each request's failure; never throws.
    void send(const std::vector<Request*>& batch);

    OvsClient& client_;
    std::mutex mutex_;
    std::condition_variable answered_;
    std::vector<Request*> waiting_;  // not sent yet
    bool sending_ = false;           // a transaction is in flight
};

}  // namespace brfusion::ovs
