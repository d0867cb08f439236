#include "api/rate_limiter.h"

#include <algorithm>
#include <cmath>

namespace giftcard {

bool RateLimiter::take(const std::string& caller, int64_t* retry_after_seconds,
                       Clock::time_point now) {
  if (!enabled()) return true;
  std::lock_guard lock(mu_);
  auto it = buckets_.find(caller);
  if (it == buckets_.end()) {
    if (buckets_.size() >= limit_.max_callers && !lru_.empty()) {
      buckets_.erase(lru_.back());
      lru_.pop_back();
    }
    lru_.push_front(caller);
    it = buckets_.emplace(caller, Bucket{limit_.burst, now, lru_.begin()}).first;
  } else {
    lru_.splice(lru_.begin(), lru_, it->second.lru);
  }
  Bucket& b = it->second;
  double elapsed = std::chrono::duration<double>(now - b.at).count();
  if (elapsed > 0) {
    b.tokens = std::min(limit_.burst, b.tokens + elapsed * limit_.rate);
    b.at = now;
  }
  if (b.tokens >= 1) {
    b.tokens -= 1;
    return true;
  }
  ++limited_;
  *retry_after_seconds = std::max<int64_t>(
      1, static_cast<int64_t>(std::ceil((1 - b.tokens) / limit_.rate)));
  return false;
}

uint64_t RateLimiter::limited() const {
  std::lock_guard lock(mu_);
  return limited_;
}

size_t RateLimiter::callers() const {
  std::lock_guard lock(mu_);
  return buckets_.size();
}

}  // namespace giftcard
