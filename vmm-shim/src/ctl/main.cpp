// brfusionctl: the host admin's CLI over brfusion-shim's admin API (HTTP/JSON on a unix socket).

#include <nlohmann/json.hpp>

#include "brfusion/common/http_client.hpp"
#include "brfusion/shim/backends/libvirt_backend.hpp"
#include "brfusion/shim/config.hpp"
#include "brfusion/shim/journal.hpp"

#include <cstring>
#include <iostream>
#include <map>
#include <string>
#include <vector>

using brfusion::HttpReply;
using nlohmann::json;

namespace {

constexpr const char* kUsage = R"(usage: brfusionctl [--socket PATH] [--json] COMMAND

Commands:
  vms                 the VMs the shim serves
  vm show NAME        one VM and its NICs
  vm add NAME [--backend netns] --netns NS [--network NET]... [--channel PATH]
                      serve a VM from now on (kept across restarts)
  vm rm NAME          detach its NICs (their addresses go back to the pools) and stop serving it
  vm prepare DOMAIN [--ports N] [--channel PATH] [--connect URI]
                      make a libvirt domain ready for brfusion (talks to libvirt, not the shim): at
                      least N (8) free PCIe root ports for hot-plug and the guest channel
                      org.brfusion.shim.0 to PATH (/run/brfusion/vm-DOMAIN.sock); at its next start
  networks            host networks and the addresses in use
  network show NAME   one host network
  network add NAME --subnet CIDR --tag VLAN [--gateway IP] [--no-nat] [--mtu N] [--forward-to NET]...
                      add a host network (kept across restarts)
  network rm NAME     remove a host network no NIC or VM uses
  nics [--vm NAME]    container NICs and warm-pool spares (state "spare"): VM, network, MAC, IP, OVS port,
                      PCI address (real VMs), endpoint, state, published ports
  hostlo list         Hostlo groups (pods spanning VMs): subnet, OVS bridge, member VMs
  hostlo show NAME    one Hostlo group and its members' NICs
  doctor              checks OVS, nftables, port security, the gateways and the VMs, and says what is
                      wrong (exit 1 if anything is)
  journal [--state-dir DIR]
                      the shim's saved state as one JSON document, read from its journal in DIR
                      (/var/lib/brfusion) without the shim: what its next start loads

VMs and networks from the shim's config file can only be changed in that file.

Options:
  --socket PATH       the shim's admin socket (/run/brfusion/shim.sock)
  --json              print the API's JSON instead of a table
  --help, --version
)";

struct Reply {
    int status;
    json body;
};

struct Call {
    std::string method = "GET";
    std::string target;
    json body;  // null: none
};

Reply send(const std::string& socket_path, const Call& call) {
    const HttpReply reply = brfusion::http_call(socket_path, "brfusion-shim", call.method, call.target, call.body.is_null() ? "" : call.body.dump());
    return {reply.status, json::parse(reply.body, nullptr, false)};
}

std::string text(const json& value) {
    if (value.is_string()) return value.get<std::string>().empty() ? "-" : value.get<std::string>();  // a blank cell would shift awk's columns
    if (value.is_object() && value.contains("container_port"))  // a published port
        return value.value("protocol", "") + ":" + value.value("host_ip", "") + (value.contains("host_ip") ? ":" : "") +
               value["host_port"].dump() + "->" + value["container_port"].dump();
    if (value.is_object()) {  // a warm pool: lab=2,web=1
        std::string joined;
        for (const auto& [key, item] : value.items()) joined += (joined.empty() ? "" : ",") + key + "=" + text(item);
        return joined.empty() ? "-" : joined;
    }
    if (value.is_array()) {
        std::string joined;
        for (const auto& item : value) joined += (joined.empty() ? "" : ",") + text(item);
        return joined.empty() ? "-" : joined;
    }
    return value.dump();
}

// A table of `columns` (JSON keys, printed upper-case) over an array of objects.
// A Hostlo group's members as table rows: the VM and its NIC on the group, if it has one yet.
json member_rows(const json& group) {
    json rows = json::array();
    for (const auto& member : group["members"]) {
        json row = member["nic"].is_object() ? member["nic"] : json::object();
        row["vm"] = member["vm"];
        rows.push_back(row);
    }
    return rows;
}

void print_table(const json& rows, const std::vector<std::string>& columns);

// `hostlo list` and `hostlo show NAME`.
void print_hostlo(const json& body) {
    if (body.is_array()) {
        json rows = json::array();
        for (const auto& group : body) {
            json vms = json::array();
            for (const auto& member : group["members"]) vms.push_back(member["vm"]);
            rows.push_back({{"name", group["name"]}, {"subnet", group["subnet"]}, {"segment", group["segment"]}, {"members", vms}});
        }
        print_table(rows, {"name", "subnet", "segment", "members"});
        return;
    }
    std::cout << "Hostlo group " << text(body["name"]) << ": subnet " << text(body["subnet"]) << ", OVS bridge " << text(body["segment"])
              << ", network " << text(body["network"]) << "\n\n";
    print_table(member_rows(body), {"vm", "mac", "ip", "port", "endpoint", "state"});
}

