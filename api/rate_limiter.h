// Token buckets per caller (a bearer token, or a peer address for requests
// without a valid token): `rate` requests a second on average, bursts up to
// `burst`. A caller over its rate is told how long to wait (HTTP 429 with
// Retry-After). Thread-safe; memory is bounded: at most `max_callers`
// buckets, the least recently used forgotten first (a forgotten caller starts
// with a full bucket, which only ever errs towards letting it through).
#pragma once

#include <chrono>
#include <cstdint>
#include <list>
#include <mutex>
#include <string>
#include <unordered_map>

namespace giftcard {

struct RateLimit {
  double rate = 0;   // requests per second; 0: no limit
  double burst = 0;  // bucket size
  size_t max_callers = 65536;
};

class RateLimiter {
 public:
  using Clock = std::chrono::steady_clock;
  explicit RateLimiter(RateLimit limit) : limit_(limit) {}

  bool enabled() const { return limit_.rate > 0; }
  // Takes one request from `caller`'s bucket. True if allowed; else false
  // and *retry_after_seconds (>= 1) says when one is available again.
  bool take(const std::string& caller, int64_t* retry_after_seconds,
            Clock::time_point now = Clock::now());
  uint64_t limited() const;
  size_t callers() const;

 private:
  struct Bucket {
    double tokens = 0;
    Clock::time_point at;
    std::list<std::string>::iterator lru;
  };
  RateLimit limit_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Bucket> buckets_;  // GUARDED_BY(mu_)
  std::list<std::string> lru_;                       // most recent first
  uint64_t limited_ = 0;
};

}  // namespace giftcard
