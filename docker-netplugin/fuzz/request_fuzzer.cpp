// libFuzzer target: arbitrary bodies on every plugin route. The driver must answer every input
// with a status and a JSON body, and never crash, hang or leak (ASan/UBSan are on).
//
// Input: first byte picks the route, the rest is the body. Run it for longer: integration/fuzz plugin-requests [SECONDS].

#include "brfusion/plugin/driver.hpp"
#include "brfusion/plugin/error.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <unistd.h>

using namespace brfusion;
using namespace brfusion::plugin;
using nlohmann::json;

namespace {

// A shim that says yes, so that requests get past the first call and into the driver's logic.
struct AgreeableShim : ShimChannel {
    json call(const std::string& method, const json& params) override {
        if (method == guest::kPools) return {{"pools", {{{"network", "lab"}, {"subnet", "198.51.100.0/24"}, {"gateway", "198.51.100.1"}, {"mtu", 1500}}}}};
        if (method == guest::kRequestAddress) return {{"ip", "198.51.100.7"}, {"prefix_length", 24}, {"gateway", "198.51.100.1"}};
        if (method == guest::kAttach)
            return {{"endpoint", "0123456789ab"}, {"mac", "02:00:00:00:00:07"}, {"guest_if", ""}, {"ip", "198.51.100.7"},
                    {"prefix_length", 24}, {"gateway", "198.51.100.1"}, {"mtu", 1500}};
        if (method == guest::kPublish) return {{"ports", params.at("ports")}};
        if (method == guest::kList) return {{"nics", json::array()}};
        return json::object();
    }
};

struct NoLinks : GuestLinks {
    std::vector<LinkInfo> list() override { return {{2, "eth1", "02:00:00:00:00:07", 1500, true}}; }
    std::optional<LinkInfo> get(const std::string&) override { return std::nullopt; }
    std::vector<std::string> names_at_pci(const std::string&) override { return {}; }
    void prepare(int, const LinkSetup&) override {}
};

const char* const kRoutes[] = {
    "/Plugin.Activate",          "/NetworkDriver.GetCapabilities", "/NetworkDriver.CreateNetwork", "/NetworkDriver.DeleteNetwork",
    "/NetworkDriver.CreateEndpoint", "/NetworkDriver.EndpointOperInfo", "/NetworkDriver.DeleteEndpoint", "/NetworkDriver.Join",
    "/NetworkDriver.Leave",      "/NetworkDriver.ProgramExternalConnectivity", "/NetworkDriver.RevokeExternalConnectivity",
    "/IpamDriver.RequestPool",   "/IpamDriver.ReleasePool",     "/IpamDriver.RequestAddress",  "/IpamDriver.ReleaseAddress",
    "/IpamDriver.GetCapabilities", "/Nope.Nothing"};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const std::string dir = "/tmp/brfusion-plugin-fuzz-" + std::to_string(::getpid());
    static AgreeableShim shim;
    static NoLinks links;
    static PluginStore store(dir);
    static Driver driver(shim, links, store, {std::chrono::milliseconds(0), std::chrono::milliseconds(0)});
    if (size == 0) return 0;
    const std::string path = kRoutes[data[0] % std::size(kRoutes)];
    const std::string body(reinterpret_cast<const char*>(data + 1), size - 1);
    const HttpAnswer answer = driver.handle({data[0] & 0x80 ? "GET" : "POST", path, body});
    if (answer.status < 200 || answer.status > 599 || json::parse(answer.body, nullptr, false).is_discarded()) std::abort();
    return 0;
}
