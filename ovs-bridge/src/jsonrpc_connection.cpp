#include "jsonrpc_connection.hpp"

namespace brfusion::ovs {

namespace asio = boost::asio;

JsonRpcConnection::JsonRpcConnection(asio::io_context& io, std::string socket_path, Backoff backoff, Handlers handlers)
    : io_(io),
      socket_path_(std::move(socket_path)),
      backoff_(backoff),
      handlers_(std::move(handlers)),
      socket_(io),
      reconnect_timer_(io),
      next_delay_(backoff.first) {}

void JsonRpcConnection::start() {
    stopped_ = false;
    connect();
}

void JsonRpcConnection::stop() {
    stopped_ = true;
    reconnect_timer_.cancel();
    if (connected_ || socket_.is_open()) fail("the client is shutting down");
}

void JsonRpcConnection::connect() {
    const unsigned generation = ++generation_;
    socket_ = asio::local::stream_protocol::socket(io_);
    socket_.async_connect(asio::local::stream_protocol::endpoint(socket_path_), [this, generation](boost::system::error_code ec) {
        if (generation != generation_ || stopped_) return;
        if (ec) return fail("cannot connect to " + socket_path_ + ": " + ec.message());
        connected_ = true;
        next_delay_ = backoff_.first;
        framer_ = JsonStreamFramer();
        read();
        handlers_.connected();
    });
}

void JsonRpcConnection::read() {
    const unsigned generation = generation_;
    socket_.async_read_some(asio::buffer(read_buffer_), [this, generation](boost::system::error_code ec, std::size_t n) {
        if (generation != generation_) return;
        if (ec) return fail(ec == asio::error::eof ? "ovsdb-server closed the connection" : "read failed: " + ec.message());
        framer_.append(std::string_view(read_buffer_.data(), n));
        try {
            while (auto message = framer_.next()) {
                dispatch(*message);
                if (generation != generation_) return;  // a handler reset the session
            }
        } catch (const JsonStreamError& e) {
            return fail(std::string("ovsdb-server sent an unusable stream: ") + e.what());
        }
        read();
    });
}

void JsonRpcConnection::send(const json& message) {
    write_queue_.push_back(message.dump());
    if (write_queue_.size() == 1) write_next();
}

void JsonRpcConnection::write_next() {
    const unsigned generation = generation_;
    asio::async_write(socket_, asio::buffer(write_queue_.front()), [this, generation](boost::system::error_code ec, std::size_t) {
        if (generation != generation_) return;
        if (ec) return fail("write failed: " + ec.message());
        write_queue_.pop_front();
        if (!write_queue_.empty()) write_next();
    });
}

void JsonRpcConnection::call(const std::string& method, json params, ReplyHandler handler) {
    if (!connected_) {
        asio::post(io_, [handler = std::move(handler), path = socket_path_] {
            OvsError error(ErrorKind::Unreachable, "not connected to ovsdb-server at " + path);
            handler(nullptr, &error);
        });
        return;
    }
    const std::uint64_t id = next_id_++;
    pending_.emplace(id, std::move(handler));
    send({{"method", method}, {"params", std::move(params)}, {"id", id}});
}

void JsonRpcConnection::dispatch(const json& message) {
    if (!message.is_object()) return;
    const auto method = message.find("method");
    const auto id = message.find("id");
    if (method != message.end()) {
        if (id == message.end() || id->is_null()) {
            handlers_.notification(method->get<std::string>(), message.value("params", json::array()));
        } else if (*method == "echo") {
            send({{"result", message.value("params", json::array())}, {"error", nullptr}, {"id", *id}});
        } else {
            send({{"result", nullptr}, {"error", "unknown method " + method->dump()}, {"id", *id}});
        }
        return;
    }
    if (id == message.end() || !id->is_number_unsigned()) return;  // not a reply to us
    auto pending = pending_.find(id->get<std::uint64_t>());
    if (pending == pending_.end()) return;
    ReplyHandler handler = std::move(pending->second);
    pending_.erase(pending);
    if (auto error = message.find("error"); error != message.end() && !error->is_null()) {
        std::string text = error->is_string() ? error->get<std::string>() : error->dump();
        OvsError failure(ErrorKind::Rejected, "ovsdb-server refused the request: " + text);
        handler(nullptr, &failure);
    } else {
        const json result = message.value("result", json());
        handler(&result, nullptr);
    }
}

void JsonRpcConnection::reset(const std::string& why) { fail(why); }

void JsonRpcConnection::fail(const std::string& why) {
    const bool was_connected = connected_;
    connected_ = false;
    ++generation_;
    boost::system::error_code ignored;
    socket_.close(ignored);
    write_queue_.clear();
    auto pending = std::move(pending_);
    pending_.clear();
    for (auto& [id, handler] : pending) {
        OvsError lost(ErrorKind::ConnectionLost, "the connection to ovsdb-server at " + socket_path_ + " was lost (" + why +
                                                     ") before it answered; the request may or may not have taken effect");
        handler(nullptr, &lost);
    }
    if (was_connected || !stopped_) handlers_.disconnected(why);
    if (stopped_) return;
    reconnect_timer_.expires_after(next_delay_);
    next_delay_ = std::min(next_delay_ * 2, backoff_.max);
    const unsigned generation = generation_;
    reconnect_timer_.async_wait([this, generation](boost::system::error_code ec) {
        if (!ec && generation == generation_ && !stopped_) connect();
    });
}

}  // namespace brfusion::ovs
