#pragma once
// brfusion-shim's I/O shell: the guest channel server (a unix socket per VM). Its I/O runs on one
// io_context thread. Each VM's requests run on threads of that VM's own (they block on its
// backend, OVS and nft): a VM whose guest hangs an unplug holds its own threads, never another
// VM's. Responses are written back in completion order. The admin API is a brfusion::HttpServer.

#include <utility>  // before asio: Boost + GCC 12 + C++20 need it

#include "brfusion/common/http_server.hpp"
#include "brfusion/shim/nic_manager.hpp"

#include <boost/asio.hpp>

#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace brfusion::shim {

class VmChannel;

// Thread-safe: listen and stop may be called from any thread.
class GuestChannelServer {
public:
    GuestChannelServer(boost::asio::io_context& io, NicManager& nics);
    ~GuestChannelServer();
    // Accepts connections on vm.channel; each speaks as `vm`. Throws if it cannot listen there.
    void listen(const VmConfig& vm);
    // Stops serving `vm`: closes its socket and its open connections, and waits for the
    // requests it was handling (not on the io thread).
    void stop(const std::string& vm);
    // Stops serving every VM (on the io thread, or after it stopped); their threads are waited
    // for by the destructor.
    void close();

private:
    boost::asio::io_context& io_;
    NicManager& nics_;
    std::mutex mutex_;
    std::map<std::string, std::shared_ptr<VmChannel>> channels_;  // by VM
    std::map<std::string, std::shared_ptr<VmChannel>> closed_;    // by close(): their threads are joined last
};

}  // namespace brfusion::shim
