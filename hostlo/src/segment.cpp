#include "brfusion/hostlo/segment.hpp"

#include "brfusion/hostlo/backends/ovs_segment.hpp"
#include "brfusion/hostlo/error.hpp"

namespace brfusion::hostlo {

std::unique_ptr<Segment> make_segment(const std::string& backend, ovs::OvsClient& ovs, const std::string& ovsdb_socket) {
    if (backend == "ovs") return std::make_unique<OvsSegment>(ovs, ovsdb_socket);
    if (backend == "kmod")
        throw HostloError(ErrorKind::BadRequest, "Hostlo backend kmod needs the hostlo kernel module (kmod/), which is not built yet; use \"ovs\"");
    throw HostloError(ErrorKind::BadRequest, "unknown Hostlo backend '" + backend + "'; use \"ovs\"");
}

}  // namespace brfusion::hostlo
