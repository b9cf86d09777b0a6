#pragma once
// JSON-RPC 1.0 over a unix stream socket, as OVSDB speaks it (RFC 7047 §4): request-id matching,
// echo replies, notifications, and reconnection with exponential backoff. Private to ovs-bridge.
// Every member must be called on the io_context's thread; handlers run there too.

#include <utility>  // before asio: Boost + GCC 12 + C++20 need it

#include "brfusion/common/json_stream.hpp"
#include "brfusion/ovs/error.hpp"

#include <boost/asio.hpp>
#include <nlohmann/json.hpp>

#include <array>
#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <string>

namespace brfusion::ovs {

class JsonRpcConnection {
public:
    using json = nlohmann::json;
    // Exactly one of result / error is non-null.
    using ReplyHandler = std::function<void(const json* result, const OvsError* error)>;
    struct Handlers {
        std::function<void()> connected;                                          // a new session is up
        std::function<void(const std::string& why)> disconnected;                 // it went down; reconnecting
        std::function<void(const std::string& method, const json& params)> notification;
    };
    struct Backoff {
        std::chrono::milliseconds first{50};
        std::chrono::milliseconds max{2000};
    };

    JsonRpcConnection(boost::asio::io_context& io, std::string socket_path, Backoff backoff, Handlers handlers);

    void start();  // connect (and keep reconnecting) until stop()
    void stop();
    // Sends a request. When not connected, the handler gets Unreachable at once (posted, never
    // called inline). If the connection drops before the reply, it gets ConnectionLost.
    void call(const std::string& method, json params, ReplyHandler handler);
    // Drops the session (e.g. after the peer sent something we cannot use) and reconnects.
    void reset(const std::string& why);

    const std::string& socket_path() const { return socket_path_; }

private:
    void connect();
    void read();
    void write_next();
    void send(const json& message);
    void dispatch(const json& message);
    void fail(const std::string& why);

    boost::asio::io_context& io_;
    std::string socket_path_;
    Backoff backoff_;
    Handlers handlers_;
    boost::asio::local::stream_protocol::socket socket_;
    boost::asio::steady_timer reconnect_timer_;
    std::chrono::milliseconds next_delay_;
    bool connected_ = false;
    bool stopped_ = true;
    unsigned generation_ = 0;  // bumped per session, so callbacks of an old session are ignored
    JsonStreamFramer framer_;
    std::array<char, 64 * 1024> read_buffer_{};
    std::deque<std::string> write_queue_;
    std::uint64_t next_id_ = 1;
    std::map<std::uint64_t, ReplyHandler> pending_;
};

}  // namespace brfusion::ovs
