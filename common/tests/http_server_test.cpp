// HttpServer over a real unix socket: an answer the client is no longer there to take runs its
// `undelivered` action; one that is delivered does not.

#include "brfusion/common/http_server.hpp"

#include <catch2/catch.hpp>

#include <future>
#include <thread>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

using namespace brfusion;

namespace {

int connect_to(const std::string& path) {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    path.copy(address.sun_path, sizeof(address.sun_path) - 1);
    REQUIRE(::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) == 0);
    return fd;
}

void send_request(int fd) {
    const std::string request = "POST /call HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}";
    REQUIRE(::write(fd, request.data(), request.size()) == static_cast<ssize_t>(request.size()));
}

}  // namespace

TEST_CASE("http server: an answer whose client went away runs its undelivered action - a delivered one does not") {
    const std::string path = "/tmp/brfusion-http-test-" + std::to_string(::getpid()) + ".sock";
    boost::asio::io_context io;
    boost::asio::thread_pool workers(2);
    std::promise<void> client_gone_promise;
    std::shared_future<void> client_gone = client_gone_promise.get_future().share();
    std::promise<int> undelivered;
    std::atomic<int> calls{0};
    HttpServer server(io, workers, path, 0600, [&](const HttpRequest&) {
        const int call = ++calls;
        if (call == 1) client_gone.wait();  // the first client hangs up while its request runs
        return HttpAnswer{200, "{}", [&undelivered, call] { undelivered.set_value(call); }};
    }, "error");
    std::thread io_thread([&] { io.run(); });

    const int gone = connect_to(path);
    send_request(gone);
    while (calls == 0) std::this_thread::yield();
    ::close(gone);
    client_gone_promise.set_value();
    auto undelivered_call = undelivered.get_future();
    REQUIRE(undelivered_call.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
    CHECK(undelivered_call.get() == 1);

    const int staying = connect_to(path);  // this one reads its answer: nothing is undone
    send_request(staying);
    char reply[512];
    CHECK(::read(staying, reply, sizeof(reply)) > 0);
    ::close(staying);
    CHECK(calls == 2);

    boost::asio::post(io, [&] { server.close(); });
    io.stop();
    io_thread.join();
    workers.join();
}
