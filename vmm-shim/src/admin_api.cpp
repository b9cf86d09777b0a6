#include "brfusion/shim/admin_api.hpp"

#include "brfusion/shim/wire.hpp"

#include <map>

namespace brfusion::shim {

using nlohmann::json;

namespace {

json nic_json(const NicRecord& nic) {
    return {{"endpoint", nic.endpoint}, {"vm", nic.vm},           {"network", nic.network},         {"mac", nic.mac},
            {"ip", nic.ip.str()},       {"port", nic.host_if},     {"state", phase_name(nic.phase)}};
}

json vm_json(const VmConfig& vm, std::size_t nic_count) {
    return {{"name", vm.name}, {"backend", vm.backend}, {"netns", vm.netns}, {"channel", vm.channel}, {"networks", vm.networks}, {"nics", nic_count}};
}

// Splits "/v1/nics?vm=a" into path and query parameters.
std::pair<std::string, std::map<std::string, std::string>> split_target(const std::string& target) {
    const auto question = target.find('?');
    std::map<std::string, std::string> query;
    if (question != std::string::npos) {
        std::string rest = target.substr(question + 1);
        for (std::size_t start = 0; start <= rest.size();) {
            const auto amp = rest.find('&', start);
            const std::string pair = rest.substr(start, amp == std::string::npos ? std::string::npos : amp - start);
            const auto eq = pair.find('=');
            if (!pair.empty()) query[pair.substr(0, eq)] = eq == std::string::npos ? "" : pair.substr(eq + 1);
            if (amp == std::string::npos) break;
            start = amp + 1;
        }
    }
    return {target.substr(0, question), query};
}

json list_vms(NicManager& nics) {
    json vms = json::array();
    for (const auto& vm : nics.config().vms) vms.push_back(vm_json(vm, nics.nics(vm.name).size()));
    return vms;
}

json show_vm(NicManager& nics, const std::string& name) {
    const VmConfig* vm = nics.config().vm(name);
    if (!vm) throw ShimError(ErrorKind::NotFound, "VM " + name + " is not configured on this host");
    const auto records = nics.nics(name);
    json result = vm_json(*vm, records.size());
    result["nics"] = json::array();
    for (const auto& nic : records) result["nics"].push_back(nic_json(nic));
    return result;
}

json list_networks(NicManager& nics) {
    json networks = json::array();
    for (const auto& n : nics.config().networks) {
        json leases = json::array();
        for (const auto& lease : nics.leases(n.name)) leases.push_back({{"ip", lease.address.str()}, {"owner", lease.owner}});
        networks.push_back({{"name", n.name},
                            {"subnet", n.subnet.str()},
                            {"gateway", n.gateway.str()},
                            {"tag", n.tag},
                            {"nat", n.nat},
                            {"mtu", n.mtu},
                            {"gateway_port", NicManager::gateway_port(n)},
                            {"leases", leases}});
    }
    return networks;
}

json list_nics(NicManager& nics, const std::map<std::string, std::string>& query) {
    json result = json::array();
    const auto vm = query.find("vm");
    for (const auto& nic : nics.nics(vm == query.end() ? "" : vm->second)) result.push_back(nic_json(nic));
    return result;
}

json run_doctor(const Doctor& doctor) {
    json checks = json::array();
    bool healthy = true;
    for (const auto& check : doctor()) {
        checks.push_back({{"name", check.name}, {"ok", check.ok}, {"detail", check.detail}});
        healthy = healthy && check.ok;
    }
    return {{"healthy", healthy}, {"checks", checks}};
}

}  // namespace

AdminResponse handle_admin_request(NicManager& nics, const Doctor& doctor, const std::string& method, const std::string& target) {
    const auto [path, query] = split_target(target);
    try {
        const bool known = path == "/v1/vms" || path.rfind("/v1/vms/", 0) == 0 || path == "/v1/networks" || path == "/v1/nics" || path == "/v1/doctor";
        if (!known)
            return {404, {{"error", "no such resource " + path + "; try /v1/vms, /v1/vms/NAME, /v1/networks, /v1/nics, /v1/doctor"}}};
        if (method != "GET") return {405, {{"error", method + " " + path + " is not supported; use GET"}}};
        if (path == "/v1/vms") return {200, list_vms(nics)};
        if (path == "/v1/networks") return {200, list_networks(nics)};
        if (path == "/v1/nics") return {200, list_nics(nics, query)};
        if (path == "/v1/doctor") return {200, run_doctor(doctor)};
        return {200, show_vm(nics, path.substr(std::string("/v1/vms/").size()))};
    } catch (const ShimError& e) {
        return {http_status(e.kind()), {{"error", e.what()}}};
    } catch (const std::exception& e) {
        return {500, {{"error", std::string("internal error: ") + e.what()}}};
    }
}

}  // namespace brfusion::shim
