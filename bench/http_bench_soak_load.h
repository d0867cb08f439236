// giftcard-http-bench (http_bench.cc): the load of `soak` (bench/http_bench_soak.h).
// Lanes of keep-alive connections buying one card, fresh purchases and their
// repeats (concurrent, on a lane's second connection, or later, from a bounded
// ring), and what they share: counts and latencies per minute, a bitmap of the
// codes handed out, purchases per buyer, the problems seen.
#pragma once

#include <charconv>
#include <deque>

#include "bench/http_bench_load.h"

namespace giftcard_http_bench {

struct SoakOpts {
  int minutes = 10;
  double interval = 60;     // seconds per reported "minute"
  int clients = 64;         // lanes: one keep-alive connection each (+1 for concurrent repeats)
  int repeat_rate = 0;      // % of fresh purchases sent twice
  int64_t users = 0;        // buyers; 0: one per lane
  double repeat_delay = 5;  // seconds between an answer and its later repeat
  int64_t ring = 1 << 18;   // later repeats waiting, at most (more are dropped and counted)
  int seed_connections = 16;
};

constexpr int64_t kSoakDefaultCodes = 5000000;    // issue #16: a card with >= 5M codes
constexpr double kTargetSoakLastOverFirst = 0.9;  // issue #16: last minute >= 90 % of the first
constexpr double kTargetSoakP99Ms = 50;           // issue #16: p99 < 50 ms every minute

// ------------------------------------------------------------------ shared state

// What was answered in one minute (by the time the answer arrived).
struct SoakSlot {
  std::atomic<uint64_t> fresh{0}, requests{0}, concurrent{0}, later{0}, repeats_ok{0}, failed{0};
  LatencyHistogram fresh_lat, repeat_lat;
};

struct LaterRepeat {
  uint32_t user = 0, lane = 0;
  uint64_t seq = 0;
  int64_t code = -1;  // the index of the code the first attempt got
  Clock::time_point due;
};

struct SoakShared {
  SoakShared(const SoakOpts& opts, const Fixture& f, tcp::endpoint at)
      : o(opts),
        fx(f),
        ep(at),
        seen(static_cast<size_t>(f.codes / 64 + 1)),
        fresh_by_user(f.users.size()) {
    for (int i = 0; i <= o.minutes; ++i) slots.push_back(std::make_unique<SoakSlot>());
  }

  const SoakOpts& o;
  const Fixture& fx;
  tcp::endpoint ep;
  Clock::time_point t0;
  std::atomic<bool> stop{false}, out_of_stock{false};
  std::atomic<int> running{0};
  std::vector<std::unique_ptr<SoakSlot>> slots;  // one per minute, then the tail after the end
  std::vector<std::atomic<uint64_t>> seen;       // a bit per code: handed out by a fresh 201
  std::vector<std::atomic<uint64_t>> fresh_by_user;
  std::mutex ring_mu;
  std::deque<LaterRepeat> ring;  // due times ascend: answers are pushed as they come
  std::atomic<size_t> ring_size{0};
  std::atomic<uint64_t> ring_dropped{0}, duplicate_codes{0}, foreign_codes{0}, wrong_code{0},
      repeat_purchased{0}, fresh_replayed{0}, repeat_failed{0}, transport{0}, reported{0};
  std::mutex err_mu;
  std::map<std::string, uint64_t> errors;

