#include "brfusion/plugin/shim_client.hpp"

#include "brfusion/plugin/error.hpp"

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <thread>

#include <fcntl.h>
#include <linux/vm_sockets.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace brfusion::plugin {

using nlohmann::json;

namespace {

ErrorKind kind_of(const std::string& shim_kind) {
    if (shim_kind == "bad-request") return ErrorKind::BadRequest;
    if (shim_kind == "not-allowed") return ErrorKind::NotAllowed;
    if (shim_kind == "not-found") return ErrorKind::NotFound;
    if (shim_kind == "conflict") return ErrorKind::Conflict;
    if (shim_kind == "exhausted") return ErrorKind::Exhausted;
    return ErrorKind::Failed;
}

std::string os_error(const std::string& what) { return what + ": " + std::strerror(errno); }

// Opens the transport; throws PluginError(Unavailable) saying what failed.
int open_transport(const std::string& address) {
    const auto unavailable = [&](const std::string& why) {
        return PluginError(ErrorKind::Unavailable, "cannot reach brfusion-shim at " + address + ": " + why +
                                                       " (is brfusion-shim running on the host, and does it serve this VM?)");
    };
    if (address.starts_with("unix:")) {
        const std::string path = address.substr(5);
        sockaddr_un peer{};
        peer.sun_family = AF_UNIX;
        if (path.size() >= sizeof(peer.sun_path)) throw unavailable("the socket path is too long");
        std::memcpy(peer.sun_path, path.c_str(), path.size() + 1);
        const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || ::connect(fd, reinterpret_cast<const sockaddr*>(&peer), sizeof(peer)) != 0) {
            const std::string why = std::strerror(errno);
            if (fd >= 0) ::close(fd);
            throw unavailable(why);
        }
        return fd;
    }
    if (address.starts_with("vsock:")) {
        const std::string rest = address.substr(6);
        const auto colon = rest.find(':');
        sockaddr_vm peer{};
        peer.svm_family = AF_VSOCK;
        try {
            peer.svm_cid = static_cast<unsigned>(std::stoul(rest.substr(0, colon)));
            peer.svm_port = static_cast<unsigned>(std::stoul(rest.substr(colon + 1)));
        } catch (const std::exception&) {
            throw unavailable("not vsock:CID:PORT");
        }
        const int fd = ::socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || ::connect(fd, reinterpret_cast<const sockaddr*>(&peer), sizeof(peer)) != 0) {
            const std::string why = std::strerror(errno);
            if (fd >= 0) ::close(fd);
            throw unavailable(why);
        }
        return fd;
    }
    // virtio-serial:NAME
    const std::string name = address.substr(std::strlen("virtio-serial:"));
    std::string device = "/dev/virtio-ports/" + name;
    if (!std::filesystem::exists(device)) {
        device.clear();
        std::error_code ec;
        for (const auto& port : std::filesystem::directory_iterator("/sys/class/virtio-ports", ec)) {
            std::ifstream file(port.path() / "name");
            std::string port_name;
            if (std::getline(file, port_name) && port_name == name) device = "/dev/" + port.path().filename().string();
        }
        if (device.empty()) throw unavailable("this VM has no virtio-serial port named " + name);
    }
    const int fd = ::open(device.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) throw unavailable(os_error("cannot open " + device));
    return fd;
}

}  // namespace

struct StreamShimChannel::Shared {
    struct Pending {
        std::optional<json> response;
        std::string failure;  // set when the connection dropped before the answer
    };
    std::mutex mutex;
    std::condition_variable answered;
    std::map<std::int64_t, std::shared_ptr<Pending>> pending;
    std::int64_t next_id = 1;
    int fd = -1;         // the open connection, or -1
    int stop_reader = -1;  // write end of a pipe whose read end the reader of `fd` polls
    std::mutex write_mutex;

    // On the reader thread of `fd`: fails everything in flight and forgets the connection.
    void drop(int dead_fd, const std::string& why) {
        std::lock_guard lock(mutex);
        if (fd == dead_fd) fd = -1;
        for (auto& [id, call] : pending)
            if (!call->response) call->failure = why;
        pending.clear();
        answered.notify_all();
    }
};

