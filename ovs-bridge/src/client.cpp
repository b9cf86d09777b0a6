#include "brfusion/ovs/client.hpp"

#include "jsonrpc_connection.hpp"

#include <algorithm>
#include <condition_variable>
#include <future>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

namespace brfusion::ovs {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

namespace {

bool contains_all(const StringMap& map, const StringMap& match) {
    for (const auto& [key, value] : match) {
        auto found = map.find(key);
        if (found == map.end() || found->second != value) return false;
    }
    return true;
}

bool has_key_with_prefix(const StringMap& map, const std::string& prefix) {
    auto first = map.lower_bound(prefix);
    return first != map.end() && first->first.compare(0, prefix.size(), prefix) == 0;
}

std::string seconds(std::chrono::milliseconds duration) {
    char text[32];
    std::snprintf(text, sizeof text, "%.1f s", static_cast<double>(duration.count()) / 1000.0);
    return text;
}

// Ports matching `filter`, with their bridge and interfaces, from one pass over the replica.
std::vector<PortInfo> collect_ports(const Replica& replica, const std::function<bool(const PortRow&)>& filter) {
    std::unordered_map<Uuid, std::string> bridge_of;
    for (const auto& bridge : replica.bridges())
        for (const auto& port : bridge.ports) bridge_of[port] = bridge.name;
    std::vector<PortInfo> result;
    for (auto& port : replica.ports()) {
        if (!filter(port)) continue;
        PortInfo info{port, bridge_of.count(port.uuid) ? bridge_of[port.uuid] : std::string(), {}};
        for (const auto& uuid : port.interfaces)
            if (auto iface = replica.interface_by_uuid(uuid)) info.interfaces.push_back(std::move(*iface));
        result.push_back(std::move(info));
    }
    return result;
}

}  // namespace

struct OvsClient::Impl {
    explicit Impl(ClientOptions opts);
    ~Impl();

    // I/O thread: session life cycle.
    void on_connected();
    void on_disconnected(const std::string& why);
    void on_notification(const std::string& method, const json& params);

    // Caller threads.
    void wait_synced(Clock::time_point deadline) const;
    json call(const std::string& method, json params, Clock::time_point deadline);
    bool wait_for(const std::function<bool(const Replica&)>& predicate, Clock::time_point deadline) const;
    void wait_applied(std::int64_t next_cfg, Clock::time_point deadline) const;
    // plan -> transact -> wait for ovs-vswitchd (when the plan bumped next_cfg) -> wait until the
    // replica shows `settled`. Returns whether a transaction was sent.
    bool apply(const std::function<std::optional<Transaction>(const Replica&)>& plan,
               const std::function<bool(const Replica&)>& settled, const std::string& what);

    ClientOptions options;
    asio::io_context io;
    asio::executor_work_guard<asio::io_context::executor_type> work;
    std::optional<JsonRpcConnection> connection;  // used on the I/O thread only
    unsigned monitor_serial = 0;                  // I/O thread only
    std::thread thread;

