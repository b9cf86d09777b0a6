#include "brfusion/shim/host_switch.hpp"

#include "brfusion/ovs/client.hpp"
#include "brfusion/shim/error.hpp"
#include "host_tools.hpp"

#include <cstdio>

namespace brfusion::shim {

namespace {
// OVS failures are backend failures for the shim; OVS's message already says what to do.
template <typename F>
auto translate(F&& operation) {
    try {
        return operation();
    } catch (const ovs::OvsError& e) {
        throw ShimError(ErrorKind::Backend, std::string("Open vSwitch: ") + e.what());
    }
}
// Every port security flow carries a cookie: 0xbf05 in the top 16 bits (brfusion's), a hash of
// the port name below. It finds a port's flows even after the port itself is gone.
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

}  // namespace

std::string OvsHostSwitch::openflow_socket(const std::string& ovsdb_socket, const std::string& bridge) {
    const auto slash = ovsdb_socket.rfind('/');
    return "unix:" + (slash == std::string::npos ? std::string(".") : ovsdb_socket.substr(0, slash)) + "/" + bridge + ".mgmt";
}

void OvsHostSwitch::modify_flows(const std::string& flow_mods) {
    // One bundle: the port's old rules go and its new ones come in a single atomic step.
    tools::run("", {"ovs-ofctl", "--bundle", "add-flows", openflow_, "-"}, flow_mods);
}

void OvsHostSwitch::secure_port(const std::string& port, const PortSecurity& allowed) {
    const std::string cookie = "cookie=" + hex(cookie_of(port));
    const std::string match = ",in_port=\"" + port + "\",dl_src=" + allowed.mac;
    std::string flow_mods = delete_cookie(cookie_of(port));
    if (allowed.ip)
        flow_mods += "add " + cookie + ",priority=100" + match + ",ip,nw_src=" + allowed.ip->str() + ",actions=NORMAL\n" +
                     "add " + cookie + ",priority=100" + match + ",arp,arp_spa=" + allowed.ip->str() + ",arp_sha=" + allowed.mac + ",actions=NORMAL\n";
    modify_flows(flow_mods + "add " + cookie + ",priority=90,in_port=\"" + port + "\",actions=drop\n");
}

void OvsHostSwitch::unsecure_port(const std::string& port) { modify_flows(delete_cookie(cookie_of(port))); }

std::set<std::uint64_t> OvsHostSwitch::security_cookies() {
    const std::string flows = tools::run("", {"ovs-ofctl", "dump-flows", openflow_, "cookie=" + hex(kCookieMark) + "/" + hex(kCookieMarkMask)});
    std::set<std::uint64_t> cookies;
    for (std::size_t at = flows.find("cookie=0x"); at != std::string::npos; at = flows.find("cookie=0x", at + 1))
        cookies.insert(std::stoull(flows.substr(at + 9, 16), nullptr, 16));
    return cookies;
}

std::set<std::string> OvsHostSwitch::secured_ports(const std::set<std::string>& ports) {
    const auto cookies = security_cookies();
    std::set<std::string> secured;
    for (const auto& port : ports)
        if (cookies.count(cookie_of(port))) secured.insert(port);
    return secured;
}

int OvsHostSwitch::prune_port_security(const std::set<std::string>& keep) {
    std::set<std::uint64_t> kept;
    for (const auto& port : keep) kept.insert(cookie_of(port));
    std::string flow_mods;
    int pruned = 0;
    for (const auto cookie : security_cookies())
        if (!kept.count(cookie)) flow_mods += delete_cookie(cookie), ++pruned;
    if (pruned) modify_flows(flow_mods);
    return pruned;
}

void OvsHostSwitch::ensure_bridge() {
    translate([&] { client_.ensure_bridge({bridge_, "netdev", {{"brfusion-bridge", "integration"}}}); });
}

void OvsHostSwitch::add_port(const std::string& name, int tag, const Labels& labels) {
    translate([&] { client_.ensure_port({bridge_, name, ovs::PortType::System, tag, labels, ""}); });
}

void OvsHostSwitch::ensure_gateway(const std::string& port, int tag, const Labels& labels, const std::string& address_cidr, int mtu) {
    translate([&] { client_.ensure_port({bridge_, port, ovs::PortType::Internal, tag, labels, ""}); });
    tools::ip(host_netns_, {"addr", "replace", address_cidr, "dev", port});
    tools::ip(host_netns_, {"link", "set", port, "mtu", std::to_string(mtu), "up"});
    tools::disable_tx_offload(host_netns_, port);
}

void OvsHostSwitch::remove_port(const std::string& name) {
    translate([&] { client_.remove_port(name); });
}

void OvsHostSwitch::remove_label(const std::string& port, const std::string& key) {
    translate([&] {
        client_.clear_external_ids(ovs::Table::Port, port, {key});
        client_.clear_external_ids(ovs::Table::Interface, port, {key});
    });
}

std::map<std::string, std::string> OvsHostSwitch::ports_labelled(const std::string& key) {
    return translate([&] {
        std::map<std::string, std::string> result;
        for (const auto& info : client_.list_owned().ports)
            if (auto label = info.port.external_ids.find(key); label != info.port.external_ids.end()) result[info.port.name] = label->second;
        return result;
    });
}

}  // namespace brfusion::shim
