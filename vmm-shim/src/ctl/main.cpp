// brfusionctl: the host admin's CLI over brfusion-shim's admin API (HTTP/JSON on a unix socket).

#include <utility>  // before asio: Boost + GCC 12 + C++20 need it

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include <cstring>
#include <iostream>
#include <string>
#include <vector>

namespace asio = boost::asio;
namespace http = boost::beast::http;
using nlohmann::json;

namespace {

constexpr const char* kUsage = R"(usage: brfusionctl [--socket PATH] [--json] COMMAND

Commands:
  vms                 the VMs the shim serves
  vm show NAME        one VM and its NICs
  networks            host networks and the addresses in use
  nics [--vm NAME]    container NICs: VM, network, MAC, IP, OVS port, endpoint
  doctor              checks OVS, the gateways and the VMs, and says what is wrong (exit 1 if anything is)

Options:
  --socket PATH       the shim's admin socket (/run/brfusion/shim.sock)
  --json              print the API's JSON instead of a table
  --help, --version
)";

struct Reply {
    int status;
    json body;
};

Reply get(const std::string& socket_path, const std::string& target) {
    asio::io_context io;
    asio::local::stream_protocol::socket socket(io);
    boost::system::error_code ec;
    socket.connect(asio::local::stream_protocol::endpoint(socket_path), ec);
    if (ec) throw std::runtime_error("cannot reach brfusion-shim at " + socket_path + " (" + ec.message() + "); is it running? (--socket PATH)");
    http::request<http::empty_body> request(http::verb::get, target, 11);
    request.set(http::field::host, "brfusion-shim");
    http::write(socket, request);
    boost::beast::flat_buffer buffer;
    http::response<http::string_body> response;
    http::read(socket, buffer, response);
    return {static_cast<int>(response.result_int()), json::parse(response.body(), nullptr, false)};
}

std::string text(const json& value) {
    if (value.is_string()) return value.get<std::string>();
    if (value.is_array()) {
        std::string joined;
        for (const auto& item : value) joined += (joined.empty() ? "" : ",") + text(item);
        return joined.empty() ? "-" : joined;
    }
    return value.dump();
}

// A table of `columns` (JSON keys, printed upper-case) over an array of objects.
void print_table(const json& rows, const std::vector<std::string>& columns) {
    std::vector<std::size_t> widths;
    for (const auto& column : columns) widths.push_back(column.size());
    for (const auto& row : rows)
        for (std::size_t i = 0; i < columns.size(); ++i) widths[i] = std::max(widths[i], text(row.value(columns[i], json(""))).size());
    auto line = [&](const std::vector<std::string>& cells) {
        for (std::size_t i = 0; i < cells.size(); ++i) std::cout << cells[i] << std::string(widths[i] - cells[i].size() + 2, ' ');
        std::cout << "\n";
    };
    std::vector<std::string> header;
    for (auto column : columns) {
        for (auto& c : column) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        header.push_back(column);
    }
    line(header);
    for (const auto& row : rows) {
        std::vector<std::string> cells;
        for (const auto& column : columns) cells.push_back(text(row.value(column, json(""))));
        line(cells);
    }
}

}  // namespace

int main(int argc, char** argv) {
    std::string socket_path = "/run/brfusion/shim.sock";
    bool as_json = false;
    std::vector<std::string> words;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "--help") return std::cout << kUsage, 0;
        if (arg == "--version") return std::cout << "brfusionctl " BRFUSION_VERSION "\n", 0;
        if (arg == "--json") as_json = true;
        else if (arg == "--socket" && i + 1 < argc) socket_path = argv[++i];
        else words.push_back(arg);
    }
    std::string target;
    std::vector<std::string> columns;
    if (words == std::vector<std::string>{"vms"}) {
        target = "/v1/vms";
        columns = {"name", "backend", "netns", "networks", "nics", "channel"};
    } else if (words.size() == 3 && words[0] == "vm" && words[1] == "show") {
        target = "/v1/vms/" + words[2];
        columns = {"endpoint", "network", "mac", "ip", "port", "state"};
    } else if (words == std::vector<std::string>{"networks"}) {
        target = "/v1/networks";
        columns = {"name", "subnet", "gateway", "tag", "nat", "mtu", "gateway_port"};
    } else if (!words.empty() && words[0] == "nics" && (words.size() == 1 || (words.size() == 3 && words[1] == "--vm"))) {
        target = words.size() == 3 ? "/v1/nics?vm=" + words[2] : "/v1/nics";
        columns = {"vm", "network", "mac", "ip", "port", "endpoint", "state"};
    } else if (words == std::vector<std::string>{"doctor"}) {
        target = "/v1/doctor";
        columns = {"name", "ok", "detail"};
    } else {
        std::cerr << kUsage;
        return 2;
    }
    try {
        const Reply reply = get(socket_path, target);
        if (reply.body.is_discarded()) throw std::runtime_error("brfusion-shim sent an answer that is not JSON");
        if (reply.status != 200) {
            std::cerr << "brfusionctl: " << reply.body.value("error", reply.body.dump()) << "\n";
            return 1;
        }
        if (as_json) {
            std::cout << reply.body.dump(2) << "\n";
        } else if (target.rfind("/v1/vms/", 0) == 0) {
            std::cout << "VM " << text(reply.body["name"]) << " (" << text(reply.body["backend"]) << " " << text(reply.body["netns"])
                      << "), networks " << text(reply.body["networks"]) << ", channel " << text(reply.body["channel"]) << "\n\n";
            print_table(reply.body["nics"], columns);
        } else if (target == "/v1/doctor") {
            print_table(reply.body["checks"], columns);
        } else {
            print_table(reply.body, columns);
        }
        return target == "/v1/doctor" && !reply.body.value("healthy", false) ? 1 : 0;
    } catch (const std::exception& e) {
        std::cerr << "brfusionctl: " << e.what() << "\n";
        return 1;
    }
}
