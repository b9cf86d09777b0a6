#include "brfusion/shim/error.hpp"
#include "brfusion/shim/journal.hpp"

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <unistd.h>

using namespace brfusion;
using namespace brfusion::shim;

namespace {
struct TempDir {
    std::string path = "/tmp/brfusion-journal-test-" + std::to_string(::getpid());
    TempDir() { std::filesystem::remove_all(path); }
    ~TempDir() { std::filesystem::remove_all(path); }
};
}  // namespace

TEST_CASE("the journal saves and loads NIC records - leases - published ports - added networks and VMs; a missing file is an empty state") {
    TempDir dir;
    Journal journal(dir.path);
    CHECK(journal.load().nics.empty());
    ShimState state;
    state.ipam.add_pool("lab", *Ipv4Prefix::parse("198.51.100.0/24"), *Ipv4::parse("198.51.100.1"));
    const Ipv4 ip = state.ipam.allocate("lab", LeaseOwner::nic("vm1", "0123456789ab"));
    const Ipv4 reserved = state.ipam.allocate("lab", LeaseOwner::reservation("vm2", 1700000000));
    const PublishedPort web{"tcp", Ipv4::parse("192.0.2.1"), 8080, 80};
    state.nics["0123456789ab"] = {"0123456789ab", "vm1", guest::NetworkRef::host_network("lab"), "02:00:00:00:00:01", ip, "bf0123456789ab",
                                  "0000:01:00.0", NicPhase::Detaching, {web}};
    state.added_networks.push_back(parse_network({{"name", "extra"}, {"subnet", "203.0.113.0/24"}, {"tag", 7}, {"forward_to", {"lab"}}}));
    state.added_vms.push_back(parse_vm({{"name", "vm9"}, {"netns", "ns9"}, {"networks", {"extra"}}, {"channel", "/tmp/vm9.sock"}}));
    journal.save(state);
    const ShimState loaded = Journal(dir.path).load();
    REQUIRE(loaded.nics.count("0123456789ab"));
    const NicRecord& nic = loaded.nics.at("0123456789ab");
    CHECK(nic.phase == NicPhase::Detaching);
    CHECK(nic.ip == ip);
    CHECK(nic.network == guest::NetworkRef::host_network("lab"));
    CHECK(nic.pci == "0000:01:00.0");
    CHECK(loaded.ipam.lease("lab", ip)->owner == LeaseOwner::nic("vm1", "0123456789ab"));
    CHECK(loaded.ipam.lease("lab", reserved)->owner == LeaseOwner::reservation("vm2", 1700000000));
    CHECK(nic.published == std::vector<PublishedPort>{web});
    REQUIRE(loaded.added_networks.size() == 1);
    CHECK(to_json(loaded.added_networks[0]) == to_json(state.added_networks[0]));
    REQUIRE(loaded.added_vms.size() == 1);
    CHECK(to_json(loaded.added_vms[0]) == to_json(state.added_vms[0]));
    CHECK_FALSE(std::filesystem::exists(journal.path() + ".tmp"));
}

TEST_CASE("a journal of an earlier version, with lease owners as text, loads") {
    TempDir dir;
    std::filesystem::create_directories(dir.path);
    std::ofstream(dir.path + "/state.json") << R"({"version":1,"ipam":{"lab":{"subnet":"198.51.100.0/24","gateway":"198.51.100.1",
        "cursor":"198.51.100.3","leases":{"198.51.100.2":"vm1/0123456789ab","198.51.100.3":"vm2/reserved"}}},"nics":[]})";
    const ShimState loaded = Journal(dir.path).load();
    CHECK(loaded.ipam.lease("lab", *Ipv4::parse("198.51.100.2"))->owner == LeaseOwner::nic("vm1", "0123456789ab"));
    CHECK(loaded.ipam.lease("lab", *Ipv4::parse("198.51.100.3"))->owner.str() == "vm2/reserved");
}

TEST_CASE("a corrupt journal is refused with its path - never silently replaced") {
    TempDir dir;
    std::filesystem::create_directories(dir.path);
    std::ofstream(dir.path + "/state.json") << "{\"ipam\": {";
    CHECK_THROWS_WITH(Journal(dir.path).load(), Catch::Contains(dir.path + "/state.json is corrupt"));
}

TEST_CASE("a save writes only what changed: one NIC and its lease among a thousand - the state loads whole") {
    TempDir dir;
    Journal journal(dir.path);
    ShimState state = journal.load();
    state.ipam.add_pool("lab", *Ipv4Prefix::parse("198.18.0.0/20"), *Ipv4::parse("198.18.0.1"));
    const auto add_nic = [&state](int i) {
        char endpoint[13];
        std::snprintf(endpoint, sizeof endpoint, "%012x", i);
        const Ipv4 ip = state.ipam.allocate("lab", LeaseOwner::nic("vm1", endpoint));
        state.nics[endpoint] = {endpoint, "vm1", guest::NetworkRef::host_network("lab"), "02:00:00:00:00:01", ip, std::string("bf") + endpoint, "",
                                NicPhase::Attached, {}};
    };
    for (int i = 0; i < 1000; ++i) add_nic(i);
    journal.save(state);
    const auto log_size = [&] { return std::filesystem::file_size(journal.path() + ".log"); };
    const auto before = log_size();
    add_nic(1000);
    journal.save(state);
    // One line: the NIC, the pool's cursor, the lease; not the thousand others.
    CHECK(log_size() - before < 1000);
    state.nics.at("000000000007").phase = NicPhase::Detaching;
    journal.save(state);
    const auto after = log_size();
    CHECK(after - before < 2000);
    journal.save(state);  // nothing changed: nothing written
    CHECK(log_size() == after);

    const ShimState loaded = Journal(dir.path).load();
    CHECK(loaded.nics == state.nics);
    CHECK(loaded.ipam.leases("lab").size() == 1001);
    CHECK(loaded.ipam.pool_table().at("lab").cursor == state.ipam.pool_table().at("lab").cursor);
}
