#include "brfusion/ovs/port_batcher.hpp"

#include <utility>

namespace brfusion::ovs {

void PortBatcher::ensure_port(const PortSpec& spec) {
    Request mine{spec, nullptr, false};
    std::unique_lock lock(mutex_);
    waiting_.push_back(&mine);
    answered_.wait(lock, [&] { return mine.answered || !sending_; });
    if (!mine.answered) {  // nothing in flight: send what waits, this request among it
        sending_ = true;
        const std::vector<Request*> batch = std::exchange(waiting_, {});
        lock.unlock();
        send(batch);
        lock.lock();
        for (Request* request : batch) request->answered = true;
        sending_ = false;
        answered_.notify_all();
    }
    lock.unlock();
    if (mine.failure) std::rethrow_exception(mine.failure);
}

void PortBatcher::send(const std::vector<Request*>& batch) {
    const auto alone = [&](Request& request) {
        try {
            client_.ensure_port(request.spec);
        } catch (...) {
            request.failure = std::current_exception();
        }
    };
    if (batch.size() == 1) return alone(*batch.front());
    std::vector<PortSpec> specs;
    for (const Request* request : batch) specs.push_back(request->spec);
    try {
        client_.ensure_ports(specs);
        return;
    } catch (const OvsError& e) {
        const bool one_port_may_be_at_fault = e.kind() == ErrorKind::Conflict || e.kind() == ErrorKind::Vswitchd || e.kind() == ErrorKind::Rejected ||
                                              e.kind() == ErrorKind::NotFound;
        if (!one_port_may_be_at_fault) {
            for (Request* request : batch) request->failure = std::current_exception();
            return;
        }
    } catch (...) {
        for (Request* request : batch) request->failure = std::current_exception();
        return;
    }
    for (Request* request : batch) alone(*request);
}

}  // namespace brfusion::ovs
