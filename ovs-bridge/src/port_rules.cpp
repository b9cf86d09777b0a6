#include "brfusion/ovs/port_rules.hpp"

#include "brfusion/common/process.hpp"
#include "brfusion/ovs/error.hpp"

#include <cstdint>
#include <cstdio>

namespace brfusion::ovs {

namespace {

constexpr std::uint64_t kCookieMark = 0xbf05ULL << 48;
constexpr std::uint64_t kCookieMarkMask = 0xffffULL << 48;

std::uint64_t cookie_of(const std::string& port) {
    std::uint64_t hash = 0xcbf29ce484222325ULL;  // FNV-1a
    for (unsigned char c : port) hash = (hash ^ c) * 0x100000001b3ULL;
    return kCookieMark | (hash & ~kCookieMarkMask);
}

std::string hex(std::uint64_t value) {
    char text[19];
    std::snprintf(text, sizeof text, "0x%016llx", static_cast<unsigned long long>(value));
    return text;
}

std::string delete_cookie(std::uint64_t cookie) { return "delete cookie=" + hex(cookie) + "/-1\n"; }

std::string ofctl(const std::vector<std::string>& argv, const std::string& input = "") {
    const ProcessResult result = run_process(argv, input);
    if (result.exit_code == 0) return result.output;
    std::string command;
    for (const auto& arg : argv) command += (command.empty() ? "" : " ") + arg;
    std::string output = result.output;
    while (!output.empty() && output.back() == '\n') output.pop_back();
    throw OvsError(ErrorKind::Rejected, "'" + command + "' failed: " + output);
}

}  // namespace

std::string PortRules::socket_of(const std::string& ovsdb_socket, const std::string& bridge) {
    const auto slash = ovsdb_socket.rfind('/');
    return "unix:" + (slash == std::string::npos ? std::string(".") : ovsdb_socket.substr(0, slash)) + "/" + bridge + ".mgmt";
}

std::string PortRules::flow_mods(const std::string& port, std::int64_t ofport, const PortSecurity& allowed) {
    const std::string cookie = "cookie=" + hex(cookie_of(port));
    const std::string in_port = "in_port=" + std::to_string(ofport);
    const std::string match = "," + in_port + ",dl_src=" + allowed.mac;
    std::string mods = delete_cookie(cookie_of(port));
    if (allowed.ip)
        mods += "add " + cookie + ",priority=100" + match + ",ip,nw_src=" + allowed.ip->str() + ",actions=NORMAL\n" + "add " + cookie +
                ",priority=100" + match + ",arp,arp_spa=" + allowed.ip->str() + ",arp_sha=" + allowed.mac + ",actions=NORMAL\n";
    return mods + "add " + cookie + ",priority=90," + in_port + ",actions=drop\n";
}

std::int64_t PortRules::ofport_of(const std::string& port) const {
    const auto info = client_.port(port);
    if (!info || info->bridge != bridge_)
        throw OvsError(ErrorKind::NotFound, "port " + port + " is not on bridge " + bridge_ + (info && !info->bridge.empty() ? " but on " + info->bridge : std::string()) +
                                                "; its rules were not changed");
    const auto iface = client_.interface(port);
    if (!iface || iface->ofport.value_or(-1) < 1)
        throw OvsError(ErrorKind::NotFound, "port " + port + " on bridge " + bridge_ + " has no OpenFlow number" +
                                                (iface && iface->error ? " (" + *iface->error + ")" : std::string(" yet")) + "; its rules were not changed");
    return *iface->ofport;
}

void PortRules::apply(const std::string& flow_mods) { ofctl({"ovs-ofctl", "--no-names", "--bundle", "add-flows", openflow_, "-"}, flow_mods); }

void PortRules::secure(const std::map<std::string, PortSecurity>& ports) {
    std::string mods;
    for (const auto& [port, allowed] : ports) mods += flow_mods(port, ofport_of(port), allowed);
    if (!mods.empty()) apply(mods);
}

void PortRules::unsecure(const std::string& port) { apply(delete_cookie(cookie_of(port))); }

std::set<std::uint64_t> PortRules::cookies() {
    const std::string flows = ofctl({"ovs-ofctl", "--no-names", "dump-flows", openflow_, "cookie=" + hex(kCookieMark) + "/" + hex(kCookieMarkMask)});
    std::set<std::uint64_t> found;
    for (std::size_t at = flows.find("cookie=0x"); at != std::string::npos; at = flows.find("cookie=0x", at + 1))
        found.insert(std::stoull(flows.substr(at + 9, 16), nullptr, 16));
    return found;
}

std::set<std::string> PortRules::secured(const std::set<std::string>& ports) {
    const auto present = cookies();
    std::set<std::string> result;
    for (const auto& port : ports)
        if (present.count(cookie_of(port))) result.insert(port);
    return result;
}

int PortRules::prune(const std::set<std::string>& keep) {
    std::set<std::uint64_t> kept;
    for (const auto& port : keep) kept.insert(cookie_of(port));
    std::string mods;
    int pruned = 0;
    for (const auto cookie : cookies())
        if (!kept.count(cookie)) mods += delete_cookie(cookie), ++pruned;
    if (pruned) apply(mods);
    return pruned;
}

}  // namespace brfusion::ovs
