#include "brfusion/shim/config.hpp"

#include "brfusion/common/json_keys.hpp"
#include "brfusion/common/names.hpp"

#include "brfusion/shim/error.hpp"

#include <algorithm>
#include <charconv>
#include <set>
#include <tuple>

namespace brfusion::shim {

using nlohmann::json;

namespace {

[[noreturn]] void refuse(const std::string& path, const std::string& problem) {
    throw ShimError(ErrorKind::BadRequest, (path.rfind(".", 0) == 0 ? path.substr(1) : path) + ": " + problem);
}

void reject_unknown_keys(const json& object, const std::string& path, std::initializer_list<const char*> known) {
    if (!object.is_object()) refuse(path, "must be a JSON object");
    if (auto key = unknown_key(object, known)) {
        std::string list;
        for (const char* name : known) list += (list.empty() ? "" : ", ") + std::string(name);
        refuse(path + "." + *key, "unknown key (known: " + list + ")");
    }
}

template <typename T>
T get(const json& object, const std::string& path, const char* key, std::optional<T> fallback = std::nullopt) {
    auto found = object.find(key);
    if (found == object.end()) {
        if (fallback) return *fallback;
        refuse(path + "." + key, "is required");
    }
    try {
        return found->get<T>();
    } catch (const json::exception&) {
        refuse(path + "." + key, "has the wrong type (" + found->dump() + ")");
    }
}

VmQuotas parse_quotas(const json& object, const std::string& path) {
    reject_unknown_keys(object, path, {"nics", "reservations", "published_ports", "hostlo_groups", "requests_in_flight"});
    VmQuotas quotas;
    for (auto [key, value, floor] : {std::tuple{"nics", &quotas.nics, 0}, std::tuple{"reservations", &quotas.reservations, 0},
                                     std::tuple{"published_ports", &quotas.published_ports, 0}, std::tuple{"hostlo_groups", &quotas.hostlo_groups, 0},
                                     std::tuple{"requests_in_flight", &quotas.requests_in_flight, 1}}) {
        *value = get<int>(object, path, key, *value);
        if (*value < floor || *value > 65535) refuse(path + "." + key, std::to_string(*value) + " is outside " + std::to_string(floor) + "-65535");
    }
    return quotas;
}

PortRange parse_port_range(const std::string& text, const std::string& path) {
    PortRange range;
    const auto dash = text.find('-');
    const auto number = [&](std::string_view digits, int& out) {
        const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), out);
        return !digits.empty() && error == std::errc() && end == digits.data() + digits.size();
    };
    if (dash == std::string::npos || !number(std::string_view(text).substr(0, dash), range.first) ||
        !number(std::string_view(text).substr(dash + 1), range.last) || range.first < 1 || range.last > 65535 || range.first > range.last)
        refuse(path, "'" + text + "' is not a port range FIRST-LAST within 1-65535 (like 1024-65535)");
    return range;
}

std::string name_of(const json& object, const std::string& path) {
    auto name = get<std::string>(object, path, "name");
    if (!is_valid_name(name)) refuse(path + ".name", "'" + name + "' must be 1-64 characters of [A-Za-z0-9._-]");
    return name;
}

}  // namespace

const HostNetwork* ShimConfig::network(const std::string& name) const {
    for (const auto& n : networks)
        if (n.name == name) return &n;
    return nullptr;
}

const VmConfig* ShimConfig::vm(const std::string& name) const {
    for (const auto& v : vms)
        if (v.name == name) return &v;
    return nullptr;
}

