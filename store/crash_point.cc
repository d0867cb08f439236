#include "store/crash_point.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <random>

namespace giftcard {
namespace {

struct Config {
  std::string name;  // empty: nothing armed
  uint64_t one_in = 1;
  std::string error;  // why the variable was refused
  std::mutex mu;
  std::mt19937_64 rng;
};

bool parse_u64(std::string_view s, uint64_t* out) {
  if (s.empty() || s.size() > 18) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  *out = v;
  return true;
}

Config& config() {
  static Config* c = [] {
    auto* cfg = new Config;  // never destroyed: points may pass during exit
    const char* env = std::getenv("GIFTCARD_CRASH_POINT");
    if (env == nullptr || *env == '\0') return cfg;
    std::string_view v(env);
    std::string_view name = v.substr(0, v.find(':'));
    uint64_t n = 1;
    if (v.find(':') != std::string_view::npos) {
      std::string_view ratio = v.substr(v.find(':') + 1);
      if (ratio.rfind("1-in-", 0) == 0) ratio.remove_prefix(5);
      if (!parse_u64(ratio, &n) || n == 0) {
        cfg->error = "GIFTCARD_CRASH_POINT: '" + std::string(v) +
                     "': expected <point>:1-in-<N> with N >= 1";
        return cfg;
      }
    }
    bool known = false;
    for (auto p : crash_points()) known = known || p == name;
    if (!known) {
      std::string list;
      for (auto p : crash_points()) list += (list.empty() ? "" : ", ") + std::string(p);
      cfg->error = "GIFTCARD_CRASH_POINT: unknown point '" + std::string(name) +
                   "' (points: " + list + ")";
      return cfg;
    }
    uint64_t seed = 0;
    const char* s = std::getenv("GIFTCARD_CRASH_SEED");
    if (s == nullptr || !parse_u64(s, &seed))
      seed = static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()) ^
             (static_cast<uint64_t>(::getpid()) << 32);
    cfg->rng.seed(seed);
    cfg->name = std::string(name);
    cfg->one_in = n;
    return cfg;
  }();
  return *c;
}

std::atomic<int> g_armed{-1};  // -1 unknown, 0 no, 1 yes

}  // namespace

const std::vector<std::string_view>& crash_points() {
  static const std::vector<std::string_view> points{
      "commit.before_write",    // writer: the group's batch is built, not yet written
      "idempotency.mid_batch",  // store: the idempotency records are in the batch, the rest not yet
      "snapshot.mid_batch",     // store: snapshots are in the batch, not yet written
      "commit.after_write",     // writer: synced, nobody answered yet
      "commit.after_reply",     // writer: answered, subscribers (projections) not fed yet
      "projection.before_apply",  // projection driver: committed events not folded yet
      "checkpoint.before_write",  // projection db: a fold's values and checkpoint not yet written
      "checkpoint.after_write",   // projection db: written, the driver does not know yet
      "passivation.before_quit",  // an idle card or wallet actor queued its snapshot, not yet gone
  };
  return points;
}

std::string crash_point_config_error() { return config().error; }

namespace crash_detail {

bool armed() {
  int a = g_armed.load(std::memory_order_relaxed);
  if (a < 0) {
    a = config().name.empty() ? 0 : 1;
    g_armed.store(a, std::memory_order_relaxed);
  }
  return a == 1;
}

void pass(std::string_view name) {
  Config& c = config();
  if (name != c.name) return;
  {
    std::lock_guard<std::mutex> lock(c.mu);
    if (c.one_in > 1 && c.rng() % c.one_in != 0) return;
  }
  std::string msg = "giftcard: crash point " + c.name + " hit\n";
  ssize_t ignored = ::write(STDERR_FILENO, msg.data(), msg.size());
  (void)ignored;
  ::_exit(kCrashPointExit);
}

}  // namespace crash_detail
}  // namespace giftcard
