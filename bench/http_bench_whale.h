// giftcard-http-bench (http_bench.cc): the side loads of `whale` (readers
// walking one user's long purchase history, a card poll) and `wrk` (Debian's
// wrk with a Lua script, as a cross-check of the generator).
#pragma once

#include "bench/http_bench_slow.h"

namespace giftcard_http_bench {

// ------------------------------------------------------------------ whale readers

// The side load of `whale`: `readers` connections walking the whale's
// purchase pages in a loop, and one connection polling GET /api/cards/<card>.
// Latencies are kept only inside the measured window (window_start() to
// window_end(), which also stops everything).
class WhaleSide {
 public:
  WhaleSide(HostPort at, int readers, int64_t page, std::string card, int card_poll_ms)
      : at_(std::move(at)), page_(page), poll_ms_(card_poll_ms), readers_(static_cast<size_t>(readers)) {
    card_.id = std::move(card);
  }
  ~WhaleSide() { stop(); }

  void start() {
    for (size_t i = 0; i < readers_.size(); ++i) threads_.emplace_back([this, i] { read(readers_[i]); });
    threads_.emplace_back([this] { poll_card(); });
  }
  void window_start() {
    t0_ = Clock::now();
    measuring_.store(true, std::memory_order_release);
  }
  void window_end() {
    measuring_.store(false, std::memory_order_release);
    t1_ = Clock::now();
    stop();
  }
  void stop() {
    stop_ = true;
    for (auto& t : threads_) t.join();
    threads_.clear();
  }

  // After window_end(): the report, and problems (transport errors, bad answers).
  void report(json* out, std::vector<std::string>* problems) {
    const double window = secs(t1_ - t0_);
    std::vector<uint32_t> lat;
    uint64_t pages = 0, walks = 0, busy = 0, errors = 0, bytes = 0;
    std::string last_error;
    for (auto& r : readers_) {
      lat.insert(lat.end(), r.lat_us.begin(), r.lat_us.end());
      pages += r.pages;
      walks += r.walks;
      busy += r.busy;
      errors += r.errors;
      bytes += r.bytes;
      if (!r.last_error.empty()) last_error = r.last_error;
    }
    std::sort(lat.begin(), lat.end());
    json rd = {{"readers", readers_.size()},
               {"page_limit", page_},
               {"pages", pages},
               {"pages_per_s", window > 0 ? round_to(static_cast<double>(pages) / window, 0.1) : 0.0},
               {"walks_completed", walks},
               {"mb_per_s", window > 0 ? round_to(static_cast<double>(bytes) / 1e6 / window, 0.1) : 0.0},
               {"busy_503", busy},
               {"errors", errors},
               {"page_p50_ms", percentile_ms(lat, 0.50)},
               {"page_p99_ms", percentile_ms(lat, 0.99)},
               {"page_max_ms", lat.empty() ? 0.0 : lat.back() / 1000.0}};
    (*out)["whale_readers"] = rd;
    std::sort(card_.lat_us.begin(), card_.lat_us.end());
    (*out)["card_reads"] = {{"reads", card_.lat_us.size()},
                            {"errors", card_.errors},
                            {"p50_ms", percentile_ms(card_.lat_us, 0.50)},
                            {"p99_ms", percentile_ms(card_.lat_us, 0.99)},
                            {"max_ms", card_.lat_us.empty() ? 0.0 : card_.lat_us.back() / 1000.0}};
    // (A walk of a 45,588-purchase history is 46 pages: with 40 readers
    // sharing the server a reader may finish none within the window.)
    if (errors) problems->push_back(std::to_string(errors) + " whale page read(s) failed: " + last_error);
    if (card_.errors) problems->push_back(std::to_string(card_.errors) + " GET /api/cards/" + card_.id +
                                          " failed: " + card_.last_error);
  }

 private:
  struct Reader {
    std::vector<uint32_t> lat_us;
    uint64_t pages = 0, walks = 0, busy = 0, errors = 0, bytes = 0;
    std::string last_error;
  };
  struct CardPoll {
    std::vector<uint32_t> lat_us;
    uint64_t errors = 0;
    std::string last_error;
    std::string id;
  };

  static uint32_t us_since(Clock::time_point t0) {
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0).count();
    return static_cast<uint32_t>(std::min<int64_t>(us, std::numeric_limits<uint32_t>::max()));
  }

  // `next` of a page without parsing the whole body: the top-level object's
  // keys are sorted, so the body starts with {"next":<position or null>.
  static std::optional<int64_t> next_of(const std::string& body, bool* ok) {
    auto k = body.find("\"next\":");
    *ok = k != std::string::npos;
    if (!*ok) return std::nullopt;
    const char* v = body.c_str() + k + 7;
    if (std::strncmp(v, "null", 4) == 0) return std::nullopt;
    char* end = nullptr;
    long long n = std::strtoll(v, &end, 10);
    *ok = end != v && n > 0;
    return n;
  }