void print_table(const json& rows, const std::vector<std::string>& columns) {
    std::vector<std::size_t> widths;
    for (const auto& column : columns) widths.push_back(column.size());
    for (const auto& row : rows)
        for (std::size_t i = 0; i < columns.size(); ++i) widths[i] = std::max(widths[i], text(row.value(columns[i], json(""))).size());
    auto line = [&](const std::vector<std::string>& cells) {
        for (std::size_t i = 0; i < cells.size(); ++i) std::cout << cells[i] << std::string(widths[i] - cells[i].size() + 2, ' ');
        std::cout << "\n";
    };
    std::vector<std::string> header;
    for (auto column : columns) {
        for (auto& c : column) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        header.push_back(column);
    }
    line(header);
    for (const auto& row : rows) {
        std::vector<std::string> cells;
        for (const auto& column : columns) cells.push_back(text(row.value(column, json(""))));
        line(cells);
    }
}

// Reads `--flag value` pairs from words[first...] into `body`: scalars (numbers stay numbers),
// repeatable list flags, and switches that set a key to false. Returns what is wrong, or "".
std::string options(const std::vector<std::string>& words, std::size_t first, json& body, const std::map<std::string, std::string>& scalars,
                    const std::map<std::string, std::string>& lists, const std::map<std::string, std::string>& false_switches) {
    for (std::size_t i = first; i < words.size(); ++i) {
        const std::string& flag = words[i];
        if (auto key = false_switches.find(flag); key != false_switches.end()) {
            body[key->second] = false;
            continue;
        }
        const bool scalar = scalars.count(flag) != 0, list = lists.count(flag) != 0;
        if (!scalar && !list) return "unknown option " + flag;
        if (i + 1 >= words.size()) return flag + " needs a value";
        const std::string& value = words[++i];
        const bool number = !value.empty() && value.size() < 9 && value.find_first_not_of("0123456789") == std::string::npos;
        if (scalar) body[scalars.at(flag)] = number && (flag == "--tag" || flag == "--mtu") ? json(std::stoi(value)) : json(value);
        else body[lists.at(flag)].push_back(value);
    }
    return "";
}

// vm prepare DOMAIN [--ports N] [--channel PATH] [--connect URI]: libvirt directly, not the shim.
int prepare_vm(const std::vector<std::string>& words) {
    json flags;
    if (const std::string error = options(words, 3, flags, {{"--ports", "ports"}, {"--channel", "channel"}, {"--connect", "uri"}}, {}, {}); !error.empty()) {
        std::cerr << "brfusionctl: " << error << " (see --help)\n";
        return 2;
    }
    const std::string& domain = words[2];
    const std::string ports = flags.value("ports", "8");
    if (ports.empty() || ports.size() > 3 || ports.find_first_not_of("0123456789") != std::string::npos) {
        std::cerr << "brfusionctl: --ports takes a number of spare root ports (0-112)\n";
        return 2;
    }
    const std::string channel = flags.value("channel", brfusion::shim::default_channel("/run/brfusion", domain));
    try {
        const auto layout = brfusion::shim::prepare_libvirt_domain(flags.value("uri", "qemu:///system"), domain, std::stoi(ports), channel);
        std::cout << "domain " << domain << ": " << layout.free_root_ports().size() << " free PCIe root port(s) for hot-plug; guest channel "
                  << brfusion::shim::libvirt_xml::kChannelName << " -> " << layout.channel << ". Takes effect at its next start.\n";
        if (!layout.acpi)
            std::cout << "warning: the domain has no <features><acpi/>: QEMU then hot-plugs natively, 5 s per unplug; add it with virsh edit " << domain << "\n";
        return 0;
    } catch (const std::exception& e) {
        std::cerr << "brfusionctl: " << e.what() << "\n";
        return 1;
    }
}

}  // namespace

