#include "brfusion/bench/lab_tools.hpp"

#include "brfusion/testing/command.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <csignal>
#include <cstdarg>
#include <cstdio>
#include <filesystem>
#include <future>
#include <fstream>
#include <iterator>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace brfusion::bench {

using testing::shell_quoted;

namespace {

double number_after(const std::string& text, const std::string& label) {
    std::smatch match;
    if (!std::regex_search(text, match, std::regex(label + R"(\s*=?\s*([0-9.]+))"))) throw std::runtime_error("no '" + label + "' in:\n" + text);
    return std::stod(match[1]);
}

std::string first_line_of(const std::string& command) {
    const std::string output = testing::run(command).output;
    const std::string line = testing::trim_end(output.substr(0, output.find('\n')));
    return line.substr(std::min(line.size(), line.find_first_not_of(' ')));
}

volatile std::sig_atomic_t stop_signal = 0;
const auto run_began = std::chrono::steady_clock::now();

long seconds_since_run_began() {
    return static_cast<long>(std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - run_began).count());
}

}  // namespace

void stop_on_signals() {
    for (const int signal : {SIGINT, SIGTERM, SIGHUP}) std::signal(signal, [](int number) { stop_signal = number; });
}

bool stopping() { return stop_signal != 0; }

void progress(const char* format, ...) {
    const long seconds = seconds_since_run_began();
    va_list arguments, again;
    va_start(arguments, format);
    va_copy(again, arguments);
    std::string line(static_cast<std::size_t>(std::vsnprintf(nullptr, 0, format, arguments)), '\0');
    std::vsnprintf(line.data(), line.size() + 1, format, again);
    va_end(again);
    va_end(arguments);
    std::fprintf(stderr, "bench [%02ld:%02ld] %s\n", seconds / 60, seconds % 60, line.c_str());
}

std::string elapsed() {
    const long seconds = seconds_since_run_began();
    char text[32];
    std::snprintf(text, sizeof text, "%ld min %02ld s", seconds / 60, seconds % 60);
    return text;
}

testing::CommandResult exec(testing::Lab& lab, const std::string& node, const std::string& command) {
    if (stopping()) throw std::runtime_error("stopped by signal " + std::to_string(stop_signal) + "; taking the labs down");
    return lab.exec(node, command);
}

std::string ok(testing::Lab& lab, const std::string& node, const std::string& command) {
    const auto result = exec(lab, node, command);
    if (result.exit_code != 0) throw std::runtime_error(node + "$ " + command + "\n" + result.output);
    return testing::trim_end(result.output);
}

Place container(testing::Lab& lab, const std::string& node, const std::string& name) {
    return {node, std::stoi(ok(lab, node, "docker inspect -f '{{.State.Pid}}' " + name))};
}

std::string at(const Place& place, const std::string& command) {
    return place.container_pid ? "nsenter -t " + std::to_string(place.container_pid) + " -n " + command : command;
}

std::string published(int port, const std::string& protocol) {
    return " -p " + std::to_string(port) + ":" + std::to_string(port) + "/" + protocol;
}

void start_server(testing::Lab& lab, const Place& place, const std::string& command, int port) {
    exec(lab, place.node, at(place, command) + " >/dev/null 2>&1 &");
    const std::string listening = "for i in $(seq 100); do [ -n \"$(ss -Hlntu 'sport = :" + std::to_string(port) +
                                  "')\" ] && exit 0; sleep 0.1; done; exit 1";
    if (exec(lab, place.node, at(place, "sh -c " + shell_quoted(listening))).exit_code != 0)
        throw std::runtime_error(place.node + (place.container_pid ? " (container process " + std::to_string(place.container_pid) + ")" : "") +
                                 ": nothing listens on port " +
                                 std::to_string(port) + " 10 s after: " + command);
}

void stop_servers(testing::Lab& lab, const std::string& node, const std::string& pattern) { exec(lab, node, "pkill -f " + shell_quoted(pattern)); }

HostForwards::HostForwards(testing::Lab& lab, std::string table, const std::vector<int>& ports) : lab_(lab), table_(std::move(table)) {
    const std::string vm = testing::Lab::primary_address(1), uplink = testing::Lab::kHostUplinkAddress;
    std::string rules = "table ip " + table_ + " {\n  chain prerouting {\n    type nat hook prerouting priority dstnat; policy accept;\n";
    for (const int port : ports)
        rules += "    ip daddr " + uplink + " tcp dport " + std::to_string(port) + " dnat to " + vm + ":" + std::to_string(port) + "\n";
    ok(lab_, "host", "nft -f - <<'EOF'\n" + rules + "  }\n}\nEOF");
}

HostForwards::~HostForwards() {
    try {
        lab_.exec("host", "nft delete table ip " + table_);
    } catch (const std::exception&) {  // the lab's host namespace goes with the lab, and the table with it
    }
}

