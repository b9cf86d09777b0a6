#pragma once
// brfusion-shim's I/O shell: the guest channel server (a unix socket per VM) and the admin HTTP
// server. Both run on one io_context thread; guest requests run on a worker pool (they block on
// the backends and OVS) and their responses are written back in completion order.

#include <utility>  // before asio: Boost + GCC 12 + C++20 need it

#include "brfusion/shim/admin_api.hpp"
#include "brfusion/shim/nic_manager.hpp"

#include <boost/asio.hpp>

#include <memory>
#include <string>
#include <vector>

namespace brfusion::shim {

// Creates a listening unix socket at `path` with `mode`, replacing a stale socket file. Throws
// std::runtime_error naming the path.
boost::asio::local::stream_protocol::acceptor listen_unix(boost::asio::io_context& io, const std::string& path, unsigned mode);

class GuestChannelServer {
public:
    GuestChannelServer(boost::asio::io_context& io, boost::asio::thread_pool& workers, NicManager& nics);
    // Accepts connections on vm.channel; each speaks as `vm`.
    void listen(const VmConfig& vm);
    void close();

private:
    void accept(std::size_t index);
    boost::asio::io_context& io_;
    boost::asio::thread_pool& workers_;
    NicManager& nics_;
    struct Listener {
        std::string vm;
        std::string path;
        boost::asio::local::stream_protocol::acceptor acceptor;
    };
    std::vector<std::unique_ptr<Listener>> listeners_;
};

class AdminServer {
public:
    AdminServer(boost::asio::io_context& io, NicManager& nics, Doctor doctor, const std::string& path);
    void close();

private:
    void accept();
    NicManager& nics_;
    Doctor doctor_;
    std::string path_;
    boost::asio::local::stream_protocol::acceptor acceptor_;
};

}  // namespace brfusion::shim
