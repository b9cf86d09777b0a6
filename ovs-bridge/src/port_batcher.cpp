#include "brfusion/ovs/port_batcher.hpp"

namespace brfusion::ovs {

PortBatcher::PortBatcher(OvsClient& client) : client_(client), ports_([this](const std::vector<PortSpec>& specs) { return ensure_together(specs); }) {}

std::vector<std::exception_ptr> PortBatcher::ensure_together(const std::vector<PortSpec>& specs) {
    const auto each_alone = [&] { return run_each_alone(specs, [&](const PortSpec& spec) { client_.ensure_port(spec); }); };
    if (specs.size() == 1) return each_alone();
    try {
        client_.ensure_ports(specs);
        return std::vector<std::exception_ptr>(specs.size());
    } catch (const OvsError& e) {
        const bool one_port_may_be_at_fault = e.kind() == ErrorKind::Conflict || e.kind() == ErrorKind::Vswitchd || e.kind() == ErrorKind::Rejected ||
                                              e.kind() == ErrorKind::NotFound;
        if (one_port_may_be_at_fault) return each_alone();
        return std::vector<std::exception_ptr>(specs.size(), std::current_exception());
    } catch (...) {
        return std::vector<std::exception_ptr>(specs.size(), std::current_exception());
    }
}

}  // namespace brfusion::ovs
