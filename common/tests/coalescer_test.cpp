// Coalescer: a lone caller runs at once; callers arriving during a run go together in the next;
// each hears its own failure.

#include "brfusion/common/coalescer.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <future>
#include <stdexcept>
#include <string>
#include <thread>

using namespace brfusion;

TEST_CASE("coalescer: a lone caller runs alone - callers arriving during a run share the next - each hears its own failure") {
    std::mutex mutex;
    std::vector<std::vector<int>> runs;  // the items of each run, in order
    std::promise<void> release_first;
    std::shared_future<void> first_released = release_first.get_future().share();
    Coalescer<int> coalescer([&](const std::vector<int>& items) {
        {
            std::lock_guard lock(mutex);
            runs.push_back(items);
        }
        if (items == std::vector<int>{0}) first_released.wait();  // the first run is in flight while the others arrive
        std::vector<std::exception_ptr> failures(items.size());
        for (std::size_t i = 0; i < items.size(); ++i)
            if (items[i] % 3 == 2) failures[i] = std::make_exception_ptr(std::runtime_error("item " + std::to_string(items[i]) + " failed"));
        return failures;
    });

    coalescer.run(9);  // nothing in flight: at once, alone
    REQUIRE(runs == std::vector<std::vector<int>>{{9}});

    std::thread first([&] { coalescer.run(0); });
    while (true) {  // until the first run is in flight
        {
            std::lock_guard lock(mutex);
            if (runs.size() == 2) break;
        }
        std::this_thread::yield();
    }
    std::atomic<int> failed{0};
    std::vector<std::thread> others;
    for (int item = 1; item <= 6; ++item)
        others.emplace_back([&, item] {
            try {
                coalescer.run(item);
                CHECK(item % 3 != 2);
            } catch (const std::runtime_error& e) {
                CHECK(std::string(e.what()) == "item " + std::to_string(item) + " failed");  // its own, not another's
                ++failed;
            }
        });
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // let them arrive (the count below holds either way)
    release_first.set_value();
    first.join();
    for (auto& thread : others) thread.join();
    CHECK(failed == 2);  // items 2 and 5
    std::vector<int> all;
    for (std::size_t run = 2; run < runs.size(); ++run) all.insert(all.end(), runs[run].begin(), runs[run].end());
    std::sort(all.begin(), all.end());
    CHECK(all == std::vector<int>{1, 2, 3, 4, 5, 6});
    INFO(runs.size() - 2 << " runs for the 6 callers that arrived during the first");
    CHECK(runs.size() - 2 < 6);  // some of them ran together
}

TEST_CASE("coalescer: run_each_alone answers each item's own failure, in order") {
    const auto failures = run_each_alone(std::vector<int>{1, 2, 3}, [](int item) {
        if (item == 2) throw std::runtime_error("two");
    });
    REQUIRE(failures.size() == 3);
    CHECK_FALSE(failures[0]);
    CHECK_THROWS_WITH(std::rethrow_exception(failures[1]), "two");
    CHECK_FALSE(failures[2]);
}
