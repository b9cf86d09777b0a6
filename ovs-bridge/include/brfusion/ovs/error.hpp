#pragma once
// The one error type of ovs-bridge. Every message names the object and says what to do.

#include <stdexcept>
#include <string>

namespace brfusion::ovs {

enum class ErrorKind {
    NotFound,        // a bridge/port the operation needs does not exist
    Conflict,        // an object exists with other settings than requested
    Unreachable,     // ovsdb-server cannot be reached (or has not answered in time)
    ConnectionLost,  // the connection dropped while a request was in flight: its outcome is unknown
    VswitchdTimeout, // the database took the change but ovs-vswitchd did not apply it in time
    Vswitchd,        // ovs-vswitchd applied the change and reported an error (Interface.error)
    Rejected,        // ovsdb-server refused the request (syntax, constraint, ...)
};

class OvsError : public std::runtime_error {
public:
    OvsError(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
    ErrorKind kind() const { return kind_; }

private:
    ErrorKind kind_;
};

}  // namespace brfusion::ovs
