#pragma once
// brfusion-shim's configuration: host networks, VMs, and where things are. Parsed from JSON
// (the --config file) strictly: unknown keys, bad addresses and contradictions are refused with
// the path of the offending value.

#include "brfusion/common/ipv4.hpp"
#include "brfusion/hostlo/group_table.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <map>
#include <string>
#include <vector>

namespace brfusion::shim {

// A network on the host that VMs' containers attach to: one VLAN on the integration bridge, a
// gateway address on an OVS internal port, optionally NATed out of the uplink.
struct HostNetwork {
    std::string name;
    Ipv4Prefix subnet;
    Ipv4 gateway;
    int tag = 0;      // VLAN tag on the integration bridge, 1-4094, unique per network
    bool nat = true;  // masquerade the subnet out of the uplink
    int mtu = 1500;
    std::vector<std::string> forward_to;  // host networks this one may open connections to (default: none)
    bool operator==(const HostNetwork&) const = default;
};

// The most spare NICs a VM may keep per network (each takes a hot-plug slot of the VM).
constexpr int kMaxWarmPool = 32;

// How much of what the host shares one VM may hold at once, so that no VM starves the others.
// Reaching a quota answers Exhausted naming it and its config key (vms[].quotas.KEY).
struct VmQuotas {
    int nics = 64;                // container NICs (warm-pool spares, the host's, do not count)
    int reservations = 64;        // addresses reserved (ipam.request) that no NIC took yet
    int published_ports = 256;    // published port mappings over all its NICs
    int hostlo_groups = 16;       // Hostlo groups it is a member of
    int requests_in_flight = 16;  // guest channel requests being handled; past it the shim stops
                                  // reading the VM's channel until one is answered (no error)
    bool operator==(const VmQuotas&) const = default;
};

// Host ports a VM may publish on: FIRST-LAST, less the host's ip_local_reserved_ports.
struct PortRange {
    int first = 1024;
    int last = 65535;
    bool contains(int port) const { return port >= first && port <= last; }
    std::string str() const { return std::to_string(first) + "-" + std::to_string(last); }
    bool operator==(const PortRange&) const = default;
};

// A VM the shim serves. Its backend says how NICs reach it.
struct VmConfig {
    std::string name;
    std::string backend = "netns";      // "netns" | "qmp" | "libvirt"
    std::string netns;                  // netns backend: the VM's network namespace
    std::string qmp;                    // qmp backend: QEMU's QMP unix socket
    std::string domain;                 // libvirt backend: the domain's name (default: the VM's name)
    std::string libvirt_uri;            // libvirt backend: the connection URI (default qemu:///system)
    std::vector<std::string> networks;  // host networks it may attach to
    std::string channel;                // guest channel: the unix socket the shim listens on for this VM
                                        // (default RUN_DIR/vm-NAME.sock); whoever connects speaks as this VM
    // Warm pool: how many spare NICs to keep plugged into the VM, per allowed network (default
    // none). An attach claims a spare at once; the pool refills in the background.
    std::map<std::string, int> warm_pool;
    // Hostlo groups (pods) the VM may join: names, or prefixes ending in '*' ("shop-*", "*").
    // Default none.
    std::vector<std::string> hostlo_groups;
    bool may_join_hostlo(const std::string& group) const;
    VmQuotas quotas;                    // "quotas": {"nics": 64, ...}; each key optional
    PortRange host_ports;               // "host_ports": "1024-65535"
    bool operator==(const VmConfig&) const = default;
};

// Hostlo: one pod's localhost segment shared by the VMs holding its parts.
struct HostloConfig {
    std::string backend = "ovs";    // "ovs" (kmod later)
    hostlo::SubnetPolicy subnets;   // range 100.127.0.0/16, a /28 per group; kept apart from host networks
    int mtu = 1500;
};

struct ShimConfig {
    std::string bridge = "br-int";                     // the integration bridge
    std::string ovsdb = "/run/openvswitch/db.sock";    // ovsdb-server's socket
    std::string host_netns;                            // where OVS and host devices live ("" = ours)
    std::string uplink;                                // the host's uplink interface (NAT)
    // Interfaces whose IPv4 addresses VMs may publish ports on (docker run -p). Default: the
    // uplink; without an uplink, every interface of the host netns but loopback and brfusion's own.
    std::vector<std::string> publish_interfaces;
    // How long an address a VM reserved (ipam.request) stays its own without a NIC taking it:
    // long past Docker's RequestAddress-then-CreateEndpoint, short enough that a crashed plugin's
    // reservations come back.
    int reservation_grace_seconds = 300;
    // Upper bound for one OVS operation: reaching ovsdb-server, committing, and ovs-vswitchd
    // applying it. ovs-vswitchd takes seconds to apply a change during a burst of container
    // starts on a busy host; past this an attach fails (and is undone) naming ovs-vswitchd.
    std::chrono::milliseconds ovs_timeout{20000};
    // Guests keep TX checksum offload and TSO on their NICs and Open vSwitch checksums and
    // segments for them (other_config:userspace-tso-enable=true, which the shim requires at start).
    // Off: guests send complete checksums, as the userspace datapath otherwise needs.
    bool userspace_tso = false;
    std::string state_dir = "/var/lib/brfusion";       // the journal
    std::string run_dir = "/run/brfusion";             // sockets
    std::string admin_socket;                          // default RUN_DIR/shim.sock (mode 0660)
    std::vector<HostNetwork> networks;
    std::vector<VmConfig> vms;
    HostloConfig hostlo;

    const HostNetwork* network(const std::string& name) const;
    const VmConfig* vm(const std::string& name) const;
};

// Where a VM's guest channel is when its config does not say: RUN_DIR/vm-NAME.sock.
std::string default_channel(const std::string& run_dir, const std::string& vm);

// Throws ShimError(BadRequest) naming the path, e.g. "networks[1].gateway: 203.0.113.1 is
// outside subnet 198.51.100.0/24".
ShimConfig parse_config(const nlohmann::json& config);
HostNetwork parse_network(const nlohmann::json& network, const std::string& path = "network");
VmConfig parse_vm(const nlohmann::json& vm, const std::string& path = "vm");
// The JSON that parse_network / parse_vm read back.
nlohmann::json to_json(const HostNetwork& network);
nlohmann::json to_json(const VmConfig& vm);
// Cross-checks: unique names and tags, VMs and forward_to referring to existing networks, no
// network overlapping the Hostlo range.
void validate(const ShimConfig& config);

}  // namespace brfusion::shim
