#include "brfusion/testing/ownership.hpp"

#include "brfusion/testing/command.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

namespace brfusion::testing {

using nlohmann::json;

namespace {

// A NIC as the journal has it.
struct JournalNic {
    std::string endpoint, vm, network, mac, ip, host_if, phase;
    bool spare = false;
};

std::string joined(const std::set<std::string>& items) {
    std::string out;
    for (const auto& item : items) out += (out.empty() ? "" : ", ") + item;
    return out;
}

// Reports what is in `found` but not in `expected` (the journal's), and the other way round.
void compare(std::vector<std::string>& violations, const std::string& what, const std::set<std::string>& expected,
             const std::set<std::string>& found) {
    std::set<std::string> extra, missing;
    for (const auto& item : found)
        if (!expected.count(item)) extra.insert(item);
    for (const auto& item : expected)
        if (!found.count(item)) missing.insert(item);
    if (!extra.empty()) violations.push_back(what + " the journal does not have: " + joined(extra));
    if (!missing.empty()) violations.push_back(what + " missing, though the journal has them: " + joined(missing));
}

// The host's output of `command`; a failure is a violation (and an empty answer).
std::string on_host(Lab& lab, std::vector<std::string>& violations, const std::string& command) {
    const auto result = lab.exec("host", command);
    if (result.exit_code != 0) violations.push_back("host$ " + command + " failed: " + result.output);
    return result.exit_code == 0 ? result.output : "";
}

}  // namespace

std::vector<std::string> ownership_violations(Lab& lab, int reservation_grace_seconds) {
    std::vector<std::string> violations;
    json state;
    try {
        state = lab.shim_journal();
    } catch (const std::exception& e) {
        return {std::string("the shim's journal cannot be read: ") + e.what()};
    }

    // The journal itself.
    std::vector<JournalNic> nics;
    std::map<std::string, const JournalNic*> by_endpoint;
    for (const auto& nic : state.at("nics"))
        nics.push_back({nic.at("endpoint"), nic.at("vm"), nic.at("network"), nic.at("mac"), nic.at("ip"), nic.at("host_if"), nic.at("phase"),
                        nic.value("spare", false)});
    for (const auto& nic : nics) {
        by_endpoint[nic.endpoint] = &nic;
        if (nic.phase != "attached") violations.push_back("NIC " + nic.endpoint + " of " + nic.vm + " is still " + nic.phase);
    }
    const auto now = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
    std::set<std::string> leased;  // endpoint@ip
    for (const auto& [network, pool] : state.at("ipam").items())
        for (const auto& [address, owner] : pool.at("leases").items()) {
            if (!owner.contains("endpoint")) {
                if (owner.at("reserved_at").get<std::int64_t>() + reservation_grace_seconds + 10 < now)
                    violations.push_back("reservation " + address + " of " + owner.at("vm").get<std::string>() + " outlived its grace period");
                continue;
            }
            const std::string endpoint = owner.at("endpoint");
            const auto nic = by_endpoint.find(endpoint);
            if (nic == by_endpoint.end() || nic->second->ip != address || nic->second->vm != owner.at("vm"))
                violations.push_back("lease " + address + " on " + network + " names endpoint " + endpoint + ", which holds no NIC at that address");
            leased.insert(endpoint + "@" + address);
        }
    for (const auto& nic : nics)
        if (!leased.count(nic.endpoint + "@" + nic.ip)) violations.push_back("NIC " + nic.endpoint + " holds no lease for its address " + nic.ip);

    // OVS ports, the host's devices, port security.
    std::set<std::string> host_ifs, attached;
    for (const auto& nic : nics) {
        host_ifs.insert(nic.host_if);
        if (nic.phase == "attached") attached.insert(nic.host_if);
    }
    const auto ports = lines_of(on_host(lab, violations, "ovs-vsctl --bare --columns=name find Interface external_ids:brfusion-vm!=none"));
    compare(violations, "OVS ports", host_ifs, {ports.begin(), ports.end()});
    std::set<std::string> devices;
    static const std::regex nic_device("^bfg?[0-9a-f]{12}$");
    for (const auto& name : lines_of(on_host(lab, violations, "ip -o link show | cut -d: -f2 | cut -d@ -f1 | tr -d ' '")))
        if (std::regex_match(name, nic_device)) devices.insert(name);
    compare(violations, "host devices", host_ifs, devices);
    const auto bridges = lines_of(on_host(lab, violations, "ovs-vsctl list-br"));
    std::set<std::string> secured;
    static const std::regex in_port("in_port=\"?([A-Za-z0-9._-]+)");
    for (const auto& bridge : bridges) {
        const std::string flows = on_host(lab, violations, "ovs-ofctl --names dump-flows " + bridge + " cookie=0xbf05000000000000/0xffff000000000000");
        for (std::sregex_iterator it(flows.begin(), flows.end(), in_port), end; it != end; ++it) secured.insert((*it)[1]);
    }
    compare(violations, "port security rules", attached, secured);

    // Hostlo groups: a bridge each, labelled with the group.
    std::set<std::string> groups, group_bridges;
    std::map<std::string, std::set<std::string>> members;  // group -> VMs
    for (const auto& group : state.value("hostlo_groups", json::array())) {
        const std::string name = group.at("name");
        groups.insert("bfhl-" + std::to_string(group.at("slot").get<int>()) + "=" + name);
        for (const auto& vm : group.at("members")) members[name].insert(vm.get<std::string>());
    }
    for (const auto& bridge : bridges)
        if (bridge.rfind("bfhl-", 0) == 0)
            group_bridges.insert(bridge + "=" + testing::trim_end(on_host(lab, violations, "ovs-vsctl br-get-external-id " + bridge + " brfusion-hostlo-group")));
    compare(violations, "Hostlo bridges", groups, group_bridges);

    // nftables: a DNAT per published port, to its NIC's address.
    std::set<std::string> published, dnats;
    for (const auto& nic : state.at("nics"))
        for (const auto& port : nic.value("published", json::array()))
            published.insert(nic.at("ip").get<std::string>() + ":" + std::to_string(port.at("container_port").get<int>()));
    const std::string table = on_host(lab, violations, "nft list table ip brfusion");
    static const std::regex dnat("dnat to ([0-9.]+:[0-9]+)");
    for (std::sregex_iterator it(table.begin(), table.end(), dnat), end; it != end; ++it) dnats.insert((*it)[1]);
    compare(violations, "nftables DNATs", published, dnats);

    // Docker in each VM: its endpoints are its NICs; its Hostlo networks its memberships.
    for (int i = 1; i <= lab.options().vms; ++i) {
        const std::string vm = "vm" + std::to_string(i);
        std::set<std::string> expected, found, joined_groups, docker_groups;
        for (const auto& nic : nics)
            if (nic.vm == vm && !nic.spare) expected.insert(nic.mac + " " + nic.ip);
        for (const auto& [group, vms] : members)
            if (vms.count(vm)) joined_groups.insert(group);
        const auto listed = lab.exec(vm, "docker network ls --filter driver=brfusion --format '{{.Name}}'");
        if (listed.exit_code != 0) {
            violations.push_back(vm + ": docker network ls failed: " + listed.output);
            continue;
        }
        for (const auto& network : lines_of(listed.output)) {
            const auto inspected = lab.exec(vm, "docker network inspect " + network + " --format '{{json .Containers}} {{json .IPAM.Options}}'");
            std::istringstream in(inspected.output);
            json containers, options;
            try {
                in >> containers >> options;
            } catch (const std::exception&) {
                violations.push_back(vm + ": docker network inspect " + network + " failed: " + inspected.output);
                continue;
            }
            for (const auto& [id, endpoint] : containers.items()) {
                const std::string cidr = endpoint.value("IPv4Address", "");
                found.insert(endpoint.value("MacAddress", "") + " " + cidr.substr(0, cidr.find('/')));
            }
            if (options.is_object() && options.contains("group")) docker_groups.insert(options["group"].get<std::string>());
        }
        compare(violations, vm + "'s Docker endpoints (MAC address)", expected, found);
        compare(violations, vm + "'s Docker Hostlo networks", joined_groups, docker_groups);
    }
    return violations;
}

}  // namespace brfusion::testing
