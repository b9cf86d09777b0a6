#include "brfusion/shim/upkeep.hpp"

#include <chrono>

namespace brfusion::shim {

Upkeep::Upkeep(NicManager& nics, BackgroundLoop::Log log, std::chrono::milliseconds interval)
    : loop_("upkeep", log, interval, [&nics, log] {
          const auto now = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
          const MaintenanceReport report = nics.maintain(now);
          if (report.rules_restored)
              log("upkeep: restored the port security of " + std::to_string(report.rules_restored) + " port(s)" +
                  (report.switch_restarted ? " after Open vSwitch lost its rules (ovs-vswitchd restarted, or the bridge was made again)" : ""));
          if (report.reservations_expired)
              log("upkeep: " + std::to_string(report.reservations_expired) + " address reservation(s) no NIC took in time went back to their pools");
          if (report.firewall_rewritten) log("upkeep: the firewall is written again (the host's addresses changed, or a write had failed)");
      }),
      finishing_("finishing unfinished NICs", log, interval, [&nics, log] {
          const auto now = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
          const UnfinishedReport report = nics.finish_unfinished(now);
          for (const auto& endpoint : report.finished) log("upkeep: removed NIC " + endpoint + ", which a failed attach or detach had left half made");
          for (const auto& why : report.failed) log("upkeep: cannot remove the half-made NIC " + why + "; retrying later");
      }) {}

}  // namespace brfusion::shim
