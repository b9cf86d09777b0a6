#pragma once
// The plugin's failures, by what the user (Docker) can do about them. Mapped to HTTP in exactly one
// place (driver.cpp); the message is what `docker` prints, so it says what to do.

#include <stdexcept>
#include <string>

namespace brfusion::plugin {

enum class ErrorKind {
    BadRequest,   // malformed request or an option we refuse
    NotAllowed,   // the host does not let this VM do it
    NotFound,     // unknown network, endpoint, address
    Conflict,     // already in use
    Exhausted,    // no free address or port
    Unavailable,  // brfusion-shim cannot be reached or did not answer
    Failed,       // the host or this VM could not do it
};

class PluginError : public std::runtime_error {
public:
    PluginError(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
    ErrorKind kind() const { return kind_; }

private:
    ErrorKind kind_;
};

}  // namespace brfusion::plugin
