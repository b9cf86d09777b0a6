#pragma once
// What NicManager's files share (private to src/nic_manager/).

#include "brfusion/hostlo/error.hpp"
#include "brfusion/shim/error.hpp"
#include "brfusion/shim/nic_manager.hpp"

#include <cstdint>
#include <exception>
#include <string>
#include <vector>

namespace brfusion::shim::detail {

// "a, b, c", or "none".
std::string join(const std::vector<std::string>& items);
std::string random_hex(std::size_t digits);
// Locally administered, unicast.
std::string random_mac();
// A NIC's names: its host device and OVS port, and its name in the VM where the backend picks it
// (both within Linux's 15 characters for a 12-digit endpoint).
inline std::string host_if_of(const std::string& endpoint) { return "bf" + endpoint; }
inline std::string guest_if_of(const std::string& endpoint) { return "bfg" + endpoint; }
inline NicDevice device_of(const NicRecord& record, int mtu) { return {record.host_if, guest_if_of(record.endpoint), record.mac, mtu}; }

// The OVS label of a warm-pool NIC that no container has claimed yet.
inline constexpr const char* kSpareLabel = "brfusion-spare";

// What a NIC's port may send: a spare, nothing.
inline PortSecurity security_of(const NicRecord& record) {
    return {record.mac, record.spare ? std::nullopt : std::optional<Ipv4>(record.ip)};
}

std::string message_of(const std::exception_ptr& error);
std::int64_t now_seconds();

// The Hostlo library's errors as the shim's (its messages already name the group).
template <typename F>
auto hostlo_call(F&& operation) {
    try {
        return operation();
    } catch (const hostlo::HostloError& e) {
        switch (e.kind()) {
        case hostlo::ErrorKind::BadRequest: throw ShimError(ErrorKind::BadRequest, e.what());
        case hostlo::ErrorKind::Conflict: throw ShimError(ErrorKind::Conflict, e.what());
        case hostlo::ErrorKind::Exhausted: throw ShimError(ErrorKind::Exhausted, e.what());
        case hostlo::ErrorKind::Backend: break;
        }
        throw ShimError(ErrorKind::Backend, e.what());
    }
}

}  // namespace brfusion::shim::detail
