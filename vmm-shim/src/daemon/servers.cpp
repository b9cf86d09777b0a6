#include "servers.hpp"

#include "brfusion/common/guest_protocol.hpp"
#include "brfusion/shim/guest_api.hpp"

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <deque>
#include <filesystem>
#include <iostream>

#include <sys/stat.h>

namespace brfusion::shim {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using local = asio::local::stream_protocol;
using nlohmann::json;

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
constexpr std::size_t kMaxLine = 1024 * 1024;
}  // namespace

// One guest connection: newline-delimited JSON-RPC; requests run on the workers.
class GuestSession : public std::enable_shared_from_this<GuestSession> {
public:
    GuestSession(local::socket socket, asio::thread_pool& workers, NicManager& nics, std::string vm)
        : socket_(std::move(socket)), workers_(workers), nics_(nics), vm_(std::move(vm)), input_(kMaxLine) {}

    void start() { read(); }
    // On the io thread.
    void close() {
        boost::system::error_code ignored;
        socket_.close(ignored);
    }

private:
    void read() {
        asio::async_read_until(socket_, input_, '\n', [self = shared_from_this()](boost::system::error_code ec, std::size_t length) {
            if (ec == asio::error::not_found) {
                self->write(guest::make_error(nullptr, guest::kInvalidRequest, "a line exceeds 1 MiB; closing the channel"));
                self->closing_ = true;
                return;
            }
            if (ec) return;  // the guest went away
            std::string line(asio::buffers_begin(self->input_.data()), asio::buffers_begin(self->input_.data()) + static_cast<std::ptrdiff_t>(length));
            self->input_.consume(length);
            self->handle_line(line);
            self->read();
        });
    }

    void handle_line(const std::string& line) {
        if (line.find_first_not_of(" \t\r\n") == std::string::npos) return;
        json message = json::parse(line, nullptr, false);
        if (message.is_discarded()) return write(guest::make_error(nullptr, guest::kParseError, "a line is not valid JSON"));
        asio::post(workers_, [self = shared_from_this(), message = std::move(message)] {
            auto response = handle_guest_message(self->nics_, self->vm_, message);
            if (response) asio::post(self->socket_.get_executor(), [self, response = std::move(*response)] { self->write(response); });
        });
    }

    void write(const json& message) {
        outgoing_.push_back(message.dump() + "\n");
        if (outgoing_.size() == 1) write_next();
    }

    void write_next() {
        asio::async_write(socket_, asio::buffer(outgoing_.front()), [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
            if (ec) return;
            self->outgoing_.pop_front();
            if (!self->outgoing_.empty()) self->write_next();
            else if (self->closing_) self->socket_.close();
        });
    }

    local::socket socket_;
    asio::thread_pool& workers_;
    NicManager& nics_;
    std::string vm_;
    asio::streambuf input_;
    std::deque<std::string> outgoing_;
    bool closing_ = false;
};

namespace {

// One admin connection: HTTP/1.1 with keep-alive; each request answered by handle_admin_request
// on a worker.
class AdminSession : public std::enable_shared_from_this<AdminSession> {
public:
    AdminSession(local::socket socket, asio::thread_pool& workers, AdminContext& context)
        : stream_(std::move(socket)), workers_(workers), context_(context) {}
    void start() { read(); }

private:
    void read() {
        request_ = {};
        stream_.expires_after(std::chrono::seconds(30));
        http::async_read(stream_, buffer_, request_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
            if (ec) return;
            self->respond();
        });
    }

    void respond() {
        asio::post(workers_, [self = shared_from_this()] {
            AdminResponse answer = handle_admin_request(self->context_, std::string(self->request_.method_string()),
                                                        std::string(self->request_.target()), self->request_.body());
            asio::post(self->stream_.get_executor(), [self, answer = std::move(answer)] { self->write(answer); });
        });
    }

    void write(const AdminResponse& answer) {
        auto response = std::make_shared<http::response<http::string_body>>(static_cast<http::status>(answer.status), request_.version());
        response->set(http::field::content_type, "application/json");
        response->keep_alive(request_.keep_alive());
        response->body() = answer.body.dump(2) + "\n";
        response->prepare_payload();
        http::async_write(stream_, *response, [self = shared_from_this(), response](beast::error_code ec, std::size_t) {
            if (ec || !response->keep_alive()) return;
            self->read();
        });
    }

    beast::basic_stream<local> stream_;
    beast::flat_buffer buffer_;
    http::request<http::string_body> request_;
    asio::thread_pool& workers_;
    AdminContext& context_;
};

}  // namespace

GuestChannelServer::GuestChannelServer(asio::io_context& io, asio::thread_pool& workers, NicManager& nics)
    : io_(io), workers_(workers), nics_(nics) {}

void GuestChannelServer::listen(const VmConfig& vm) {
    auto listener = std::make_shared<Listener>(Listener{vm.name, vm.channel, listen_unix(io_, vm.channel, 0660), {}});
    {
        std::lock_guard lock(mutex_);
        listeners_[vm.name] = listener;  // NicManager keeps VM names unique
    }
    asio::post(io_, [this, listener] { accept(listener); });
}

void GuestChannelServer::accept(std::shared_ptr<Listener> listener) {
    listener->acceptor.async_accept([this, listener](boost::system::error_code ec, local::socket socket) {
        if (ec) return;  // closed
        auto session = std::make_shared<GuestSession>(std::move(socket), workers_, nics_, listener->vm);
        std::erase_if(listener->sessions, [](const auto& weak) { return weak.expired(); });
        listener->sessions.push_back(session);
        session->start();
        accept(listener);
    });
}

void GuestChannelServer::shut(std::shared_ptr<Listener> listener) {
    std::error_code not_there;
    std::filesystem::remove(listener->path, not_there);
    asio::post(io_, [listener] {
        boost::system::error_code ignored;
        listener->acceptor.close(ignored);
        for (const auto& weak : listener->sessions)
            if (auto session = weak.lock()) session->close();
    });
}

void GuestChannelServer::stop(const std::string& vm) {
    std::lock_guard lock(mutex_);
    if (auto found = listeners_.find(vm); found != listeners_.end()) {
        shut(found->second);
        listeners_.erase(found);
    }
}

void GuestChannelServer::close() {
    std::lock_guard lock(mutex_);
    for (auto& [vm, listener] : listeners_) shut(listener);
    listeners_.clear();
}

AdminServer::AdminServer(asio::io_context& io, asio::thread_pool& workers, AdminContext context, const std::string& path)
    : workers_(workers), context_(std::move(context)), path_(path), acceptor_(listen_unix(io, path, 0660)) {
    accept();
}

void AdminServer::accept() {
    acceptor_.async_accept([this](boost::system::error_code ec, local::socket socket) {
        if (ec) return;
        std::make_shared<AdminSession>(std::move(socket), workers_, context_)->start();
        accept();
    });
}

void AdminServer::close() {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    std::error_code not_there;
    std::filesystem::remove(path_, not_there);
}

}  // namespace brfusion::shim