HostNetwork parse_network(const json& object, const std::string& path) {
    reject_unknown_keys(object, path, {"name", "subnet", "gateway", "tag", "nat", "mtu", "forward_to"});
    HostNetwork network;
    network.name = name_of(object, path);
    const auto subnet_text = get<std::string>(object, path, "subnet");
    auto subnet = Ipv4Prefix::parse(subnet_text);
    if (!subnet) refuse(path + ".subnet", "'" + subnet_text + "' is not an IPv4 prefix with zero host bits (like 198.51.100.0/24)");
    if (subnet->length > 30) refuse(path + ".subnet", subnet_text + " is too small: a network needs at least a /30");
    network.subnet = *subnet;
    const auto gateway_text = get<std::string>(object, path, "gateway", std::optional<std::string>(Ipv4{subnet->network.value + 1}.str()));
    auto gateway = Ipv4::parse(gateway_text);
    if (!gateway) refuse(path + ".gateway", "'" + gateway_text + "' is not an IPv4 address");
    if (!subnet->contains(*gateway) || *gateway == subnet->network || *gateway == subnet->broadcast())
        refuse(path + ".gateway", gateway_text + " is not a host address of subnet " + subnet->str());
    network.gateway = *gateway;
    network.tag = get<int>(object, path, "tag");
    if (network.tag < 1 || network.tag > 4094) refuse(path + ".tag", std::to_string(network.tag) + " is not a VLAN id (1-4094)");
    network.nat = get<bool>(object, path, "nat", true);
    network.mtu = get<int>(object, path, "mtu", 1500);
    if (network.mtu < 576 || network.mtu > 9000) refuse(path + ".mtu", std::to_string(network.mtu) + " is outside 576-9000");
    network.forward_to = get<std::vector<std::string>>(object, path, "forward_to", std::vector<std::string>{});
    return network;
}

VmConfig parse_vm(const json& object, const std::string& path) {
    reject_unknown_keys(object, path, {"name", "backend", "netns", "qmp", "domain", "libvirt_uri", "networks", "channel", "warm_pool",
                                      "hostlo_groups", "quotas", "host_ports"});
    VmConfig vm;
    vm.name = name_of(object, path);
    vm.backend = get<std::string>(object, path, "backend", std::optional<std::string>("netns"));
    if (vm.backend != "netns" && vm.backend != "qmp" && vm.backend != "libvirt")
        refuse(path + ".backend", "'" + vm.backend + "' is not supported (supported: netns, qmp, libvirt)");
    vm.netns = get<std::string>(object, path, "netns", std::optional<std::string>(""));
    if (vm.backend == "netns" && vm.netns.empty()) refuse(path + ".netns", "is required for the netns backend");
    vm.qmp = get<std::string>(object, path, "qmp", std::optional<std::string>(""));
    if (vm.backend == "qmp" && vm.qmp.empty()) refuse(path + ".qmp", "is required for the qmp backend (QEMU's -qmp unix:PATH socket)");
    if (vm.backend != "netns" && !vm.netns.empty()) refuse(path + ".netns", "is only for the netns backend");
    if (vm.backend != "qmp" && !vm.qmp.empty()) refuse(path + ".qmp", "is only for the qmp backend");
    vm.domain = get<std::string>(object, path, "domain", std::optional<std::string>(vm.backend == "libvirt" ? vm.name : ""));
    vm.libvirt_uri = get<std::string>(object, path, "libvirt_uri", std::optional<std::string>(vm.backend == "libvirt" ? "qemu:///system" : ""));
    if (vm.backend != "libvirt" && !vm.domain.empty()) refuse(path + ".domain", "is only for the libvirt backend");
    if (vm.backend != "libvirt" && !vm.libvirt_uri.empty()) refuse(path + ".libvirt_uri", "is only for the libvirt backend");
    vm.networks = get<std::vector<std::string>>(object, path, "networks", std::vector<std::string>{});
    vm.channel = get<std::string>(object, path, "channel", std::optional<std::string>(""));
    vm.warm_pool = get<std::map<std::string, int>>(object, path, "warm_pool", std::map<std::string, int>{});
    for (const auto& [network, spares] : vm.warm_pool) {
        if (std::find(vm.networks.begin(), vm.networks.end(), network) == vm.networks.end())
            refuse(path + ".warm_pool." + network, "is not one of the VM's networks; add it to networks or drop it here");
        if (spares < 0 || spares > kMaxWarmPool)
            refuse(path + ".warm_pool." + network, std::to_string(spares) + " is outside 0-" + std::to_string(kMaxWarmPool));
    }
    vm.hostlo_groups = get<std::vector<std::string>>(object, path, "hostlo_groups", std::vector<std::string>{});
    for (const auto& pattern : vm.hostlo_groups) {
        const std::string name = pattern.ends_with('*') ? pattern.substr(0, pattern.size() - 1) : pattern;
        if (pattern != "*" && !is_valid_name(name))
            refuse(path + ".hostlo_groups", "'" + pattern + "' is neither a group name ([A-Za-z0-9._-]) nor such a prefix ending in '*'");
    }
    if (object.contains("quotas")) vm.quotas = parse_quotas(object["quotas"], path + ".quotas");
    if (object.contains("host_ports")) vm.host_ports = parse_port_range(get<std::string>(object, path, "host_ports"), path + ".host_ports");
    return vm;
}

