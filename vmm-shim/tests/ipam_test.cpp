#include "brfusion/shim/error.hpp"
#include "brfusion/shim/ipam.hpp"

#include <catch2/catch.hpp>

#include <set>

using namespace brfusion;
using namespace brfusion::shim;

namespace {
Ipv4 ip(const char* text) { return *Ipv4::parse(text); }
// "vm1/ep1": that VM's NIC; a bare name: a VM's NIC "ep".
LeaseOwner owner(const std::string& text) {
    const auto slash = text.find('/');
    return slash == std::string::npos ? LeaseOwner::nic(text, "ep") : LeaseOwner::nic(text.substr(0, slash), text.substr(slash + 1));
}
ErrorKind kind_of(const std::function<void()>& action) {
    try {
        action();
    } catch (const ShimError& e) {
        return e.kind();
    }
    FAIL("no ShimError");
    return ErrorKind::Backend;
}
}  // namespace

TEST_CASE("a /29 hands out its 5 host addresses except the gateway - never twice - then says it is full") {
    Ipam ipam;
    ipam.add_pool("net", *Ipv4Prefix::parse("198.51.100.0/29"), ip("198.51.100.1"));
    std::set<std::string> handed;
    for (int i = 0; i < 5; ++i) handed.insert(ipam.allocate("net", owner("vm" + std::to_string(i))).str());
    CHECK(handed == std::set<std::string>{"198.51.100.2", "198.51.100.3", "198.51.100.4", "198.51.100.5", "198.51.100.6"});
    CHECK(kind_of([&] { ipam.allocate("net", owner("late")); }) == ErrorKind::Exhausted);
    ipam.release("net", ip("198.51.100.4"));
    ipam.release("net", ip("198.51.100.4"));  // idempotent
    CHECK(ipam.allocate("net", owner("again")).str() == "198.51.100.4");
}

TEST_CASE("a released address is not handed out again at once") {
    Ipam ipam;
    ipam.add_pool("net", *Ipv4Prefix::parse("198.51.100.0/24"), ip("198.51.100.1"));
    const Ipv4 first = ipam.allocate("net", owner("a"));
    ipam.release("net", first);
    CHECK(ipam.allocate("net", owner("b")) != first);
}

TEST_CASE("requested addresses are honoured or refused clearly") {
    Ipam ipam;
    ipam.add_pool("net", *Ipv4Prefix::parse("198.51.100.0/24"), ip("198.51.100.1"));
    CHECK(ipam.allocate("net", owner("vm1/ep1"), ip("198.51.100.50")) == ip("198.51.100.50"));
    try {
        ipam.allocate("net", owner("vm2/ep2"), ip("198.51.100.50"));
        FAIL("expected a conflict");
    } catch (const ShimError& e) {
        CHECK(e.kind() == ErrorKind::Conflict);
        CHECK_THAT(e.what(), Catch::Contains("already in use by vm1/ep1"));
    }
    CHECK(kind_of([&] { ipam.allocate("net", owner("x"), ip("198.51.100.1")); }) == ErrorKind::BadRequest);
    CHECK(kind_of([&] { ipam.allocate("net", owner("x"), ip("198.51.100.255")); }) == ErrorKind::BadRequest);
    CHECK(kind_of([&] { ipam.allocate("net", owner("x"), ip("203.0.113.5")); }) == ErrorKind::BadRequest);
    CHECK(kind_of([&] { ipam.allocate("nope", owner("x")); }) == ErrorKind::NotFound);
}

TEST_CASE("pools: re-adding the same is fine - changing or removing one in use is refused") {
    Ipam ipam;
    ipam.add_pool("net", *Ipv4Prefix::parse("198.51.100.0/24"), ip("198.51.100.1"));
    ipam.allocate("net", owner("vm1/ep1"));
    ipam.add_pool("net", *Ipv4Prefix::parse("198.51.100.0/24"), ip("198.51.100.1"));
    CHECK(ipam.leases("net").size() == 1);
    CHECK(kind_of([&] { ipam.add_pool("net", *Ipv4Prefix::parse("203.0.113.0/24"), ip("203.0.113.1")); }) == ErrorKind::Conflict);
    CHECK_THROWS_WITH(ipam.remove_pool("net"), Catch::Contains("vm1/ep1"));
}

TEST_CASE("IPAM state survives a JSON round trip") {
    Ipam ipam;
    ipam.add_pool("net", *Ipv4Prefix::parse("198.51.100.0/24"), ip("198.51.100.1"));
    const Ipv4 a = ipam.allocate("net", owner("vm1/ep1"));
    const Ipam copy = Ipam::from_json(ipam.to_json());
    CHECK(copy.lease("net", a)->owner.str() == "vm1/ep1");
    Ipam again = Ipam::from_json(ipam.to_json());
    CHECK(again.allocate("net", owner("vm2/ep2")) != a);
}
