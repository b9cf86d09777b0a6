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
// What one connection may hold of answers its guest has not read yet; past it (or past the VM's
// requests_in_flight quota) the session stops reading the guest's socket until answers leave:
// backpressure, so a well-behaved guest only waits and a hostile one holds nothing more.
constexpr std::size_t kMaxUnsentBytes = 1024 * 1024;
// Connections one VM's channel may have open at once (a real VM's virtio-serial port has one).
constexpr std::size_t kMaxConnections = 8;
// Threads that run one VM's requests: a read-only request need not wait behind a slow hot-plug,
// and the switch's part of attaches started together overlaps (their ports share a transaction).
constexpr std::size_t kThreadsPerVm = 4;
}  // namespace

class GuestSession;

// One VM's channel: its listening socket, its connections, the threads that run its requests and
// the count of those in flight (its requests_in_flight quota). Touched on the io thread, except
// for the worker threads, which are its own.
class VmChannel : public std::enable_shared_from_this<VmChannel> {
public:
    VmChannel(asio::io_context& io, NicManager& manager, const VmConfig& config)
        : nics(manager), vm(config.name), path_(config.channel), limit_(static_cast<std::size_t>(config.quotas.requests_in_flight)),
          acceptor_(listen_unix(io, config.channel, 0660)), workers_(kThreadsPerVm) {}

    void start() { accept(); }
    // Closes the socket and every connection (call on the io thread).
    void shut();
    // Waits for the requests being handled (not on the io thread).
    void join() { workers_.join(); }

    // For its sessions, on the io thread.
    bool room() const { return in_flight_ < limit_; }
    void begin_request() { ++in_flight_; }
    void end_request();
    // `session` reads again once a request of the VM's ends; held until then (it has nothing in
    // flight that would keep it).
    void wait_for_room(std::shared_ptr<GuestSession> session) { waiting_.push_back(std::move(session)); }
    asio::thread_pool& workers() { return workers_; }

    NicManager& nics;
    const std::string vm;

private:
    void accept();

    std::string path_;
    std::size_t limit_;
    std::size_t in_flight_ = 0;
    bool refusing_ = false;  // connections over the limit are being refused
    local::acceptor acceptor_;
    std::vector<std::weak_ptr<GuestSession>> sessions_;
    std::vector<std::shared_ptr<GuestSession>> waiting_;  // paused on the VM's quota
    asio::thread_pool workers_;
};

// One guest connection: newline-delimited JSON-RPC; requests run on the VM's threads. Every member
// is touched on the io thread only.
class GuestSession : public std::enable_shared_from_this<GuestSession> {
public:
    GuestSession(local::socket socket, std::shared_ptr<VmChannel> channel)
        : socket_(std::move(socket)), channel_(std::move(channel)), input_(guest::kMaxLineBytes + 1) {}

    void start() { read(); }
    void close() {
        boost::system::error_code ignored;
        socket_.close(ignored);
    }
    // Reads the next line unless the session or its VM holds as much as it may.
    void read_if_room() {
        if (reading_ || closing_ || !socket_.is_open()) return;
        if (unsent_bytes_ > kMaxUnsentBytes) return;  // resumed when a write completes
        if (!channel_->room()) return channel_->wait_for_room(shared_from_this());
        read();
    }

private:
    void read() {
        reading_ = true;
        asio::async_read_until(socket_, input_, '\n', [self = shared_from_this()](boost::system::error_code ec, std::size_t length) {
            self->reading_ = false;
            if (ec == asio::error::not_found) {  // the buffer is full and holds no newline
                self->write(guest::make_error(nullptr, guest::kInvalidRequest,
                                              "a line exceeds " + std::to_string(guest::kMaxLineBytes) + " bytes; closing the channel"));
                self->closing_ = true;
                return;
            }
            if (ec) return;  // the guest went away
            const auto data = self->input_.data();
            const std::string line(asio::buffers_begin(data), asio::buffers_begin(data) + static_cast<std::ptrdiff_t>(length));
            self->input_.consume(length);
            self->handle_line(line);
            self->read_if_room();
        });
    }

