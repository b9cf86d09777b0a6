#pragma once
// brfusion-shim's I/O shell: the guest channel server (a unix socket per VM). Its I/O runs on one
// io_context thread; requests run on a worker pool (they block on the backends, OVS and nft) and
// their responses are written back in completion order. The admin API is a brfusion::HttpServer.

#include <utility>  // before asio: Boost + GCC 12 + C++20 need it

#include "brfusion/common/http_server.hpp"
#include "brfusion/shim/nic_manager.hpp"

#include <boost/asio.hpp>

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace brfusion::shim {

class GuestSession;

// Thread-safe: listen and stop may be called from any thread.
class GuestChannelServer {
public:
    GuestChannelServer(boost::asio::io_context& io, boost::asio::thread_pool& workers, NicManager& nics);
    // Accepts connections on vm.channel; each speaks as `vm`. Throws if it cannot listen there.
    void listen(const VmConfig& vm);
    // Stops serving `vm`: closes its socket and its open connections.
    void stop(const std::string& vm);
    void close();

private:
    struct Listener {
        std::string vm;
        std::string path;
        boost::asio::local::stream_protocol::acceptor acceptor;
        std::vector<std::weak_ptr<GuestSession>> sessions;  // touched on the io thread only
    };
    void accept(std::shared_ptr<Listener> listener);
    void shut(std::shared_ptr<Listener> listener);
    boost::asio::io_context& io_;
    boost::asio::thread_pool& workers_;
    NicManager& nics_;
    std::mutex mutex_;
    std::map<std::string, std::shared_ptr<Listener>> listeners_;  // by VM
};

}  // namespace brfusion::shim
