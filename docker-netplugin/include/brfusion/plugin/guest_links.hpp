#pragma once
// The VM's network interfaces, as Join needs them: find the NIC the host plugged by its MAC (a
// name or PCI address from the host is only a hint: the guest kernel names a hot-plugged NIC as it
// likes), then give it the name, MTU, offloads and state Docker expects (libnetwork moves it into
// the container and renames it there).

#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace brfusion::plugin {

struct LinkInfo {
    int index = 0;
    std::string name;
    std::string mac;  // lower-case aa:bb:cc:dd:ee:ff
    int mtu = 0;
    bool up = false;
};

// What Join makes of a NIC before Docker takes it.
struct LinkSetup {
    std::string name;  // fewer than IFNAMSIZ characters
    int mtu = 0;
    // false: TX checksum offload off, so the VM sends complete checksums (guest::AttachResult::
    // checksum_offload); scatter-gather and GSO stay on. true: left as the driver has it.
    bool checksum_offload = false;
};

// Where the host says its NIC shows up in the VM (guest::AttachResult): hints, checked by MAC.
struct NicHints {
    std::string name;  // the NIC's name in the VM, where the backend names it (netns); or ""
    std::string pci;   // the NIC's PCI address in the VM ("0000:01:00.0"); or ""
    bool operator==(const NicHints&) const = default;
};

// Thread-safe. Errors: PluginError(Failed) naming the link and the kernel's answer.
class GuestLinks {
public:
    virtual ~GuestLinks() = default;
    // The links of the VM's root network namespace: a walk over every one of them.
    virtual std::vector<LinkInfo> list() = 0;
    // The link named `name`, if there is one: one lookup, whatever the number of links.
    virtual std::optional<LinkInfo> get(const std::string& name) = 0;
    // The names the VM's kernel gave the network devices of PCI function `pci` (none if `pci` is
    // not a PCI address, or no such device is there).
    virtual std::vector<std::string> names_at_pci(const std::string& pci) = 0;
    // Sets link `index` down, then renames it and sets its MTU and offloads as `setup` says.
    virtual void prepare(int index, const LinkSetup& setup) = 0;
};

// rtnetlink. `netns_path` empty: the namespace the plugin runs in; else a namespace file
// (/run/netns/NAME, /proc/PID/ns/net) whose namespace the netlink socket is opened in and bound to.
class NetlinkLinks : public GuestLinks {
public:
    explicit NetlinkLinks(const std::string& netns_path = "");
    ~NetlinkLinks() override;
    NetlinkLinks(const NetlinkLinks&) = delete;
    NetlinkLinks& operator=(const NetlinkLinks&) = delete;
    std::vector<LinkInfo> list() override;
    std::optional<LinkInfo> get(const std::string& name) override;
    // From sysfs (/sys/bus/pci/devices/PCI/virtio*/net/), as the plugin's mount namespace shows it.
    std::vector<std::string> names_at_pci(const std::string& pci) override;
    void prepare(int index, const LinkSetup& setup) override;

private:
    void set_link(int index, unsigned flags_change, const std::string& name, int mtu);
    void disable_tx_checksum(const std::string& name);
    std::mutex mutex_;  // one exchange at a time on the socket: requests and their acks must not mix
    int fd_ = -1;
    unsigned sequence_ = 0;
};

// The link with `mac` (any case), if present: where `hints` point first (one lookup each), then
// among every link (a hint may be wrong: the NIC is never taken on a hint alone).
std::optional<LinkInfo> find_link_by_mac(GuestLinks& links, const std::string& mac, const NicHints& hints = {});

}  // namespace brfusion::plugin
