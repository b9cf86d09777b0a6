#include "brfusion/shim/admin_api.hpp"

#include "brfusion/shim/wire.hpp"

#include <map>
#include <tuple>

namespace brfusion::shim {

using nlohmann::json;

namespace {

// A warm-pool NIC shows as state "spare", with no address.
json nic_json(const NicRecord& nic) {
    const bool ready_spare = nic.spare && nic.phase == NicPhase::Attached;
    return {{"endpoint", nic.endpoint},
            {"vm", nic.vm},
            {"network", nic.network.wire()},
            {"mac", nic.mac},
            {"ip", nic.spare ? "" : nic.ip.str()},
            {"port", nic.host_if},
            {"pci", nic.pci},
            {"state", ready_spare ? "spare" : phase_name(nic.phase)},
            {"spare", nic.spare},
            {"published", nic.published}};
}

std::string origin(const NicManager& nics, const std::string& name) { return nics.from_config_file(name) ? "config" : "api"; }

json vm_json(const NicManager& nics, const VmConfig& vm, std::size_t nic_count) {
    json result = to_json(vm);
    result["nics"] = nic_count;
    result["origin"] = origin(nics, vm.name);
    return result;
}

json network_json(const NicManager& nics, const HostNetwork& network) {
    json leases = json::array();
    for (const auto& lease : nics.leases(NetworkRef::host_network(network.name))) leases.push_back({{"ip", lease.address.str()}, {"owner", lease.owner.str()}});
    json result = to_json(network);
    result["gateway_port"] = NicManager::gateway_port(network);
    result["leases"] = leases;
    result["origin"] = origin(nics, network.name);
    return result;
}

json group_json(const NicManager& nics, const hostlo::Group& group) {
    json members = json::array();
    const auto records = nics.nics();
    for (const auto& vm : group.members) {
        json member = {{"vm", vm}, {"nic", nullptr}};
        for (const auto& record : records)
            if (record.vm == vm && record.network == NicManager::hostlo_network(group.name)) member["nic"] = nic_json(record);
        members.push_back(member);
    }
    return {{"name", group.name},
            {"subnet", group.subnet.str()},
            {"network", NicManager::hostlo_network(group.name).wire()},
            {"segment", nics.hostlo_segment(group.name)},
            {"members", members}};
}

// A request, split: "/v1/vms/vm1?x=y" is resource "vms", name "vm1", query {x: y}.
struct Request {
    std::string method;
    std::string resource;
    std::string name;
    std::map<std::string, std::string> query;
    std::string body;
};

Request parse_target(const std::string& method, const std::string& target, const std::string& body) {
    Request request{method, "", "", {}, body};
    const auto question = target.find('?');
    const std::string path = target.substr(0, question);
    if (question != std::string::npos) {
        const std::string rest = target.substr(question + 1);
        for (std::size_t start = 0; start <= rest.size();) {
            const auto amp = rest.find('&', start);
            const std::string pair = rest.substr(start, amp == std::string::npos ? std::string::npos : amp - start);
            const auto eq = pair.find('=');
            if (!pair.empty()) request.query[pair.substr(0, eq)] = eq == std::string::npos ? "" : pair.substr(eq + 1);
            if (amp == std::string::npos) break;
            start = amp + 1;
        }
    }
    if (path.rfind("/v1/", 0) == 0) {
        const std::string rest = path.substr(4);
        const auto slash = rest.find('/');
        request.resource = rest.substr(0, slash);
        if (slash != std::string::npos) request.name = rest.substr(slash + 1);
    }
    return request;
}

json body_object(const Request& request) {
    json body = json::parse(request.body, nullptr, false);
    if (body.is_discarded() || !body.is_object())
        throw ShimError(ErrorKind::BadRequest, request.method + " /v1/" + request.resource + " takes a JSON object (like a config file's entry)");
    return body;
}

using Handler = std::function<AdminResponse(AdminContext&, const Request&)>;

AdminResponse list_vms(AdminContext& context, const Request&) {
    json vms = json::array();
    for (const auto& vm : context.nics.config().vms) vms.push_back(vm_json(context.nics, vm, context.nics.nics(vm.name).size()));
    return {200, vms};
}

AdminResponse show_vm(AdminContext& context, const Request& request) {
    const ShimConfig config = context.nics.config();
    const VmConfig* vm = config.vm(request.name);
    if (!vm) throw ShimError(ErrorKind::NotFound, "VM " + request.name + " is not configured on this host");
    const auto records = context.nics.nics(request.name);
    json result = vm_json(context.nics, *vm, records.size());
    result["nics"] = json::array();
    for (const auto& nic : records) result["nics"].push_back(nic_json(nic));
    return {200, result};
}

AdminResponse add_vm(AdminContext& context, const Request& request) {
    const VmConfig vm = parse_vm(body_object(request));
    context.nics.add_vm(vm);
    const ShimConfig config = context.nics.config();
    const VmConfig& added = *config.vm(vm.name);  // with its channel filled in
    try {
        context.vm_added(added);
    } catch (const std::exception& e) {
        context.nics.remove_vm(vm.name);
        throw ShimError(ErrorKind::Backend, "cannot serve VM " + vm.name + "'s channel: " + e.what());
    }
    return {201, vm_json(context.nics, added, 0)};
}

AdminResponse remove_vm(AdminContext& context, const Request& request) {
    context.nics.remove_vm(request.name);
    context.vm_removed(request.name);
    return {200, {{"removed", request.name}}};
}

AdminResponse list_networks(AdminContext& context, const Request&) {
    json networks = json::array();
    for (const auto& network : context.nics.config().networks) networks.push_back(network_json(context.nics, network));
    return {200, networks};
}

AdminResponse show_network(AdminContext& context, const Request& request) {
    const ShimConfig config = context.nics.config();
    const HostNetwork* network = config.network(request.name);
    if (!network) throw ShimError(ErrorKind::NotFound, "network " + request.name + " does not exist");
    return {200, network_json(context.nics, *network)};
}

AdminResponse add_network(AdminContext& context, const Request& request) {
    const HostNetwork network = parse_network(body_object(request));
    context.nics.add_network(network);
    return {201, network_json(context.nics, network)};
}

AdminResponse remove_network(AdminContext& context, const Request& request) {
    context.nics.remove_network(request.name);
    return {200, {{"removed", request.name}}};
}

AdminResponse list_nics(AdminContext& context, const Request& request) {
    json result = json::array();
    const auto vm = request.query.find("vm");
    for (const auto& nic : context.nics.nics(vm == request.query.end() ? "" : vm->second)) result.push_back(nic_json(nic));
    return {200, result};
}

AdminResponse list_hostlo(AdminContext& context, const Request&) {
    json groups = json::array();
    for (const auto& group : context.nics.hostlo_groups()) groups.push_back(group_json(context.nics, group));
    return {200, groups};
}

AdminResponse show_hostlo(AdminContext& context, const Request& request) {
    for (const auto& group : context.nics.hostlo_groups())
        if (group.name == request.name) return {200, group_json(context.nics, group)};
    throw ShimError(ErrorKind::NotFound, "Hostlo group " + request.name + " does not exist (its first member creates it)");
}

AdminResponse run_doctor(AdminContext& context, const Request&) {
    json checks = json::array();
    bool healthy = true;
    for (const auto& check : context.doctor()) {
        checks.push_back({{"name", check.name}, {"ok", check.ok}, {"detail", check.detail}});
        healthy = healthy && check.ok;
    }
    return {200, {{"healthy", healthy}, {"checks", checks}}};
}

// (method, resource, whether a NAME follows) -> handler.
const std::map<std::tuple<std::string, std::string, bool>, Handler>& routes() {
    static const std::map<std::tuple<std::string, std::string, bool>, Handler> table = {
        {{"GET", "vms", false}, list_vms},          {{"POST", "vms", false}, add_vm},
        {{"GET", "vms", true}, show_vm},            {{"DELETE", "vms", true}, remove_vm},
        {{"GET", "networks", false}, list_networks}, {{"POST", "networks", false}, add_network},
        {{"GET", "networks", true}, show_network},  {{"DELETE", "networks", true}, remove_network},
        {{"GET", "nics", false}, list_nics},        {{"GET", "doctor", false}, run_doctor},
        {{"GET", "hostlo", false}, list_hostlo},    {{"GET", "hostlo", true}, show_hostlo},
    };
    return table;
}

}  // namespace

AdminResponse handle_admin_request(AdminContext& context, const std::string& method, const std::string& target, const std::string& body) {
    try {
        const Request request = parse_target(method, target, body);
        const bool named = !request.name.empty();
        if (const auto route = routes().find({method, request.resource, named}); route != routes().end()) return route->second(context, request);
        std::string allowed;
        for (const auto& [key, handler] : routes())
            if (std::get<1>(key) == request.resource && std::get<2>(key) == named) allowed += (allowed.empty() ? "" : ", ") + std::get<0>(key);
        if (!allowed.empty()) return {405, {{"error", method + " " + target + " is not supported; use " + allowed}}};
        return {404, {{"error", "no such resource " + target + "; try /v1/vms[/NAME], /v1/networks[/NAME], /v1/nics, /v1/doctor"}}};
    } catch (const ShimError& e) {
        return {http_status(e.kind()), {{"error", e.what()}}};
    } catch (const std::exception& e) {
        return {500, {{"error", std::string("internal error: ") + e.what()}}};
    }
}

}  // namespace brfusion::shim
