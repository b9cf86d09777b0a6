#pragma once
// FakeQemu: a scripted QEMU monitor on a unix socket, for the QMP client and the qmp backend
// without a VM. It keeps what a q35 QEMU would (root ports, fds passed with getfd, netdevs,
// devices), answers the commands the backend uses with QEMU's own error classes, and makes the
// client's life hard: a decoy event before every reply (another device's DEVICE_DELETED, a
// DEVICE_DELETED without a device, an unrelated event), and device_del's DEVICE_DELETED only
// after those decoys. `fail_command(N)` makes the Nth command from now fail as QEMU would.

#include <nlohmann/json.hpp>

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace brfusion::shim::test {

class FakeQemu {
public:
    FakeQemu(std::string socket_path, int root_ports) : path_(std::move(socket_path)) {
        for (int i = 1; i <= root_ports; ++i) ports_["bfport" + std::to_string(i)] = {i, ""};
        listener_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un address{};
        address.sun_family = AF_UNIX;
        std::strncpy(address.sun_path, path_.c_str(), sizeof(address.sun_path) - 1);
        ::unlink(path_.c_str());
        if (::bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 || ::listen(listener_, 4) != 0)
            throw std::runtime_error("FakeQemu: cannot listen on " + path_);
        ::pipe(stop_);
        thread_ = std::thread([this] { serve(); });
    }
    ~FakeQemu() {
        ::write(stop_[1], "x", 1);
        thread_.join();
        for (int fd : {listener_, stop_[0], stop_[1]}) ::close(fd);
        for (auto& [name, fd] : fds_) ::close(fd);
        for (auto& [id, fd] : netdevs_) ::close(fd);
        ::unlink(path_.c_str());
    }

    // The Nth command from now (1 = the next) fails with a GenericError.
    void fail_command(int n) {
        std::lock_guard lock(mutex_);
        fail_at_ = commands_ + n;
    }
    // device_del is accepted but the guest never lets the device go (a hung guest).
    void ignore_unplug(bool ignore) { ignore_unplug_ = ignore; }

    struct Inventory {
        std::set<std::string> fds, netdevs, devices;
        bool empty() const { return fds.empty() && netdevs.empty() && devices.empty(); }
    };
    Inventory inventory() {
        std::lock_guard lock(mutex_);
        Inventory result;
        for (const auto& [name, fd] : fds_) result.fds.insert(name);
        for (const auto& [id, fd] : netdevs_) result.netdevs.insert(id);
        for (const auto& [id, device] : devices_) result.devices.insert(id);
        return result;
    }
    int commands() {
        std::lock_guard lock(mutex_);
        return commands_;
    }

private:
    struct Port {
        int bus;
        std::string device;
    };
    struct Device {
        std::string netdev, port;
        bool unplugging = false;
    };

    void serve() {
        for (;;) {
            pollfd waits[2] = {{listener_, POLLIN, 0}, {stop_[0], POLLIN, 0}};
            ::poll(waits, 2, -1);
            if (waits[1].revents) return;
            const int client = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
            if (client < 0) continue;
            if (!session(client)) {
                ::close(client);
                return;
            }
            ::close(client);
        }
    }

    void send(int client, const nlohmann::json& message) {
        const std::string line = message.dump() + "\r\n";
        ::send(client, line.data(), line.size(), MSG_NOSIGNAL);
    }
    void decoys(int client) {
        send(client, {{"event", "DEVICE_DELETED"}, {"data", {{"device", "somebody-else"}, {"path", "/machine/peripheral/somebody-else"}}}});
        send(client, {{"event", "DEVICE_DELETED"}, {"data", {{"path", "/machine/peripheral/x/virtio-backend"}}}});
        send(client, {{"event", "RTC_CHANGE"}, {"data", {{"offset", 0}}}});
    }

    // Serves one client; false when the fake is being destroyed.
    bool session(int client) {
        send(client, {{"QMP", {{"version", {{"qemu", {{"major", 7}, {"minor", 2}, {"micro", 0}}}}}, {"capabilities", nlohmann::json::array()}}}});
        std::string buffer;
        std::deque<int> received_fds;
        for (;;) {
            pollfd waits[2] = {{client, POLLIN, 0}, {stop_[0], POLLIN, 0}};
            ::poll(waits, 2, -1);
            if (waits[1].revents) {
                for (int fd : received_fds) ::close(fd);
                return false;
            }
            char chunk[4096];
            alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 4)];
            iovec io{chunk, sizeof(chunk)};
            msghdr message{};
            message.msg_iov = &io;
            message.msg_iovlen = 1;
            message.msg_control = control;
            message.msg_controllen = sizeof(control);
            const ssize_t got = ::recvmsg(client, &message, MSG_CMSG_CLOEXEC);
            if (got <= 0) {
                for (int fd : received_fds) ::close(fd);
                return true;
            }
            for (cmsghdr* header = CMSG_FIRSTHDR(&message); header; header = CMSG_NXTHDR(&message, header)) {
                if (header->cmsg_type != SCM_RIGHTS) continue;
                const size_t count = (header->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                for (size_t i = 0; i < count; ++i) {
                    int fd;
                    std::memcpy(&fd, CMSG_DATA(header) + i * sizeof(int), sizeof(int));
                    received_fds.push_back(fd);
                }
            }
            buffer.append(chunk, static_cast<size_t>(got));
            for (size_t end; (end = buffer.find('\n')) != std::string::npos;) {
                const auto request = nlohmann::json::parse(buffer.substr(0, end));
                buffer.erase(0, end + 1);
                nlohmann::json reply = answer(request, received_fds, client);
                if (request.contains("id")) reply["id"] = request["id"];
                decoys(client);
                send(client, reply);
                std::string deleted;
                {
                    std::lock_guard lock(mutex_);
                    deleted = std::exchange(deleted_, "");
                }
                if (!deleted.empty()) {
                    decoys(client);
                    send(client, {{"event", "DEVICE_DELETED"}, {"data", {{"path", "/machine/peripheral/" + deleted + "/virtio-backend"}}}});
                    send(client, {{"event", "DEVICE_DELETED"}, {"data", {{"device", deleted}, {"path", "/machine/peripheral/" + deleted}}}});
                }
            }
        }
    }

    static nlohmann::json error(const std::string& error_class, const std::string& text) {
        return {{"error", {{"class", error_class}, {"desc", text}}}};
    }

    nlohmann::json answer(const nlohmann::json& request, std::deque<int>& received_fds, int) {
        std::lock_guard lock(mutex_);
        const std::string command = request.value("execute", "");
        const auto arguments = request.value("arguments", nlohmann::json::object());
        if (command == "qmp_capabilities") return {{"return", nlohmann::json::object()}};
        if (++commands_ == fail_at_) return error("GenericError", "injected failure of " + command);
        if (command == "query-pci") {
            nlohmann::json bridges = nlohmann::json::array();
            for (const auto& [id, port] : ports_) {
                nlohmann::json children = nlohmann::json::array();
                if (!port.device.empty()) children.push_back({{"bus", port.bus}, {"slot", 0}, {"qdev_id", port.device}});
                bridges.push_back({{"bus", 0}, {"qdev_id", id}, {"pci_bridge", {{"bus", {{"number", 0}, {"secondary", port.bus}, {"subordinate", port.bus}}}, {"devices", children}}}});
            }
            bridges.push_back({{"bus", 0}, {"qdev_id", ""}, {"slot", 31}});  // a device without a bridge
            return {{"return", {{{"bus", 0}, {"devices", bridges}}}}};
        }
        if (command == "qom-list") {
            nlohmann::json entries = {{{"name", "type"}, {"type", "string"}}};
            for (const auto& [id, port] : ports_) entries.push_back({{"name", id}, {"type", "child<pcie-root-port>"}});
            for (const auto& [id, device] : devices_) entries.push_back({{"name", id}, {"type", "child<virtio-net-pci>"}});
            return {{"return", entries}};
        }
        if (command == "getfd") {
            if (received_fds.empty()) return error("GenericError", "No file descriptor supplied via SCM_RIGHTS");
            const std::string name = arguments.value("fdname", "");
            if (fds_.count(name)) ::close(fds_[name]);
            fds_[name] = received_fds.front();
            received_fds.pop_front();
            return {{"return", nlohmann::json::object()}};
        }
        if (command == "closefd") {
            const std::string name = arguments.value("fdname", "");
            if (!fds_.count(name)) return error("GenericError", "File descriptor named '" + name + "' not found");
            ::close(fds_[name]);
            fds_.erase(name);
            return {{"return", nlohmann::json::object()}};
        }
        if (command == "netdev_add") {
            const std::string id = arguments.value("id", ""), fd = arguments.value("fd", "");
            if (netdevs_.count(id)) return error("GenericError", "Duplicate ID '" + id + "' for netdev");
            if (!fds_.count(fd)) return error("GenericError", "File descriptor named '" + fd + "' has not been found");
            netdevs_[id] = fds_[fd];
            fds_.erase(fd);
            return {{"return", nlohmann::json::object()}};
        }
        if (command == "netdev_del") {
            const std::string id = arguments.value("id", "");
            if (!netdevs_.count(id)) return error("DeviceNotFound", "Device '" + id + "' not found");
            for (const auto& [device_id, device] : devices_)
                if (device.netdev == id) return error("GenericError", "Device '" + id + "' is in use");
            ::close(netdevs_[id]);
            netdevs_.erase(id);
            return {{"return", nlohmann::json::object()}};
        }
        if (command == "device_add") {
            const std::string id = arguments.value("id", ""), bus = arguments.value("bus", ""), netdev = arguments.value("netdev", "");
            if (devices_.count(id)) return error("GenericError", "Duplicate device ID '" + id + "'");
            if (!ports_.count(bus)) return error("GenericError", "Bus '" + bus + "' not found");
            if (!ports_[bus].device.empty() || arguments.value("addr", "") != "0x0") return error("GenericError", "PCI: slot 0 function 0 not available");
            if (!netdevs_.count(netdev)) return error("GenericError", "Property 'virtio-net-device.netdev' can't find value '" + netdev + "'");
            devices_[id] = {netdev, bus};
            ports_[bus].device = id;
            return {{"return", nlohmann::json::object()}};
        }
        if (command == "device_del") {
            const std::string id = arguments.value("id", "");
            if (!devices_.count(id)) return error("DeviceNotFound", "Device '" + id + "' not found");
            if (devices_[id].unplugging) return error("GenericError", "Device " + id + " is already in the process of unplug");
            devices_[id].unplugging = true;
            if (!ignore_unplug_) {
                ports_[devices_[id].port].device.clear();
                devices_.erase(id);
                deleted_ = id;
            }
            return {{"return", nlohmann::json::object()}};
        }
        return error("CommandNotFound", "The command " + command + " has not been found");
    }

    std::string path_;
    int listener_ = -1;
    int stop_[2] = {-1, -1};
    std::thread thread_;
    std::mutex mutex_;
    std::map<std::string, Port> ports_;
    std::map<std::string, int> fds_;
    std::map<std::string, int> netdevs_;
    std::map<std::string, Device> devices_;
    std::string deleted_;
    int commands_ = 0;
    int fail_at_ = -1;
    std::atomic<bool> ignore_unplug_ = false;
};

}  // namespace brfusion::shim::test
