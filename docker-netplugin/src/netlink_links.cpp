#include "brfusion/plugin/error.hpp"
#include "brfusion/plugin/guest_links.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <regex>
#include <thread>

#include <fcntl.h>
#include <linux/ethtool.h>
#include <linux/if.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sockios.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

// The kernel's netlink macros (NLMSG_*, RTA_*, IFLA_*) are C and cast the C way.
#pragma GCC diagnostic ignored "-Wold-style-cast"

namespace brfusion::plugin {

namespace {

// NLMSG_OK without its comparison of the unsigned nlmsg_len with a signed length (clang warns).
bool message_fits(const nlmsghdr* header, int length) {
    return length >= static_cast<int>(sizeof(nlmsghdr)) && header->nlmsg_len >= sizeof(nlmsghdr) && header->nlmsg_len <= static_cast<unsigned>(length);
}


[[noreturn]] void fail(const std::string& what, int error) {
    throw PluginError(ErrorKind::Failed, what + ": " + std::strerror(error));
}

int open_netlink_socket() {
    const int fd = ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd < 0) fail("cannot open a netlink socket", errno);
    return fd;
}

// A netlink request being built: header, ifinfomsg, then attributes.
class Request {
public:
    Request(std::uint16_t type, std::uint16_t flags, unsigned sequence) {
        buffer_.resize(NLMSG_LENGTH(sizeof(ifinfomsg)));
        auto* header = reinterpret_cast<nlmsghdr*>(buffer_.data());
        header->nlmsg_type = type;
        header->nlmsg_flags = flags;
        header->nlmsg_seq = sequence;
    }
    ifinfomsg& info() { return *static_cast<ifinfomsg*>(NLMSG_DATA(reinterpret_cast<nlmsghdr*>(buffer_.data()))); }
    void attribute(std::uint16_t type, const void* data, std::size_t length) {
        const std::size_t offset = NLMSG_ALIGN(buffer_.size());
        buffer_.resize(offset + RTA_SPACE(length));
        auto* attr = reinterpret_cast<rtattr*>(buffer_.data() + offset);
        attr->rta_type = type;
        attr->rta_len = static_cast<unsigned short>(RTA_LENGTH(length));
        std::memcpy(RTA_DATA(attr), data, length);
    }
    const std::vector<char>& finish() {
        reinterpret_cast<nlmsghdr*>(buffer_.data())->nlmsg_len = static_cast<std::uint32_t>(buffer_.size());
        return buffer_;
    }

private:
    std::vector<char> buffer_;
};

void send_request(int fd, Request& request) {
    const auto& bytes = request.finish();
    sockaddr_nl kernel{};
    kernel.nl_family = AF_NETLINK;
    if (::sendto(fd, bytes.data(), bytes.size(), 0, reinterpret_cast<const sockaddr*>(&kernel), sizeof(kernel)) < 0)
        fail("cannot send a netlink request", errno);
}

std::string format_mac(const unsigned char* bytes, std::size_t length) {
    static const char* digits = "0123456789abcdef";
    std::string mac;
    for (std::size_t i = 0; i < length; ++i) {
        if (i) mac += ':';
        mac += digits[bytes[i] >> 4];
        mac += digits[bytes[i] & 0xf];
    }
    return mac;
}

// Reads messages of `sequence` until DONE (a dump) or an ack/error. Calls `on_link` for each link.
// Returns the kernel's refusal (an errno), 0 if none.
template <typename OnLink>
int receive(int fd, unsigned sequence, const std::string& what, OnLink on_link) {
    std::vector<char> buffer(64 * 1024);
    for (;;) {
        const ssize_t n = ::recv(fd, buffer.data(), buffer.size(), 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) fail(what, errno);
        int length = static_cast<int>(n);
        for (auto* header = reinterpret_cast<nlmsghdr*>(buffer.data()); message_fits(header, length); header = NLMSG_NEXT(header, length)) {
            if (header->nlmsg_seq != sequence) continue;  // a late answer to an earlier request
            if (header->nlmsg_type == NLMSG_DONE) return 0;
            if (header->nlmsg_type == NLMSG_ERROR) return -static_cast<const nlmsgerr*>(NLMSG_DATA(header))->error;  // 0: an ack
            if (header->nlmsg_type != RTM_NEWLINK) continue;
            const auto* info = static_cast<const ifinfomsg*>(NLMSG_DATA(header));
            LinkInfo link;
            link.index = info->ifi_index;
            link.up = (info->ifi_flags & IFF_UP) != 0;
            int attributes_length = static_cast<int>(IFLA_PAYLOAD(header));
            for (auto* attr = IFLA_RTA(info); RTA_OK(attr, attributes_length); attr = RTA_NEXT(attr, attributes_length)) {
                if (attr->rta_type == IFLA_IFNAME) link.name = static_cast<const char*>(RTA_DATA(attr));
                else if (attr->rta_type == IFLA_ADDRESS) link.mac = format_mac(static_cast<const unsigned char*>(RTA_DATA(attr)), RTA_PAYLOAD(attr));
                else if (attr->rta_type == IFLA_MTU) link.mtu = static_cast<int>(*static_cast<const std::uint32_t*>(RTA_DATA(attr)));
            }
            on_link(std::move(link));
        }
    }
}

}  // namespace