void start_nginx(testing::Lab& lab, const Place& place, int port) {
    const std::string dir = "/tmp/brfusion-bench-nginx-" + std::to_string(port) + "-" + std::to_string(place.container_pid);
    // Workers run as nobody: the files are world-readable. Every path nginx writes is in `dir`.
    const std::string config = "daemon off;\nworker_processes 1;\npid " + dir + "/nginx.pid;\nerror_log " + dir +
                               "/error.log;\nevents { worker_connections 1024; }\nhttp {\n  access_log off;\n" +
                               "  client_body_temp_path " + dir + "/tmp;\n  proxy_temp_path " + dir + "/tmp;\n  fastcgi_temp_path " + dir +
                               "/tmp;\n  uwsgi_temp_path " + dir + "/tmp;\n  scgi_temp_path " + dir + "/tmp;\n  server { listen " +
                               std::to_string(port) + "; root " + dir + "/www; }\n}\n";
    ok(lab, place.node, "rm -rf " + dir + " && mkdir -p " + dir + "/www " + dir + "/tmp && chmod 755 " + dir + " " + dir +
                            "/www && head -c 1024 /dev/zero | tr '\\0' x > " + dir + "/www/1k.html && cat > " + dir + "/nginx.conf <<'EOF'\n" +
                            config + "EOF");
    start_server(lab, place, "nginx -c " + dir + "/nginx.conf", port);
}

void start_memcached(testing::Lab& lab, const Place& place, int port) {
    start_server(lab, place, std::string(kMemcachedPattern) + " -p " + std::to_string(port) + " -U 0 -t 1 -m 64", port);
}

WrkResult wrk(testing::Lab& lab, const Place& client, const std::string& address, int port, int seconds) {
    return parse_wrk(ok(lab, client.node, at(client, "timeout " + std::to_string(seconds + 30) + " wrk -t 1 -c 16 -d " + std::to_string(seconds) +
                                                         "s --latency http://" + address + ":" + std::to_string(port) + "/1k.html")));
}

MemcaslapResult memcaslap(testing::Lab& lab, const Place& client, const std::string& address, int port, int seconds) {
    // Key and value sizes with their proportions, then the commands': 0 is SET, 1 is GET.
    const std::string config = "/tmp/brfusion-bench-memcaslap.cnf";
    ok(lab, client.node, "cat > " + config + " <<'EOF'\nkey\n64 64 1\nvalue\n1024 1024 1\ncmd\n0 0.0909\n1 0.9091\nEOF");
    const std::string time = std::to_string(seconds) + "s";
    return parse_memcaslap(ok(lab, client.node,
                              at(client, "timeout " + std::to_string(seconds + 30) + " memcaslap -s " + address + ":" + std::to_string(port) + " -F " +
                                             config + " -T 1 -c 16 -w 1k -t " + time + " -S " + time)));
}

std::string this_binary() { return std::filesystem::read_symlink("/proc/self/exe"); }

RrLatency rr_latency(testing::Lab& lab, const Place& client, const std::string& address, int port, bool tcp, int seconds) {
    const std::string command = "timeout " + std::to_string(seconds + 30) + " " + this_binary() + " ping-pong " + address + " " + std::to_string(port) +
                                (tcp ? " tcp " : " udp ") + std::to_string(seconds);
    const std::string output = ok(lab, client.node, at(client, command));
    return {number_after(output, "average_us"), number_after(output, "p50_us"), number_after(output, "p99_us")};
}

void start_ping_pong_server(testing::Lab& lab, const Place& place, int port) {
    start_server(lab, place, this_binary() + " ping-pong-server " + std::to_string(port), port);
}

double iperf3_mbits(testing::Lab& lab, const Place& client, const Iperf3Target& target, int seconds, int write_size) {
    const std::string port = std::to_string(target.port), server = "iperf3 -s -1 -p " + port;
    const std::string command = "timeout " + std::to_string(seconds + 30) + " iperf3 -J -t " + std::to_string(seconds) +
                                (write_size > 0 ? " -l " + std::to_string(write_size) : "") + " -p " + port + " -c " + target.address;
    std::string output;
    for (int attempt = 1; attempt <= 3; ++attempt) {
        start_server(lab, target.server, server, target.port);
        const auto result = exec(lab, client.node, at(client, command));
        stop_servers(lab, target.server.node, server);  // one whose client gave up
        const auto report = nlohmann::json::parse(result.output, nullptr, false);
        if (result.exit_code == 0 && !report.is_discarded() && !report.contains("error"))
            return report["end"]["sum_received"]["bits_per_second"].get<double>() / 1e6;
        output = result.output;
        progress("iperf3 attempt %d failed (exit %d), trying again", attempt, result.exit_code);
    }
    throw std::runtime_error(client.node + ": " + command + "\n" + output);
}

