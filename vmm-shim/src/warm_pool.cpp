#include "brfusion/shim/warm_pool.hpp"

namespace brfusion::shim {

WarmPool::WarmPool(NicManager& nics, BackgroundLoop::Log log, std::chrono::milliseconds interval)
    : nics_(nics), loop_("warm pool", std::move(log), interval, [this] {
          while (nics_.balance_warm_pool()) {
          }
      }) {
    nics_.on_spare_claimed([this] { loop_.wake(); });
}

WarmPool::~WarmPool() { nics_.on_spare_claimed(nullptr); }

}  // namespace brfusion::shim
