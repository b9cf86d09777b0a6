// http_call over a real unix socket: an answer, a server that never answers (the timeout), no server.

#include "brfusion/common/http_client.hpp"
#include "brfusion/common/http_server.hpp"

#include <catch2/catch.hpp>

#include <thread>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

using namespace brfusion;

TEST_CASE("http client: an answer - a server that never answers is given up after the timeout - no server is named") {
    const std::string path = "/tmp/brfusion-http-client-test-" + std::to_string(::getpid()) + ".sock";
    SECTION("an answer") {
        boost::asio::io_context io;
        boost::asio::thread_pool workers(1);
        HttpServer server(io, workers, path, 0600, [](const HttpRequest& request) { return HttpAnswer{200, "{\"path\":\"" + request.target + "\"}"}; },
                          "error");
        std::thread io_thread([&] { io.run(); });
        const HttpReply reply = http_call(path, "the test server", "GET", "/networks", "", std::chrono::milliseconds(5000));
        CHECK(reply.status == 200);
        CHECK(reply.body == "{\"path\":\"/networks\"}");
        io.stop();
        io_thread.join();
    }
    SECTION("a server that accepts and never answers") {
        const int listener = ::socket(AF_UNIX, SOCK_STREAM, 0);
        sockaddr_un address{};
        address.sun_family = AF_UNIX;
        path.copy(address.sun_path, sizeof(address.sun_path) - 1);
        ::unlink(path.c_str());
        REQUIRE(::bind(listener, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) == 0);
        REQUIRE(::listen(listener, 1) == 0);  // the kernel accepts the connection; nobody reads it
        CHECK_THROWS_WITH(http_call(path, "the silent server", "GET", "/networks", "", std::chrono::milliseconds(200)),
                          "the silent server at " + path + " did not answer GET /networks within 200 ms");
        ::close(listener);
    }
    SECTION("no server") {
        ::unlink(path.c_str());
        CHECK_THROWS_WITH(http_call(path, "nobody", "GET", "/networks", "", std::chrono::milliseconds(200)),
                          Catch::StartsWith("cannot reach nobody at " + path));
    }
    ::unlink(path.c_str());
}
