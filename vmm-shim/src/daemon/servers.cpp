#include "servers.hpp"

#include "brfusion/common/guest_protocol.hpp"
#include "brfusion/shim/guest_api.hpp"

#include <deque>
#include <filesystem>
#include <iostream>

namespace brfusion::shim {

namespace asio = boost::asio;
using local = asio::local::stream_protocol;
using nlohmann::json;

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

}  // namespace brfusion::shim