StreamCpu cpu_during_stream(testing::Lab& lab, const Place& client, const Iperf3Target& target, int seconds, int write_size) {
    const std::string port = std::to_string(target.port), server = "iperf3 -s -1 -p " + port;
    const std::string readings = "sleep 1; head -n 1 /proc/stat; sleep " + std::to_string(seconds) + "; head -n 1 /proc/stat";
    start_server(lab, target.server, server, target.port);
    auto host = std::async(std::launch::async, [&] { return ok(lab, "host", readings); });
    // In the VM: the readings in the background, the stream, then both readings and the stream's report.
    const std::string stream = at(client, "timeout " + std::to_string(seconds + 32) + " iperf3 -J -t " + std::to_string(seconds + 2) + " -l " +
                                              std::to_string(write_size) + " -p " + port + " -c " + target.address);
    const auto vm = exec(lab, client.node,
                         "(" + readings + ") > /tmp/brfusion-bench-cpu & " + stream + " > /tmp/brfusion-bench-stream.json; s=$?; wait; "
                         "cat /tmp/brfusion-bench-cpu /tmp/brfusion-bench-stream.json; exit $s");
    const std::string host_readings = host.get();
    stop_servers(lab, target.server.node, server);
    const auto report = nlohmann::json::parse(vm.output.substr(std::min(vm.output.size(), vm.output.find('{'))), nullptr, false);
    if (vm.exit_code != 0 || report.is_discarded() || report.contains("error"))
        throw std::runtime_error(client.node + ": the stream for the CPU readings failed (exit " + std::to_string(vm.exit_code) + "):\n" + vm.output);
    const auto two_readings = [](const std::string& text) {
        std::istringstream lines(text);
        std::string before, after;
        std::getline(lines, before);
        std::getline(lines, after);
        return cpu_shares(parse_proc_stat(before), parse_proc_stat(after));
    };
    return {report["end"]["sum_received"]["bits_per_second"].get<double>() / 1e6, two_readings(host_readings), two_readings(vm.output)};
}

int pid_serving(const std::string& path) {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    path.copy(address.sun_path, sizeof address.sun_path - 1);
    ucred peer{};
    socklen_t length = sizeof peer;
    const bool found = fd >= 0 && ::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0 &&
                       ::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &length) == 0;
    if (fd >= 0) ::close(fd);
    if (!found) throw std::runtime_error("nothing serves the unix socket " + path);
    return peer.pid;
}

double rss_mib(int pid) {
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    for (std::string line; std::getline(status, line);)
        if (line.rfind("VmRSS:", 0) == 0) return std::stod(line.substr(6)) / 1024;  // "VmRSS:   12345 kB"
    throw std::runtime_error("no VmRSS for process " + std::to_string(pid));
}

double cpu_ms(int pid) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    const auto comm_end = text.rfind(')');  // the command's name may hold spaces and parentheses
    if (comm_end == std::string::npos) throw std::runtime_error("no /proc/" + std::to_string(pid) + "/stat");
    std::istringstream fields(text.substr(comm_end + 2));  // from field 3, the state
    std::vector<std::string> field((std::istream_iterator<std::string>(fields)), std::istream_iterator<std::string>());
    if (field.size() < 15) throw std::runtime_error("short /proc/" + std::to_string(pid) + "/stat");
    double ticks = 0;
    for (std::size_t i = 11; i <= 14; ++i) ticks += std::stod(field[i]);  // utime, stime, cutime, cstime (fields 14-17)
    return ticks * 1000.0 / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

int pid_in(const std::string& path) {
    std::ifstream file(path);
    int pid = 0;
    if (!(file >> pid)) throw std::runtime_error("no pid in " + path);
    return pid;
}

std::string machine_description() {
    return first_line_of("nproc") + " cores, " + first_line_of("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2") + ", " +
           first_line_of("free -g | awk '/Mem:/ {print $2}'") + " GiB, kernel " + first_line_of("uname -r") + "; OVS " +
           first_line_of("ovs-vswitchd --version | grep -o '[0-9.]*$'") + " (userspace datapath)";
}

std::string vm_description(const std::string& backend) {
    if (backend == "netns") return "emulated VMs (network and mount namespaces, no hypervisor)";
    return "QEMU " + first_line_of("qemu-system-x86_64 --version | grep -o 'version [0-9.]*' | cut -d' ' -f2") +
           " VMs under TCG, no KVM (" + backend + " backend), 1 vCPU (maxcpus 2), 1.5 GiB each";
}

void wait_for_warm_pool(testing::Lab& lab, int spares) {
    const bool full = testing::wait_until(
        [&] {
            std::vector<std::string> macs;
            for (const auto& nic : nlohmann::json::parse(lab.ctl("--json nics --vm vm1")))
                if (nic["state"] == "spare" && nic["network"] == "lab2") macs.push_back(nic["mac"]);
            if (static_cast<int>(macs.size()) < spares) return false;
            std::string visible = "ip -o link 2>/dev/null | grep -c";
            for (const auto& mac : macs) visible += " -e " + mac;
            return std::atoi(exec(lab, "vm1", visible).output.c_str()) == static_cast<int>(macs.size());
        },
        std::chrono::seconds(60));
    if (!full) throw std::runtime_error("the warm pool did not refill to " + std::to_string(spares) + " spares within 60 s: " + lab.ctl("nics --vm vm1"));
}


}  // namespace brfusion::bench
