#include "brfusion/shim/backend.hpp"

#include "brfusion/shim/backends/libvirt_backend.hpp"
#include "brfusion/shim/backends/netns_backend.hpp"
#include "brfusion/shim/backends/qmp_backend.hpp"
#include "brfusion/shim/error.hpp"

#include <cstdio>

namespace brfusion::shim {

std::string pci_address_behind_port(int bus) {
    char address[16];
    std::snprintf(address, sizeof(address), "0000:%02x:00.0", bus & 0xff);
    return address;
}

std::unique_ptr<VmmBackend> make_backend(const VmConfig& vm, const BackendContext& context) {
    if (vm.backend == "netns") return std::make_unique<NetnsBackend>(vm.netns, context.host_netns, context.checksum_offload);
    if (vm.backend == "qmp") return std::make_unique<QmpBackend>(vm.name, vm.qmp, context.host_netns);
    if (vm.backend == "libvirt") return std::make_unique<LibvirtBackend>(vm.name, vm.libvirt_uri, vm.domain, context.host_netns);
    throw ShimError(ErrorKind::BadRequest, "VM " + vm.name + ": backend '" + vm.backend + "' is not supported (supported: netns, qmp, libvirt)");
}

}  // namespace brfusion::shim
