#include "brfusion/common/http_client.hpp"

#include <utility>  // before asio: Boost + GCC 12 + C++20 need it

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <stdexcept>

namespace brfusion {

namespace asio = boost::asio;
namespace http = boost::beast::http;

HttpReply http_call(const std::string& socket_path, const std::string& what, const std::string& method, const std::string& target,
                    const std::string& body, std::chrono::milliseconds timeout) {
    asio::io_context io;
    asio::local::stream_protocol::socket socket(io);
    boost::system::error_code ec;
    socket.connect(asio::local::stream_protocol::endpoint(socket_path), ec);
    if (ec) throw std::runtime_error("cannot reach " + what + " at " + socket_path + " (" + ec.message() + "); is it running?");
    http::request<http::string_body> request(http::string_to_verb(method), target, 11);
    request.set(http::field::host, what);
    if (!body.empty()) {
        request.set(http::field::content_type, "application/json");
        request.body() = body;
    }
    request.prepare_payload();
    boost::beast::flat_buffer buffer;
    http::response<http::string_body> response;
    boost::system::error_code failure;
    bool answered = false;
    http::async_write(socket, request, [&](boost::system::error_code written, std::size_t) {
        if (written) {
            failure = written;
            return;
        }
        http::async_read(socket, buffer, response, [&](boost::system::error_code read, std::size_t) {
            failure = read;
            answered = !read;
        });
    });
    if (timeout > std::chrono::milliseconds::zero()) io.run_for(timeout);
    else io.run();
    const std::string call = what + " at " + socket_path + " did not answer " + method + " " + target;
    if (failure) throw std::runtime_error(call + ": " + failure.message());
    if (!answered) throw std::runtime_error(call + " within " + std::to_string(timeout.count()) + " ms");
    return {static_cast<int>(response.result_int()), response.body()};
}

}  // namespace brfusion
