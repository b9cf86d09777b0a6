#pragma once
// The benchmark's request/response latency tool, run in the lab's namespaces as
// `brfusion-bench ping-pong-server` and `brfusion-bench ping-pong` (this binary is visible in every
// lab node and VM). It measures what sockperf ping-pong measures, one 64-byte request outstanding
// at a time, half the round trip, without sockperf's fixed 2-s pause before every run, which cost
// the full benchmark ~80 s (docs/performance.md).

#include <atomic>
#include <string>

namespace brfusion::bench {

constexpr int kPingPongMessageBytes = 64;

// Echoes UDP datagrams and TCP streams on one port, every address.
class PingPongServer {
public:
    // Listens on `port` (UDP and TCP) at once; throws std::runtime_error when it cannot.
    explicit PingPongServer(int port);
    ~PingPongServer();
    PingPongServer(const PingPongServer&) = delete;
    PingPongServer& operator=(const PingPongServer&) = delete;
    // Answers until `stop` is set (checked at least every 100 ms).
    void serve(const std::atomic<bool>& stop);

private:
    int udp_ = -1, listener_ = -1;
};

struct PingPongResult {
    double average_us = 0, p50_us = 0, p99_us = 0;  // half the round trip
    long samples = 0;
    long lost = 0;  // UDP requests without an answer within 1 s (sent again as new requests)
};

// Sends 64-byte requests to a ping-pong server at address:port over TCP (TCP_NODELAY) or UDP, each
// after the previous one's answer: 0.2 s of warm-up, not counted, then `seconds` measured. Throws
// std::runtime_error when the server cannot be reached or nothing was answered.
PingPongResult ping_pong(const std::string& address, int port, bool tcp, double seconds);

// "average_us=71.2 p50_us=65.9 p99_us=142.2 samples=13000 lost=0", the client's output.
std::string to_string(const PingPongResult& result);

}  // namespace brfusion::bench
