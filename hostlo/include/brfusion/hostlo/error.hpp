#pragma once
// The one error type of the Hostlo library. Messages name the group and say what to do; the
// shim maps the kind to its own errors in one place.

#include <stdexcept>
#include <string>

namespace brfusion::hostlo {

enum class ErrorKind {
    BadRequest,  // an invalid group name or subnet
    Conflict,    // a subnet that another group holds, or that differs from the group's own
    Exhausted,   // no free subnet left in the range
    Backend,     // OVS (or the kernel module) failed
};

class HostloError : public std::runtime_error {
public:
    HostloError(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
    ErrorKind kind() const { return kind_; }

private:
    ErrorKind kind_;
};

}  // namespace brfusion::hostlo