    mutable std::mutex mutex;
    mutable std::condition_variable changed;
    std::optional<Replica> replica;  // last synced state; stale while !synced
    bool synced = false;
    std::string monitor_id;
    std::string last_error = "not connected yet";
};

OvsClient::Impl::Impl(ClientOptions opts) : options(std::move(opts)), work(io.get_executor()) {
    connection.emplace(io, options.socket_path, JsonRpcConnection::Backoff{options.reconnect_first, options.reconnect_max},
                       JsonRpcConnection::Handlers{[this] { on_connected(); },
                                                   [this](const std::string& why) { on_disconnected(why); },
                                                   [this](const std::string& method, const json& params) { on_notification(method, params); }});
    asio::post(io, [this] { connection->start(); });
    thread = std::thread([this] { io.run(); });
}

OvsClient::Impl::~Impl() {
    asio::post(io, [this] { connection->stop(); });
    work.reset();
    thread.join();
}

void OvsClient::Impl::on_connected() {
    // A refusal means this session cannot be used: start a new one (with backoff). A lost
    // connection is already reconnecting on its own.
    auto restart_after = [this](const OvsError& error, const std::string& step) {
        if (error.kind() == ErrorKind::Rejected) connection->reset(step + " failed: " + error.what());
    };
    // The schema is fetched on every connection: ovsdb-server may have come back with a converted
    // database, and the replica must be decoded with the schema it runs now.
    connection->call("get_schema", json::array({options.database}), [this, restart_after](const json* schema_json, const OvsError* error) {
        if (error) return restart_after(*error, "get_schema");
        std::optional<Schema> schema;
        try {
            schema = Schema::from_json(*schema_json);
        } catch (const std::exception& e) {
            return connection->reset(e.what());
        }
        const std::string id = "brfusion-" + std::to_string(++monitor_serial);
        connection->call("monitor_cond", json::array({options.database, id, monitor_requests()}),
                         [this, restart_after, id, schema = std::move(*schema)](const json* initial, const OvsError* failure) {
                             if (failure) return restart_after(*failure, "monitor_cond");
                             Replica fresh(schema);
                             try {
                                 fresh.reset(*initial);
                             } catch (const std::exception& e) {
                                 return connection->reset(std::string("cannot decode the monitor's initial rows: ") + e.what());
                             }
                             {
                                 std::lock_guard lock(mutex);
                                 replica = std::move(fresh);
                                 monitor_id = id;
                                 synced = true;
                                 last_error.clear();
                             }
                             changed.notify_all();
                         });
    });
}

void OvsClient::Impl::on_disconnected(const std::string& why) {
    {
        std::lock_guard lock(mutex);
        synced = false;
        monitor_id.clear();
        last_error = why;
    }
    changed.notify_all();
}

void OvsClient::Impl::on_notification(const std::string& method, const json& params) {
    if (method != "update2" || !params.is_array() || params.size() != 2) return;
    {
        std::lock_guard lock(mutex);
        if (!synced || params[0] != monitor_id) return;
        try {
            replica->apply(params[1]);
        } catch (const std::exception& e) {
            // The replica can no longer be trusted: start over with a fresh session and resync.
            synced = false;
            asio::post(io, [this, why = std::string("cannot apply an update2: ") + e.what()] { connection->reset(why); });
        }
    }
    changed.notify_all();
}

void OvsClient::Impl::wait_synced(Clock::time_point deadline) const {
    std::unique_lock lock(mutex);
    if (changed.wait_until(lock, deadline, [this] { return synced; })) return;
    throw OvsError(ErrorKind::Unreachable, "cannot reach ovsdb-server at " + options.socket_path + " within " + seconds(options.timeout) +
                                               " (" + last_error + "); is ovsdb-server running?");
}

json OvsClient::Impl::call(const std::string& method, json params, Clock::time_point deadline) {
    auto reply = std::make_shared<std::promise<json>>();
    auto future = reply->get_future();
    asio::post(io, [this, method, params = std::move(params), reply]() mutable {
        connection->call(method, std::move(params), [reply](const json* result, const OvsError* error) {
            if (error) reply->set_exception(std::make_exception_ptr(*error));
            else reply->set_value(*result);
        });
    });
    if (future.wait_until(deadline) != std::future_status::ready)
        throw OvsError(ErrorKind::Unreachable, "ovsdb-server at " + options.socket_path + " did not answer '" + method + "' within " +
                                                   seconds(options.timeout));
    return future.get();
}

bool OvsClient::Impl::wait_for(const std::function<bool(const Replica&)>& predicate, Clock::time_point deadline) const {
    std::unique_lock lock(mutex);
    return changed.wait_until(lock, deadline, [&] { return replica && predicate(*replica); });
}

void OvsClient::Impl::wait_applied(std::int64_t next_cfg, Clock::time_point deadline) const {
    if (wait_for([next_cfg](const Replica& r) { return r.root() && r.root()->cur_cfg >= next_cfg; }, deadline)) return;
    std::int64_t cur_cfg = 0;
    {
        std::lock_guard lock(mutex);
        if (replica && replica->root()) cur_cfg = replica->root()->cur_cfg;
    }
    throw OvsError(ErrorKind::VswitchdTimeout,
                   "ovs-vswitchd did not apply the change within " + seconds(options.timeout) + " (cur_cfg " + std::to_string(cur_cfg) +
                       ", waiting for " + std::to_string(next_cfg) +
                       "); is ovs-vswitchd running? The change is stored in the OVS database and takes effect when ovs-vswitchd runs");
}

bool OvsClient::Impl::apply(const std::function<std::optional<Transaction>(const Replica&)>& plan,
                            const std::function<bool(const Replica&)>& settled, const std::string& what) {
    const auto deadline = Clock::now() + options.timeout;
    for (int attempt = 0;; ++attempt) {
        wait_synced(deadline);
        std::optional<Transaction> txn;
        {
            std::lock_guard lock(mutex);
            txn = plan(*replica);
        }
        try {
            if (txn) {
                auto outcome = txn->interpret(call("transact", txn->params(options.database), deadline));
                if (outcome.next_cfg && options.wait_for_vswitchd) wait_applied(*outcome.next_cfg, deadline);
            }
        } catch (const OvsError& e) {
            if (e.kind() == ErrorKind::ConnectionLost && attempt == 0) continue;  // idempotent: safe to redo
            throw;
        }
        if (!wait_for(settled, deadline))
            throw OvsError(ErrorKind::VswitchdTimeout, what + ": the change was committed but did not show up within " + seconds(options.timeout));
        return txn.has_value();
    }
}

OvsClient::OvsClient(ClientOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}
OvsClient::~OvsClient() = default;

void OvsClient::wait_ready() const { impl_->wait_synced(Clock::now() + impl_->options.timeout); }

bool OvsClient::ready() const {
    std::lock_guard lock(impl_->mutex);
    return impl_->synced;
}

BridgeRow OvsClient::ensure_bridge(const BridgeSpec& spec) {
    impl_->apply([&](const Replica& r) { return plan_ensure_bridge(r, spec); },
                 [&](const Replica& r) { return r.bridge(spec.name).has_value(); }, "adding bridge " + spec.name);
    if (auto row = bridge(spec.name)) return *row;
    throw OvsError(ErrorKind::NotFound, "bridge " + spec.name + " disappeared right after it was added");
}

void OvsClient::remove_bridge(const std::string& name) {
    impl_->apply([&](const Replica& r) { return plan_remove_bridge(r, name); },
                 [&](const Replica& r) { return !r.bridge(name); }, "removing bridge " + name);
}

namespace {
// Settled once every named interface is in the replica and, when waiting for ovs-vswitchd, has
// been given an ofport or an error.
std::function<bool(const Replica&)> interfaces_settled(std::vector<std::string> names, bool wait_for_vswitchd) {
    return [names = std::move(names), wait_for_vswitchd](const Replica& r) {
        return std::all_of(names.begin(), names.end(), [&](const std::string& name) {
            auto iface = r.interface(name);
            return iface && (!wait_for_vswitchd || iface->ofport || iface->error);
        });
    };
}
}  // namespace

std::vector<std::string> OvsClient::absent_ports(const std::vector<std::string>& names) const {
    std::vector<std::string> absent;
    for (const auto& name : names)
        if (!port(name)) absent.push_back(name);
    return absent;
}

InterfaceRow OvsClient::require_working_ports(const std::vector<std::string>& names, const std::vector<std::string>& created) {
    std::optional<InterfaceRow> first;
    std::string failures;
    const bool checkable = impl_->options.wait_for_vswitchd;  // otherwise ofport/error are not known yet
    for (const auto& name : names) {
        auto iface = interface(name);
        if (!iface) throw OvsError(ErrorKind::NotFound, "port " + name + " disappeared right after it was added");
        if (checkable && (iface->error || iface->ofport.value_or(-1) < 0))
            failures += (failures.empty() ? "" : "; ") + name + ": " + iface->error.value_or("no OpenFlow port number was assigned");
        if (!first) first = std::move(iface);
    }
    if (failures.empty()) return *first;
    if (created.empty()) throw OvsError(ErrorKind::Vswitchd, "ovs-vswitchd could not set up existing port(s): " + failures);
    try {
        for (const auto& name : created) remove_port(name);  // leave nothing behind for ports we just created
    } catch (const OvsError&) {
        // Reported below through the original failure; the ports may remain in the database.
    }
    throw OvsError(ErrorKind::Vswitchd, "ovs-vswitchd could not add " + failures + " (removed again)");
}

InterfaceRow OvsClient::ensure_port(const PortSpec& spec) {
    const auto absent = absent_ports({spec.name});
    const bool created = impl_->apply([&](const Replica& r) { return plan_ensure_port(r, spec); }, interfaces_settled({spec.name}, impl_->options.wait_for_vswitchd),
                                      "adding port " + spec.name);
    return require_working_ports({spec.name}, created ? absent : std::vector<std::string>{});
}

void OvsClient::ensure_ports(const std::vector<PortSpec>& specs) {
    if (specs.empty()) return;
    std::vector<std::string> names;
    std::string listed;
    for (const auto& spec : specs) {
        names.push_back(spec.name);
        listed += (listed.empty() ? "" : ", ") + spec.name;
    }
    const auto absent = absent_ports(names);
    const bool created = impl_->apply([&](const Replica& r) { return plan_ensure_ports(r, specs); }, interfaces_settled(names, impl_->options.wait_for_vswitchd),
                                      "adding ports " + listed);
    require_working_ports(names, created ? absent : std::vector<std::string>{});
}

void OvsClient::ensure_patch_pair(const PatchPairSpec& spec) {
    const auto absent = absent_ports({spec.port_a, spec.port_b});
    const bool created = impl_->apply([&](const Replica& r) { return plan_ensure_patch_pair(r, spec); },
                                      interfaces_settled({spec.port_a, spec.port_b}, impl_->options.wait_for_vswitchd), "adding patch ports " + spec.port_a + "/" + spec.port_b);
    require_working_ports({spec.port_a, spec.port_b}, created ? absent : std::vector<std::string>{});
}

void OvsClient::remove_port(const std::string& name) {
    impl_->apply([&](const Replica& r) { return plan_remove_port(r, name); },
                 [&](const Replica& r) { return !r.port(name); }, "removing port " + name);
}

void OvsClient::set_external_ids(Table table, const std::string& name, const StringMap& external_ids) {
    impl_->apply([&](const Replica& r) { return plan_set_external_ids(r, table, name, external_ids); },
                 [&](const Replica& r) { return !plan_set_external_ids(r, table, name, external_ids); },
                 std::string("setting external_ids on ") + table_name(table) + " " + name);
}

void OvsClient::clear_external_ids(Table table, const std::string& name, const std::vector<std::string>& keys) {
    impl_->apply([&](const Replica& r) { return plan_clear_external_ids(r, table, name, keys); },
                 [&](const Replica& r) { return !plan_clear_external_ids(r, table, name, keys); },
                 std::string("clearing external_ids on ") + table_name(table) + " " + name);
}

std::optional<BridgeRow> OvsClient::bridge(const std::string& name) const {
    std::lock_guard lock(impl_->mutex);
    return impl_->replica ? impl_->replica->bridge(name) : std::nullopt;
}

std::optional<PortInfo> OvsClient::port(const std::string& name) const {
    std::lock_guard lock(impl_->mutex);
    if (!impl_->replica) return std::nullopt;
    const Replica& replica = *impl_->replica;
    auto row = replica.port(name);  // by the name index: no scan of the other ports
    if (!row) return std::nullopt;
    PortInfo info{*row, replica.bridge_of_port(row->uuid).value_or(""), {}};
    for (const auto& uuid : row->interfaces)
        if (auto iface = replica.interface_by_uuid(uuid)) info.interfaces.push_back(std::move(*iface));
    return info;
}

std::optional<InterfaceRow> OvsClient::interface(const std::string& name) const {
    std::lock_guard lock(impl_->mutex);
    return impl_->replica ? impl_->replica->interface(name) : std::nullopt;
}

std::vector<PortInfo> OvsClient::find_ports(const StringMap& match) const {
    std::lock_guard lock(impl_->mutex);
    if (!impl_->replica) return {};
    return collect_ports(*impl_->replica, [&](const PortRow& p) { return contains_all(p.external_ids, match); });
}

std::vector<InterfaceRow> OvsClient::find_interfaces(const StringMap& match) const {
    std::lock_guard lock(impl_->mutex);
    std::vector<InterfaceRow> result;
    if (!impl_->replica) return result;
    for (auto& iface : impl_->replica->interfaces())
        if (contains_all(iface.external_ids, match)) result.push_back(std::move(iface));
    return result;
}

OwnedObjects OvsClient::list_owned(const std::string& prefix) const {
    std::lock_guard lock(impl_->mutex);
    OwnedObjects owned;
    if (!impl_->replica) return owned;
    for (auto& bridge : impl_->replica->bridges())
        if (has_key_with_prefix(bridge.external_ids, prefix)) owned.bridges.push_back(std::move(bridge));
    owned.ports = collect_ports(*impl_->replica, [&](const PortRow& p) { return has_key_with_prefix(p.external_ids, prefix); });
    for (auto& iface : impl_->replica->interfaces())
        if (has_key_with_prefix(iface.external_ids, prefix)) owned.interfaces.push_back(std::move(iface));
    return owned;
}

void OvsClient::read(const std::function<void(const Replica&)>& reader) const {
    std::lock_guard lock(impl_->mutex);
    if (impl_->replica) reader(*impl_->replica);
}

bool OvsClient::wait_until(const std::function<bool(const Replica&)>& predicate, std::chrono::milliseconds timeout) const {
    return impl_->wait_for(predicate, Clock::now() + timeout);
}

}  // namespace brfusion::ovs
