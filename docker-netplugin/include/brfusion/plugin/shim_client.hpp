#pragma once
// The plugin's side of the guest channel (protocol: brfusion/common/guest_protocol.hpp).
//
// ShimChannel moves one JSON-RPC call; ShimClient gives it types. Errors: PluginError with the
// shim's own message and a kind from its data.kind; Unavailable when the shim cannot be reached or
// does not answer in time (never a hang: Docker holds a per-network lock while it waits).

#include "brfusion/common/guest_protocol.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace brfusion::plugin {

// Thread-safe; calls may be in flight concurrently.
class ShimChannel {
public:
    virtual ~ShimChannel() = default;
    // Sends one request and returns its `result`. Throws PluginError.
    virtual nlohmann::json call(const std::string& method, const nlohmann::json& params) = 0;
};

// The `result` of a JSON-RPC response to `method`; throws PluginError with the shim's message and the
// kind of its data.kind when it is an error. Every ShimChannel reads responses with it.
nlohmann::json result_of(const nlohmann::json& response, const std::string& method);

// The real channel: newline-delimited JSON-RPC 2.0 over
//   unix:PATH             a unix socket (netns VMs; tests)
//   virtio-serial:NAME    the virtio-serial port NAME (/dev/virtio-ports/NAME, or found by name
//                         under /sys/class/virtio-ports)
//   vsock:CID:PORT        AF_VSOCK (CID 2 is the host)
// It connects on the first call, and again on the next call after the connection drops (the shim
// restarted): calls in flight then fail with Unavailable. Each call waits at most `timeout`.
class StreamShimChannel : public ShimChannel {
public:
    // Throws PluginError(BadRequest) when `address` is not one of the forms above.
    StreamShimChannel(std::string address, std::chrono::milliseconds timeout);
    ~StreamShimChannel() override;
    StreamShimChannel(const StreamShimChannel&) = delete;
    StreamShimChannel& operator=(const StreamShimChannel&) = delete;
    nlohmann::json call(const std::string& method, const nlohmann::json& params) override;

    struct Shared;  // state shared with the reader thread of each connection

private:
    std::string address_;
    std::chrono::milliseconds timeout_;
    std::shared_ptr<Shared> shared_;
};

// The guest methods, typed. Each throws PluginError.
class ShimClient {
public:
    explicit ShimClient(ShimChannel& channel) : channel_(channel) {}
    guest::AttachResult attach(const std::string& network, const std::optional<std::string>& ip);
    void detach(const std::string& nic);  // idempotent: a NIC the shim does not know is success
    std::vector<guest::NicInfo> list();
    std::vector<guest::PoolInfo> pools();
    guest::AddressInfo request_address(const std::string& network, const std::optional<std::string>& ip);
    void release_address(const std::string& network, const std::string& ip);
    std::vector<guest::PortMapping> publish(const std::string& nic, const std::vector<guest::PortMapping>& ports);
    void unpublish(const std::string& nic);
    guest::PoolInfo join_hostlo(const std::string& group, const std::optional<std::string>& subnet);
    void leave_hostlo(const std::string& group);  // idempotent

private:
    ShimChannel& channel_;
};

}  // namespace brfusion::plugin