  void read(Reader& r) {
    SyncClient c(at_);
    int64_t from = 0;
    const std::string base = "/api/users/whale/purchases?limit=" + std::to_string(page_) + "&from=";
    while (!stop_) {
      auto t0 = Clock::now();
      Reply rep;
      try {
        rep = c.call(http::verb::get, base + std::to_string(from));
      } catch (const std::exception& e) {
        ++r.errors;
        r.last_error = e.what();
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        continue;
      }
      const bool in_window = measuring_.load(std::memory_order_acquire);
      if (rep.status == 503 && rep.body.find("\"busy\"") != std::string::npos) {
        if (in_window) ++r.busy;
        continue;
      }
      bool ok = false;
      auto next = rep.status == 200 ? next_of(rep.body, &ok) : std::nullopt;
      if (!ok) {
        ++r.errors;
        r.last_error = "status " + std::to_string(rep.status) + ": " + rep.body.substr(0, 200);
        from = 0;
        continue;
      }
      if (in_window) {
        r.lat_us.push_back(us_since(t0));
        ++r.pages;
        r.bytes += rep.body.size();
      }
      if (next) {
        from = *next;
      } else {
        from = 0;
        if (in_window) ++r.walks;
      }
    }
  }

  void poll_card() {
    SyncClient c(at_);
    const std::string target = "/api/cards/" + card_.id;
    while (!stop_) {
      auto t0 = Clock::now();
      try {
        Reply rep = c.call(http::verb::get, target);
        if (rep.status != 200) {
          ++card_.errors;
          card_.last_error = "status " + std::to_string(rep.status) + ": " + rep.body.substr(0, 200);
        } else if (measuring_.load(std::memory_order_acquire)) {
          card_.lat_us.push_back(us_since(t0));
        }
      } catch (const std::exception& e) {
        ++card_.errors;
        card_.last_error = e.what();
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(poll_ms_));
    }
  }

  HostPort at_;
  int64_t page_;
  CardPoll card_;
  int poll_ms_;
  std::vector<Reader> readers_;
  std::vector<std::thread> threads_;
  std::atomic<bool> stop_{false}, measuring_{false};
  Clock::time_point t0_, t1_;

};

// ------------------------------------------------------------------ wrk

struct WrkResult {
  double requests_per_s = 0;
  uint64_t requests = 0, non2xx = 0, socket_errors = 0;
  std::map<std::string, double> latency_ms;  // "50%", "75%", "90%", "99%"
  std::string raw;
  double cpu_s = 0, wall_s = 0;  // wrk's CPU time and wall time
};

inline double to_ms(const std::string& v) {
  double x = std::atof(v.c_str());
  if (v.size() >= 2 && v.substr(v.size() - 2) == "us") return x / 1000;
  if (v.size() >= 2 && v.substr(v.size() - 2) == "ms") return x;
  if (v.size() >= 1 && v.back() == 's') return x * 1000;
  if (v.size() >= 1 && v.back() == 'm') return x * 60000;
  return x;
}

inline bool run_wrk(const WrkOpts& o, const Common& c, const ServerProcess& server, const Fixture& f,
             const std::string& user_prefix, const std::string& key_prefix, WrkResult* r, std::string* error) {
  std::string url = "http://" + server.http().host + ":" + std::to_string(server.http().port);
  std::ostringstream cmd;
  // The script reads its card, buyers and key prefix from the environment.
  cmd << "GIFTCARD_CARD=" << f.card << " GIFTCARD_USER_PREFIX=" << user_prefix
      << " GIFTCARD_USERS=" << f.users.size() << " GIFTCARD_KEY_PREFIX=" << key_prefix << " '" << o.wrk
      << "' -t" << o.wrk_threads << " -c" << o.clients << " -d" << static_cast<int>(c.warmup + c.seconds)
      << "s --latency -s '" << o.script << "' " << url << " 2>&1";
  std::cerr << "wrk: " << cmd.str() << "\n";
  rusage before{}, after{};
  getrusage(RUSAGE_CHILDREN, &before);
  auto t0 = Clock::now();
  FILE* p = ::popen(cmd.str().c_str(), "r");
  if (!p) {
    *error = "cannot run wrk";
    return false;
  }
  char buf[4096];
  while (size_t n = std::fread(buf, 1, sizeof buf, p)) r->raw.append(buf, n);
  int st = ::pclose(p);
  // wrk's own CPU: the children waited for meanwhile are the shell and wrk.
  getrusage(RUSAGE_CHILDREN, &after);
  auto tv = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
  r->cpu_s = tv(after.ru_utime) + tv(after.ru_stime) - tv(before.ru_utime) - tv(before.ru_stime);
  r->wall_s = secs(Clock::now() - t0);
  if (st != 0) {
    *error = "wrk failed (status " + std::to_string(st) + "): " + r->raw;
    return false;
  }
  std::istringstream in(r->raw);
  std::string line;
  bool dist = false;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string a, b;
    ls >> a;
    if (a == "Latency" && line.find("Distribution") != std::string::npos) {
      dist = true;
      continue;
    }
    if (dist && !a.empty() && a.back() == '%') {
      ls >> b;
      r->latency_ms[a] = to_ms(b);
      continue;
    }
    dist = dist && !a.empty() && a.back() == '%';
    if (a == "Requests/sec:") ls >> r->requests_per_s;
    if (line.find("requests in") != std::string::npos) r->requests = std::strtoull(a.c_str(), nullptr, 10);
    if (line.find("Non-2xx or 3xx responses:") != std::string::npos)
      r->non2xx = std::strtoull(line.substr(line.rfind(':') + 1).c_str(), nullptr, 10);
    if (line.find("Socket errors:") != std::string::npos) r->socket_errors = 1;
  }
  if (r->requests == 0) {
    *error = "cannot parse wrk's output: " + r->raw;
    return false;
  }
  return true;
}

}  // namespace giftcard_http_bench
