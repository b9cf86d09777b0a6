#include "brfusion/shim/error.hpp"
#include "brfusion/shim/journal.hpp"

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <unistd.h>

using namespace brfusion::shim;

namespace {
struct TempDir {
    std::string path = "/tmp/brfusion-journal-test-" + std::to_string(::getpid());
    TempDir() { std::filesystem::remove_all(path); }
    ~TempDir() { std::filesystem::remove_all(path); }
};
}  // namespace

TEST_CASE("the journal saves and loads NIC records and leases - a missing file is an empty state") {
    TempDir dir;
    Journal journal(dir.path);
    CHECK(journal.load().nics.empty());
    ShimState state;
    state.ipam.add_pool("lab", *Ipv4Prefix::parse("198.51.100.0/24"), *Ipv4::parse("198.51.100.1"));
    const Ipv4 ip = state.ipam.allocate("lab", "vm1/abc");
    state.nics["abc"] = {"abc", "vm1", "lab", "02:00:00:00:00:01", ip, "bfabc", NicPhase::Detaching};
    journal.save(state);
    const ShimState loaded = Journal(dir.path).load();
    REQUIRE(loaded.nics.count("abc"));
    CHECK(loaded.nics.at("abc").phase == NicPhase::Detaching);
    CHECK(loaded.nics.at("abc").ip == ip);
    CHECK(loaded.ipam.lease("lab", ip)->owner == "vm1/abc");
    CHECK_FALSE(std::filesystem::exists(journal.path() + ".tmp"));
}

TEST_CASE("a corrupt journal is refused with its path - never silently replaced") {
    TempDir dir;
    std::filesystem::create_directories(dir.path);
    std::ofstream(dir.path + "/state.json") << "{\"ipam\": {";
    CHECK_THROWS_WITH(Journal(dir.path).load(), Catch::Contains(dir.path + "/state.json is corrupt"));
}
