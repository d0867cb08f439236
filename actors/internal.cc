#include "actors/internal.h"

#include <algorithm>
#include <atomic>
#include <random>

namespace giftcard {

Micros ShopContext::now() const { return config.clock ? config.clock() : now_micros(); }

std::chrono::milliseconds ShopContext::tick() const {
  auto half = std::max(config.passivate_after / 2, std::chrono::milliseconds(1));
  return std::min(config.tick, half);
}

std::string new_purchase_id() {
  static const std::string prefix = [] {
    std::random_device rd;
    uint64_t r = (static_cast<uint64_t>(rd()) << 32) ^ rd();
    char buf[24];
    std::snprintf(buf, sizeof buf, "p_%016llx_", static_cast<unsigned long long>(r));
    return std::string(buf);
  }();
  static std::atomic<uint64_t> counter{0};
  return prefix + std::to_string(++counter);
}

}  // namespace giftcard
