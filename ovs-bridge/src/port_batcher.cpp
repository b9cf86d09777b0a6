#include "brfusion/ovs/port_batcher.hpp"

namespace brfusion::ovs {

PortBatcher::PortBatcher(OvsClient& client) : client_(client), ports_([this](const std::vector<PortSpec>& specs) { return ensure_together(specs); }) {}

std::vector<std::exception_ptr> PortBatcher::ensure_together(const std::vector<PortSpec>& specs) {
    std::vector<std::exception_ptr> failures(specs.size());
    const auto each_alone = [&] {
        for (std::size_t i = 0; i < specs.size(); ++i) {
            try {
                client_.ensure_port(specs[i]);
            } catch (...) {
                failures[i] = std::current_exception();
            }
        }
        return failures;
    };
    if (specs.size() == 1) return each_alone();
    try {
        client_.ensure_ports(specs);
        return failures;
    } catch (const OvsError& e) {
        const bool one_port_may_be_at_fault = e.kind() == ErrorKind::Conflict || e.kind() == ErrorKind::Vswitchd || e.kind() == ErrorKind::Rejected ||
                                              e.kind() == ErrorKind::NotFound;
        if (one_port_may_be_at_fault) return each_alone();
        failures.assign(specs.size(), std::current_exception());
    } catch (...) {
        failures.assign(specs.size(), std::current_exception());
    }
    return failures;
}

}  // namespace brfusion::ovs
