// brfusion-shim and brfusionctl as processes, against a real OVS sandbox and netns VMs: the guest
// channel (several requests in flight, identity by channel, malformed lines), the admin API,
// networks and VMs added and removed at run time, and restarts that keep every NIC.

#include <utility>  // before asio: Boost + GCC 12 + C++20 need it

#include "brfusion/common/guest_protocol.hpp"
#include "brfusion/common/process.hpp"
#include "brfusion/testing/command.hpp"
#include "brfusion/testing/daemon.hpp"
#include "brfusion/testing/ovs_sandbox.hpp"

#include <boost/asio.hpp>
#include <catch2/catch.hpp>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <thread>
#include <unistd.h>

using namespace brfusion;
using nlohmann::json;
namespace asio = boost::asio;


namespace {

// A guest's end of its channel: write lines, read lines (blocking).
class Channel {
public:
    explicit Channel(const std::string& path) : socket_(io_) { socket_.connect(asio::local::stream_protocol::endpoint(path)); }
    void send_line(const std::string& line) { asio::write(socket_, asio::buffer(line + "\n")); }
    void send(const json& message) { send_line(message.dump()); }
    json receive() {
        const std::size_t n = asio::read_until(socket_, buffer_, '\n');
        std::string line(asio::buffers_begin(buffer_.data()), asio::buffers_begin(buffer_.data()) + static_cast<std::ptrdiff_t>(n));
        buffer_.consume(n);
        return json::parse(line);
    }
    json call(const std::string& method, json params) {
        send(guest::make_request(next_id_, method, std::move(params)));
        json response = receive();
        CHECK(response["id"] == next_id_++);
        return response;
    }

private:
    asio::io_context io_;
    asio::local::stream_protocol::socket socket_;
    asio::streambuf buffer_;
    int next_id_ = 100;
};

// brfusion-shim as a child of the test; start() returns once its admin socket exists.
struct ShimProcess {
    testing::Daemon daemon;
    void start(const std::string& config_path, const std::string& admin_socket) {
        daemon.start({BRFUSION_SHIM_BINARY, "--config", config_path}, config_path + ".log");
        INFO(daemon.log());
        REQUIRE(testing::wait_until([&] { return std::filesystem::exists(admin_socket); }, std::chrono::seconds(10)));
    }
    int stop() { return daemon.stop(SIGTERM); }
};

}  // namespace

