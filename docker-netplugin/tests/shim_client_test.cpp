// StreamShimChannel against a scripted shim on a real unix socket: answers out of order, errors,
// a shim that goes away mid-call and comes back, one that never answers.

#include "brfusion/plugin/error.hpp"
#include "brfusion/plugin/shim_client.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <filesystem>
#include <functional>
#include <mutex>
#include <thread>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

using namespace brfusion;
using namespace brfusion::plugin;
using nlohmann::json;

namespace {

// Accepts one connection at a time on `path` and answers each request line with `script(request)`
// (nullopt: no answer; a "close" method closes the connection).
class ScriptedShim {
public:
    using Script = std::function<std::optional<json>(const json& request)>;
    ScriptedShim(std::string path, Script script) : path_(std::move(path)), script_(std::move(script)) {
        std::filesystem::remove(path_);
        listener_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un address{};
        address.sun_family = AF_UNIX;
        std::strncpy(address.sun_path, path_.c_str(), sizeof(address.sun_path) - 1);
        REQUIRE(::bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0);
        REQUIRE(::listen(listener_, 4) == 0);
        thread_ = std::thread([this] { serve(); });
    }
    ~ScriptedShim() {
        ::shutdown(listener_, SHUT_RDWR);
        {
            std::lock_guard lock(mutex_);
            if (connection_ >= 0) ::shutdown(connection_, SHUT_RDWR);
        }
        thread_.join();
        ::close(listener_);
        std::filesystem::remove(path_);
    }
    int connections() const { return connections_; }

private:
    void serve() {
        for (;;) {
            const int fd = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
            if (fd < 0) return;
            ++connections_;
            {
                std::lock_guard lock(mutex_);
                connection_ = fd;
            }
            std::string buffer;
            char chunk[4096];
            bool open = true;
            while (open) {
                const ssize_t n = ::read(fd, chunk, sizeof(chunk));
                if (n <= 0) break;
                buffer.append(chunk, static_cast<std::size_t>(n));
                std::vector<std::string> answers;
                for (auto newline = buffer.find('\n'); newline != std::string::npos; newline = buffer.find('\n')) {
                    const json request = json::parse(buffer.substr(0, newline));
                    buffer.erase(0, newline + 1);
                    if (request["method"] == "close") {
                        open = false;
                        break;
                    }
                    if (auto answer = script_(request)) answers.push_back(answer->dump() + "\n");
                }
                // Answer in reverse order: the client must match responses by id.
                for (auto it = answers.rbegin(); it != answers.rend(); ++it) REQUIRE(::write(fd, it->data(), it->size()) == static_cast<ssize_t>(it->size()));
            }
            {
                std::lock_guard lock(mutex_);
                connection_ = -1;
            }
            ::close(fd);
        }
    }
    std::string path_;
    Script script_;
    int listener_ = -1;
    std::mutex mutex_;
    int connection_ = -1;
    std::atomic<int> connections_ = 0;
    std::thread thread_;
};

std::string socket_path() { return "/tmp/brfusion-channel-test-" + std::to_string(::getpid()) + ".sock"; }

std::optional<json> echo(const json& request) {
    if (request["method"] == "silent") return std::nullopt;
    if (request["method"] == "fail")
        return guest::make_error(request["id"], guest::kConflict, "host port 8080/tcp is already published", "conflict");
    return guest::make_result(request["id"], {{"method", request["method"]}, {"params", request["params"]}});
}

}  // namespace

TEST_CASE("shim channel: concurrent calls each get their own answer - errors keep the shim's message and kind") {
    ScriptedShim shim(socket_path(), echo);
    StreamShimChannel channel("unix:" + socket_path(), std::chrono::seconds(10));
    std::vector<std::thread> callers;
    std::atomic<int> mismatches = 0;
    for (int i = 0; i < 16; ++i)
        callers.emplace_back([&, i] {
            const json result = channel.call("m" + std::to_string(i), {{"n", i}});
            if (result != json({{"method", "m" + std::to_string(i)}, {"params", {{"n", i}}}})) ++mismatches;
        });
    for (auto& caller : callers) caller.join();
    CHECK(mismatches == 0);
    CHECK(shim.connections() == 1);
    try {
        channel.call("fail", json::object());
        FAIL("no error");
    } catch (const PluginError& e) {
        CHECK(e.kind() == ErrorKind::Conflict);
        CHECK(std::string(e.what()) == "host port 8080/tcp is already published");
    }
}

TEST_CASE("shim channel: no shim - a clear Unavailable at once - then it reconnects when the shim is back") {
    StreamShimChannel channel("unix:" + socket_path(), std::chrono::seconds(10));
    try {
        channel.call("nic.list", json::object());
        FAIL("no error");
    } catch (const PluginError& e) {
        CHECK(e.kind() == ErrorKind::Unavailable);
        CHECK(std::string(e.what()).starts_with("cannot reach brfusion-shim at unix:" + socket_path() + ": "));
    }
    {
        ScriptedShim shim(socket_path(), echo);
        CHECK(channel.call("a", json::object())["method"] == "a");
        // The shim goes away (restarts) with a call in flight: that call fails, the next reconnects.
        CHECK_THROWS_WITH(channel.call("close", json::object()), Catch::Contains("closed (did the shim restart?)"));
    }
    ScriptedShim restarted(socket_path(), echo);
    CHECK(channel.call("b", json::object())["method"] == "b");
    CHECK(restarted.connections() == 1);
}

TEST_CASE("shim channel: a shim that never answers - Unavailable after the timeout - later calls still work") {
    ScriptedShim shim(socket_path(), echo);
    StreamShimChannel channel("unix:" + socket_path(), std::chrono::milliseconds(100));
    CHECK_THROWS_WITH(channel.call("silent", json::object()), "brfusion-shim at unix:" + socket_path() + " did not answer silent within 100 ms; the host may be overloaded");
    CHECK(channel.call("c", json::object())["method"] == "c");
}

TEST_CASE("shim channel: addresses are unix - virtio-serial or vsock") {
    CHECK_THROWS_WITH(StreamShimChannel("tcp:1.2.3.4:5", std::chrono::seconds(1)),
                      "channel tcp:1.2.3.4:5 is not unix:PATH, virtio-serial:NAME or vsock:CID:PORT");
    StreamShimChannel serial("virtio-serial:org.brfusion.test.none", std::chrono::seconds(1));
    CHECK_THROWS_WITH(serial.call("x", json::object()), Catch::Contains("this VM has no virtio-serial port named org.brfusion.test.none"));
}
