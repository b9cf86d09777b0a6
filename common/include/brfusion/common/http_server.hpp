#pragma once
// HTTP/1.1 over a unix socket, for every daemon's API (the shim's admin API, the plugin's Docker
// socket). The session only reads, times out, writes and keeps alive; what a request means is a
// plain function, HttpHandler, run on a worker pool so that a slow request never blocks the others.

#include <utility>  // before asio: Boost + GCC 12 + C++20 need it

#include <boost/asio.hpp>

#include <functional>
#include <memory>
#include <string>

namespace brfusion {

struct HttpRequest {
    std::string method;  // GET, POST, ...
    std::string target;  // path and query
    std::string body;
};

struct HttpAnswer {
    int status = 200;
    std::string body;  // sent as application/json
    // Run on a worker when the answer cannot be written because the client went away (it crashed,
    // or gave up waiting): what the request did that only makes sense if the client learns of it
    // is undone here. Must not throw.
    std::function<void()> undelivered = nullptr;
};

// Must not throw: every failure is an answer. Called on a worker thread, concurrently.
using HttpHandler = std::function<HttpAnswer(const HttpRequest&)>;

// Creates a listening unix socket at `path` with permissions `mode`, creating its directory and
// replacing a stale socket file. Throws std::runtime_error naming the path.
boost::asio::local::stream_protocol::acceptor listen_unix(boost::asio::io_context& io, const std::string& path, unsigned mode);

// Serves `handler` on `path` until close(). I/O runs on `io`; handlers run on `workers`. Requests
// are limited to 1 MiB; a connection idle for 5 minutes is closed. A request that is not valid
// HTTP gets 400 (413 when too big) with body {error_key: message}, the API's own error shape.
class HttpServer {
public:
    HttpServer(boost::asio::io_context& io, boost::asio::thread_pool& workers, const std::string& path, unsigned mode, HttpHandler handler,
               const char* error_key);
    // Stops accepting and removes the socket file. Call on the io thread or after io has stopped.
    void close();

private:
    void accept();
    boost::asio::thread_pool& workers_;
    std::shared_ptr<const HttpHandler> handler_;  // shared with sessions, which may outlive close()
    const char* error_key_;
    std::string path_;
    boost::asio::local::stream_protocol::acceptor acceptor_;
};

}  // namespace brfusion
