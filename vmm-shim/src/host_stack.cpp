#include "brfusion/shim/host_stack.hpp"

#include "brfusion/shim/error.hpp"
#include "host_tools.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <arpa/inet.h>

namespace brfusion::shim {

namespace {

std::uint32_t hex_word(std::string_view text) {
    std::uint32_t value = 0;
    std::from_chars(text.data(), text.data() + text.size(), value, 16);
    return value;
}

// The kernel prints an address as the 32-bit words of its network-order bytes, each as a native
// integer: ntohl of such a word is the address in host order.
std::optional<Ipv4> address_of(std::string_view hex, bool ipv6, bool& ipv4_relevant) {
    ipv4_relevant = true;
    if (!ipv6) {
        const Ipv4 address{ntohl(hex_word(hex))};
        return address.value == 0 ? std::nullopt : std::optional(address);
    }
    const std::uint32_t words[4] = {ntohl(hex_word(hex.substr(0, 8))), ntohl(hex_word(hex.substr(8, 8))), ntohl(hex_word(hex.substr(16, 8))),
                                    ntohl(hex_word(hex.substr(24, 8)))};
    if (words[0] == 0 && words[1] == 0 && words[2] == 0 && words[3] == 0) return std::nullopt;  // "::": IPv4 too, unless v6only
    if (words[0] == 0 && words[1] == 0 && words[2] == 0xffff) return Ipv4{words[3]};      // ::ffff:a.b.c.d
    ipv4_relevant = false;  // an IPv6 address: no IPv4 traffic reaches it
    return std::nullopt;
}

// inode -> "name (pid N)" for the sockets in `wanted`, from every process's open files.
std::map<unsigned long, std::string> socket_owners(const std::set<unsigned long>& wanted) {
    std::map<unsigned long, std::string> owners;
    if (wanted.empty()) return owners;
    std::error_code ignored;
    for (const auto& process : std::filesystem::directory_iterator("/proc", ignored)) {
        const std::string pid = process.path().filename().string();
        if (pid.find_first_not_of("0123456789") != std::string::npos) continue;
        for (const auto& fd : std::filesystem::directory_iterator(process.path() / "fd", ignored)) {
            const std::string target = std::filesystem::read_symlink(fd.path(), ignored).string();
            if (!target.starts_with("socket:[")) continue;
            unsigned long inode = 0;
            std::from_chars(target.data() + 8, target.data() + target.size() - 1, inode);
            if (!wanted.count(inode) || owners.count(inode)) continue;
            std::string name;
            std::getline(std::ifstream(process.path() / "comm"), name);
            owners[inode] = (name.empty() ? "a process" : name) + " (pid " + pid + ")";
        }
    }
    return owners;
}

}  // namespace

std::vector<ProcSocket> parse_proc_net(const std::string& table, bool ipv6, bool listening_only) {
    std::vector<ProcSocket> sockets;
    std::istringstream lines(table);
    std::string line;
    std::getline(lines, line);  // the header
    while (std::getline(lines, line)) {
        std::istringstream fields(line);
        std::string slot, local, remote, state, queues, timer, retransmits, uid, timeout;
        unsigned long inode = 0;
        if (!(fields >> slot >> local >> remote >> state >> queues >> timer >> retransmits >> uid >> timeout >> inode)) continue;
        const auto colon = local.find(':');
        if (colon == std::string::npos) continue;
        if (listening_only ? state != "0A" : remote.find_first_not_of("0:") != std::string::npos) continue;  // TCP listeners; unconnected UDP
        bool relevant = false;
        const auto address = address_of(std::string_view(local).substr(0, colon), ipv6, relevant);
        const int port = static_cast<int>(hex_word(std::string_view(local).substr(colon + 1)));
        if (relevant && port != 0) sockets.push_back({port, address, inode});
    }
    return sockets;
}

std::set<int> parse_port_list(const std::string& text) {
    std::set<int> ports;
    std::istringstream items(text);
    std::string item;
    while (std::getline(items, item, ',')) {
        item.erase(std::remove_if(item.begin(), item.end(), [](char c) { return std::isspace(static_cast<unsigned char>(c)); }), item.end());
        if (item.empty()) continue;
        const auto dash = item.find('-');
        int first = 0, last = 0;
        std::from_chars(item.data(), item.data() + (dash == std::string::npos ? item.size() : dash), first);
        last = first;
        if (dash != std::string::npos) std::from_chars(item.data() + dash + 1, item.data() + item.size(), last);
        for (int port = std::max(first, 1); port <= std::min(last, 65535); ++port) ports.insert(port);
    }
    return ports;
}

std::vector<InterfaceAddress> ProcHostStack::publish_addresses(const std::vector<std::string>& interfaces, const std::set<std::string>& excluded) {
    const auto links = nlohmann::json::parse(tools::run(host_netns_, {"ip", "-j", "-4", "addr", "show"}), nullptr, false);
    if (!links.is_array()) throw ShimError(ErrorKind::Backend, "cannot read the host's addresses: `ip -j -4 addr show` printed no JSON list");
    std::vector<InterfaceAddress> result;
    for (const auto& link : links) {
        const std::string name = link.value("ifname", "");
        const bool wanted = interfaces.empty() ? name != "lo" && !excluded.count(name)
                                               : std::find(interfaces.begin(), interfaces.end(), name) != interfaces.end();
        if (!wanted) continue;
        for (const auto& info : link.value("addr_info", nlohmann::json::array()))
            if (auto address = Ipv4::parse(info.value("local", ""))) result.push_back({name, *address});
    }
    return result;
}

std::multimap<int, PortUse> ProcHostStack::used_ports(const std::string& protocol) {
    std::vector<ProcSocket> sockets;
    for (const bool ipv6 : {false, true}) {
        const std::string table = tools::read_in_netns(host_netns_, "/proc/thread-self/net/" + protocol + (ipv6 ? "6" : ""));
        for (auto& socket : parse_proc_net(table, ipv6, protocol == "tcp")) sockets.push_back(socket);
    }
    std::set<unsigned long> inodes;
    for (const auto& socket : sockets) inodes.insert(socket.inode);
    const auto owners = socket_owners(inodes);
    std::multimap<int, PortUse> used;
    for (const auto& socket : sockets) {
        const auto owner = owners.find(socket.inode);
        used.emplace(socket.port, PortUse{socket.address, owner == owners.end() ? "" : owner->second});
    }
    return used;
}

std::set<int> ProcHostStack::reserved_ports() {
    return parse_port_list(tools::read_in_netns(host_netns_, "/proc/sys/net/ipv4/ip_local_reserved_ports"));
}

}  // namespace brfusion::shim
