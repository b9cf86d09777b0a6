#pragma once
// The one error type of the shim's core. Messages name the object and say what to do; the kind
// is mapped to the wire (admin API, guest channel) in one place.

#include <stdexcept>
#include <string>

namespace brfusion::shim {

enum class ErrorKind {
    BadRequest,  // malformed or contradictory input
    NotAllowed,  // the VM may not do this (network not allowed, another VM's NIC)
    NotFound,    // unknown VM, network or endpoint
    Conflict,    // already exists / in use
    Exhausted,   // no address left in a pool
    Backend,     // the VMM, the kernel or OVS failed
};

class ShimError : public std::runtime_error {
public:
    ShimError(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
    ErrorKind kind() const { return kind_; }

private:
    ErrorKind kind_;
};

}  // namespace brfusion::shim