namespace {

void read_responses(std::shared_ptr<StreamShimChannel::Shared> shared, int fd, int wake_fd, std::string address) {
    std::string buffer;
    char chunk[65536];
    std::string why = "the channel to brfusion-shim at " + address + " closed (did the shim restart?); retry";
    for (;;) {
        pollfd fds[2] = {{fd, POLLIN, 0}, {wake_fd, POLLIN, 0}};
        if (::poll(fds, 2, -1) < 0) {
            if (errno == EINTR) continue;
            break;
        }
        if (fds[1].revents) break;  // the channel is being destroyed
        const ssize_t n = ::read(fd, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        buffer.append(chunk, static_cast<std::size_t>(n));
        for (auto newline = buffer.find('\n'); newline != std::string::npos; newline = buffer.find('\n')) {
            const json message = json::parse(buffer.substr(0, newline), nullptr, false);
            buffer.erase(0, newline + 1);
            if (message.is_discarded() || !message.is_object() || !message.contains("id") || !message["id"].is_number_integer()) continue;
            std::lock_guard lock(shared->mutex);
            const auto call = shared->pending.find(message["id"].get<std::int64_t>());
            if (call == shared->pending.end()) continue;  // its caller gave up waiting
            call->second->response = message;
            shared->pending.erase(call);
            shared->answered.notify_all();
        }
    }
    shared->drop(fd, why);
    std::lock_guard no_writer(shared->write_mutex);  // a writer checks `fd` under this lock before using it
    ::close(fd);
    ::close(wake_fd);
}

}  // namespace

StreamShimChannel::StreamShimChannel(std::string address, std::chrono::milliseconds timeout)
    : address_(std::move(address)), timeout_(timeout), shared_(std::make_shared<Shared>()) {
    if (!address_.starts_with("unix:") && !address_.starts_with("virtio-serial:") && !address_.starts_with("vsock:"))
        throw PluginError(ErrorKind::BadRequest,
                          "channel " + address_ + " is not unix:PATH, virtio-serial:NAME or vsock:CID:PORT");
}

StreamShimChannel::~StreamShimChannel() {
    std::lock_guard lock(shared_->mutex);
    if (shared_->fd >= 0) {  // its reader still runs, so the pipe's read end is open
        const char stop = 1;
        [[maybe_unused]] const ssize_t ignored = ::write(shared_->stop_reader, &stop, 1);
    }
    if (shared_->stop_reader >= 0) ::close(shared_->stop_reader);
}

json StreamShimChannel::call(const std::string& method, const json& params) {
    auto call = std::make_shared<Shared::Pending>();
    std::int64_t id = 0;
    int fd = -1;
    {
        std::lock_guard lock(shared_->mutex);
        if (shared_->fd < 0) {
            const int connection = open_transport(address_);
            int wake[2];
            if (::pipe2(wake, O_CLOEXEC) != 0) {
                ::close(connection);
                throw PluginError(ErrorKind::Failed, os_error("cannot create a pipe"));
            }
            if (shared_->stop_reader >= 0) ::close(shared_->stop_reader);  // the dead connection's reader is gone
            shared_->fd = connection;
            shared_->stop_reader = wake[1];
            std::thread(read_responses, shared_, connection, wake[0], address_).detach();
        }
        id = shared_->next_id++;
        fd = shared_->fd;
        shared_->pending[id] = call;
    }
    const std::string line = guest::make_request(id, method, params).dump() + "\n";
    {
        std::lock_guard writing(shared_->write_mutex);
        {
            // The connection may have dropped since: then `fd` may be closed, or even reused.
            std::lock_guard state(shared_->mutex);
            if (shared_->fd != fd || !shared_->pending.contains(id))
                throw PluginError(ErrorKind::Unavailable, "the channel to brfusion-shim at " + address_ + " closed before " + method +
                                                              " was sent; retry");
        }
        std::size_t written = 0;
        while (written < line.size()) {
            // MSG_NOSIGNAL: a shim that went away is an error to report, not a SIGPIPE.
            ssize_t n = ::send(fd, line.data() + written, line.size() - written, MSG_NOSIGNAL);
            if (n < 0 && errno == ENOTSOCK) n = ::write(fd, line.data() + written, line.size() - written);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                const std::string failure = os_error("cannot send " + method + " to brfusion-shim at " + address_);
                std::lock_guard state(shared_->mutex);
                shared_->pending.erase(id);
                throw PluginError(ErrorKind::Unavailable, failure);
            }
            written += static_cast<std::size_t>(n);
        }
    }
    std::unique_lock lock(shared_->mutex);
    if (!shared_->answered.wait_for(lock, timeout_, [&] { return call->response || !call->failure.empty(); })) {
        shared_->pending.erase(id);
        throw PluginError(ErrorKind::Unavailable, "brfusion-shim at " + address_ + " did not answer " + method + " within " +
                                                      std::to_string(timeout_.count()) + " ms; the host may be overloaded");
    }
    if (!call->response) throw PluginError(ErrorKind::Unavailable, call->failure);
    return result_of(*call->response, method);
}