  SoakSlot& slot() {
    const auto m = static_cast<size_t>(std::max(0.0, secs(Clock::now() - t0) / o.interval));
    return *slots[std::min(m, slots.size() - 1)];
  }
  void problem(std::atomic<uint64_t>* counter, const std::string& what) {
    counter->fetch_add(1, std::memory_order_relaxed);
    if (reported.fetch_add(1) < 10) std::cerr << "soak: CORRECTNESS: " << what << "\n";
  }
  void error(const HttpAnswer& a) {
    slot().failed.fetch_add(1, std::memory_order_relaxed);
    if (a.error.find("out_of_stock") != std::string::npos) out_of_stock = true;
    std::lock_guard lock(err_mu);
    if (errors[a.error]++ == 0) std::cerr << "soak: " << a.error << "\n";
  }
  // The pool index of `code` (`<card>-<digits>`), -1 if it is not one of ours.
  int64_t code_index(std::string_view code) const {
    if (code.size() <= fx.card.size() + 1 || code.substr(0, fx.card.size()) != fx.card ||
        code[fx.card.size()] != '-')
      return -1;
    int64_t i = -1;
    auto digits = code.substr(fx.card.size() + 1);
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), i);
    return ec == std::errc() && end == digits.data() + digits.size() && i >= 0 && i < fx.codes ? i
                                                                                               : -1;
  }
  // A 201 that really purchased. Returns the code's index (-1: foreign).
  int64_t purchased(uint32_t user, const HttpAnswer& a) {
    SoakSlot& s = slot();
    s.fresh.fetch_add(1, std::memory_order_relaxed);
    s.fresh_lat.add(a.us);
    fresh_by_user[user].fetch_add(1, std::memory_order_relaxed);
    const int64_t i = code_index(a.code);
    if (i < 0) {
      problem(&foreign_codes,
              "a purchase returned the code \"" + a.code + "\", not one of the card's");
      return i;
    }
    const uint64_t bit = uint64_t{1} << (i & 63);
    if (seen[static_cast<size_t>(i >> 6)].fetch_or(bit, std::memory_order_relaxed) & bit)
      problem(&duplicate_codes, "code " + a.code + " handed out twice");
    return i;
  }
  // A repeat answered as it must be: 201, replayed, the first attempt's code.
  void repeat_ok(const HttpAnswer& a) {
    SoakSlot& s = slot();
    s.repeats_ok.fetch_add(1, std::memory_order_relaxed);
    s.repeat_lat.add(a.us);
  }
  std::string request(uint32_t user, uint32_t lane, uint64_t seq) const {
    const std::string body = "{\"card_id\":\"" + fx.card + "\",\"user_id\":\"" + fx.users[user] +
                             "\"}";
    return "POST /api/purchases HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
           "Content-Length: " +
           std::to_string(body.size()) + "\r\nIdempotency-Key: soak-" + std::to_string(lane) + "-" +
           std::to_string(seq) + "\r\n\r\n" + body;
  }
  void push_later(LaterRepeat r) {
    std::lock_guard lock(ring_mu);
    if (static_cast<int64_t>(ring.size()) >= o.ring) return void(ring_dropped.fetch_add(1));
    ring.push_back(r);
    ring_size.store(ring.size(), std::memory_order_release);
  }
  bool pop_due(LaterRepeat* r) {
    if (ring_size.load(std::memory_order_acquire) == 0) return false;
    std::lock_guard lock(ring_mu);
    if (ring.empty() || ring.front().due > Clock::now()) return false;
    *r = ring.front();
    ring.pop_front();
    ring_size.store(ring.size(), std::memory_order_release);
    return true;
  }
};

// ------------------------------------------------------------------ connections and lanes

// A client: fresh purchases one after the other on its connection; a due
// later repeat first; a concurrent repeat on its second connection.
class SoakLane : public std::enable_shared_from_this<SoakLane> {
 public:
  SoakLane(net::io_context& ioc, SoakShared* sh, uint32_t idx)
      : sh_(sh),
        idx_(idx),
        main_(std::make_shared<KeepAliveConn>(ioc, sh->ep)),
        twin_(std::make_shared<KeepAliveConn>(ioc, sh->ep)) {}
  void start() { next(); }

 private:
  void next() {
    if (sh_->stop.load(std::memory_order_acquire) || sh_->out_of_stock.load()) return done();
    if (LaterRepeat r; sh_->pop_due(&r)) {
      return main_->send(sh_->request(r.user, r.lane, r.seq),
                         [self = shared_from_this(), r](HttpAnswer a) { self->on_later(a, r); });
    }
    const uint64_t seq = seq_++;
    const auto lanes = static_cast<uint64_t>(sh_->o.clients), users = sh_->fx.users.size();
    const auto user = static_cast<uint32_t>((idx_ + lanes * seq) % users);
    uint64_t h = (uint64_t{idx_} << 40) ^ seq;  // splitmix64: which purchases repeat
    h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ULL;
    h = (h ^ (h >> 27)) * 0x94d049bb133111ebULL;
    const bool repeat = (h ^ (h >> 31)) % 10000 < static_cast<uint64_t>(sh_->o.repeat_rate) * 100;
    const bool concurrent = repeat && (toggle_ = !toggle_);
    std::string req = sh_->request(user, idx_, seq);
    if (!concurrent)
      return main_->send(std::move(req),
                         [self = shared_from_this(), user, seq, repeat](HttpAnswer a) {
                           self->on_fresh(a, user, seq, repeat);
                         });
    pending_ = 2;
    main_->send(req, [self = shared_from_this(), user](HttpAnswer a) {
      self->on_pair(0, std::move(a), user);
    });
    twin_->send(std::move(req), [self = shared_from_this(), user](HttpAnswer a) {
      self->on_pair(1, std::move(a), user);
    });
  }

