// brfusion-lab: the lab command (integration/lab builds and runs it). Its interface is a contract:
//
//   lab up [--vms N] [--backend netns|qmp|libvirt] [--name LAB] [--userspace-tso]
//   lab exec LAB NODE -- CMD...        NODE: host, outside, vm1..vmN; prints CMD's output, exits with its code
//   lab restart LAB NODE COMPONENT     plugin | dockerd on a VM; shim | ovs | ovsdb-server | ovs-vswitchd on the host
//   lab status LAB
//   lab down LAB                       removes everything the lab made
//
// `up` forks a keeper that owns the lab (testing::Lab) and serves the other commands on
// /tmp/brfusion-lab/LAB/control.sock (HTTP/JSON); `down` asks it to take everything down and exit.

#include "brfusion/common/http_client.hpp"
#include "brfusion/common/http_server.hpp"
#include "brfusion/testing/command.hpp"
#include "brfusion/testing/lab.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <iostream>
#include <thread>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace brfusion;
using nlohmann::json;

namespace {

constexpr const char* kUsage = R"(usage: integration/lab COMMAND
  up [--vms N] [--backend netns|qmp|libvirt] [--name LAB] [--userspace-tso]
                                   bring up a lab (default: 2 netns VMs, name lab); --userspace-tso:
                                   OVS segments and checksums for the guests, whose NICs keep their offloads
  exec LAB NODE -- CMD...          run CMD on NODE (host, outside, vm1..vmN): its output and exit code
  restart LAB NODE COMPONENT       restart plugin or dockerd on a VM; shim, ovs, ovsdb-server or ovs-vswitchd on the host
  status LAB                       what the lab is made of
  down LAB                         remove everything the lab made
)";

std::string lab_dir(const std::string& name) { return "/tmp/brfusion-lab/" + name; }
std::string control_socket(const std::string& name) { return lab_dir(name) + "/control.sock"; }
std::string keeper_log(const std::string& name) { return "/tmp/brfusion-lab/" + name + ".keeper.log"; }

bool keeper_alive(const std::string& name) {
    std::ifstream file(lab_dir(name) + "/keeper.pid");
    int pid = 0;
    return file >> pid && pid > 0 && ::kill(pid, 0) == 0;
}

// A call to the keeper of lab `name`; throws with the keeper's error.
json call_keeper(const std::string& name, const std::string& method, const std::string& target, const json& body = nullptr) {
    if (!keeper_alive(name)) throw std::runtime_error("lab " + name + " is not up (integration/lab up --name " + name + ")");
    const HttpReply reply = http_call(control_socket(name), "the keeper of lab " + name, method, target, body.is_null() ? "" : body.dump());
    const json answer = json::parse(reply.body, nullptr, false);
    if (reply.status != 200) throw std::runtime_error(answer.is_object() ? answer.value("error", reply.body) : reply.body);
    return answer;
}

// The keeper's API over the lab.
HttpAnswer handle(testing::Lab& lab, const HttpRequest& request, std::promise<void>& down) {
    try {
        const json body = request.body.empty() ? json::object() : json::parse(request.body);
        if (request.method == "POST" && request.target == "/exec") {
            const auto result = lab.exec(body.at("node").get<std::string>(), body.at("command").get<std::string>());
            return {200, json{{"exit_code", result.exit_code}, {"output", result.output}}.dump()};
        }
        if (request.method == "POST" && request.target == "/restart") {
            lab.restart(body.at("node").get<std::string>(), body.at("component").get<std::string>());
            return {200, json{{"restarted", body["component"]}}.dump()};
        }
        if (request.method == "GET" && request.target == "/status") return {200, lab.status().dump()};
        if (request.method == "POST" && request.target == "/down") {
            down.set_value();
            return {200, json{{"down", lab.options().name}}.dump()};
        }
        return {404, json{{"error", request.method + " " + request.target + " is not a lab call"}}.dump()};
    } catch (const std::exception& e) {
        return {400, json{{"error", e.what()}}.dump()};
    }
}

// The keeper (a child of `up`, in its own session): brings the lab up, says so on `ready`, serves
// calls until `down`. Everything the lab made goes with its destructor.
int keeper(testing::LabOptions options, int ready) {
    const std::string dir = lab_dir(options.name);
    try {
        testing::Lab lab(options);
        std::ofstream(dir + "/keeper.pid") << ::getpid();
        boost::asio::io_context io;
        boost::asio::thread_pool workers(2);
        std::promise<void> down;
        HttpServer server(io, workers, control_socket(options.name), 0600, [&](const HttpRequest& request) { return handle(lab, request, down); }, "error");
        std::thread io_thread([&] {
            auto guard = boost::asio::make_work_guard(io);
            io.run();
        });
        const std::string ok = "ok\n";
        (void)::write(ready, ok.data(), ok.size());
        ::close(ready);
        down.get_future().wait();
        std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the answer to /down goes out first
        boost::asio::post(io, [&] { server.close(); io.stop(); });
        io_thread.join();
        workers.join();
        std::filesystem::remove(dir + "/keeper.pid");
        return 0;  // ~Lab removes everything, the directory included
    } catch (const std::exception& e) {
        std::string message = e.what();
        std::replace(message.begin(), message.end(), '\n', ' ');  // the answer is one line
        message += "\n";
        (void)::write(ready, message.data(), message.size());
        return 1;
    }
}