json result_of(const json& response, const std::string& method) {
    if (response.contains("error")) {
        const json& error = response["error"];
        const std::string kind = error.is_object() && error.contains("data") && error["data"].is_object() ? error["data"].value("kind", "") : "";
        const std::string message = error.is_object() && error.contains("message") && error["message"].is_string() ? error["message"].get<std::string>()
                                                                                                                        : "brfusion-shim refused " + method;
        throw PluginError(kind_of(kind), message);
    }
    return response.value("result", json::object());
}

namespace {

// The shim's network names come from the shim (a pool id), addresses from Docker (which checked
// them): typed here, where they leave for the guest channel.
guest::NetworkRef network_ref(const std::string& network) {
    auto ref = guest::NetworkRef::parse(network);
    if (!ref) throw PluginError(ErrorKind::BadRequest, "'" + network + "' is not a brfusion host network or Hostlo group");
    return *ref;
}

std::optional<Ipv4> address(const std::optional<std::string>& ip) {
    if (!ip) return std::nullopt;
    auto parsed = Ipv4::parse(*ip);
    if (!parsed) throw PluginError(ErrorKind::BadRequest, "'" + *ip + "' is not an IPv4 address");
    return parsed;
}

}  // namespace

guest::AttachResult ShimClient::attach(const std::string& network, const std::optional<std::string>& ip) {
    return channel_.call(guest::kAttach, guest::AttachParams{network_ref(network), address(ip)}).get<guest::AttachResult>();
}

void ShimClient::detach(const std::string& nic) {
    try {
        channel_.call(guest::kDetach, guest::DetachParams{nic});
    } catch (const PluginError& e) {
        if (e.kind() != ErrorKind::NotFound) throw;
    }
}

std::vector<guest::NicInfo> ShimClient::list() { return channel_.call(guest::kList, json::object()).at("nics").get<std::vector<guest::NicInfo>>(); }

std::vector<guest::PoolInfo> ShimClient::pools() {
    return channel_.call(guest::kPools, json::object()).at("pools").get<std::vector<guest::PoolInfo>>();
}

guest::AddressInfo ShimClient::request_address(const std::string& network, const std::optional<std::string>& ip) {
    return channel_.call(guest::kRequestAddress, guest::AddressParams{network_ref(network), address(ip)}).get<guest::AddressInfo>();
}

void ShimClient::release_address(const std::string& network, const std::string& ip) {
    channel_.call(guest::kReleaseAddress, guest::AddressParams{network_ref(network), address(ip)});
}

std::vector<guest::PortMapping> ShimClient::publish(const std::string& nic, const std::vector<guest::PortMapping>& ports) {
    return channel_.call(guest::kPublish, guest::PublishParams{nic, ports}).get<guest::PublishResult>().ports;
}

guest::PoolInfo ShimClient::join_hostlo(const std::string& group, const std::optional<std::string>& subnet) {
    std::optional<Ipv4Prefix> prefix;
    if (subnet && !(prefix = Ipv4Prefix::parse(*subnet)))
        throw PluginError(ErrorKind::BadRequest, "'" + *subnet + "' is not an IPv4 prefix with zero host bits (like 100.127.0.16/28)");
    return channel_.call(guest::kHostloJoin, guest::HostloParams{group, prefix}).get<guest::PoolInfo>();
}

void ShimClient::leave_hostlo(const std::string& group) { channel_.call(guest::kHostloLeave, guest::HostloParams{group, std::nullopt}); }

void ShimClient::unpublish(const std::string& nic) {
    try {
        channel_.call(guest::kUnpublish, guest::UnpublishParams{nic});
    } catch (const PluginError& e) {
        if (e.kind() != ErrorKind::NotFound) throw;
    }
}

}  // namespace brfusion::plugin