TEST_CASE("brfusion-shim: guest channels - admin API - restart keeps NICs") {
    testing::OvsSandbox host;
    testing::Netns vm1, vm2;
    const std::string dir = "/tmp/brfusion-daemon-test-" + std::to_string(::getpid());
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    const json config = {{"ovsdb", host.db_socket()},
                         {"host_netns", host.netns()},
                         {"state_dir", dir + "/state"},
                         {"run_dir", dir + "/run"},
                         {"networks", {{{"name", "lab"}, {"subnet", "198.51.100.0/24"}, {"tag", 100}}, {{"name", "lab2"}, {"subnet", "203.0.113.0/24"}, {"tag", 200}}}},
                         {"vms", {{{"name", "vm1"}, {"netns", vm1.name()}, {"networks", {"lab", "lab2"}}}, {{"name", "vm2"}, {"netns", vm2.name()}, {"networks", {"lab"}}}}}};
    std::ofstream(dir + "/shim.json") << config.dump(2);
    const std::string admin = dir + "/run/shim.sock";
    const std::string ctl = std::string(BRFUSION_CTL_BINARY) + " --socket " + admin;

    ShimProcess shim;
    shim.start(dir + "/shim.json", admin);
    CHECK(testing::run("stat -c %a " + admin).output == "660\n");

    // Two requests in flight and a malformed line on one channel: each gets its answer.
    Channel guest1(dir + "/run/vm-vm1.sock");
    guest1.send(guest::make_request(1, guest::kAttach, {{"network", "lab"}}));
    guest1.send(guest::make_request(2, guest::kAttach, {{"network", "lab2"}, {"ip", "203.0.113.20"}}));
    guest1.send_line("{not json");
    std::map<std::string, json> answers;
    for (int i = 0; i < 3; ++i) {
        json answer = guest1.receive();
        answers[answer["id"].dump()] = answer;
    }
    REQUIRE(answers.count("1"));
    REQUIRE(answers.count("2"));
    CHECK(answers["null"]["error"]["code"] == guest::kParseError);
    const auto nic1 = answers["1"]["result"].get<guest::AttachResult>();
    const auto nic2 = answers["2"]["result"].get<guest::AttachResult>();
    CHECK(nic2.ip == "203.0.113.20");
    CHECK_THAT(vm1.exec("ip -o link show " + nic1.guest_if).output, Catch::Contains(nic1.mac));

    // The channel is the identity: vm2 sees none of vm1's NICs and cannot detach them.
    Channel guest2(dir + "/run/vm-vm2.sock");
    CHECK(guest2.call(guest::kList, json::object())["result"]["nics"].empty());
    CHECK(guest2.call(guest::kDetach, {{"endpoint", nic1.endpoint}})["error"]["data"]["kind"] == "not-allowed");
    CHECK(guest2.call(guest::kAttach, {{"network", "lab2"}})["error"]["message"] == "network lab2 is not allowed for VM vm2; allowed: lab");

    // The admin's view, and OVS's.
    const std::string nics = testing::run_checked(ctl + " nics");
    CHECK_THAT(nics, Catch::Contains(nic1.endpoint) && Catch::Contains(nic2.endpoint) && Catch::Contains("198.51.100.2"));
    CHECK(json::parse(testing::run_checked(ctl + " --json nics --vm vm2")).empty());
    CHECK_THAT(testing::run_checked(ctl + " doctor"), Catch::Contains("gateway of lab"));
    const std::string ports = host.vsctl("--bare --columns=name find Interface external_ids:brfusion-vm=vm1");
    CHECK_THAT(ports, Catch::Contains("bf" + nic1.endpoint) && Catch::Contains("bf" + nic2.endpoint));
    const auto missing = testing::run(ctl + " vm show vm9");
    CHECK(missing.exit_code == 1);
    CHECK_THAT(missing.output, Catch::Contains("VM vm9 is not configured on this host"));

    // A restart keeps every NIC.
    CHECK(shim.stop() == 0);
    CHECK_FALSE(std::filesystem::exists(admin));
    shim.start(dir + "/shim.json", admin);
    Channel again(dir + "/run/vm-vm1.sock");
    const json listed = again.call(guest::kList, json::object());
    CHECK(listed["result"]["nics"].size() == 2);
    CHECK_THAT(vm1.exec("ip -o link show " + nic1.guest_if).output, Catch::Contains(nic1.mac));

    for (const auto& nic : {nic1, nic2}) CHECK(again.call(guest::kDetach, {{"endpoint", nic.endpoint}})["result"] == json::object());
    CHECK(host.vsctl("--bare --columns=name find Port external_ids:brfusion-endpoint!=none").empty());
    CHECK(shim.stop() == 0);
    std::filesystem::remove_all(dir);
}