int up(const std::vector<std::string>& args) {
    testing::LabOptions options;
    for (std::size_t i = 0; i < args.size(); ++i) {
        const bool has_value = i + 1 < args.size();
        if (args[i] == "--vms" && has_value) options.vms = std::stoi(args[++i]);
        else if (args[i] == "--backend" && has_value) options.backend = args[++i];
        else if (args[i] == "--name" && has_value) options.name = args[++i];
        else if (args[i] == "--userspace-tso") options.userspace_tso = true;
        else throw std::invalid_argument("lab up: unknown argument " + args[i] + "\n" + kUsage);
    }
    if (keeper_alive(options.name)) throw std::runtime_error("lab " + options.name + " is up already; integration/lab down " + options.name);
    const auto missing = testing::missing_prerequisite(options.backend == "netns" ? std::vector<std::string>{"root", "ovs", "netns", "nft", "docker"}
                                                      : options.backend == "qmp" ? std::vector<std::string>{"root", "ovs", "netns", "nft", "docker", "qemu"}
                                                                                 : std::vector<std::string>{"root", "ovs", "netns", "nft", "docker", "qemu", "libvirt"});
    if (missing) throw std::runtime_error("lab up: " + *missing);
    options.binaries = {BRFUSION_SHIM_BINARY, BRFUSION_CTL_BINARY, BRFUSION_PLUGIN_BINARY};
    std::filesystem::create_directories(lab_dir(options.name));
    int pipe_fds[2];
    if (::pipe2(pipe_fds, O_CLOEXEC) != 0)  // the lab's daemons must not hold it open
        throw std::runtime_error("pipe: " + std::string(std::strerror(errno)));
    const pid_t child = ::fork();
    if (child < 0) throw std::runtime_error("fork: " + std::string(std::strerror(errno)));
    if (child == 0) {
        ::close(pipe_fds[0]);
        ::setsid();
        const int log = ::open(keeper_log(options.name).c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        ::dup2(log, 1);
        ::dup2(log, 2);
        const int null = ::open("/dev/null", O_RDONLY);
        ::dup2(null, 0);
        ::_exit(keeper(options, pipe_fds[1]));
    }
    ::close(pipe_fds[1]);
    std::cout << "lab " << options.name << ": bringing up " << options.vms << " " << options.backend << " VM(s)..." << std::endl;
    std::string answer;
    char buffer[4096];
    for (ssize_t n; answer.find('\n') == std::string::npos && (n = ::read(pipe_fds[0], buffer, sizeof buffer)) > 0;)
        answer.append(buffer, static_cast<std::size_t>(n));
    ::close(pipe_fds[0]);
    if (answer != "ok\n") {
        ::waitpid(child, nullptr, 0);
        throw std::runtime_error("lab " + options.name + " did not come up: " + answer + "(keeper log: " + keeper_log(options.name) + ")");
    }
    std::cout << call_keeper(options.name, "GET", "/status").dump(2) << "\nlab " << options.name
              << " is up. Try: integration/lab exec " << options.name << " vm1 -- docker ps; integration/lab down " << options.name << "\n";
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::string> args(argv + 1, argv + argc);
    try {
        if (args.empty() || args[0] == "--help" || args[0] == "-h") {
            std::cout << kUsage;
            return args.empty() ? 2 : 0;
        }
        const std::string command = args[0];
        if (command == "up") return up({args.begin() + 1, args.end()});
        if (command == "exec" && args.size() >= 5 && args[3] == "--") {
            std::string line;
            for (std::size_t i = 4; i < args.size(); ++i) line += (i > 4 ? " " : "") + args[i];
            const json result = call_keeper(args[1], "POST", "/exec", {{"node", args[2]}, {"command", line}});
            std::cout << result["output"].get<std::string>() << std::flush;
            return result["exit_code"].get<int>();
        }
        if (command == "restart" && args.size() == 4) {
            call_keeper(args[1], "POST", "/restart", {{"node", args[2]}, {"component", args[3]}});
            std::cout << "lab " << args[1] << ": restarted " << args[3] << " on " << args[2] << "\n";
            return 0;
        }
        if (command == "status" && args.size() == 2) {
            std::cout << call_keeper(args[1], "GET", "/status").dump(2) << "\n";
            return 0;
        }
        if (command == "down" && args.size() == 2) {
            std::ifstream pid_file(lab_dir(args[1]) + "/keeper.pid");
            int pid = 0;
            pid_file >> pid;
            call_keeper(args[1], "POST", "/down");
            if (!testing::wait_until([&] { return ::kill(pid, 0) != 0; }, std::chrono::minutes(2)))
                throw std::runtime_error("the keeper of lab " + args[1] + " (pid " + std::to_string(pid) + ") did not finish within 2 minutes");
            std::filesystem::remove(keeper_log(args[1]));
            std::cout << "lab " << args[1] << " is down\n";
            return 0;
        }
        std::cerr << kUsage;
        return 2;
    } catch (const std::exception& e) {
        std::cerr << "lab: " << e.what() << "\n";
        return 1;
    }
}
