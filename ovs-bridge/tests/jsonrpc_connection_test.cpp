// JsonRpcConnection against a scripted fake peer on a unix socket: the behaviour real OVS does
// not always exercise (echo requests, replies out of order, a peer that hangs up).

#include "jsonrpc_connection.hpp"

#include <catch2/catch.hpp>

#include <thread>
#include <unistd.h>

using namespace brfusion::ovs;
using nlohmann::json;
namespace asio = boost::asio;
using local = asio::local::stream_protocol;

namespace {

// Blocking peer helpers, run on the fake server's own thread.
json read_message(local::socket& socket, brfusion::JsonStreamFramer& framer) {
    for (;;) {
        if (auto message = framer.next()) return *message;
        std::array<char, 4096> buffer{};
        const std::size_t n = socket.read_some(asio::buffer(buffer));
        framer.append(std::string_view(buffer.data(), n));
    }
}
void write_message(local::socket& socket, const json& message) { asio::write(socket, asio::buffer(message.dump())); }

}  // namespace

TEST_CASE("JSON-RPC: out-of-order replies match their requests - echo is answered - notifications arrive - a hang-up reconnects") {
    const std::string path = "/tmp/brfusion-jsonrpc-test-" + std::to_string(::getpid()) + ".sock";
    ::unlink(path.c_str());
    asio::io_context server_io;
    local::acceptor acceptor(server_io, local::endpoint(path));
    json echo_reply;
    std::thread server([&] {
        local::socket socket(server_io);
        acceptor.accept(socket);
        brfusion::JsonStreamFramer framer;
        const json first = read_message(socket, framer), second = read_message(socket, framer);
        write_message(socket, {{"id", second["id"]}, {"result", "second"}, {"error", nullptr}});
        write_message(socket, {{"id", first["id"]}, {"result", nullptr}, {"error", "refused"}});
        write_message(socket, {{"method", "echo"}, {"params", {"ping"}}, {"id", "echo"}});
        echo_reply = read_message(socket, framer);
        write_message(socket, {{"method", "update2"}, {"params", {"m", {{"T", {}}}}}, {"id", nullptr}});
        socket.close();  // hang up; the client must come back
        local::socket again(server_io);
        acceptor.accept(again);
    });

    asio::io_context io;
    int connects = 0;
    std::vector<std::string> disconnects, notifications, outcomes;
    JsonRpcConnection connection(
        io, path, {std::chrono::milliseconds(1), std::chrono::milliseconds(10)},
        {[&] {
             if (++connects > 1) return;
             connection.call("first", json::array(), [&](const json*, const OvsError* error) { outcomes.push_back(error ? error->what() : "ok"); });
             connection.call("second", json::array(), [&](const json* result, const OvsError*) { outcomes.push_back(result->get<std::string>()); });
         },
         [&](const std::string& why) { disconnects.push_back(why); },
         [&](const std::string& method, const json&) { notifications.push_back(method); }});
    connection.start();
    for (int i = 0; i < 500 && connects < 2; ++i) io.run_for(std::chrono::milliseconds(10));
    connection.stop();
    io.run_for(std::chrono::milliseconds(10));
    server.join();
    ::unlink(path.c_str());

    REQUIRE(outcomes.size() == 2);
    CHECK(outcomes[0] == "second");
    CHECK_THAT(outcomes[1], Catch::Contains("ovsdb-server refused the request: refused"));
    CHECK(echo_reply["id"] == "echo");
    CHECK(echo_reply["result"] == json::array({"ping"}));
    CHECK(notifications == std::vector<std::string>{"update2"});
    CHECK(connects >= 2);  // reconnected after the hang-up (and again when the peer thread ends)
    REQUIRE_FALSE(disconnects.empty());
    CHECK(disconnects[0] == "ovsdb-server closed the connection");
}

TEST_CASE("JSON-RPC: a call while disconnected fails at once with Unreachable") {
    asio::io_context io;
    JsonRpcConnection connection(io, "/nonexistent/brfusion.sock", {}, {[] {}, [](const std::string&) {}, [](const std::string&, const json&) {}});
    std::optional<ErrorKind> kind;
    connection.call("x", json::array(), [&](const json*, const OvsError* error) { kind = error->kind(); });
    io.run_for(std::chrono::milliseconds(50));
    CHECK(kind == ErrorKind::Unreachable);
}