int main(int argc, char** argv) {
    std::string socket_path = "/run/brfusion/shim.sock";
    bool as_json = false;
    std::vector<std::string> words;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "--help") return std::cout << kUsage, 0;
        if (arg == "--version") return std::cout << "brfusionctl " BRFUSION_VERSION "\n", 0;
        if (arg == "--json") as_json = true;
        else if (arg == "--socket" && i + 1 < argc) socket_path = argv[++i];
        else words.push_back(arg);
    }
    Call call;
    std::vector<std::string> columns;
    std::string error;
    const auto is = [&](std::initializer_list<const char*> prefix) {
        if (words.size() < prefix.size()) return false;
        std::size_t i = 0;
        for (const char* word : prefix)
            if (words[i++] != word) return false;
        return true;
    };
    if (is({"vm", "prepare"}) && words.size() >= 3) return prepare_vm(words);
    if (is({"journal"}) && (words.size() == 1 || (words.size() == 3 && words[1] == "--state-dir"))) {
        try {
            brfusion::shim::Journal journal(words.size() == 3 ? words[2] : "/var/lib/brfusion");
            std::cout << brfusion::shim::to_json(journal.load()).dump(2) << "\n";  // reads, writes nothing
            return 0;
        } catch (const std::exception& e) {
            std::cerr << "brfusionctl: " << e.what() << "\n";
            return 1;
        }
    }
    if (words == std::vector<std::string>{"vms"}) {
        call.target = "/v1/vms";
        columns = {"name", "backend", "netns", "networks", "warm_pool", "nics", "origin", "channel"};
    } else if (is({"vm", "show"}) && words.size() == 3) {
        call.target = "/v1/vms/" + words[2];
        columns = {"endpoint", "network", "mac", "ip", "port", "state", "published"};
    } else if (is({"vm", "add"}) && words.size() >= 3) {
        call = {"POST", "/v1/vms", {{"name", words[2]}}};
        error = options(words, 3, call.body, {{"--backend", "backend"}, {"--netns", "netns"}, {"--channel", "channel"}}, {{"--network", "networks"}}, {});
        columns = {"name", "backend", "netns", "networks", "channel"};
    } else if (is({"vm", "rm"}) && words.size() == 3) {
        call = {"DELETE", "/v1/vms/" + words[2], nullptr};
    } else if (words == std::vector<std::string>{"networks"}) {
        call.target = "/v1/networks";
        columns = {"name", "subnet", "gateway", "tag", "nat", "mtu", "forward_to", "gateway_port", "origin"};
    } else if (is({"network", "show"}) && words.size() == 3) {
        call.target = "/v1/networks/" + words[2];
        columns = {"name", "subnet", "gateway", "tag", "nat", "mtu", "forward_to", "gateway_port", "origin"};
    } else if (is({"network", "add"}) && words.size() >= 3) {
        call = {"POST", "/v1/networks", {{"name", words[2]}}};
        error = options(words, 3, call.body, {{"--subnet", "subnet"}, {"--gateway", "gateway"}, {"--tag", "tag"}, {"--mtu", "mtu"}},
                        {{"--forward-to", "forward_to"}}, {{"--no-nat", "nat"}});
        columns = {"name", "subnet", "gateway", "tag", "nat", "mtu", "forward_to", "gateway_port"};
    } else if (is({"network", "rm"}) && words.size() == 3) {
        call = {"DELETE", "/v1/networks/" + words[2], nullptr};
    } else if (is({"nics"}) && (words.size() == 1 || (words.size() == 3 && words[1] == "--vm"))) {
        call.target = words.size() == 3 ? "/v1/nics?vm=" + words[2] : "/v1/nics";
        columns = {"vm", "network", "mac", "ip", "port", "pci", "endpoint", "state", "published"};
    } else if (words == std::vector<std::string>{"hostlo", "list"}) {
        call.target = "/v1/hostlo";
    } else if (is({"hostlo", "show"}) && words.size() == 3) {
        call.target = "/v1/hostlo/" + words[2];
    } else if (words == std::vector<std::string>{"doctor"}) {
        call.target = "/v1/doctor";
        columns = {"name", "ok", "detail"};
    } else {
        std::cerr << kUsage;
        return 2;
    }
    if (!error.empty()) {
        std::cerr << "brfusionctl: " << error << " (see --help)\n";
        return 2;
    }
    try {
        const Reply reply = send(socket_path, call);
        const std::string& target = call.target;
        if (reply.body.is_discarded()) throw std::runtime_error("brfusion-shim sent an answer that is not JSON");
        if (reply.status >= 300) {
            std::cerr << "brfusionctl: " << reply.body.value("error", reply.body.dump()) << "\n";
            return 1;
        }
        if (as_json) {
            std::cout << reply.body.dump(2) << "\n";
        } else if (call.method == "DELETE") {
            std::cout << "removed " << text(reply.body["removed"]) << "\n";
        } else if (target.rfind("/v1/hostlo", 0) == 0) {
            print_hostlo(reply.body);
        } else if (reply.body.is_object() && target.rfind("/v1/vms/", 0) != 0 && target != "/v1/doctor") {
            print_table(json::array({reply.body}), columns);  // one VM or network, added or shown
        } else if (target.rfind("/v1/vms/", 0) == 0) {
            std::cout << "VM " << text(reply.body["name"]) << " (" << text(reply.body["backend"]) << " " << text(reply.body["netns"])
                      << "), networks " << text(reply.body["networks"]) << ", channel " << text(reply.body["channel"]) << "\n\n";
            print_table(reply.body["nics"], columns);
        } else if (target == "/v1/doctor") {
            print_table(reply.body["checks"], columns);
        } else {
            print_table(reply.body, columns);
        }
        return target == "/v1/doctor" && !reply.body.value("healthy", false) ? 1 : 0;
    } catch (const std::exception& e) {
        std::cerr << "brfusionctl: " << e.what() << "\n";
        return 1;
    }
}
