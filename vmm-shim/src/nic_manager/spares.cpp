// Warm pools: spare NICs kept plugged into VMs, so that an attach claims one without a hot-plug.

#include "internal.hpp"

namespace brfusion::shim {

using namespace detail;

std::optional<NicRecord> NicManager::ready_spare(const std::string& vm, const NetworkRef& network) const {
    for (const auto& [endpoint, record] : state_.nics)
        if (record.spare && record.phase == NicPhase::Attached && !busy_.count(endpoint) && record.vm == vm && record.network == network) return record;
    return std::nullopt;
}

void NicManager::add_spare(const std::string& vm, const HostNetwork& network) {
    NicRecord record;
    std::optional<BusyEndpoint> busy;
    {
        std::lock_guard lock(state_mutex_);
        record = new_record(vm, NetworkRef::host_network(network.name));
        record.spare = true;
        busy.emplace(*this, record.endpoint);
        state_.nics[record.endpoint] = record;
        try {
            save();
        } catch (...) {
            state_.nics.erase(record.endpoint);
            throw;
        }
    }
    try {
        build(record, network);
        mark_attached(record);
    } catch (...) {
        undo_attach(record, std::current_exception());
        throw;
    }
}

bool NicManager::balance_warm_pool() {
    enum class Step { None, Remove, Add } step = Step::None;
    NicRecord spare;
    HostNetwork network;
    std::optional<BusyEndpoint> busy;
    {
        std::lock_guard lock(state_mutex_);
        // A VM whose backend is busy (a slow hot-plug, an unplug its guest does not acknowledge)
        // waits for the next round: the pool thread serves every VM.
        const auto backend_free = [&](const std::string& vm) {
            const auto found = lanes_.find(vm);
            if (found == lanes_.end()) return true;
            if (!found->second->mutex.try_lock()) return false;
            found->second->mutex.unlock();
            return true;
        };
        std::map<std::pair<std::string, std::string>, std::vector<NicRecord>> spares;  // (VM, network) -> its spares
        for (const auto& [endpoint, record] : state_.nics) {
            if (!record.spare || busy_.count(endpoint) || removing_vms_.count(record.vm)) continue;
            if (record.phase != NicPhase::Attached && backend_free(record.vm)) {  // one whose undo failed: finish it before making more
                spare = record;
                step = Step::Remove;
                break;
            }
            spares[{record.vm, record.network.name}].push_back(record);
        }
        // Too many first: their slots may be what a missing spare needs.
        for (const auto& [pool, records] : spares) {
            if (step != Step::None) break;
            const VmConfig* vm = config_.vm(pool.first);
            const std::size_t wanted = vm && vm->warm_pool.count(pool.second) ? vm->warm_pool.at(pool.second) : 0;
            if (records.size() > wanted && backend_free(pool.first)) {
                spare = records.back();
                step = Step::Remove;
            }
        }
        for (const auto& vm : config_.vms) {
            if (step != Step::None || removing_vms_.count(vm.name) || !backend_free(vm.name)) continue;
            for (const auto& [name, wanted] : vm.warm_pool) {
                std::size_t have = spares[{vm.name, name}].size();
                for (const auto& [endpoint, record] : state_.nics)  // spares being made count as there
                    if (record.spare && busy_.count(endpoint) && record.vm == vm.name && record.network.name == name) ++have;
                if (have < static_cast<std::size_t>(wanted)) {
                    network = allowed(vm.name, NetworkRef::host_network(name));
                    spare.vm = vm.name;
                    step = Step::Add;
                    break;
                }
            }
        }
        if (step == Step::Remove) busy.emplace(*this, spare.endpoint);
    }
    if (step == Step::Remove) tear_down(spare);
    if (step == Step::Add) add_spare(spare.vm, network);
    return step != Step::None;
}

void NicManager::on_spare_claimed(std::function<void()> listener) {
    std::lock_guard lock(state_mutex_);
    spare_claimed_ = std::move(listener);
}

}  // namespace brfusion::shim
