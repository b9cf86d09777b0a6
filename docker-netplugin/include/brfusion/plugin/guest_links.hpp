#pragma once
// The VM's network interfaces, as Join needs them: find the NIC the host plugged by its MAC (never
// by name: the guest kernel names a hot-plugged NIC as it likes), then give it the name, MTU and
// state Docker expects (libnetwork moves it into the container and renames it there).

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

// Thread-safe. Errors: PluginError(Failed) naming the link and the kernel's answer.
class GuestLinks {
public:
    virtual ~GuestLinks() = default;
    // The links of the VM's root network namespace.
    virtual std::vector<LinkInfo> list() = 0;
    // Sets link `index` down, then renames it to `name` and sets `mtu`.
    virtual void prepare(int index, const std::string& name, int mtu) = 0;
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
    void prepare(int index, const std::string& name, int mtu) override;

private:
    void set_link(int index, unsigned flags_change, const std::string& name, int mtu);
    std::mutex mutex_;  // one exchange at a time on the socket: requests and their acks must not mix
    int fd_ = -1;
    unsigned sequence_ = 0;
};

// The link with `mac` (any case), if present.
std::optional<LinkInfo> find_link_by_mac(GuestLinks& links, const std::string& mac);

}  // namespace brfusion::plugin
