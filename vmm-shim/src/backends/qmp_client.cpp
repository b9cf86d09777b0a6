#include "brfusion/shim/backends/qmp_client.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace brfusion::shim {

using nlohmann::json;

namespace {

int remaining_ms(QmpClient::Clock::time_point deadline) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - QmpClient::Clock::now()).count();
    return left > 0 ? static_cast<int>(left) : 0;
}

}  // namespace

QmpClient::QmpClient(std::string vm, std::string socket, std::chrono::milliseconds timeout)
    : vm_(std::move(vm)), socket_path_(std::move(socket)), timeout_(timeout) {}

QmpClient::~QmpClient() { disconnect(); }

void QmpClient::fail(const std::string& what) {
    disconnect();
    throw ShimError(ErrorKind::Backend, "VM " + vm_ + ": QMP " + socket_path_ + ": " + what);
}

void QmpClient::disconnect() {
    if (socket_ >= 0) ::close(socket_);
    socket_ = -1;
    framer_ = JsonStreamFramer(kMaxMessageBytes);
    events_.clear();
}

void QmpClient::connect() {
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    if (socket_path_.size() >= sizeof(address.sun_path)) fail("the socket path is too long");
    std::memcpy(address.sun_path, socket_path_.c_str(), socket_path_.size() + 1);
    socket_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (socket_ < 0) fail(std::string("socket: ") + std::strerror(errno));
    if (::connect(socket_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0)
        fail(std::string("cannot connect (") + std::strerror(errno) + "); is the VM running with -qmp unix:" + socket_path_ + ",server=on,wait=off?");
    const auto deadline = Clock::now() + timeout_;
    const json greeting = reply_by(deadline);
    if (!greeting.contains("QMP")) fail("expected QEMU's greeting, got " + greeting.dump());
    // A monitor serves one client at a time: a second one connects but gets no greeting.
    send(json{{"execute", "qmp_capabilities"}, {"id", 0}}.dump(), -1);
    for (;;) {
        json message = reply_by(deadline);
        if (message.contains("event")) continue;
        if (message.contains("error")) fail("qmp_capabilities failed: " + message["error"].value("desc", message.dump()));
        break;
    }
}

void QmpClient::send(const std::string& line, int fd) {
    const std::string data = line + "\n";
    iovec chunk{const_cast<char*>(data.data()), data.size()};
    msghdr message{};
    message.msg_iov = &chunk;
    message.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    if (fd >= 0) {
        message.msg_control = control;
        message.msg_controllen = sizeof(control);
        cmsghdr* header = CMSG_FIRSTHDR(&message);
        header->cmsg_level = SOL_SOCKET;
        header->cmsg_type = SCM_RIGHTS;
        header->cmsg_len = CMSG_LEN(sizeof(int));
        std::memcpy(CMSG_DATA(header), &fd, sizeof(int));
    }
    // The fd travels with the first byte; the rest (if the kernel took only part) goes plainly.
    ssize_t sent = ::sendmsg(socket_, &message, MSG_NOSIGNAL);
    if (sent < 0) fail(std::string("send: ") + std::strerror(errno));
    size_t done = static_cast<size_t>(sent);
    while (done < data.size()) {
        sent = ::send(socket_, data.data() + done, data.size() - done, MSG_NOSIGNAL);
        if (sent < 0) fail(std::string("send: ") + std::strerror(errno));
        done += static_cast<size_t>(sent);
    }
}

std::optional<json> QmpClient::receive(Clock::time_point deadline) {
    for (;;) {
        try {
            if (std::optional<json> message = framer_.next()) {
                if (!message->is_object()) fail("QEMU sent something that is not a JSON object: " + message->dump());
                return message;
            }
        } catch (const JsonStreamError& e) {
            fail(std::string("QEMU's answer cannot be read: ") + e.what());
        }
        pollfd readable{socket_, POLLIN, 0};
        const int ready = ::poll(&readable, 1, remaining_ms(deadline));
        if (ready < 0 && errno == EINTR) continue;
        if (ready < 0) fail(std::string("poll: ") + std::strerror(errno));
        if (ready == 0) return std::nullopt;
        char chunk[65536];
        const ssize_t got = ::recv(socket_, chunk, sizeof(chunk), 0);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) fail(std::string("receive: ") + std::strerror(errno));
        if (got == 0) fail("QEMU closed the connection (did the VM stop?)");
        framer_.append(std::string_view(chunk, static_cast<size_t>(got)));
    }
}

json QmpClient::reply_by(Clock::time_point deadline) {
    std::optional<json> message = receive(deadline);
    if (!message) fail("no answer within " + std::to_string(timeout_.count()) + " ms");
    return std::move(*message);
}

json QmpClient::execute(const std::string& command, const json& arguments, int fd) {
    if (socket_ < 0) connect();
    const long id = next_id_++;
    json request = {{"execute", command}, {"id", id}};
    if (!arguments.empty()) request["arguments"] = arguments;
    send(request.dump(), fd);
    const auto deadline = Clock::now() + timeout_;
    for (;;) {
        json message = reply_by(deadline);
        if (message.contains("event")) {
            events_.push_back(std::move(message));
            continue;
        }
        if (!message.contains("id") || message["id"] != id) continue;  // a late reply to a command that timed out
        if (message.contains("error")) {
            const json& error = message["error"];
            throw QmpError(error.value("class", "GenericError"),
                           "VM " + vm_ + ": " + command + " failed: " + error.value("desc", error.dump()));
        }
        return message.value("return", json::object());
    }
}

json QmpClient::wait_event(const std::string& name, const std::function<bool(const json&)>& matches, Clock::time_point deadline) {
    if (socket_ < 0) connect();
    const auto take = [&](const json& event) { return event.value("event", "") == name && matches(event.value("data", json::object())); };
    for (auto event = events_.begin(); event != events_.end(); ++event) {
        if (!take(*event)) continue;
        json data = event->value("data", json::object());
        events_.erase(event);
        return data;
    }
    while (std::optional<json> message = receive(deadline)) {
        if (!message->contains("event")) continue;
        if (take(*message)) return message->value("data", json::object());
        events_.push_back(std::move(*message));
    }
    // The connection stays: a late event is still queued for the next wait.
    throw ShimError(ErrorKind::Backend, "VM " + vm_ + ": no " + name + " event in time");
}

void QmpClient::clear_events() { events_.clear(); }

}  // namespace brfusion::shim
