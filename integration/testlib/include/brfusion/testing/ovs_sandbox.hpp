#pragma once
// OvsSandbox: a private ovsdb-server + ovs-vswitchd (userspace datapath) in a fresh network
// namespace, with its sockets and database in a private directory (integration/ovs-sandbox).
// Constructed = running; destroyed = daemons stopped, namespace and directory removed.

#include <string>

namespace brfusion::testing {

// A fresh network namespace (loopback up) named bft-ns-PID-N, deleted on destruction.
class Netns {
public:
    Netns();
    explicit Netns(std::string name);  // a chosen name (the lab's); replaces a namespace of that name
    ~Netns();
    Netns(const Netns&) = delete;
    Netns& operator=(const Netns&) = delete;
    const std::string& name() const { return name_; }
    // `ip netns exec <name> sh -c <command>`; exit code and output, never throws.
    struct Result {
        int exit_code;
        std::string output;
    };
    Result exec(const std::string& command) const;

private:
    std::string name_;
};

class OvsSandbox {
public:
    OvsSandbox();   // throws std::runtime_error with the script's output if OVS does not start
    OvsSandbox(std::string dir, std::string netns);  // chosen names (the lab's); replaces a sandbox there
    ~OvsSandbox();  // never throws
    OvsSandbox(const OvsSandbox&) = delete;
    OvsSandbox& operator=(const OvsSandbox&) = delete;

    const std::string& dir() const { return dir_; }
    const std::string& netns() const { return netns_; }
    std::string db_socket() const { return dir_ + "/db.sock"; }

    // `ovs-vsctl --db=unix:<sandbox> <args>`; returns its stdout, throws on failure.
    std::string vsctl(const std::string& args) const;
    // `ip netns exec <netns> <command>` through sh; returns the result without throwing.
    std::string in_netns(const std::string& command) const;

    // A stand-in uplink in the sandbox's netns: `name` (a veth whose peer stays there too, so
    // nothing lies beyond it) with `address_cidr`, up: the host's own address, for published
    // ports. Throws on failure.
    void add_stub_uplink(const std::string& name, const std::string& address_cidr) const;

    // Userspace TSO on, as an admin turns it on: other_config:userspace-tso-enable=true, then an
    // ovs-vswitchd restart (it reads the setting when it starts). Throws on failure.
    void enable_userspace_tso() const;

    // Fault injection.
    void kill_db() const;
    void start_db() const;
    void kill_vswitchd() const;
    void start_vswitchd() const;

private:
    void start();
    std::string sandbox(const std::string& args) const;
    std::string dir_;
    std::string netns_;
};

}  // namespace brfusion::testing
