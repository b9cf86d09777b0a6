// A hostile tenant in vm2 of a lab (netns backend): each attack of issue 19, through Docker where
// Docker can express it and through vm2's own guest channel otherwise (whoever connects to it
// speaks as vm2, as a guest's own code can). After each, vm1, the host and the outside are as
// they were: traffic reaches its real destination, the host's own listener keeps its port, the
// shim answers and its memory stays bounded.

#include "scenario.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

using namespace brfusion;
using nlohmann::json;
using Catch::Contains;
using brfusion::testing::scenarios::Scenario;

namespace {

// vm2's guest channel, spoken raw.
class RawChannel {
public:
    explicit RawChannel(const std::string& path) : fd_(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
        sockaddr_un address{};
        address.sun_family = AF_UNIX;
        std::strncpy(address.sun_path, path.c_str(), sizeof(address.sun_path) - 1);
        REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0);
    }
    ~RawChannel() { ::close(fd_); }
    RawChannel(const RawChannel&) = delete;
    RawChannel& operator=(const RawChannel&) = delete;

    // Sends `bytes` as far as the shim takes them; false once it closed the connection.
    bool send(const std::string& bytes) {
        for (std::size_t sent = 0; sent < bytes.size();) {
            const ssize_t n = ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) return false;
            sent += static_cast<std::size_t>(n);
        }
        return true;
    }
    // The next line the shim sends (within 30 s), parsed; null when the connection closed first.
    json receive() {
        for (;;) {
            if (const auto end = buffer_.find('\n'); end != std::string::npos) {
                json line = json::parse(buffer_.substr(0, end));
                buffer_.erase(0, end + 1);
                return line;
            }
            pollfd readable{fd_, POLLIN, 0};
            REQUIRE(::poll(&readable, 1, 30000) == 1);
            char chunk[65536];
            const ssize_t got = ::recv(fd_, chunk, sizeof(chunk), 0);
            if (got <= 0) return nullptr;
            buffer_.append(chunk, static_cast<std::size_t>(got));
        }
    }
    json call(const std::string& method, const json& params, int id = 1) {
        REQUIRE(send(json{{"jsonrpc", "2.0"}, {"id", id}, {"method", method}, {"params", params}}.dump() + "\n"));
        return receive();
    }

private:
    int fd_;
    std::string buffer_;
};

// The shim's resident memory, in KiB.
long rss_kib(int pid) {
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(status, line))
        if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
    return -1;
}

}  // namespace