    void handle_line(const std::string& line) {
        if (line.find_first_not_of(" \t\r\n") == std::string::npos) return;
        guest::ParsedLine parsed = guest::parse_request_line(line);
        if (!parsed.request) return write(parsed.error);
        channel_->begin_request();
        asio::post(channel_->workers(), [self = shared_from_this(), request = std::move(*parsed.request)] {
            auto response = handle_guest_request(self->channel_->nics, self->channel_->vm, request);
            asio::post(self->socket_.get_executor(), [self, response = std::move(response)] {
                if (response) self->write(*response);
                self->channel_->end_request();
            });
        });
    }

    void write(const json& message) {
        outgoing_.push_back(message.dump() + "\n");
        unsent_bytes_ += outgoing_.back().size();
        if (outgoing_.size() == 1) write_next();
    }

    void write_next() {
        asio::async_write(socket_, asio::buffer(outgoing_.front()), [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
            if (ec) return;
            self->unsent_bytes_ -= self->outgoing_.front().size();
            self->outgoing_.pop_front();
            if (!self->outgoing_.empty()) self->write_next();
            else if (self->closing_) self->socket_.close();
            self->read_if_room();
        });
    }

    local::socket socket_;
    std::shared_ptr<VmChannel> channel_;
    asio::streambuf input_;
    std::deque<std::string> outgoing_;
    std::size_t unsent_bytes_ = 0;
    bool reading_ = false;
    bool closing_ = false;
};

void VmChannel::accept() {
    acceptor_.async_accept([self = shared_from_this()](boost::system::error_code ec, local::socket socket) {
        if (ec) return;  // closed
        std::erase_if(self->sessions_, [](const auto& weak) { return weak.expired(); });
        if (self->sessions_.size() >= kMaxConnections) {
            if (!self->refusing_)  // once per run of refusals: a guest must not flood the log
                std::cerr << "brfusion-shim: VM " << self->vm << " has " << kMaxConnections
                          << " guest channel connections open; refusing more until one closes\n";
            self->refusing_ = true;
            self->accept();  // the refused socket closes as it goes out of scope
            return;
        }
        self->refusing_ = false;
        auto session = std::make_shared<GuestSession>(std::move(socket), self);
        self->sessions_.push_back(session);
        session->start();
        self->accept();
    });
}

void VmChannel::end_request() {
    --in_flight_;
    auto waiting = std::move(waiting_);
    waiting_.clear();
    for (const auto& session : waiting) session->read_if_room();  // one may pause again
}

void VmChannel::shut() {
    std::error_code not_there;
    std::filesystem::remove(path_, not_there);
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    for (const auto& weak : sessions_)
        if (auto session = weak.lock()) session->close();
    waiting_.clear();
}

GuestChannelServer::GuestChannelServer(asio::io_context& io, NicManager& nics) : io_(io), nics_(nics) {}

GuestChannelServer::~GuestChannelServer() {
    close();
    std::lock_guard lock(mutex_);
    for (auto& [vm, channel] : closed_) channel->join();
}

void GuestChannelServer::listen(const VmConfig& vm) {
    auto channel = std::make_shared<VmChannel>(io_, nics_, vm);
    {
        std::lock_guard lock(mutex_);
        channels_[vm.name] = channel;  // NicManager keeps VM names unique
    }
    asio::post(io_, [channel] { channel->start(); });
}

void GuestChannelServer::stop(const std::string& vm) {
    std::shared_ptr<VmChannel> channel;
    {
        std::lock_guard lock(mutex_);
        const auto found = channels_.find(vm);
        if (found == channels_.end()) return;
        channel = found->second;
        channels_.erase(found);
    }
    asio::post(io_, [channel] { channel->shut(); });
    channel->join();
}

void GuestChannelServer::close() {
    std::lock_guard lock(mutex_);
    for (const auto& entry : channels_) {
        asio::post(io_, [channel = entry.second] { channel->shut(); });
        closed_.insert(entry);  // joined once the io thread is done (the destructor)
    }
    channels_.clear();
}

}  // namespace brfusion::shim