bool VmConfig::may_join_hostlo(const std::string& group) const {
    for (const auto& pattern : hostlo_groups)
        if (pattern.ends_with('*') ? group.starts_with(pattern.substr(0, pattern.size() - 1)) : group == pattern) return true;
    return false;
}

namespace {
HostloConfig parse_hostlo(const json& object) {
    const std::string path = "hostlo";
    reject_unknown_keys(object, path, {"backend", "range", "prefix_length", "mtu"});
    HostloConfig hostlo;
    hostlo.backend = get<std::string>(object, path, "backend", hostlo.backend);
    if (hostlo.backend != "ovs" && hostlo.backend != "kmod") refuse(path + ".backend", "'" + hostlo.backend + "' is not supported (supported: ovs, kmod)");
    const auto range_text = get<std::string>(object, path, "range", hostlo.subnets.range.str());
    const auto range = Ipv4Prefix::parse(range_text);
    if (!range) refuse(path + ".range", "'" + range_text + "' is not an IPv4 prefix with zero host bits (like 100.127.0.0/16)");
    hostlo.subnets.range = *range;
    hostlo.subnets.prefix_length = get<int>(object, path, "prefix_length", hostlo.subnets.prefix_length);
    if (hostlo.subnets.prefix_length < range->length || hostlo.subnets.prefix_length > 30)
        refuse(path + ".prefix_length", std::to_string(hostlo.subnets.prefix_length) + " is outside " + std::to_string(range->length) + "-30 (the range's length to /30)");
    hostlo.mtu = get<int>(object, path, "mtu", hostlo.mtu);
    if (hostlo.mtu < 576 || hostlo.mtu > 9000) refuse(path + ".mtu", std::to_string(hostlo.mtu) + " is outside 576-9000");
    return hostlo;
}
}  // namespace

std::string default_channel(const std::string& run_dir, const std::string& vm) { return run_dir + "/vm-" + vm + ".sock"; }

json to_json(const HostNetwork& network) {
    return {{"name", network.name}, {"subnet", network.subnet.str()}, {"gateway", network.gateway.str()}, {"tag", network.tag},
            {"nat", network.nat},   {"mtu", network.mtu},             {"forward_to", network.forward_to}};
}

json to_json(const VmConfig& vm) {
    json object = {{"name", vm.name}, {"backend", vm.backend}, {"networks", vm.networks}, {"channel", vm.channel}};
    if (!vm.netns.empty()) object["netns"] = vm.netns;
    if (!vm.qmp.empty()) object["qmp"] = vm.qmp;
    if (!vm.domain.empty()) object["domain"] = vm.domain;
    if (!vm.libvirt_uri.empty()) object["libvirt_uri"] = vm.libvirt_uri;
    if (!vm.warm_pool.empty()) object["warm_pool"] = vm.warm_pool;
    if (!vm.hostlo_groups.empty()) object["hostlo_groups"] = vm.hostlo_groups;
    object["quotas"] = {{"nics", vm.quotas.nics}, {"reservations", vm.quotas.reservations}, {"published_ports", vm.quotas.published_ports},
                        {"hostlo_groups", vm.quotas.hostlo_groups}, {"requests_in_flight", vm.quotas.requests_in_flight}};
    object["host_ports"] = vm.host_ports.str();
    return object;
}

