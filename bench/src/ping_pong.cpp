#include "brfusion/bench/ping_pong.hpp"

#include "brfusion/bench/report.hpp"  // fixed
#include "brfusion/bench/stats.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

namespace brfusion::bench {

namespace {

using Clock = std::chrono::steady_clock;
using Message = std::array<char, kPingPongMessageBytes>;

class Socket {
public:
    explicit Socket(int fd) : fd_(fd) {}
    ~Socket() {
        if (fd_ >= 0) ::close(fd_);
    }
    Socket(Socket&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
    Socket(const Socket&) = delete;
    Socket& operator=(const Socket&) = delete;
    Socket& operator=(Socket&&) = delete;
    int fd() const { return fd_; }
    int release() { return std::exchange(fd_, -1); }

private:
    int fd_;
};

[[noreturn]] void fail(const std::string& what) { throw std::runtime_error("ping-pong: " + what + ": " + std::strerror(errno)); }

sockaddr_in address_of(const std::string& address, int port) {
    sockaddr_in socket_address{};
    socket_address.sin_family = AF_INET;
    socket_address.sin_port = htons(static_cast<std::uint16_t>(port));
    if (::inet_pton(AF_INET, address.c_str(), &socket_address.sin_addr) != 1)
        throw std::invalid_argument("ping-pong: " + address + " is not an IPv4 address");
    return socket_address;
}

// A socket of `type` bound to `port` on every address (and listening, for TCP): its descriptor.
int bound_socket(int type, int port) {
    Socket socket(::socket(AF_INET, type | SOCK_CLOEXEC, 0));
    if (socket.fd() < 0) fail("socket");
    const int on = 1;  // TCP: a restarted server binds while its old connections linger; UDP shares no port
    if (type == SOCK_STREAM) ::setsockopt(socket.fd(), SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    const sockaddr_in any = address_of("0.0.0.0", port);
    if (::bind(socket.fd(), reinterpret_cast<const sockaddr*>(&any), sizeof any) != 0) fail("bind to port " + std::to_string(port));
    if (type == SOCK_STREAM && ::listen(socket.fd(), 16) != 0) fail("listen");
    return socket.release();
}

constexpr int kStopCheckMs = 100;  // how often a server's threads look at their stop flag

void set_receive_timeout(int fd, int milliseconds) {
    const timeval limit{milliseconds / 1000, (milliseconds % 1000) * 1000};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
}

// Writes all of `size` bytes; false when the peer is gone.
bool write_all(int fd, const char* data, std::size_t size) {
    while (size > 0) {
        const ssize_t written = ::send(fd, data, size, MSG_NOSIGNAL);
        if (written < 0 && errno == EINTR) continue;
        if (written <= 0) return false;
        data += written;
        size -= static_cast<std::size_t>(written);
    }
    return true;
}

// One request and its answer: microseconds of half the round trip, or nothing when a UDP answer
// did not come within the socket's receive timeout.
class Exchange {
public:
    Exchange(const std::string& address, int port, bool tcp)
        : tcp_(tcp), socket_(::socket(AF_INET, (tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0)),
          where_(address + ":" + std::to_string(port) + (tcp ? " over TCP" : " over UDP")) {
        if (socket_.fd() < 0) fail("socket");
        const sockaddr_in server = address_of(address, port);
        if (::connect(socket_.fd(), reinterpret_cast<const sockaddr*>(&server), sizeof server) != 0) fail("connecting to " + where_);
        const int on = 1;
        if (tcp) ::setsockopt(socket_.fd(), IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
        set_receive_timeout(socket_.fd(), 1000);
    }

    const std::string& where() const { return where_; }  // "ADDRESS:PORT over TCP"

    std::optional<double> once() {
        Message request{};
        const std::uint64_t sequence = ++sequence_;
        std::memcpy(request.data(), &sequence, sizeof sequence);
        const auto sent = Clock::now();
        if (!write_all(socket_.fd(), request.data(), request.size())) fail("sending to " + where_);
        Message answer{};
        std::size_t have = 0;
        while (have < answer.size()) {
            const ssize_t got = ::recv(socket_.fd(), answer.data() + have, answer.size() - have, 0);
            if (got < 0 && errno == EINTR) continue;
            if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                if (tcp_) throw std::runtime_error("ping-pong: no answer within 1 s from " + where_);
                return std::nullopt;  // a lost datagram
            }
            if (got < 0) fail("receiving from " + where_);
            if (got == 0) throw std::runtime_error("ping-pong: " + where_ + " closed the connection");
            if (!tcp_) {
                std::uint64_t answered = 0;
                std::memcpy(&answered, answer.data(), sizeof answered);
                if (got != static_cast<ssize_t>(answer.size()) || answered != sequence) continue;  // a late answer to a lost request
            }
            have += static_cast<std::size_t>(got);
        }
        return std::chrono::duration<double, std::micro>(Clock::now() - sent).count() / 2;
    }

private:
    bool tcp_;
    Socket socket_;
    std::string where_;
    std::uint64_t sequence_ = 0;
};

}  // namespace

PingPongServer::PingPongServer(int port) : udp_(bound_socket(SOCK_DGRAM, port)) {
    set_receive_timeout(udp_, kStopCheckMs);
    try {
        listener_ = bound_socket(SOCK_STREAM, port);
    } catch (...) {
        ::close(udp_);
        throw;
    }
}

PingPongServer::~PingPongServer() {
    ::close(udp_);
    ::close(listener_);
}

// Each socket is answered by a thread of its own blocked in recv, as sockperf's server does: a
// request costs the server one recv and one send, nothing else to wait on.
void PingPongServer::serve(const std::atomic<bool>& stop) {
    std::vector<std::jthread> answering;
    answering.emplace_back([&] {
        std::array<char, 65536> buffer{};
        while (!stop) {
            sockaddr_storage peer{};
            socklen_t peer_size = sizeof peer;
            const ssize_t got = ::recvfrom(udp_, buffer.data(), buffer.size(), 0, reinterpret_cast<sockaddr*>(&peer), &peer_size);
            if (got > 0) ::sendto(udp_, buffer.data(), static_cast<std::size_t>(got), 0, reinterpret_cast<sockaddr*>(&peer), peer_size);
        }
    });
    while (!stop) {
        pollfd listening{listener_, POLLIN, 0};
        if (::poll(&listening, 1, kStopCheckMs) <= 0) continue;
        Socket connection(::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC));
        if (connection.fd() < 0) continue;
        const int on = 1;
        ::setsockopt(connection.fd(), IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
        set_receive_timeout(connection.fd(), kStopCheckMs);
        answering.emplace_back([&stop, connection = std::move(connection)] {
            std::array<char, 65536> buffer{};
            while (!stop) {
                const ssize_t got = ::recv(connection.fd(), buffer.data(), buffer.size(), 0);
                if (got < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) continue;
                if (got <= 0 || !write_all(connection.fd(), buffer.data(), static_cast<std::size_t>(got))) return;
            }
        });
    }
}

PingPongResult ping_pong(const std::string& address, int port, bool tcp, double seconds) {
    Exchange exchange(address, port, tcp);
    PingPongResult result;
    std::vector<double> half_round_trips;
    const auto warm_until = Clock::now() + std::chrono::milliseconds(200);
    while (Clock::now() < warm_until) exchange.once();
    const auto measure_until = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
    while (Clock::now() < measure_until) {
        if (const auto microseconds = exchange.once()) half_round_trips.push_back(*microseconds);
        else ++result.lost;
    }
    if (half_round_trips.empty())
        throw std::runtime_error("ping-pong: no answer from " + exchange.where() + " in " + fixed(seconds, 3) + " s");
    double sum = 0;
    for (const double value : half_round_trips) sum += value;
    result.average_us = sum / static_cast<double>(half_round_trips.size());
    result.p50_us = percentile(half_round_trips, 0.5);
    result.p99_us = percentile(half_round_trips, 0.99);
    result.samples = static_cast<long>(half_round_trips.size());
    return result;
}

std::string to_string(const PingPongResult& result) {
    return "average_us=" + fixed(result.average_us, 3) + " p50_us=" + fixed(result.p50_us, 3) + " p99_us=" + fixed(result.p99_us, 3) +
           " samples=" + std::to_string(result.samples) + " lost=" + std::to_string(result.lost);
}

}  // namespace brfusion::bench
