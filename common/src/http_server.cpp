#include "brfusion/common/http_server.hpp"

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <memory>

#include <sys/stat.h>

namespace brfusion {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using local = asio::local::stream_protocol;

asio::local::stream_protocol::acceptor listen_unix(asio::io_context& io, const std::string& path, unsigned mode) {
    std::error_code ignored;
    std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ignored);
    std::filesystem::remove(path, ignored);  // a stale socket of an earlier run
    try {
        local::acceptor acceptor(io, local::endpoint(path));
        if (::chmod(path.c_str(), mode) != 0) throw std::runtime_error("chmod failed");
        return acceptor;
    } catch (const std::exception& e) {
        throw std::runtime_error("cannot listen on " + path + ": " + e.what());
    }
}

namespace {

constexpr std::size_t kMaxRequest = 1024 * 1024;


class HttpSession : public std::enable_shared_from_this<HttpSession> {
public:
    HttpSession(local::socket socket, asio::thread_pool& workers, std::shared_ptr<const HttpHandler> handler, const char* error_key)
        : stream_(std::move(socket)), workers_(workers), handler_(std::move(handler)), error_key_(error_key) {}
    void start() { read(); }

private:
    void read() {
        parser_.emplace();
        parser_->body_limit(kMaxRequest);
        stream_.expires_after(std::chrono::minutes(5));
        http::async_read(stream_, buffer_, *parser_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
            if (ec == http::error::end_of_stream || ec == beast::error::timeout || ec == asio::error::operation_aborted) return;
            if (ec == http::error::body_limit) return self->write({413, self->error_body("the request body exceeds 1 MiB")}, false);
            if (ec) return self->write({400, self->error_body("malformed HTTP request: " + ec.message())}, false);
            self->respond();
        });
    }

    std::string error_body(const std::string& message) const { return nlohmann::json{{error_key_, message}}.dump(); }

    void respond() {
        stream_.expires_never();  // a handler may take long (a hot-plug); the client waits for it
        asio::post(workers_, [self = shared_from_this()] {
            const auto& request = self->parser_->get();
            HttpAnswer answer = (*self->handler_)({std::string(request.method_string()), std::string(request.target()), request.body()});
            const bool keep_alive = request.keep_alive();
            asio::post(self->stream_.get_executor(),
                       [self, answer = std::move(answer), keep_alive] { self->write(answer, keep_alive); });
        });
    }

    void write(const HttpAnswer& answer, bool keep_alive) {
        auto response = std::make_shared<http::response<http::string_body>>(static_cast<http::status>(answer.status), 11);
        response->set(http::field::content_type, "application/json");
        response->keep_alive(keep_alive);
        response->body() = answer.body;
        response->prepare_payload();
        stream_.expires_after(std::chrono::seconds(30));
        http::async_write(stream_, *response, [self = shared_from_this(), response, undelivered = answer.undelivered](beast::error_code ec, std::size_t) {
            if (ec && undelivered) asio::post(self->workers_, undelivered);
            if (ec || !response->keep_alive()) {
                beast::error_code ignored;
                self->stream_.socket().shutdown(local::socket::shutdown_send, ignored);
                return;
            }
            self->read();
        });
    }

    beast::basic_stream<local> stream_;
    beast::flat_buffer buffer_;
    std::optional<http::request_parser<http::string_body>> parser_;
    asio::thread_pool& workers_;
    std::shared_ptr<const HttpHandler> handler_;
    const char* error_key_;
};

}  // namespace

HttpServer::HttpServer(asio::io_context& io, asio::thread_pool& workers, const std::string& path, unsigned mode, HttpHandler handler,
                       const char* error_key)
    : workers_(workers), handler_(std::make_shared<const HttpHandler>(std::move(handler))), error_key_(error_key), path_(path), acceptor_(listen_unix(io, path, mode)) {
    accept();
}

void HttpServer::accept() {
    acceptor_.async_accept([this](boost::system::error_code ec, local::socket socket) {
        if (ec) return;
        std::make_shared<HttpSession>(std::move(socket), workers_, handler_, error_key_)->start();
        accept();
    });
}

void HttpServer::close() {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    std::error_code not_there;
    std::filesystem::remove(path_, not_there);
}

}  // namespace brfusion