void validate(const ShimConfig& config) {
    std::set<std::string> network_names, vm_names;
    std::set<int> tags;
    for (const auto& network : config.networks) {
        if (!network_names.insert(network.name).second) refuse("networks", "network " + network.name + " is defined twice");
        if (!tags.insert(network.tag).second) refuse("networks", "VLAN tag " + std::to_string(network.tag) + " is used by two networks");
    }
    for (std::size_t i = 0; i < config.networks.size(); ++i)
        for (std::size_t j = 0; j < i; ++j)
            if (config.networks[i].subnet.overlaps(config.networks[j].subnet))
                refuse("networks", "subnet " + config.networks[i].subnet.str() + " of network " + config.networks[i].name + " overlaps " +
                                       config.networks[j].subnet.str() + " of network " + config.networks[j].name);
    for (const auto& network : config.networks)
        if (network.subnet.overlaps(config.hostlo.subnets.range))
            refuse("networks", "subnet " + network.subnet.str() + " of network " + network.name + " overlaps the Hostlo range " +
                                   config.hostlo.subnets.range.str() + "; move one of them (hostlo.range)");
    for (const auto& network : config.networks)
        for (const auto& peer : network.forward_to)
            if (!network_names.count(peer) || peer == network.name)
                refuse("networks", "network " + network.name + " forwards to " + peer + (peer == network.name ? ", itself" : ", which is not defined"));
    for (const auto& vm : config.vms) {
        if (!vm_names.insert(vm.name).second) refuse("vms", "VM " + vm.name + " is defined twice");
        for (const auto& network : vm.networks)
            if (!network_names.count(network)) refuse("vms", "VM " + vm.name + " allows network " + network + ", which is not defined");
    }
}

ShimConfig parse_config(const json& object) try {
    reject_unknown_keys(object, "", {"bridge", "ovsdb", "host_netns", "uplink", "publish_interfaces", "reservation_grace_seconds", "ovs_timeout_ms",
                                     "userspace_tso", "state_dir", "run_dir", "admin_socket", "networks", "vms", "hostlo"});
    ShimConfig config;
    config.bridge = get<std::string>(object, "", "bridge", config.bridge);
    config.ovsdb = get<std::string>(object, "", "ovsdb", config.ovsdb);
    config.host_netns = get<std::string>(object, "", "host_netns", config.host_netns);
    config.uplink = get<std::string>(object, "", "uplink", config.uplink);
    config.publish_interfaces = get<std::vector<std::string>>(object, "", "publish_interfaces", std::vector<std::string>{});
    if (!object.contains("publish_interfaces") && !config.uplink.empty()) config.publish_interfaces = {config.uplink};
    config.reservation_grace_seconds = get<int>(object, "", "reservation_grace_seconds", config.reservation_grace_seconds);
    if (config.reservation_grace_seconds < 10 || config.reservation_grace_seconds > 86400)
        refuse("reservation_grace_seconds", std::to_string(config.reservation_grace_seconds) + " is outside 10-86400");
    const int ovs_timeout_ms = get<int>(object, "", "ovs_timeout_ms", static_cast<int>(config.ovs_timeout.count()));
    if (ovs_timeout_ms < 1000 || ovs_timeout_ms > 300000) refuse("ovs_timeout_ms", std::to_string(ovs_timeout_ms) + " is outside 1000-300000");
    config.ovs_timeout = std::chrono::milliseconds(ovs_timeout_ms);
    config.userspace_tso = get<bool>(object, "", "userspace_tso", config.userspace_tso);
    config.state_dir = get<std::string>(object, "", "state_dir", config.state_dir);
    config.run_dir = get<std::string>(object, "", "run_dir", config.run_dir);
    config.admin_socket = get<std::string>(object, "", "admin_socket", config.run_dir + "/shim.sock");
    if (object.contains("hostlo")) config.hostlo = parse_hostlo(object["hostlo"]);
    const json networks = object.value("networks", json::array());
    for (std::size_t i = 0; i < networks.size(); ++i) config.networks.push_back(parse_network(networks[i], "networks[" + std::to_string(i) + "]"));
    const json vms = object.value("vms", json::array());
    for (std::size_t i = 0; i < vms.size(); ++i) config.vms.push_back(parse_vm(vms[i], "vms[" + std::to_string(i) + "]"));
    for (auto& vm : config.vms)
        if (vm.channel.empty()) vm.channel = default_channel(config.run_dir, vm.name);
    validate(config);
    return config;
} catch (const ShimError& e) {
    throw ShimError(ErrorKind::BadRequest, std::string("config ") + e.what());
}

}  // namespace brfusion::shim
