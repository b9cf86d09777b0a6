#include "brfusion/shim/ipam.hpp"

#include "brfusion/shim/error.hpp"

namespace brfusion::shim {

using nlohmann::json;

Ipam::Pool& Ipam::pool(const std::string& network) {
    auto found = pools_.find(network);
    if (found == pools_.end()) throw ShimError(ErrorKind::NotFound, "host network " + network + " has no address pool");
    return found->second;
}

const Ipam::Pool& Ipam::pool(const std::string& network) const { return const_cast<Ipam*>(this)->pool(network); }

void Ipam::add_pool(const std::string& network, Ipv4Prefix subnet, Ipv4 gateway) {
    if (auto found = pools_.find(network); found != pools_.end()) {
        if (found->second.subnet == subnet && found->second.gateway == gateway) return;
        throw ShimError(ErrorKind::Conflict, "host network " + network + " already has pool " + found->second.subnet.str() + " gateway " +
                                                 found->second.gateway.str() + "; remove the network first to change it");
    }
    pools_[network] = Pool{subnet, gateway, {}, gateway.value};
}

std::vector<std::string> Ipam::pools() const {
    std::vector<std::string> names;
    for (const auto& [name, pool] : pools_) names.push_back(name);
    return names;
}

void Ipam::remove_pool(const std::string& network) {
    auto found = pools_.find(network);
    if (found == pools_.end()) return;
    if (!found->second.leases.empty()) {
        std::string holders;
        for (const auto& [address, owner] : found->second.leases) holders += (holders.empty() ? "" : ", ") + owner.str();
        throw ShimError(ErrorKind::Conflict, "host network " + network + " still has " + std::to_string(found->second.leases.size()) +
                                                 " address(es) in use (" + holders + "); detach them first");
    }
    pools_.erase(found);
}

Ipv4 Ipam::allocate(const std::string& network, const LeaseOwner& owner, std::optional<Ipv4> requested) {
    Pool& p = pool(network);
    auto reserved = [&](Ipv4 a) { return a == p.subnet.network || a == p.subnet.broadcast() || a == p.gateway; };
    if (requested) {
        if (!p.subnet.contains(*requested))
            throw ShimError(ErrorKind::BadRequest, requested->str() + " is outside host network " + network + " (" + p.subnet.str() + ")");
        if (reserved(*requested))
            throw ShimError(ErrorKind::BadRequest, requested->str() + " is reserved in host network " + network + " (network, broadcast or gateway)");
        if (auto holder = p.leases.find(requested->value); holder != p.leases.end())
            throw ShimError(ErrorKind::Conflict, requested->str() + " in host network " + network + " is already in use by " + holder->second.str());
        p.leases[requested->value] = owner;
        return *requested;
    }
    const std::uint32_t first = p.subnet.network.value + 1, last = p.subnet.broadcast().value - 1;
    std::uint32_t candidate = p.cursor;
    for (std::uint32_t tried = 0; tried <= last - first; ++tried) {
        candidate = (candidate >= last || candidate < first) ? first : candidate + 1;
        if (reserved(Ipv4{candidate}) || p.leases.count(candidate)) continue;
        p.leases[candidate] = owner;
        p.cursor = candidate;
        return Ipv4{candidate};
    }
    throw ShimError(ErrorKind::Exhausted, "host network " + network + " (" + p.subnet.str() + ") has no free address left (" +
                                              std::to_string(p.leases.size()) + " in use)");
}

void Ipam::release(const std::string& network, Ipv4 address) {
    if (auto found = pools_.find(network); found != pools_.end()) found->second.leases.erase(address.value);
}

std::vector<Lease> Ipam::leases(const std::string& network) const {
    std::vector<Lease> result;
    for (const auto& [address, owner] : pool(network).leases) result.push_back({Ipv4{address}, owner});
    return result;
}

std::optional<Lease> Ipam::lease(const std::string& network, Ipv4 address) const {
    const Pool& p = pool(network);
    auto found = p.leases.find(address.value);
    return found == p.leases.end() ? std::nullopt : std::optional(Lease{address, found->second});
}

std::vector<std::pair<std::string, Lease>> Ipam::reservations() const {
    std::vector<std::pair<std::string, Lease>> result;
    for (const auto& [network, p] : pools_)
        for (const auto& [address, owner] : p.leases)
            if (owner.is_reservation()) result.push_back({network, {Ipv4{address}, owner}});
    return result;
}

json to_json(const LeaseOwner& owner) {
    json entry = {{"vm", owner.vm}};
    if (owner.endpoint) entry["endpoint"] = *owner.endpoint;
    else entry["reserved_at"] = owner.reserved_at;
    return entry;
}

LeaseOwner lease_owner_from_json(const json& entry) {
    if (entry.is_string()) {  // "VM/ENDPOINT" or "VM/reserved", as earlier versions wrote it
        const std::string text = entry.get<std::string>();
        const auto slash = text.rfind('/');
        if (slash == std::string::npos) throw std::invalid_argument("a lease owner '" + text + "' is not VM/ENDPOINT");
        const std::string vm = text.substr(0, slash), rest = text.substr(slash + 1);
        return rest == "reserved" ? LeaseOwner::reservation(vm, 0) : LeaseOwner::nic(vm, rest);
    }
    LeaseOwner owner{entry.at("vm").get<std::string>(), std::nullopt, 0};
    if (entry.contains("endpoint")) owner.endpoint = entry.at("endpoint").get<std::string>();
    else owner.reserved_at = entry.at("reserved_at").get<std::int64_t>();
    return owner;
}


json Ipam::to_json() const {
    json state = json::object();
    for (const auto& [network, p] : pools_) {
        json leases = json::object();
        for (const auto& [address, owner] : p.leases) leases[Ipv4{address}.str()] = shim::to_json(owner);
        state[network] = {{"subnet", p.subnet.str()}, {"gateway", p.gateway.str()}, {"cursor", Ipv4{p.cursor}.str()}, {"leases", leases}};
    }
    return state;
}

Ipam Ipam::from_pool_table(std::map<std::string, Pool> pools) {
    Ipam ipam;
    ipam.pools_ = std::move(pools);
    return ipam;
}

Ipam Ipam::from_json(const json& state) {
    Ipam ipam;
    for (const auto& [network, p] : state.items()) {
        auto subnet = Ipv4Prefix::parse(p.at("subnet").get<std::string>());
        auto gateway = Ipv4::parse(p.at("gateway").get<std::string>());
        auto cursor = Ipv4::parse(p.at("cursor").get<std::string>());
        if (!subnet || !gateway || !cursor) throw ShimError(ErrorKind::BadRequest, "the IPAM state of " + network + " is corrupt");
        Pool pool{*subnet, *gateway, {}, cursor->value};
        for (const auto& [address, owner] : p.at("leases").items()) {
            auto parsed = Ipv4::parse(address);
            if (!parsed) throw ShimError(ErrorKind::BadRequest, "the IPAM state of " + network + " has a bad address " + address);
            try {
                pool.leases[parsed->value] = lease_owner_from_json(owner);
            } catch (const std::exception& e) {
                throw ShimError(ErrorKind::BadRequest, "the IPAM state of " + network + " has a bad lease of " + address + ": " + e.what());
            }
        }
        ipam.pools_[network] = std::move(pool);
    }
    return ipam;
}

}  // namespace brfusion::shim
