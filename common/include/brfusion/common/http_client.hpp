#pragma once
// The client side of HttpServer: one HTTP/1.1 request over a unix socket, for the CLIs
// (brfusionctl over the shim's admin API, the lab command over its keeper).

#include <chrono>
#include <string>

namespace brfusion {

struct HttpReply {
    int status = 0;
    std::string body;
};

// Sends `method target` with `body` (JSON; "" for none) and returns the answer. Throws
// std::runtime_error naming `socket_path` when nothing answers there, the transfer failed, or the
// answer took longer than `timeout` (zero: no limit). `what` names the server in that message
// ("brfusion-shim").
HttpReply http_call(const std::string& socket_path, const std::string& what, const std::string& method, const std::string& target,
                    const std::string& body = "", std::chrono::milliseconds timeout = std::chrono::milliseconds::zero());

}  // namespace brfusion
