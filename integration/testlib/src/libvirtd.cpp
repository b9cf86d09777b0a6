#include "brfusion/testing/libvirtd.hpp"

#include "brfusion/testing/command.hpp"

#include <filesystem>
#include <stdexcept>

namespace brfusion::testing {

Libvirtd::Libvirtd(const std::string& netns, const std::string& dir) {
    std::filesystem::create_directories(dir);
    virtlogd_.start({"ip", "netns", "exec", netns, "virtlogd"}, dir + "/virtlogd.log");
    libvirtd_.start({"ip", "netns", "exec", netns, "libvirtd"}, dir + "/libvirtd.log");
    if (!wait_until([] { return run(std::string("virsh -c ") + kUri + " version").exit_code == 0; }, std::chrono::seconds(30)))
        throw std::runtime_error("libvirtd did not answer within 30 s:\n" + libvirtd_.log());
}

Libvirtd::~Libvirtd() {
    libvirtd_.stop();
    virtlogd_.stop();
}

}  // namespace brfusion::testing
