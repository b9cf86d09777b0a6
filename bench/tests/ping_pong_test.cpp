// The latency tool against its own server on loopback: real sockets, no lab. What it checks is
// that answers are counted and summarised consistently and that an unreachable server is an error,
// never how fast anything was.

#include "brfusion/bench/ping_pong.hpp"

#include <catch2/catch.hpp>

#include <regex>
#include <thread>
#include <unistd.h>

using namespace brfusion::bench;

namespace {

int test_port() { return 20000 + static_cast<int>(::getpid() % 20000); }

// A server on test_port() for the scope of one test.
class ServedPort {
public:
    ServedPort() : server_(test_port()), thread_([this] { server_.serve(stop_); }) {}
    ~ServedPort() {
        stop_ = true;
        thread_.join();
    }

private:
    PingPongServer server_;
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

}  // namespace

TEST_CASE("ping-pong: UDP and TCP requests on loopback are answered and summarised") {
    ServedPort served;
    for (const bool tcp : {false, true}) {
        INFO((tcp ? "TCP" : "UDP"));
        const PingPongResult result = ping_pong("127.0.0.1", test_port(), tcp, 0.2);
        CHECK(result.samples > 0);
        CHECK(result.lost == 0);
        CHECK(result.p50_us > 0);
        CHECK(result.p50_us <= result.p99_us);
        CHECK(result.average_us > 0);
        const std::string line = to_string(result);
        CHECK(std::regex_match(line, std::regex(R"(average_us=[0-9.]+ p50_us=[0-9.]+ p99_us=[0-9.]+ samples=[0-9]+ lost=0)")));
    }
}

TEST_CASE("ping-pong: a server that is not there is an error naming where, not a number") {
    const std::string where = "127.0.0.1:" + std::to_string(test_port());
    CHECK_THROWS_WITH(ping_pong("127.0.0.1", test_port(), true, 0.2), Catch::Contains(where + " over TCP"));
    CHECK_THROWS_WITH(ping_pong("127.0.0.1", test_port(), false, 0.2), Catch::Contains(where + " over UDP"));
    CHECK_THROWS_AS(ping_pong("not-an-address", test_port(), true, 0.2), std::invalid_argument);
}

TEST_CASE("ping-pong: a port already taken is refused when the server starts") {
    ServedPort served;
    CHECK_THROWS_WITH(PingPongServer(test_port()), Catch::Contains("bind to port " + std::to_string(test_port())));
}