NetlinkLinks::NetlinkLinks(const std::string& netns_path) {
    if (netns_path.empty()) {
        fd_ = open_netlink_socket();
        return;
    }
    // A socket stays in the namespace it was created in: create it on a thread that entered
    // `netns_path`, so that the plugin's own threads never change namespace.
    int error = 0;
    std::thread([&] {
        const int ns = ::open(netns_path.c_str(), O_RDONLY | O_CLOEXEC);
        if (ns < 0 || ::setns(ns, CLONE_NEWNET) != 0) {
            error = errno;
            if (ns >= 0) ::close(ns);
            return;
        }
        ::close(ns);
        fd_ = ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
        if (fd_ < 0) error = errno;
    }).join();
    if (fd_ < 0) fail("cannot open a netlink socket in " + netns_path, error);
}

NetlinkLinks::~NetlinkLinks() {
    if (fd_ >= 0) ::close(fd_);
}

std::vector<LinkInfo> NetlinkLinks::list() {
    std::lock_guard lock(mutex_);
    Request request(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, ++sequence_);
    request.info().ifi_family = AF_UNSPEC;
    // Without each link's counters (IPv6's above all): they are most of the kernel's work per link.
    const std::uint32_t skip_stats = RTEXT_FILTER_SKIP_STATS;
    request.attribute(IFLA_EXT_MASK, &skip_stats, sizeof(skip_stats));
    send_request(fd_, request);
    std::vector<LinkInfo> links;
    const std::string what = "cannot list the VM's network interfaces";
    if (const int error = receive(fd_, sequence_, what, [&](LinkInfo link) { links.push_back(std::move(link)); })) fail(what, error);
    return links;
}

std::optional<LinkInfo> NetlinkLinks::get(const std::string& name) {
    if (name.empty() || name.size() >= IFNAMSIZ) return std::nullopt;
    std::lock_guard lock(mutex_);
    Request request(RTM_GETLINK, NLM_F_REQUEST | NLM_F_ACK, ++sequence_);
    request.info().ifi_family = AF_UNSPEC;
    request.attribute(IFLA_IFNAME, name.c_str(), name.size() + 1);
    const std::uint32_t skip_stats = RTEXT_FILTER_SKIP_STATS;
    request.attribute(IFLA_EXT_MASK, &skip_stats, sizeof(skip_stats));
    send_request(fd_, request);
    std::optional<LinkInfo> found;
    const std::string what = "cannot look up network interface " + name;
    const int error = receive(fd_, sequence_, what, [&](LinkInfo link) { found = std::move(link); });
    if (error == ENODEV) return std::nullopt;
    if (error) fail(what, error);
    return found;
}

std::vector<std::string> NetlinkLinks::names_at_pci(const std::string& pci) {
    // domain:bus:slot.function, as the kernel names a PCI device: nothing else becomes a path.
    static const std::regex kPciAddress("[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\\.[0-7]");
    std::vector<std::string> names;
    if (!std::regex_match(pci, kPciAddress)) return names;
    std::error_code error;
    for (const auto& function : std::filesystem::directory_iterator("/sys/bus/pci/devices/" + pci, error)) {
        if (function.path().filename().string().rfind("virtio", 0) != 0) continue;
        for (const auto& net : std::filesystem::directory_iterator(function.path() / "net", error)) names.push_back(net.path().filename());
    }
    return names;
}

void NetlinkLinks::set_link(int index, unsigned flags_change, const std::string& name, int mtu) {
    Request request(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, ++sequence_);
    request.info().ifi_family = AF_UNSPEC;
    request.info().ifi_index = index;
    request.info().ifi_change = flags_change;
    request.info().ifi_flags = 0;
    if (!name.empty()) request.attribute(IFLA_IFNAME, name.c_str(), name.size() + 1);
    if (mtu > 0) {
        const std::uint32_t value = static_cast<std::uint32_t>(mtu);
        request.attribute(IFLA_MTU, &value, sizeof(value));
    }
    send_request(fd_, request);
    const std::string what =
        "cannot set up interface " + std::to_string(index) + (name.empty() ? "" : " as " + name) + (mtu > 0 ? " with MTU " + std::to_string(mtu) : "");
    if (const int error = receive(fd_, sequence_, what, [](LinkInfo) {})) fail(what, error);
}

// The legacy ethtool ioctl, on the netlink socket: netlink has no ioctls of its own, so the kernel
// hands it to the device, in the socket's network namespace.
void NetlinkLinks::disable_tx_checksum(const std::string& name) {
    ethtool_value value{ETHTOOL_STXCSUM, 0};
    ifreq request{};
    std::memcpy(request.ifr_name, name.c_str(), name.size());
    request.ifr_data = reinterpret_cast<char*>(&value);
    if (::ioctl(fd_, SIOCETHTOOL, &request) != 0) fail("cannot turn TX checksum offload off on " + name, errno);
}

void NetlinkLinks::prepare(int index, const LinkSetup& setup) {
    if (setup.name.empty() || setup.name.size() >= IFNAMSIZ)
        throw PluginError(ErrorKind::Failed, "'" + setup.name + "' is not a valid interface name");
    std::lock_guard lock(mutex_);
    set_link(index, IFF_UP, "", 0);  // a link is renamed only while down
    set_link(index, 0, setup.name, setup.mtu);
    if (!setup.checksum_offload) disable_tx_checksum(setup.name);
}

std::optional<LinkInfo> find_link_by_mac(GuestLinks& links, const std::string& mac, const NicHints& hints) {
    std::string wanted = mac;
    std::transform(wanted.begin(), wanted.end(), wanted.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    std::vector<std::string> hinted = hints.pci.empty() ? std::vector<std::string>{} : links.names_at_pci(hints.pci);
    if (!hints.name.empty()) hinted.insert(hinted.begin(), hints.name);
    for (const auto& name : hinted)
        if (auto link = links.get(name); link && link->mac == wanted) return link;
    for (auto& link : links.list())
        if (link.mac == wanted) return link;
    return std::nullopt;
}

}  // namespace brfusion::plugin