  bool transport(const HttpAnswer& a) {
    if (a.status != 0) return false;
    sh_->error(a);
    sh_->problem(&sh_->transport, "lane " + std::to_string(idx_) + ": " + a.error +
                                      " (outcome unknown; lane stops)");
    done();
    return true;
  }

  void on_fresh(const HttpAnswer& a, uint32_t user, uint64_t seq, bool later) {
    sh_->slot().requests.fetch_add(1, std::memory_order_relaxed);
    if (transport(a)) return;
    if (a.status != 201) {
      sh_->error(a);
    } else if (a.replayed) {
      sh_->problem(&sh_->fresh_replayed, "a fresh key came back replayed");
    } else {
      const int64_t code = sh_->purchased(user, a);
      if (later)
        sh_->push_later({user, idx_, seq, code, Clock::now() + secs_to(sh_->o.repeat_delay)});
    }
    next();
  }

  void on_later(const HttpAnswer& a, const LaterRepeat& r) {
    SoakSlot& s = sh_->slot();
    s.requests.fetch_add(1, std::memory_order_relaxed);
    s.later.fetch_add(1, std::memory_order_relaxed);
    if (transport(a)) return;
    check_repeat(a, r.user, r.code);
    next();
  }

  // The repeat of a purchase whose code index is `code`.
  void check_repeat(const HttpAnswer& a, uint32_t user, int64_t code) {
    if (a.status != 201) {
      sh_->error(a);
      sh_->problem(&sh_->repeat_failed, "a repeat was refused: " + a.error);
    } else if (!a.replayed) {
      sh_->purchased(user, a);  // the server bought a second code: counted, and a failure
      sh_->problem(&sh_->repeat_purchased, "a repeat purchased again (code " + a.code + ")");
    } else if (sh_->code_index(a.code) != code) {
      sh_->problem(&sh_->wrong_code,
                   "a repeat returned " + a.code + ", not the first attempt's code");
    } else {
      sh_->repeat_ok(a);
    }
  }

  void on_pair(int i, HttpAnswer a, uint32_t user) {
    pair_[i] = std::move(a);
    if (--pending_ > 0) return;
    SoakSlot& s = sh_->slot();
    s.requests.fetch_add(2, std::memory_order_relaxed);
    s.concurrent.fetch_add(1, std::memory_order_relaxed);
    if (transport(pair_[0]) || transport(pair_[1])) return;
    // Either may have reached the server first: the one not replayed is the purchase.
    const int first = pair_[0].status == 201 && !pair_[0].replayed ? 0 : 1;
    if (pair_[first].status != 201) {
      sh_->error(pair_[first]);
    } else if (pair_[first].replayed) {
      sh_->problem(&sh_->fresh_replayed, "a fresh key came back replayed");
    } else {
      check_repeat(pair_[1 - first], user, sh_->purchased(user, pair_[first]));
      next();
      return;
    }
    if (pair_[1 - first].status != 201) sh_->error(pair_[1 - first]);
    next();
  }

  void done() {
    if (finished_) return;
    finished_ = true;
    main_->close();
    twin_->close();
    sh_->running.fetch_sub(1, std::memory_order_release);
  }
  static Clock::duration secs_to(double s) {
    return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
  }

  SoakShared* sh_;
  uint32_t idx_;
  std::shared_ptr<KeepAliveConn> main_, twin_;
  uint64_t seq_ = 0;
  bool toggle_ = false, finished_ = false;
  int pending_ = 0;
  std::array<HttpAnswer, 2> pair_;
};

}  // namespace giftcard_http_bench
