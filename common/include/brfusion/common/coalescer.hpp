#pragma once
// Coalescer: one kind of work that callers on many threads ask for, and that costs about as much
// done for several of them at once as for one (an OVS transaction, a flow-table change: each costs
// ovs-vswitchd time that grows with the ports on the bridge, not with what it changes). A caller
// that finds nothing in flight runs its own item at once, so a lone caller waits no longer than
// before; callers that arrive while a run is in flight are run together, next.
//
// `run_together` gets the waiting items and answers, for each in order, its failure (nullptr:
// done). It is called on a caller's thread, never for an empty list, one call at a time; it must
// not throw.

#include <condition_variable>
#include <cstddef>
#include <exception>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <utility>
#include <vector>

namespace brfusion {

template <typename Item>
class Coalescer {
public:
    using RunTogether = std::function<std::vector<std::exception_ptr>(const std::vector<Item>&)>;

    explicit Coalescer(RunTogether run_together) : run_together_(std::move(run_together)) {}

    // Runs `item`, maybe with others; rethrows its own failure. Thread-safe.
    void run(Item item) {
        Request mine{std::move(item), nullptr, false};
        std::unique_lock lock(mutex_);
        waiting_.push_back(&mine);
        answered_.wait(lock, [&] { return mine.answered || !running_; });
        if (!mine.answered) {  // nothing in flight: run what waits, this item among it
            running_ = true;
            const std::vector<Request*> batch = std::exchange(waiting_, {});
            lock.unlock();
            std::vector<Item> items;
            items.reserve(batch.size());
            for (Request* request : batch) items.push_back(std::move(request->item));
            std::vector<std::exception_ptr> failures = run_together_(items);
            if (failures.size() != batch.size())
                failures.assign(batch.size(), std::make_exception_ptr(std::logic_error("Coalescer: one answer per item expected")));
            lock.lock();
            for (std::size_t i = 0; i < batch.size(); ++i) {
                batch[i]->failure = failures[i];
                batch[i]->answered = true;
            }
            running_ = false;
            answered_.notify_all();
        }
        lock.unlock();
        if (mine.failure) std::rethrow_exception(mine.failure);
    }

private:
    struct Request {
        Item item;
        std::exception_ptr failure;
        bool answered = false;
    };
    RunTogether run_together_;
    std::mutex mutex_;
    std::condition_variable answered_;
    std::vector<Request*> waiting_;  // not run yet
    bool running_ = false;
};

// For a `run_together` whose shared run failed: `run_one` on each item alone, so that each caller
// hears its own failure; the answers in Coalescer's form.
template <typename Item, typename RunOne>
std::vector<std::exception_ptr> run_each_alone(const std::vector<Item>& items, RunOne run_one) {
    std::vector<std::exception_ptr> failures(items.size());
    for (std::size_t i = 0; i < items.size(); ++i) {
        try {
            run_one(items[i]);
        } catch (...) {
            failures[i] = std::current_exception();
        }
    }
    return failures;
}

}  // namespace brfusion
