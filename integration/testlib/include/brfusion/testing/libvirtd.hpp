#pragma once
// Libvirtd: a libvirtd (with its virtlogd) for one test, run inside `netns`: libvirt opens a
// NIC's TAP by name, so it must live where the shim makes TAPs (the test's host netns). It is the
// machine's system instance (qemu:///system, /run/libvirt); missing_prerequisite("libvirt") says
// when one runs already. Constructed = answering; destroyed = stopped.

#include "brfusion/testing/daemon.hpp"

#include <string>

namespace brfusion::testing {

class Libvirtd {
public:
    // Throws std::runtime_error with its log if it does not answer within 30 s.
    Libvirtd(const std::string& netns, const std::string& dir);
    ~Libvirtd();
    Libvirtd(const Libvirtd&) = delete;
    Libvirtd& operator=(const Libvirtd&) = delete;

    static constexpr const char* kUri = "qemu:///system";

private:
    Daemon virtlogd_, libvirtd_;
};

}  // namespace brfusion::testing
