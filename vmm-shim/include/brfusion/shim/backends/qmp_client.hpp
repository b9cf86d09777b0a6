#pragma once
// QmpClient: one QEMU Machine Protocol connection (a unix socket QEMU serves with `-qmp
// unix:PATH,server=on,wait=off`). Commands and events share the connection: a command's reply is
// matched by its id, and events that arrive meanwhile are kept, in order, for wait_event.
//
// Blocking and not thread-safe: the one backend that owns it calls it under its own lock.
// Every call (re)connects first if needed: greeting, then qmp_capabilities. A broken connection
// is closed, and the call throws; the next call connects again (QEMU keeps a monitor's state,
// devices and fds across reconnections). Events that arrived before a reconnection are dropped.
//
// Errors: ShimError(Backend) with the VM's name and what failed: cannot connect, the connection
// broke, no reply within the timeout, or QEMU's own error ("device_add failed: Duplicate ID ...").
// QmpError, a ShimError, carries QEMU's error class for callers that tell errors apart.

#include "brfusion/common/json_stream.hpp"
#include "brfusion/shim/error.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <deque>
#include <functional>
#include <optional>
#include <string>

namespace brfusion::shim {

class QmpError : public ShimError {
public:
    QmpError(std::string error_class, const std::string& message)
        : ShimError(ErrorKind::Backend, message), error_class_(std::move(error_class)) {}
    // QEMU's class: GenericError, DeviceNotFound, CommandNotFound, ...
    const std::string& error_class() const { return error_class_; }

private:
    std::string error_class_;
};

class QmpClient {
public:
    using Clock = std::chrono::steady_clock;

    // `vm` names the VM in messages; `socket` is QEMU's QMP socket; `timeout` bounds each
    // connection attempt and each reply.
    QmpClient(std::string vm, std::string socket, std::chrono::milliseconds timeout);
    ~QmpClient();
    QmpClient(const QmpClient&) = delete;
    QmpClient& operator=(const QmpClient&) = delete;

    // Runs `command` and returns its "return" value. `fd` >= 0 goes along with the command as
    // SCM_RIGHTS (for getfd); the caller keeps its own copy. Throws QmpError for QEMU's errors.
    nlohmann::json execute(const std::string& command, const nlohmann::json& arguments = nlohmann::json::object(), int fd = -1);

    // Waits for an event named `name` whose "data" satisfies `matches`, until `deadline`; returns
    // its data. Events that do not match stay queued for later waits. Throws ShimError(Backend)
    // when the deadline passes.
    nlohmann::json wait_event(const std::string& name, const std::function<bool(const nlohmann::json&)>& matches, Clock::time_point deadline);

    // Drops the events received so far (before starting an operation whose events matter).
    void clear_events();

private:
    void connect();
    void disconnect();
    void send(const std::string& line, int fd);
    // The next message; nullopt when `deadline` passes first. Throws if the connection breaks.
    std::optional<nlohmann::json> receive(Clock::time_point deadline);
    // The next message; throws (and disconnects) when `deadline` passes first.
    nlohmann::json reply_by(Clock::time_point deadline);
    [[noreturn]] void fail(const std::string& what);

    std::string vm_;
    std::string socket_path_;
    std::chrono::milliseconds timeout_;
    int socket_ = -1;
    // QEMU's answers: `query-pci` of a VM with 100 root ports is ~100 KB; 16 MiB bounds a monitor
    // that went wrong (a guest that escaped into QEMU included).
    static constexpr std::size_t kMaxMessageBytes = 16 * 1024 * 1024;
    JsonStreamFramer framer_{kMaxMessageBytes};
    std::deque<nlohmann::json> events_;
    long next_id_ = 1;
};

}  // namespace brfusion::shim