TEST_CASE("brfusionctl: networks and VMs added at run time are served - kept across a restart - removed cleanly") {
    testing::OvsSandbox host;
    host.add_stub_uplink("up0", "192.0.2.1/24");  // no uplink in the config: ports are published on every address but brfusion's own
    testing::Netns vm3;
    const std::string dir = "/tmp/brfusion-daemon-test-" + std::to_string(::getpid());
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    const json config = {{"ovsdb", host.db_socket()},   {"host_netns", host.netns()},
                         {"state_dir", dir + "/state"}, {"run_dir", dir + "/run"},
                         {"networks", {{{"name", "lab"}, {"subnet", "198.51.100.0/24"}, {"tag", 100}}}}};
    std::ofstream(dir + "/shim.json") << config.dump(2);
    const std::string admin = dir + "/run/shim.sock";
    const std::string ctl = std::string(BRFUSION_CTL_BINARY) + " --socket " + admin;
    ShimProcess shim;
    shim.start(dir + "/shim.json", admin);

    CHECK_THAT(testing::run_checked(ctl + " network add extra --subnet 203.0.113.0/24 --tag 300 --no-nat --forward-to lab"),
               Catch::Contains("bfgw300"));
    CHECK_THAT(host.in_netns("ip -o addr show bfgw300"), Catch::Contains("203.0.113.1/24"));
    const auto bad = testing::run(ctl + " network add broken --subnet 203.0.113.0/24");
    CHECK(bad.exit_code == 1);
    CHECK_THAT(bad.output, Catch::Contains("network.tag: is required"));
    testing::run_checked(ctl + " vm add vm3 --netns " + vm3.name() + " --network extra --network lab");
    CHECK_THAT(testing::run_checked(ctl + " vms"), Catch::Contains("vm3") && Catch::Contains("api"));

    // The new VM's channel works at once, and survives a restart with its NIC and published port.
    Channel guest(dir + "/run/vm-vm3.sock");
    const auto nic = guest.call(guest::kAttach, {{"network", "extra"}})["result"].get<guest::AttachResult>();
    const json published = guest.call(guest::kPublish, {{"endpoint", nic.endpoint}, {"ports", {{{"protocol", "tcp"}, {"host_port", 8080}, {"container_port", 80}}}}});
    CHECK(published["result"]["ports"][0]["host_port"] == 8080);
    CHECK_THAT(testing::run_checked(ctl + " nics"), Catch::Contains("tcp:8080->80"));
    CHECK(shim.stop() == 0);
    shim.start(dir + "/shim.json", admin);
    const std::string doctor = testing::run_checked(ctl + " doctor");  // exit 0: every check passes
    CHECK_THAT(doctor, Catch::Contains("nftables table ip brfusion") && Catch::Contains("1 published port(s)") &&
                           Catch::Contains("1 container port(s) secured"));
    CHECK_THAT(host.in_netns("nft list table ip brfusion"), Catch::Contains("ip daddr 192.0.2.1 tcp dport 8080 dnat to " + nic.ip + ":80"));

    // Removing the VM detaches its NIC, withdraws its port and closes its channel.
    CHECK(testing::run(ctl + " network rm extra").exit_code == 1);  // still used by vm3
    CHECK_THAT(testing::run_checked(ctl + " vm rm vm3"), Catch::Contains("removed vm3"));
    CHECK(host.vsctl("--bare --columns=name find Port external_ids:brfusion-endpoint!=none").empty());
    CHECK_THAT(host.in_netns("nft list table ip brfusion"), !Catch::Contains("dnat to"));
    CHECK_THROWS(Channel(dir + "/run/vm-vm3.sock"));
    testing::run_checked(ctl + " network rm extra");
    CHECK(host.in_netns("ip link show bfgw300 2>&1 || true").find("does not exist") != std::string::npos);
    CHECK(json::parse(testing::run_checked(ctl + " --json networks")).size() == 1);
    CHECK(shim.stop() == 0);
    std::filesystem::remove_all(dir);
}

TEST_CASE("brfusion-shim: past a VM's requests_in_flight quota its requests wait - every connection keeps being served - nothing is lost") {
    testing::OvsSandbox host;
    testing::Netns vm1;
    const std::string dir = "/tmp/brfusion-daemon-test-" + std::to_string(::getpid());
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    const json config = {{"ovsdb", host.db_socket()},   {"host_netns", host.netns()},
                         {"state_dir", dir + "/state"}, {"run_dir", dir + "/run"},
                         {"networks", {{{"name", "lab"}, {"subnet", "198.51.100.0/24"}, {"tag", 100}}}},
                         {"vms", {{{"name", "vm1"}, {"netns", vm1.name()}, {"networks", {"lab"}}, {"quotas", {{"requests_in_flight", 1}}}}}}};
    std::ofstream(dir + "/shim.json") << config.dump(2);
    ShimProcess shim;
    shim.start(dir + "/shim.json", dir + "/run/shim.sock");

    // Connection A keeps the VM's one request slot busy with ten attaches, sent at once.
    Channel a(dir + "/run/vm-vm1.sock"), b(dir + "/run/vm-vm1.sock");
    for (int id = 1; id <= 10; ++id) a.send(guest::make_request(id, guest::kAttach, {{"network", "lab"}}));
    // Meanwhile connection B asks again and again: every question is answered (it waits its turn),
    // the connection never dropped while it had nothing in flight.
    for (int round = 0; round < 10; ++round) CHECK(b.call(guest::kList, json::object()).contains("result"));
    std::set<std::string> endpoints;
    for (int answer = 0; answer < 10; ++answer) endpoints.insert(a.receive()["result"]["endpoint"].get<std::string>());
    CHECK(endpoints.size() == 10);
    for (const auto& endpoint : endpoints) CHECK(b.call(guest::kDetach, {{"endpoint", endpoint}})["result"] == json::object());
    CHECK(shim.stop() == 0);
    std::filesystem::remove_all(dir);
}
