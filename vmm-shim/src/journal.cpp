#include "brfusion/shim/journal.hpp"

#include "brfusion/shim/error.hpp"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fcntl.h>
#include <unistd.h>

namespace brfusion::shim {

using nlohmann::json;

const char* phase_name(NicPhase phase) {
    switch (phase) {
    case NicPhase::Attaching: return "attaching";
    case NicPhase::Attached: return "attached";
    case NicPhase::Detaching: return "detaching";
    }
    return "?";
}

namespace {

NicPhase parse_phase(const std::string& name) {
    if (name == "attaching") return NicPhase::Attaching;
    if (name == "attached") return NicPhase::Attached;
    if (name == "detaching") return NicPhase::Detaching;
    throw std::invalid_argument("unknown NIC phase " + name);
}

[[noreturn]] void io_failure(const std::string& what, const std::string& path) {
    throw ShimError(ErrorKind::Backend, what + " " + path + ": " + std::strerror(errno));
}

void write_durably(const std::string& path, const std::string& text) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) io_failure("cannot create", path);
    std::size_t written = 0;
    while (written < text.size()) {
        const ssize_t n = ::write(fd, text.data() + written, text.size() - written);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            ::close(fd);
            io_failure("cannot write", path);
        }
        written += static_cast<std::size_t>(n);
    }
    if (::fsync(fd) != 0) {
        ::close(fd);
        io_failure("cannot fsync", path);
    }
    ::close(fd);
}

}  // namespace

Journal::Journal(std::string directory) : directory_(std::move(directory)), path_(directory_ + "/state.json") {}

ShimState Journal::load() const {
    std::ifstream file(path_);
    if (!file) {
        if (!std::filesystem::exists(path_)) return {};
        io_failure("cannot read", path_);
    }
    std::stringstream text;
    text << file.rdbuf();
    try {
        const json state = json::parse(text.str());
        ShimState result;
        result.ipam = Ipam::from_json(state.at("ipam"));
        for (const auto& nic : state.at("nics")) {
            auto ip = Ipv4::parse(nic.at("ip").get<std::string>());
            if (!ip) throw std::invalid_argument("bad address " + nic.at("ip").dump());
            NicRecord record{nic.at("endpoint"), nic.at("vm"),      nic.at("network"), nic.at("mac"), *ip,
                             nic.at("host_if"),  parse_phase(nic.at("phase")), nic.value("published", json::array()).get<std::vector<PublishedPort>>()};
            result.nics[record.endpoint] = std::move(record);
        }
        for (const auto& network : state.value("added_networks", json::array())) result.added_networks.push_back(parse_network(network));
        for (const auto& vm : state.value("added_vms", json::array())) result.added_vms.push_back(parse_vm(vm));
        return result;
    } catch (const std::exception& e) {
        throw ShimError(ErrorKind::Backend, "the state file " + path_ + " is corrupt (" + e.what() +
                                                "); move it away to start from scratch, then let reconcile remove what it finds in OVS");
    }
}

void Journal::save(const ShimState& state) {
    json nics = json::array();
    for (const auto& [endpoint, nic] : state.nics)
        nics.push_back({{"endpoint", nic.endpoint}, {"vm", nic.vm}, {"network", nic.network}, {"mac", nic.mac}, {"ip", nic.ip.str()},
                        {"host_if", nic.host_if}, {"phase", phase_name(nic.phase)}, {"published", nic.published}});
    json networks = json::array(), vms = json::array();
    for (const auto& network : state.added_networks) networks.push_back(to_json(network));
    for (const auto& vm : state.added_vms) vms.push_back(to_json(vm));
    const json document = {{"version", 1}, {"ipam", state.ipam.to_json()}, {"nics", nics}, {"added_networks", networks}, {"added_vms", vms}};
    std::error_code ec;
    std::filesystem::create_directories(directory_, ec);
    if (ec) throw ShimError(ErrorKind::Backend, "cannot create the state directory " + directory_ + ": " + ec.message());
    const std::string temporary = path_ + ".tmp";
    write_durably(temporary, document.dump(1));
    if (::rename(temporary.c_str(), path_.c_str()) != 0) io_failure("cannot replace", path_);
    // The rename is durable only once the directory entry is.
    const int dir = ::open(directory_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir >= 0) {
        ::fsync(dir);
        ::close(dir);
    }
}

}  // namespace brfusion::shim
