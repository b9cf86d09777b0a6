#include "brfusion/plugin/options.hpp"

#include "brfusion/plugin/docker_api.hpp"
#include "brfusion/plugin/error.hpp"

#include <algorithm>
#include <charconv>

namespace brfusion::plugin {

using nlohmann::json;

namespace {

[[noreturn]] void refuse(const std::string& message) { throw PluginError(ErrorKind::BadRequest, message); }

bool flag(const json& options, const char* key) {
    const auto it = options.find(key);
    if (it == options.end() || it->is_null()) return false;
    if (it->is_boolean()) return it->get<bool>();
    if (it->is_string()) return *it == "true";
    refuse(std::string("option ") + key + " must be a boolean, not " + it->dump());
}

int parse_mtu(const std::string& text) {
    int value = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (error != std::errc() || end != text.data() + text.size() || value < 68 || value > 65535)
        refuse(std::string("-o ") + kMtuOption + "=" + text + ": the MTU must be a number from 68 to 65535");
    return value;
}

}  // namespace

NetworkOptions parse_network_options(const json& options) {
    NetworkOptions result;
    result.internal = flag(options, kInternal);
    result.ipv6 = flag(options, kEnableIpv6);
    const auto generic = options.find(kGenericOptions);
    if (generic == options.end() || generic->is_null()) return result;
    if (!generic->is_object()) refuse(std::string("option ") + kGenericOptions + " must be an object");
    for (const auto& [key, value] : generic->items()) {
        if (!value.is_string()) refuse("-o " + key + " must be a string, not " + value.dump());
        const std::string text = value;
        if (key == "network") {
            if (text.empty()) refuse("-o network= needs the name of a host network");
            result.host_network = text;
        } else if (key == "mode") {
            if (text == "brfusion") result.mode = NetworkMode::Brfusion;
            else if (text == "hostlo") result.mode = NetworkMode::Hostlo;
            else refuse("-o mode=" + text + " is not a brfusion mode; use brfusion (the default) or hostlo");
        } else if (key == "group") {
            if (text.empty()) refuse("-o group= needs the name of the pod");
            result.group = text;
        } else if (key == kMtuOption) {
            result.mtu = parse_mtu(text);
        } else {
            refuse("-o " + key + " is not a brfusion option; brfusion takes -o network=HOSTNET, -o mode=brfusion|hostlo, -o group=POD and -o " +
                   std::string(kMtuOption) + "=N");
        }
    }
    if (result.mode != NetworkMode::Hostlo && result.group) refuse("-o group=" + *result.group + " needs -o mode=hostlo");
    return result;
}

PoolOptions parse_pool_options(const std::map<std::string, std::string>& options) {
    PoolOptions result;
    for (const auto& [key, value] : options) {
        if (key != "network" && key != "group")
            refuse("--ipam-opt " + key + " is not a brfusion IPAM option; brfusion takes --ipam-opt network=HOSTNET or --ipam-opt group=POD (Hostlo)");
        if (value.empty()) refuse("--ipam-opt " + key + "= needs the name of " + (key == "network" ? "a host network" : "the pod"));
        (key == "network" ? result.host_network : result.group) = value;
    }
    if (result.host_network && result.group)
        refuse("--ipam-opt network= and --ipam-opt group= do not go together: a Hostlo group has no host network; give the container a second, "
               "regular brfusion network for that");
    return result;
}

std::vector<guest::PortMapping> parse_port_map(const json& portmap) {
    std::vector<guest::PortMapping> result;
    if (portmap.is_null()) return result;
    if (!portmap.is_array()) refuse(std::string(kPortMap) + " must be a list");
    for (const auto& entry : portmap) {
        PortBinding binding;
        try {
            binding = entry.get<PortBinding>();
        } catch (const std::invalid_argument& e) {
            refuse(std::string(kPortMap) + ": " + e.what());
        }
        guest::PortMapping mapping;
        if (binding.proto == 6) mapping.protocol = "tcp";
        else if (binding.proto == 17) mapping.protocol = "udp";
        else refuse("-p " + std::to_string(binding.port) + ": only tcp and udp ports can be published through brfusion (IP protocol " +
                    std::to_string(binding.proto) + " asked)");
        // "::" is the IPv6 twin of a binding on every address; brfusion publishes on IPv4 only.
        if (binding.host_ip == "::") continue;
        if (binding.host_ip.find(':') != std::string::npos)
            refuse("-p " + binding.host_ip + ":...: brfusion publishes ports on the host's IPv4 addresses only");
        // -p 8000-8010:80: the host takes the range's lowest free port (Docker sends
        // -p 8000-8010:8000-8010 as eleven single ports).
        if (binding.host_port_end != 0 && binding.host_port_end != binding.host_port) {
            if (binding.host_port == 0 || binding.host_port_end < binding.host_port)
                refuse("-p " + std::to_string(binding.host_port) + "-" + std::to_string(binding.host_port_end) + ":" + std::to_string(binding.port) +
                       ": a host port range goes from a lower port to a higher one");
            mapping.host_port_end = binding.host_port_end;
        }
        if (!binding.host_ip.empty() && binding.host_ip != "0.0.0.0") {
            mapping.host_ip = Ipv4::parse(binding.host_ip);
            if (!mapping.host_ip) refuse("-p " + binding.host_ip + ":...: not an IPv4 address of the host");
        }
        mapping.host_port = binding.host_port;
        mapping.container_port = binding.port;
        if (std::find(result.begin(), result.end(), mapping) == result.end()) result.push_back(mapping);
    }
    return result;
}

}  // namespace brfusion::plugin