TEST_CASE("hostile guest: vm2 attacks through Docker and through its guest channel - vm1, the host and the outside are unaffected") {
    Scenario s;
    const std::string outside = testing::Lab::kOutsideAddress, host = testing::Lab::kHostUplinkAddress;
    for (const char* vm : {"vm1", "vm2"}) s.ok(vm, "docker network create -d brfusion --ipam-driver brfusion --subnet 198.51.100.0/24 web");
    s.ok("vm1", "docker run -d --name c1 --network web -p 8080:80 brfusion-test httpd -f -p 80 -h /www");
    s.ok("vm2", "docker run -d --name c2 --network web --cap-add NET_ADMIN --cap-add NET_RAW brfusion-test sleep 3600");
    const std::string c1 = s.ip_of("vm1", "c1", "web");
    // What vm1 must keep seeing, after every attack.
    const auto vm1_unaffected = [&](const std::string& after) {
        INFO("after " << after);
        CHECK(s.ok("vm1", "docker exec c1 wget -qO- http://" + outside + "/") == "brfusion-outside-page");
        CHECK(s.ok("outside", "wget -qO- http://" + host + ":8080/") == "brfusion-test-page");
        CHECK_THAT(s.lab.ctl("nics --vm vm1"), Contains("tcp:8080->80"));
    };

    // 1. Publishing on an address that is not the host's: the outside server's, a gateway, the
    //    cloud metadata address. Refused; vm1's containers still reach the real server.
    for (const std::string& address : {outside, std::string("198.51.100.1"), std::string("169.254.169.254")}) {
        const auto result = s.lab.exec("vm2", "docker run -d --name evil --network web -p " + address + ":80:80 brfusion-test httpd -f -p 80 -h /www");
        CHECK(result.exit_code != 0);
        CHECK_THAT(result.output, Contains(address + " is not an address this host publishes ports on; it publishes on " + host + " (up0)"));
        s.ok("vm2", "docker rm -f evil");
    }
    CHECK_THAT(s.ok("host", "nft list table ip brfusion"), !Contains(outside) && !Contains("169.254.169.254"));
    vm1_unaffected("publishing on addresses that are not the host's");

    // 2. Publishing a port a host process listens on: refused naming it; the host keeps its port.
    s.ok("host", "mkdir -p " + s.lab.options().dir + "/host-www && echo host-service-page > " + s.lab.options().dir + "/host-www/index.html");
    testing::Daemon host_service;
    host_service.start({"ip", "netns", "exec", s.lab.host().netns(), "busybox", "httpd", "-f", "-p", "2222", "-h", s.lab.options().dir + "/host-www"},
                       s.lab.options().dir + "/host-service.log");
    REQUIRE(testing::wait_until([&] { return s.code("outside", "wget -qO- http://" + host + ":2222/") == 0; }, std::chrono::seconds(10)));
    const auto taken = s.lab.exec("vm2", "docker run -d --name evil --network web -p 2222:80 brfusion-test httpd -f -p 80 -h /www");
    CHECK(taken.exit_code != 0);
    CHECK_THAT(taken.output, Contains("host port 2222/tcp is in use on the host by busybox (pid"));
    s.ok("vm2", "docker rm -f evil");
    CHECK(s.ok("outside", "wget -qO- http://" + host + ":2222/") == "host-service-page");
    // And a port outside its range (below 1024).
    CHECK_THAT(s.lab.exec("vm2", "docker run -d --name evil --network web -p 22:80 brfusion-test sleep 1").output,
               Contains("host port 22 is outside the host ports VM vm2 may publish on (1024-65535, vms[].host_ports)"));
    s.ok("vm2", "docker rm -f evil");

    // 3. Claiming the gateway's address with ARP, from a container with NET_ADMIN: dropped at the
    //    port; vm1's container keeps the gateway's real MAC.
    const std::string gateway_mac = s.ok("host", "cat /sys/class/net/bfgw100/address");
    s.ok("vm1", "docker exec c1 ping -c 1 -W 5 198.51.100.1");
    s.lab.exec("vm2", "docker exec c2 sh -c 'ip addr add 198.51.100.1/32 dev eth0; arping -U -c 3 -w 3 -I eth0 198.51.100.1'");
    CHECK_THAT(s.ok("vm1", "docker exec c1 ip neigh show 198.51.100.1"), Contains(gateway_mac));
    vm1_unaffected("an ARP claim of the gateway's address");

    // From here on, vm2's own guest channel. First a request of every kind vm2 may make, to see
    // what its NIC is.
    RawChannel channel(s.lab.guest_channel("vm2"));
    const json listed = channel.call("nic.list", json::object());
    REQUIRE(listed["result"]["nics"].size() == 1);
    const std::string vm2_endpoint = listed["result"]["nics"][0]["endpoint"];

    // 4. A host_ip with a NUL and junk after a valid address: refused as the field it is.
    const json junk = channel.call("nic.publish", {{"endpoint", vm2_endpoint},
                                                   {"ports", {{{"protocol", "tcp"}, {"host_ip", std::string(host) + std::string(1, '\0') + "junk"},
                                                               {"host_port", 8090}, {"container_port", 80}}}}});
    CHECK(junk["error"]["message"] == "nic.publish: field 'host_ip': '" + host + "?junk' is not an IPv4 address (dotted decimal)");

    // 5. A request nested 100,000 deep (200 KB): refused before it is parsed; the channel goes on.
    REQUIRE(channel.send(R"({"jsonrpc":"2.0","id":2,"method":"nic.list","params":{"x":)" + std::string(100000, '[') + std::string(100000, ']') + "}}\n"));
    CHECK(channel.receive()["error"]["message"] == "a line was refused: it nests objects and arrays deeper than 8 levels");
    CHECK(channel.call("nic.list", json::object(), 3)["result"]["nics"].size() == 1);

    // 6. Reserving the shared /24 away: vm2's reservations quota stops it at 64; vm1 still starts
    //    a container.
    int reserved = 0;
    std::string refusal;
    std::vector<std::string> addresses;
    for (int i = 0; i < 250 && refusal.empty(); ++i) {
        const json answer = channel.call("ipam.request", {{"network", "lab"}}, 100 + i);
        if (answer.contains("result")) addresses.push_back(answer["result"]["ip"]), ++reserved;
        else refusal = answer["error"]["message"];
    }
    CHECK(reserved == 64);
    CHECK(refusal == "VM vm2 holds 64 of its 64 reservations (quota vms[].quotas.reservations); give some back, or ask the host's admin to raise it");
    s.ok("vm1", "docker run -d --name c3 --network web brfusion-test sleep 3600");
    for (const auto& address : addresses) channel.call("ipam.release", {{"network", "lab"}, {"ip", address}});

    // 7. Hostlo groups whose names hashed alike: each gets a segment of its own, and vm2 removing
    //    its group leaves vm1's alone.
    s.ok("vm1", "docker network create -d brfusion --ipam-driver brfusion --ipam-opt group=pod1039599 -o mode=hostlo pa");
    s.ok("vm2", "docker network create -d brfusion --ipam-driver brfusion --ipam-opt group=pod1222382 -o mode=hostlo pb");
    const std::string bridge_a = s.ok("host", "ovs-vsctl --bare --columns=name find Bridge external_ids:brfusion-hostlo-group=pod1039599");
    const std::string bridge_b = s.ok("host", "ovs-vsctl --bare --columns=name find Bridge external_ids:brfusion-hostlo-group=pod1222382");
    CHECK_FALSE(bridge_a.empty());
    CHECK_FALSE(bridge_b.empty());
    CHECK(bridge_a != bridge_b);
    s.ok("vm2", "docker network rm pb");
    CHECK(s.ok("host", "ovs-vsctl --bare --columns=name find Bridge external_ids:brfusion-hostlo-group=pod1039599") == bridge_a);
    s.ok("vm1", "docker run -d --name p1 --network pa brfusion-test sleep 3600");

    // 8. A line of 512 MiB without a newline: the shim closes the channel after 1 MiB, and its
    //    memory stays within 64 MiB of what it was.
    const long before = rss_kib(s.lab.shim_pid());
    REQUIRE(before > 0);
    {
        RawChannel flood(s.lab.guest_channel("vm2"));
        const std::string chunk(1 << 20, 'x');
        int sent_mib = 0;
        while (sent_mib < 512 && flood.send(chunk)) ++sent_mib;
        CHECK(sent_mib < 512);  // it stopped taking bytes long before
        CHECK_THAT(flood.receive()["error"]["message"].get<std::string>(), Contains("a line exceeds 1048576 bytes; closing the channel"));
    }
    CHECK(rss_kib(s.lab.shim_pid()) - before < 64 * 1024);

    // The shim still serves everyone: vm2's new connection, the admin, and vm1 end to end.
    RawChannel again(s.lab.guest_channel("vm2"));
    CHECK(again.call("nic.list", json::object())["result"]["nics"].size() == 1);
    vm1_unaffected("every attack");
    CHECK(s.ok("vm1", "docker run --rm --network web brfusion-test wget -qO- http://" + c1 + "/") == "brfusion-test-page");
    for (const auto& [vm, containers] : {std::pair{"vm1", "c1 c3 p1"}, std::pair{"vm2", "c2"}}) s.ok(vm, std::string("docker rm -f ") + containers);
    s.ok("vm1", "docker network rm web pa");
    s.ok("vm2", "docker network rm web");
    CHECK(s.ok("host", "ovs-vsctl --bare --columns=name find Port external_ids:brfusion-endpoint!=none").empty());
    host_service.stop();
}
