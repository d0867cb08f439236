// giftcard-projection-bench: figures of the read side (issue #3).
//
//   generate --out DIR [--events N] [generation options]
//       Writes a realistic log into DIR/store (plan in DIR/plan.json): cards
//       created with their codes (code claims), wallets credited (credit
//       claims), then purchases as CodeAssigned + WalletDebited pairs with
//       matching purchase id and price, a purchase idempotency claim pointing
//       at the CodeAssigned, and exact per-stream expected versions. Appended
//       straight through EventStore::Append in large requests (not through
//       actors), with sync=false. No projections.
//
//   replay [--events N | --from DIR] [--runs R] [--chunk C]
//       (a) in-memory replay from position 1: replay_log(), which is
//           `giftcard replay` (a reader thread one page ahead, the fold on
//           the caller's), and a single-threaded breakdown of its stages;
//       (b) ProjectionDb: catch-up from position 1 (first run), then Rebuild()
//           (persisted read models in the projection space), every run.
//       Checks the models against the generation plan and LoadAll() against
//       the in-memory replay (operator==) before and after every rebuild.
//
//   restart [--events N | --from DIR] [--behind K] [--runs R] [--giftcard EXE]
//       A log of N events (default 10,000,000) with projections at a
//       checkpoint; then, per run, on a hard-link clone of that store:
//       spawn the real `giftcard serve --data DIR --caf 127.0.0.1:0`, time
//       until it prints `ready`, connect over CAF, time the first purchase on
//       a card whose actor has a snapshot and on one that has none, SIGTERM,
//       restart once more (ready again); and on a clone whose checkpoint is K
//       events behind: ready, and the time until a query with after=N answers
//       (the projections have caught up), plus the same catch-up in process.
//
//   lag [--buyers 256] [--cards K] [--seconds S] [--runs R]
//       The in-process shop on a synced store with N buyer actors purchasing
//       as fast as they can; collects every projection catch-up's lag (apply
//       time - commit time of the oldest event in it) through
//       ShopMetrics::on_projection_lag while measuring. Checks that every code
//       went out once and that the live projections equal a replay of the log.
//
// Progress goes to stderr; each subcommand prints one JSON line on stdout.
// Exit codes: 0 ok, 1 a correctness check failed, 2 usage or setup error,
// 3 a hang (a server or the load did not finish in time).
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "actors/errors.h"
#include "actors/recovery.h"
#include "actors/shop_actor.h"
#include "api/node_config.h"
#include "events/snapshot.h"
#include "projections/history.h"
#include "projections/projection_db.h"
#include "projections/read_models.h"
#include "store/rocks_event_store.h"

extern char** environ;

namespace giftcard {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using json = nlohmann::json;

double secs(Clock::duration d) { return std::chrono::duration<double>(d).count(); }
double millis(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }
double round_to(double v, int digits) {
  double f = std::pow(10.0, digits);
  return std::round(v * f) / f;
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// Nearest-rank percentile of sorted values.
template <class T>
double percentile(const std::vector<T>& sorted, double p) {
  if (sorted.empty()) return 0;
  size_t i = static_cast<size_t>(std::ceil(p * static_cast<double>(sorted.size())));
  return static_cast<double>(sorted[std::clamp<size_t>(i, 1, sorted.size()) - 1]);
}

// ---- failure handling --------------------------------------------------------
// Temp directories are removed at the end of a successful run; on a failure
// they are kept and named, for inspection.
std::vector<fs::path> g_temp;
bool g_keep = false;

void cleanup_temp() {
  if (g_keep) {
    for (auto& p : g_temp) std::cerr << "kept " << p.string() << "\n";
    return;
  }
  std::error_code ec;
  for (auto& p : g_temp) fs::remove_all(p, ec);
  g_temp.clear();
}

[[noreturn]] void bail(int code, const std::string& what) {
  std::cerr << "giftcard-projection-bench: " << what << "\n";
  for (auto& p : g_temp) std::cerr << "giftcard-projection-bench: left " << p.string() << "\n";
  std::cerr.flush();
  std::cout.flush();
  std::_Exit(code);  // CAF or RocksDB threads may still run: no static destructors
}
[[noreturn]] void setup_error(const std::string& what) { bail(2, what); }
[[noreturn]] void correctness(const std::string& what) { bail(1, "CORRECTNESS: " + what); }
void must(const Status& s, const std::string& what) {
  if (!s.ok()) setup_error(what + ": " + s.ToString());
}

fs::path make_temp(const std::string& tmp_root, const std::string& name) {
  std::string tmpl = (fs::path(tmp_root) / (name + "-XXXXXX")).string();
  if (!::mkdtemp(tmpl.data())) setup_error("mkdtemp in " + tmp_root + ": " + std::strerror(errno));
  g_temp.emplace_back(tmpl);
  return tmpl;
}

// ---- machine facts -----------------------------------------------------------
json machine() {
  json j;
  j["nproc"] = std::thread::hardware_concurrency();
  std::ifstream la("/proc/loadavg");
  double l1 = 0;
  la >> l1;
  j["loadavg_1m"] = l1;
  return j;
}

int64_t peak_rss_mb() {
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss / 1024;
}

// User + system CPU seconds of getrusage(who).
double cpu_seconds(int who) {
  struct rusage r {};
  getrusage(who, &r);
  return static_cast<double>(r.ru_utime.tv_sec + r.ru_stime.tv_sec) +
         static_cast<double>(r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e6;
}

// CPU seconds of this process minus the calling thread's.
double other_threads_cpu() { return cpu_seconds(RUSAGE_SELF) - cpu_seconds(RUSAGE_THREAD); }

// CPU seconds of the whole process.
double process_cpu() { return cpu_seconds(RUSAGE_SELF); }

// CPU seconds of the calling thread.
double thread_cpu() { return cpu_seconds(RUSAGE_THREAD); }

// Waits until the other threads of this process (RocksDB's flushes and
// compactions; the store's writer is idle between measurements) use < 3 % of
// a core over one second, so that background work of one measurement does not
// land in the next. Returns the seconds waited.
double wait_quiet(double limit_s = 600) {
  auto t0 = Clock::now();
  double before = other_threads_cpu();
  for (;;) {
    std::this_thread::sleep_for(std::chrono::seconds(1));
    double now = other_threads_cpu();
    if (now - before < 0.03 || secs(Clock::now() - t0) > limit_s) break;
    before = now;
  }
  return round_to(secs(Clock::now() - t0), 1);
}

uint64_t dir_bytes(const fs::path& p, const std::string& suffix = "") {
  uint64_t n = 0;
  std::error_code ec;
  for (auto& de : fs::directory_iterator(p, ec)) {
    if (!de.is_regular_file(ec)) continue;
    if (!suffix.empty() && !de.path().string().ends_with(suffix)) continue;
    n += de.file_size(ec);
  }
  return n;
}

// A copy of a closed RocksDB directory: table files are immutable and are
// hard-linked (what RocksDB's own Checkpoint does); everything else (MANIFEST,
// CURRENT, OPTIONS, WAL) is copied.
void clone_store(const fs::path& src, const fs::path& dst) {
  std::error_code ec;
  fs::remove_all(dst, ec);
  fs::create_directories(dst);
  for (auto& de : fs::directory_iterator(src)) {
    std::string name = de.path().filename().string();
    if (name == "LOCK" || name.rfind("LOG", 0) == 0) continue;
    if (name.ends_with(".sst") || name.ends_with(".blob"))
      fs::create_hard_link(de.path(), dst / name);
    else
      fs::copy_file(de.path(), dst / name);
  }
}

std::unique_ptr<EventStore> open_store(const fs::path& p, bool sync) {
  StoreOptions so;
  so.path = p.string();
  so.sync = sync;
  std::unique_ptr<EventStore> store;
  must(OpenRocksEventStore(so, &store), "opening store " + p.string());
  return store;
}

void close_store(std::unique_ptr<EventStore>& store) {
  store->Close();
  must(store->Health(), "store health");
  store.reset();
}

// ---- the generation plan -----------------------------------------------------
// Everything about the generated log is a function of these numbers, so that
// checks can compute the expected read models without keeping the log.
constexpr uint64_t kPurchaseIdPrefix = 0x5eedb0a7c0ffee11ULL;
constexpr int64_t kCreditSlack = 1000000;  // every wallet can still buy after the log

uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

struct Plan {
  // Inputs.
  int64_t events = 0;
  int64_t cards = 0;        // 0: max(10, events / 10000)
  int64_t users = 0;        // 0: max(100, events / 20)
  int64_t codes_batch = 1000;
  int64_t slack = 100;      // codes per card left unsold
  int64_t request_events = 2000;  // events per append request (purchases)
  // Derived.
  int64_t purchases = 0, codes_per_card = 0, batches_per_card = 0, extra_credits = 0;
  std::vector<int64_t> spend, bought;  // per user
  std::vector<int64_t> sold;           // per card

  static std::string card_id(int64_t c) {
    char b[64];
    std::snprintf(b, sizeof b, "gc%04lld", static_cast<long long>(c));
    return b;
  }
  static std::string user_id(int64_t u) {
    char b[64];
    std::snprintf(b, sizeof b, "user%07lld", static_cast<long long>(u));
    return b;
  }
  // Activation codes look random, as real ones do (the demo's are
  // "STM-CGQG-BJ98-DK34"): 12 base-32 characters of a bijective scramble of
  // (card, n) within 60 bits, so distinct (card, n) give distinct codes.
  static std::string code(int64_t c, int64_t n) {
    constexpr uint64_t kMask = (uint64_t{1} << 60) - 1;
    uint64_t x = (static_cast<uint64_t>(c) << 24 | static_cast<uint64_t>(n)) & kMask;
    x = (x * 0x9e3779b97f4a7c15ULL) & kMask;  // odd multiplier: a bijection mod 2^60
    x ^= x >> 29;                             // xorshift within 60 bits: a bijection
    x = (x * 0xbf58476d1ce4e5b9ULL) & kMask;
    static constexpr char kAlphabet[] = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    std::string s = "GC";
    for (int i = 0; i < 12; ++i) {
      if (i % 4 == 0) s.push_back('-');
      s.push_back(kAlphabet[(x >> (55 - 5 * i)) & 31]);
    }
    return s;
  }
  static std::string card_name(int64_t c) { return "Gift card " + std::to_string(c); }
  static std::string purchase_id(int64_t i) {
    char b[64];
    std::snprintf(b, sizeof b, "p_%016llx_%lld", static_cast<unsigned long long>(kPurchaseIdPrefix),
                  static_cast<long long>(i + 1));
    return b;
  }
  // Idempotency keys as clients make them: random-looking, unique.
  static std::string purchase_key(int64_t i) {
    char b[64];
    std::snprintf(b, sizeof b, "ord-%016llx",
                  static_cast<unsigned long long>(splitmix64(static_cast<uint64_t>(i) ^ kPurchaseIdPrefix)));
    return b;
  }
  int64_t price(int64_t c) const { return 500 + (c % 20) * 250; }
  int64_t card_of(int64_t i) const { return i % cards; }
  int64_t user_of(int64_t i) const {
    return static_cast<int64_t>(splitmix64(static_cast<uint64_t>(i)) % static_cast<uint64_t>(users));
  }
  int64_t credit(int64_t u) const { return spend[static_cast<size_t>(u)] + kCreditSlack; }
  int64_t final_balance(int64_t u) const {
    return credit(u) + (u == 0 ? extra_credits : 0) - spend[static_cast<size_t>(u)];
  }
  int64_t card_events() const { return 1 + batches_per_card; }
  // Position of purchase i's CodeAssigned (its WalletDebited follows).
  int64_t purchase_position(int64_t i) const {
    return cards * card_events() + users + extra_credits + 2 * i + 1;
  }

  std::string compute() {
    if (cards == 0) cards = std::max<int64_t>(10, events / 10000);
    if (users == 0) users = std::max<int64_t>(100, events / 20);
    if (cards < 1 || users < 1 || codes_batch < 1 || codes_batch > 100000 || slack < 1 ||
        request_events < 2)
      return "cards, users, codes-batch (<= 100000), slack and request-events must be positive";
    int64_t p0 = (events - cards - users) / 2;
    if (p0 < cards) return "too few events for the cards and users (need ~2 purchases per card)";
    codes_per_card = (p0 + cards - 1) / cards + slack;
    if (codes_per_card >= (int64_t{1} << 24) || cards >= (int64_t{1} << 36))
      return "too many codes per card for the code generator (< 16,777,216)";
    batches_per_card = (codes_per_card + codes_batch - 1) / codes_batch;
    int64_t rest = events - cards * card_events() - users;
    if (rest < 2) return "too few events";
    purchases = rest / 2;
    extra_credits = rest % 2;  // one more credit (1 cent) to user 0 makes the count exact
    spend.assign(static_cast<size_t>(users), 0);
    bought.assign(static_cast<size_t>(users), 0);
    sold.assign(static_cast<size_t>(cards), 0);
    for (int64_t i = 0; i < purchases; ++i) {
      auto c = static_cast<size_t>(card_of(i));
      auto u = static_cast<size_t>(user_of(i));
      spend[u] += price(static_cast<int64_t>(c));
      ++bought[u];
      ++sold[c];
    }
    for (int64_t c = 0; c < cards; ++c)
      if (sold[static_cast<size_t>(c)] > codes_per_card - slack) return "internal: codes per card too low";
    return {};
  }

  json to_json() const {
    return json{{"events", events},   {"cards", cards},       {"users", users},
                {"codes_batch", codes_batch}, {"slack", slack}, {"request_events", request_events},
                {"purchases", purchases}, {"codes_per_card", codes_per_card}};
  }
  static Plan from_json(const json& j) {
    Plan p;
    p.events = j.at("events");
    p.cards = j.at("cards");
    p.users = j.at("users");
    p.codes_batch = j.at("codes_batch");
    p.slack = j.at("slack");
    p.request_events = j.at("request_events");
    return p;
  }
};

struct GenOptions {
  int64_t events = 0;
  int64_t cards = 0, users = 0, codes_batch = 1000, slack = 100, request_events = 2000;
};

Plan make_plan(const GenOptions& g) {
  Plan p;
  p.events = g.events;
  p.cards = g.cards;
  p.users = g.users;
  p.codes_batch = g.codes_batch;
  p.slack = g.slack;
  p.request_events = g.request_events;
  if (auto why = p.compute(); !why.empty()) setup_error(why);
  return p;
}

void add_gen_options(CLI::App* cmd, GenOptions* g) {
  cmd->add_option("--cards", g->cards, "cards in a generated log (default max(10, N/10000))");
  cmd->add_option("--users", g->users, "wallets in a generated log (default max(100, N/20))");
  cmd->add_option("--codes-batch", g->codes_batch, "codes per CodesAdded event")->capture_default_str();
  cmd->add_option("--slack", g->slack, "codes per card left unsold")->capture_default_str();
  cmd->add_option("--request-events", g->request_events,
                  "events per append request while generating")
      ->capture_default_str();
}

std::string be64(int64_t v) {
  std::string s;
  for (int i = 56; i >= 0; i -= 8) s.push_back(static_cast<char>((static_cast<uint64_t>(v) >> i) & 0xff));
  return s;
}

// Keeps up to `depth` append requests in flight and checks that each one
// commits at the position the generator predicted.
class Appender {
 public:
  Appender(EventStore* store, int depth) : store_(store), depth_(depth) {}
  void Submit(AppendRequest req, int64_t predicted_first) {
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return inflight_ < depth_ || !error_.ok(); });
      if (!error_.ok()) return;
      ++inflight_;
    }
    store_->Append(std::move(req), [this, predicted_first](const Status& s, const AppendResult& r) {
      std::lock_guard lock(mu_);
      if (!s.ok() && error_.ok()) {
        error_ = s;
        if (!r.conflict_stream.empty()) error_ = Status::Conflict(s.message() + " (" + r.conflict_stream + ")");
      } else if (s.ok() && r.first_position != predicted_first && error_.ok()) {
        error_ = Status::Corruption("request committed at " + std::to_string(r.first_position) +
                                    ", predicted " + std::to_string(predicted_first));
      }
      --inflight_;
      cv_.notify_all();
    });
  }
  Status Finish() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return inflight_ == 0; });
    return error_;
  }

 private:
  EventStore* store_;
  int depth_;
  std::mutex mu_;
  std::condition_variable cv_;
  int inflight_ = 0;
  Status error_;
};

// Appends the plan's log to an empty store. Returns the seconds it took.
double generate(const Plan& plan, EventStore* store) {
  if (store->LastPosition() != 0) setup_error("generate: the store is not empty");
  const auto t0 = Clock::now();
  Appender ap(store, 4);
  int64_t pos = 0;  // last position submitted
  auto progress = [&, next = int64_t{1000000}](bool force = false) mutable {
    if (pos >= next || force) {
      std::cerr << "generate: " << pos << "/" << plan.events << " events ("
                << round_to(secs(Clock::now() - t0), 1) << " s)\n";
      while (next <= pos) next += 1000000;
    }
  };
  std::vector<std::string> card_ids, card_streams, user_ids, wallet_streams;
  for (int64_t c = 0; c < plan.cards; ++c) {
    card_ids.push_back(Plan::card_id(c));
    card_streams.push_back(card_stream(card_ids.back()));
  }
  for (int64_t u = 0; u < plan.users; ++u) {
    user_ids.push_back(Plan::user_id(u));
    wallet_streams.push_back(wallet_stream(user_ids.back()));
  }
  // 1. Cards: CardCreated and the code imports, one request per card.
  for (int64_t c = 0; c < plan.cards; ++c) {
    const auto ci = static_cast<size_t>(c);
    AppendRequest req;
    const int64_t first = pos + 1;
    req.events.push_back(PendingEvent::of(
        card_streams[ci], CardCreated{card_ids[ci], Plan::card_name(c), plan.price(c), plan.price(c)}));
    req.expected.emplace_back(card_streams[ci], kNoStream);
    for (int64_t done = 0; done < plan.codes_per_card;) {
      int64_t n = std::min(plan.codes_batch, plan.codes_per_card - done);
      CodesAdded ev{card_ids[ci], {}};
      ev.codes.reserve(static_cast<size_t>(n));
      for (int64_t k = 0; k < n; ++k) {
        ev.codes.push_back(CodeSpec{Plan::code(c, done + k), 0});
        req.claims.push_back(Claim{code_claim(ev.codes.back().code), card_ids[ci], false});
      }
      req.events.push_back(PendingEvent::of(card_streams[ci], ev));
      done += n;
    }
    pos += static_cast<int64_t>(req.events.size());
    ap.Submit(std::move(req), first);
    progress();
  }
  // 2. Wallets: one credit each (claims as the wallet actor writes them).
  auto credit_request = [&](int64_t from, int64_t to, bool extra) {
    AppendRequest req;
    const int64_t first = pos + 1;
    for (int64_t u = from; u < to; ++u) {
      const auto ui = static_cast<size_t>(u);
      int64_t amount = extra ? 1 : plan.credit(u);
      int64_t after = extra ? plan.credit(u) + 1 : amount;
      std::string key = extra ? "gen-extra" : "gen-credit";
      req.events.push_back(
          PendingEvent::of(wallet_streams[ui], WalletCredited{user_ids[ui], amount, after, key}));
      req.expected.emplace_back(wallet_streams[ui], extra ? 1 : kNoStream);
      ++pos;
      req.claims.push_back(Claim{credit_idem_claim(user_ids[ui], key), std::to_string(amount) + be64(pos), false});
    }
    ap.Submit(std::move(req), first);
    progress();
  };
  const int64_t per_request = std::max<int64_t>(1, plan.request_events / 2);
  for (int64_t u = 0; u < plan.users; u += 2 * per_request)
    credit_request(u, std::min(plan.users, u + 2 * per_request), false);
  if (plan.extra_credits) credit_request(0, 1, true);
  // 3. Purchases: CodeAssigned + WalletDebited + the idempotency claim, with
  //    the exact expected version of every stream a request touches.
  std::vector<int64_t> card_version(static_cast<size_t>(plan.cards), plan.card_events());
  std::vector<int64_t> wallet_version(static_cast<size_t>(plan.users), 1);
  if (plan.extra_credits) wallet_version[0] = 2;
  std::vector<int64_t> balance(static_cast<size_t>(plan.users));
  for (int64_t u = 0; u < plan.users; ++u)
    balance[static_cast<size_t>(u)] = plan.credit(u) + (u == 0 ? plan.extra_credits : 0);
  std::vector<int64_t> next_code(static_cast<size_t>(plan.cards), 0);
  std::vector<int64_t> card_stamp(static_cast<size_t>(plan.cards), -1);
  std::vector<int64_t> user_stamp(static_cast<size_t>(plan.users), -1);
  for (int64_t i = 0, reqno = 0; i < plan.purchases; ++reqno) {
    AppendRequest req;
    const int64_t first = pos + 1;
    if (first != plan.purchase_position(i)) setup_error("generate: internal: position plan is off");
    for (int64_t k = 0; k < per_request && i < plan.purchases; ++k, ++i) {
      const auto c = static_cast<size_t>(plan.card_of(i));
      const auto u = static_cast<size_t>(plan.user_of(i));
      if (card_stamp[c] != reqno) {
        card_stamp[c] = reqno;
        req.expected.emplace_back(card_streams[c], card_version[c]);
      }
      if (user_stamp[u] != reqno) {
        user_stamp[u] = reqno;
        req.expected.emplace_back(wallet_streams[u], wallet_version[u]);
      }
      const int64_t price = plan.price(static_cast<int64_t>(c));
      const std::string pid = Plan::purchase_id(i);
      const std::string key = Plan::purchase_key(i);
      balance[u] -= price;
      req.events.push_back(PendingEvent::of(
          card_streams[c], CodeAssigned{card_ids[c], Plan::code(static_cast<int64_t>(c), next_code[c]++),
                                        pid, user_ids[u], price, key}));
      req.events.push_back(PendingEvent::of(
          wallet_streams[u], WalletDebited{user_ids[u], price, balance[u], pid, card_ids[c]}));
      req.claims.push_back(Claim{purchase_idem_claim(user_ids[u], key), card_ids[c] + be64(pos + 1), false});
      pos += 2;
      ++card_version[c];
      ++wallet_version[u];
    }
    ap.Submit(std::move(req), first);
    progress();
  }
  if (Status s = ap.Finish(); !s.ok()) correctness("generate: an append failed: " + s.ToString());
  if (store->LastPosition() != plan.events || pos != plan.events)
    correctness("generate: log ends at " + std::to_string(store->LastPosition()) + ", planned " +
                std::to_string(plan.events));
  progress(true);
  return secs(Clock::now() - t0);
}

fs::path generate_into(const Plan& plan, const fs::path& dir, json* report) {
  fs::path store_dir = dir / "store";
  {
    std::ofstream(dir / "plan.json") << plan.to_json().dump() << "\n";
  }
  auto store = open_store(store_dir, /*sync=*/false);  // generation only
  double s = generate(plan, store.get());
  close_store(store);
  (*report)["generate_s"] = round_to(s, 2);
  (*report)["generate_events_per_s"] = std::round(static_cast<double>(plan.events) / s);
  std::cerr << "generate: " << plan.events << " events in " << round_to(s, 1) << " s ("
            << std::round(static_cast<double>(plan.events) / s) << "/s); " << plan.purchases
            << " purchases, " << plan.cards << " cards, " << plan.users << " wallets\n";
  return store_dir;
}

// ---- checks ------------------------------------------------------------------
CardView expected_card(const Plan& p, int64_t c) {
  CardView v;
  v.id = Plan::card_id(c);
  v.name = Plan::card_name(c);
  v.price = v.value = p.price(c);
  v.sold = v.assigned = p.sold[static_cast<size_t>(c)];
  v.available = p.codes_per_card - v.sold;
  v.revenue = v.sold * v.price;
  return v;
}

PurchaseView expected_purchase(const Plan& p, int64_t i, int64_t code_index) {
  PurchaseView v;
  v.purchase_id = Plan::purchase_id(i);
  v.card_id = Plan::card_id(p.card_of(i));
  v.user_id = Plan::user_id(p.user_of(i));
  v.code = Plan::code(p.card_of(i), code_index);
  v.price = p.price(p.card_of(i));
  v.position = p.purchase_position(i);
  return v;
}

// The read models a replay of the plan's log must give (as far as the plan
// determines them; purchased_at is the commit time, checked for > 0).
std::vector<std::string> check_models(const Plan& p, const ReadModels& m, int64_t extra_events = 0) {
  std::vector<std::string> bad;
  auto expect = [&](bool ok, const std::string& what) {
    if (!ok && bad.size() < 20) bad.push_back(what);
  };
  expect(m.position == p.events + extra_events, "position " + std::to_string(m.position) + ", expected " +
                                                    std::to_string(p.events + extra_events));
  expect(static_cast<int64_t>(m.purchases.size()) == p.purchases,
         "purchases " + std::to_string(m.purchases.size()) + ", generated " + std::to_string(p.purchases));
  expect(static_cast<int64_t>(m.balances.size()) == p.users,
         "wallets " + std::to_string(m.balances.size()) + ", generated " + std::to_string(p.users));
  expect(static_cast<int64_t>(m.cards.size()) == p.cards,
         "cards " + std::to_string(m.cards.size()) + ", generated " + std::to_string(p.cards));
  for (int64_t u = 0; u < p.users; ++u) {
    auto it = m.balances.find(Plan::user_id(u));
    expect(it != m.balances.end() && it->second == p.final_balance(u),
           "balance of " + Plan::user_id(u) + " is " +
               (it == m.balances.end() ? "missing" : std::to_string(it->second)) + ", expected " +
               std::to_string(p.final_balance(u)));
    auto up = m.user_purchases.find(Plan::user_id(u));
    int64_t n = up == m.user_purchases.end() ? 0 : static_cast<int64_t>(up->second.size());
    expect(n == p.bought[static_cast<size_t>(u)], "purchases of " + Plan::user_id(u) + ": " +
                                                      std::to_string(n) + ", generated " +
                                                      std::to_string(p.bought[static_cast<size_t>(u)]));
  }
  for (int64_t c = 0; c < p.cards; ++c) {
    auto it = m.cards.find(Plan::card_id(c));
    expect(it != m.cards.end() && it->second == expected_card(p, c), "card view of " + Plan::card_id(c));
  }
  // Every purchase: its fields, its code (card c's k-th sale got code k).
  std::vector<int64_t> code_index(static_cast<size_t>(p.cards), 0);
  for (int64_t i = 0; i < p.purchases; ++i) {
    PurchaseView want = expected_purchase(p, i, code_index[static_cast<size_t>(p.card_of(i))]++);
    auto it = m.purchases.find(want.purchase_id);
    if (it == m.purchases.end()) {
      expect(false, "purchase " + want.purchase_id + " missing");
      continue;
    }
    want.purchased_at = it->second.purchased_at;
    expect(it->second == want && want.purchased_at > 0, "purchase " + want.purchase_id + " differs");
  }
  return bad;
}

void require_models(const Plan& p, const ReadModels& m, const std::string& what) {
  auto bad = check_models(p, m);
  if (bad.empty()) return;
  for (auto& b : bad) std::cerr << "  " << what << ": " << b << "\n";
  correctness(what + ": the read models do not match the generated log");
}

void require_equal(const ReadModels& a, const ReadModels& b, const std::string& what) {
  if (a == b) return;
  std::ostringstream d;
  d << what << ": models differ (position " << a.position << " vs " << b.position << ", balances "
    << a.balances.size() << " vs " << b.balances.size() << ", cards " << a.cards.size() << " vs "
    << b.cards.size() << ", purchases " << a.purchases.size() << " vs " << b.purchases.size()
    << ", users with purchases " << a.user_purchases.size() << " vs " << b.user_purchases.size()
    << ", balances equal " << (a.balances == b.balances) << ", cards equal " << (a.cards == b.cards)
    << ", purchases equal " << (a.purchases == b.purchases) << ", user index equal "
    << (a.user_purchases == b.user_purchases) << ")";
  correctness(d.str());
}

// ---- (a) in-memory replay ----------------------------------------------------
struct ReplayResult {
  double seconds = 0;
  double cpu_seconds = 0;  // of the process (the fold thread and the scanner's reader)
  int64_t events = 0;
};

// `giftcard replay` itself: replay_log (projections/read_models.h), whose
// reader thread works one page ahead; CPU is the whole process's.
ReplayResult replay_in_memory(EventStore* store, size_t /*chunk*/, ReadModels* m) {
  ReplayResult r;
  const auto t0 = Clock::now();
  const double c0 = process_cpu();
  must(replay_log(store, 0, std::nullopt, m), "replay_log");
  r.events = m->position;
  r.seconds = secs(Clock::now() - t0);
  r.cpu_seconds = process_cpu() - c0;
  return r;
}

// The same work, timed per stage (page by page, so the clock costs nothing).
json replay_breakdown(EventStore* store, size_t chunk) {
  ReadModels m;
  std::vector<StoredEvent> page;
  std::vector<Event> decoded;
  Clock::duration read{}, decode{}, fold{};
  int64_t events = 0;
  const double c0 = thread_cpu();
  for (int64_t next = 1;;) {
    auto a = Clock::now();
    must(store->ReadAll(next, chunk, &page), "ReadAll");
    auto b = Clock::now();
    read += b - a;
    if (page.empty()) break;
    decoded.resize(page.size());
    for (size_t i = 0; i < page.size(); ++i) must(page[i].decode(&decoded[i]), "decode");
    auto c = Clock::now();
    decode += c - b;
    for (size_t i = 0; i < page.size(); ++i) apply(m, page[i], decoded[i]);
    fold += Clock::now() - c;
    events += static_cast<int64_t>(page.size());
    next = page.back().position + 1;
  }
  double total = secs(read + decode + fold);
  const double cpu = thread_cpu() - c0;
  auto per_event_us = [&](Clock::duration d) {
    return round_to(secs(d) * 1e6 / static_cast<double>(std::max<int64_t>(events, 1)), 3);
  };
  return json{{"events_per_s", std::round(static_cast<double>(events) / total)},
              {"events_per_cpu_s", std::round(static_cast<double>(events) / cpu)},
              {"read_us_per_event", per_event_us(read)},
              {"decode_us_per_event", per_event_us(decode)},
              {"fold_us_per_event", per_event_us(fold)}};
}

// ---- replay subcommand ---------------------------------------------------------
struct SourceOptions {
  GenOptions gen;
  std::string from;
  std::string tmp = "/tmp";
};

// The plan and a store to measure on: a fresh generation, or a hard-link clone
// of `--from`'s store (never modified).
Plan prepare_source(const SourceOptions& o, const fs::path& work, fs::path* store_dir, json* out) {
  Plan plan;
  if (!o.from.empty()) {
    std::ifstream in(fs::path(o.from) / "plan.json");
    if (!in) setup_error("--from " + o.from + ": no plan.json (make it with `generate --out`)");
    json j;
    in >> j;
    plan = Plan::from_json(j);
    if (auto why = plan.compute(); !why.empty()) setup_error("plan.json: " + why);
    *store_dir = work / "store";
    clone_store(fs::path(o.from) / "store", *store_dir);
    (*out)["source"] = o.from;
  } else {
    plan = make_plan(o.gen);
    *store_dir = generate_into(plan, work, out);
    (*out)["source"] = "generated";
  }
  (*out)["plan"] = plan.to_json();
  return plan;
}

void add_source_options(CLI::App* cmd, SourceOptions* o, int64_t default_events) {
  o->gen.events = default_events;
  cmd->add_option("--events", o->gen.events, "events in the generated log")->capture_default_str();
  cmd->add_option("--from", o->from, "use the log made by `generate --out DIR` (cloned, never modified)");
  cmd->add_option("--tmp", o->tmp, "where stores are made (removed at the end)")->capture_default_str();
  cmd->add_flag("--keep", g_keep, "keep the temp stores");
  add_gen_options(cmd, &o->gen);
}

int run_replay(const SourceOptions& so, int runs, size_t chunk, const std::string& only) {
  const bool do_a = only != "b", do_b = only != "a";
  json out;
  out["bench"] = "replay";
  out["machine"] = machine();
  fs::path work = make_temp(so.tmp, "gc-replay");
  fs::path store_dir;
  Plan plan = prepare_source(so, work, &store_dir, &out);
  // Reopened: the WAL of the generation is replayed and flushed now, not
  // during a measurement.
  auto store = open_store(store_dir, /*sync=*/true);
  out["store_mb"] = dir_bytes(store_dir) >> 20;
  std::unique_ptr<ProjectionDb> db;
  must(ProjectionDb::Open(store.get(), &db), "ProjectionDb::Open");
  if (db->position() != 0) setup_error("the source store already has projections");

  ReadModels reference;  // run 1's replay; every later model must equal it
  std::vector<double> replay_rate, rebuild_rate, replay_cpu_rate, rebuild_cpu_rate;
  json jruns = json::array();
  for (int r = 0; r < runs; ++r) {
    json jr;
    jr["quiet_wait_s"] = wait_quiet();
    // (a) in-memory replay.
    if (do_a) {
      ReadModels m;
      ReplayResult rr = replay_in_memory(store.get(), chunk, &m);
      if (rr.events != plan.events) correctness("replay read " + std::to_string(rr.events) + " events");
      double rate = static_cast<double>(rr.events) / rr.seconds;
      replay_rate.push_back(rate);
      jr["replay_s"] = round_to(rr.seconds, 3);
      jr["replay_events_per_s"] = std::round(rate);
      jr["replay_cpu_s"] = round_to(rr.cpu_seconds, 3);
      jr["replay_events_per_cpu_s"] = std::round(static_cast<double>(rr.events) / rr.cpu_seconds);
      replay_cpu_rate.push_back(static_cast<double>(rr.events) / rr.cpu_seconds);
      std::cerr << "run " << r + 1 << ": (a) in-memory replay: " << rr.events << " events in "
                << round_to(rr.seconds, 3) << " s = " << std::round(rate) << "/s ("
                << std::round(static_cast<double>(rr.events) / rr.cpu_seconds) << " per CPU second)\n";
      if (r == 0) {
        require_models(plan, m, "in-memory replay");
        reference = std::move(m);
      } else {
        require_equal(m, reference, "in-memory replay of run " + std::to_string(r + 1));
      }
    }
    // (b) ProjectionDb: the live models (first run: catch-up from 1), then a rebuild.
    if (do_b && r == 0) {
      jr["quiet_wait_before_catchup_s"] = wait_quiet();
      auto t0 = Clock::now();
      const double c0 = thread_cpu();
      must(db->CatchUp(), "CatchUp");
      double s = secs(Clock::now() - t0);
      jr["catchup_from_1_cpu_s"] = round_to(thread_cpu() - c0, 3);
      if (db->position() != plan.events) correctness("catch-up stopped at " + std::to_string(db->position()));
      jr["catchup_from_1_s"] = round_to(s, 3);
      jr["catchup_from_1_events_per_s"] = std::round(static_cast<double>(plan.events) / s);
      std::cerr << "run 1: (b) ProjectionDb::CatchUp from position 1: " << round_to(s, 3) << " s = "
                << std::round(static_cast<double>(plan.events) / s) << "/s\n";
      ReadModels live;
      must(db->LoadAll(&live), "LoadAll");
      if (do_a) require_equal(live, reference, "projections after catch-up vs in-memory replay");
      else require_models(plan, live, "projections after catch-up");
      reference = std::move(live);
    }
    if (do_b) {
      jr["quiet_wait_before_rebuild_s"] = wait_quiet();
      RebuildReport rep;
      const uint32_t gen_before = db->generation();
      auto t0 = Clock::now();
      const double c0 = thread_cpu();
      must(db->Rebuild(&rep), "Rebuild");
      double s = secs(Clock::now() - t0);
      const double cpu = thread_cpu() - c0;
      jr["rebuild_cpu_s"] = round_to(cpu, 3);
      jr["rebuild_events_per_cpu_s"] = std::round(static_cast<double>(rep.events) / cpu);
      rebuild_cpu_rate.push_back(static_cast<double>(rep.events) / cpu);
      if (rep.events != plan.events || rep.generation != gen_before + 1 || db->generation() != rep.generation)
        correctness("rebuild folded " + std::to_string(rep.events) + " events into generation " +
                    std::to_string(rep.generation));
      double rate = static_cast<double>(rep.events) / s;
      rebuild_rate.push_back(rate);
      jr["rebuild_s"] = round_to(s, 3);
      jr["rebuild_events_per_s"] = std::round(rate);
      std::cerr << "run " << r + 1 << ": (b) ProjectionDb::Rebuild: " << rep.events << " events in "
                << round_to(s, 3) << " s = " << std::round(rate) << "/s (generation " << rep.generation
                << "; " << std::round(static_cast<double>(rep.events) / cpu) << " per CPU second of the caller)\n";
      ReadModels rebuilt;
      must(db->LoadAll(&rebuilt), "LoadAll");
      require_equal(rebuilt, reference, "rebuilt projections vs the live ones");
    }
    jruns.push_back(jr);
  }
  if (do_a) {
    wait_quiet();
    out["breakdown"] = replay_breakdown(store.get(), chunk);
    std::cerr << "breakdown (in-memory replay, per event): " << out["breakdown"].dump() << "\n";
  }
  out["runs"] = jruns;
  out["chunk"] = chunk;
  if (do_a) {
    out["replay_events_per_s_median"] = std::round(median(replay_rate));
    out["replay_events_per_cpu_s_median"] = std::round(median(replay_cpu_rate));
  }
  if (do_b) {
    out["rebuild_events_per_s_median"] = std::round(median(rebuild_rate));
    out["rebuild_events_per_cpu_s_median"] = std::round(median(rebuild_cpu_rate));
  }
  out["verified"] = true;
  db.reset();
  close_store(store);
  out["peak_rss_mb"] = peak_rss_mb();
  cleanup_temp();
  std::cout << out.dump() << std::endl;
  return 0;
}

// ---- generate subcommand -------------------------------------------------------
int run_generate(const GenOptions& g, const std::string& out_dir) {
  fs::path dir(out_dir);
  std::error_code ec;
  if (fs::exists(dir) && !fs::is_empty(dir, ec)) setup_error("--out " + out_dir + " is not empty");
  fs::create_directories(dir);
  Plan plan = make_plan(g);
  json out;
  out["bench"] = "generate";
  out["machine"] = machine();
  out["plan"] = plan.to_json();
  fs::path store_dir = generate_into(plan, dir, &out);
  out["store_mb"] = dir_bytes(store_dir) >> 20;
  std::cout << out.dump() << std::endl;
  return 0;
}

// ---- a `giftcard serve` child process ------------------------------------------
struct Server {
  pid_t pid = -1;
  int out = -1;  // its stdout
  uint16_t port = 0;
  Clock::time_point spawned;
  double ready_ms = 0;
  // Its stderr is copied to the log by a thread that notes when the line
  // "giftcard: store ... open at position ..." arrived (the store is open).
  std::thread err_reader;
  std::shared_ptr<std::atomic<double>> store_open_ms = std::make_shared<std::atomic<double>>(0.0);
};

// Spawns `exe serve --data DIR --caf 127.0.0.1:0 --http 127.0.0.1:0` and
// reads its stdout until the `ready ... caf=HOST:PORT` line.
void spawn_serve(const std::string& exe, const fs::path& data, const fs::path& log, Server* srv) {
  Server& s = *srv;
  int p[2], e[2];
  if (::pipe2(p, O_CLOEXEC) != 0 || ::pipe2(e, O_CLOEXEC) != 0) setup_error("pipe2");
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, p[1], 1);
  posix_spawn_file_actions_adddup2(&fa, e[1], 2);
  std::vector<std::string> args = {exe,    "serve",        "--data", data.string(),
                                   "--caf", "127.0.0.1:0", "--http", "127.0.0.1:0"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  s.spawned = Clock::now();
  int rc = posix_spawn(&s.pid, exe.c_str(), &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  ::close(p[1]);
  ::close(e[1]);
  if (rc != 0) setup_error("posix_spawn " + exe + ": " + std::strerror(rc));
  s.out = p[0];
  s.err_reader = std::thread([fd = e[0], log, t0 = s.spawned, open_ms = s.store_open_ms] {
    std::ofstream to(log, std::ios::app);
    std::string pending;
    char buf[4096];
    for (;;) {
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n <= 0) break;
      pending.append(buf, static_cast<size_t>(n));
      for (size_t nl; (nl = pending.find('\n')) != std::string::npos; pending.erase(0, nl + 1)) {
        std::string line = pending.substr(0, nl);
        if (line.rfind("giftcard: store ", 0) == 0 && open_ms->load() == 0)
          open_ms->store(millis(Clock::now() - t0));
        to << line << "\n";
      }
    }
    to << pending;
    ::close(fd);
  });
  std::string line;
  const auto deadline = s.spawned + std::chrono::seconds(120);
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) bail(3, "giftcard serve printed no ready line within 120 s (log: " + log.string() + ")");
    pollfd pfd{s.out, POLLIN, 0};
    if (::poll(&pfd, 1, static_cast<int>(left)) <= 0) continue;
    char buf[256];
    ssize_t n = ::read(s.out, buf, sizeof buf);
    if (n <= 0) setup_error("giftcard serve exited before ready (log: " + log.string() + ")");
    line.append(buf, static_cast<size_t>(n));
    if (auto nl = line.find('\n'); nl != std::string::npos) {
      s.ready_ms = millis(Clock::now() - s.spawned);
      line.resize(nl);
      break;
    }
  }
  // "ready [http=HOST:PORT ]caf=HOST:PORT"
  auto caf = line.find("caf=");
  auto colon = caf == std::string::npos ? caf : line.find_first_of(" \r", caf);
  colon = line.rfind(':', colon == std::string::npos ? line.size() : colon);
  if (line.rfind("ready ", 0) != 0 || caf == std::string::npos || colon == std::string::npos || colon < caf)
    setup_error("unexpected first line from giftcard serve: " + line);
  s.port = static_cast<uint16_t>(std::stoi(line.substr(colon + 1)));
}

// SIGTERM, then waits; returns the milliseconds until it exited. Its exit
// status must be 0 (drained and closed cleanly).
double stop_serve(Server& s, const fs::path& log) {
  auto t0 = Clock::now();
  ::kill(s.pid, SIGTERM);
  int status = 0;
  for (;;) {
    pid_t w = ::waitpid(s.pid, &status, WNOHANG);
    if (w == s.pid) break;
    if (secs(Clock::now() - t0) > 120) {
      ::kill(s.pid, SIGKILL);
      ::waitpid(s.pid, &status, 0);
      bail(3, "giftcard serve did not stop within 120 s of SIGTERM (log: " + log.string() + ")");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  double ms = millis(Clock::now() - t0);
  ::close(s.out);
  s.err_reader.join();
  s.pid = -1;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    correctness("giftcard serve exited with status " + std::to_string(status) + " (log: " + log.string() + ")");
  return ms;
}

// One blocking request to the remote shop; false and *err on an error.
template <class Reply, class... Ts>
bool ask(caf::scoped_actor& self, const shop_actor& shop, Reply* reply, std::string* err, Ts&&... xs) {
  bool ok = false;
  self->request(shop, std::chrono::seconds(60), std::forward<Ts>(xs)...)
      .receive([&](Reply& r) {
        *reply = std::move(r);
        ok = true;
      },
               [&](caf::error& e) {
                 *err = e.category() == kErrorCategory
                            ? std::string(to_string(errc_of(e))) + ": " + detail_of(e)
                            : self->system().render(e);
               });
  return ok;
}

// ---- restart subcommand ----------------------------------------------------------
struct RestartOptions {
  SourceOptions src;
  int64_t behind = 100000;
  int runs = 5;
  std::string giftcard;
  std::string bases;
};

// Brings the time-travel checkpoints (projections/history.h) up to the log's
// head, as the projection driver of a server that ran would have left them
// (without them, a restarted driver folds the whole log first). Returns the
// seconds it took.
double history_catch_up(EventStore* store) {
  auto t0 = Clock::now();
  std::unique_ptr<ProjectionHistory> h;
  must(ProjectionHistory::Open(store, &h), "ProjectionHistory::Open");
  must(h->CatchUp(), "ProjectionHistory::CatchUp");
  return secs(Clock::now() - t0);
}

// Writes the snapshot the card or wallet actor would write when it stops.
template <class State>
void write_snapshot(EventStore* store, const std::string& stream) {
  State st;
  int64_t version = 0, tail = 0;
  must(recover(store, stream, &st, &version, &tail), "recover " + stream);
  must(store->SaveSnapshot(stream, Snapshot{version, encode_snapshot(st)}), "SaveSnapshot " + stream);
  Snapshot back;
  // Queued for the writer's next batch; Close() commits it.
  must(store->LoadSnapshot(stream, &back), "LoadSnapshot " + stream);
  if (back.version != version) setup_error("snapshot of " + stream + " not queued");
}

// Appends purchases after the plan's log as the shop writes them (a
// CodesAdded of 1,000 fresh codes for a card, then 1,000 CodeAssigned +
// WalletDebited pairs with their idempotency claims and exact expected
// versions) and folds them into the projections after every request, as the
// driver would, until RocksDB's WAL is as full as it gets: the WAL starts anew
// after each memtable flush, so this goes on until one flush has happened and
// the WAL has grown again to 90 % of the largest size seen before it. Cards 0-2
// and users 0-2 are left alone. Returns the number of events appended.
int64_t fill_wal(const Plan& plan, EventStore* store, ProjectionDb* db, const fs::path& dir,
                 uint64_t* wal_bytes) {
  constexpr int64_t kPerCard = 1000;
  std::unique_ptr<ProjectionHistory> history;
  must(ProjectionHistory::Open(store, &history), "ProjectionHistory::Open");
  Appender ap(store, 1);
  int64_t pos = store->LastPosition();
  const int64_t start = pos;
  std::unordered_map<int64_t, int64_t> wallet_version, balance;
  uint64_t max_before_flush = 0, last = dir_bytes(dir, ".log");
  bool flushed = false;
  for (int64_t c = 3; c < plan.cards; ++c) {
    const std::string card = Plan::card_id(c), cs = card_stream(card);
    int64_t cv = 0;
    must(store->StreamVersion(cs, &cv), "StreamVersion");
    AppendRequest req;
    const int64_t first = pos + 1;
    req.expected.emplace_back(cs, cv);
    CodesAdded add{card, {}};
    for (int64_t k = 0; k < kPerCard; ++k) {
      add.codes.push_back(CodeSpec{Plan::code(c, plan.codes_per_card + k), 0});
      req.claims.push_back(Claim{code_claim(add.codes.back().code), card, false});
    }
    req.events.push_back(PendingEvent::of(cs, add));
    ++pos;
    std::set<int64_t> touched;
    for (int64_t k = 0; k < kPerCard; ++k) {
      const int64_t u = 3 + (c * kPerCard + k) % (plan.users - 3);
      const std::string user = Plan::user_id(u), ws = wallet_stream(user);
      if (!wallet_version.count(u)) {
        int64_t v = 0;
        must(store->StreamVersion(ws, &v), "StreamVersion");
        wallet_version[u] = v;
        balance[u] = plan.final_balance(u);
      }
      if (touched.insert(u).second) req.expected.emplace_back(ws, wallet_version[u]);
      const int64_t price = plan.price(c);
      const std::string pid = "p_fill_" + std::to_string(c) + "_" + std::to_string(k);
      const std::string key = "fill-" + std::to_string(c) + "-" + std::to_string(k);
      balance[u] -= price;
      req.events.push_back(PendingEvent::of(
          cs, CodeAssigned{card, add.codes[static_cast<size_t>(k)].code, pid, user, price, key}));
      req.events.push_back(PendingEvent::of(ws, WalletDebited{user, price, balance[u], pid, card}));
      req.claims.push_back(Claim{purchase_idem_claim(user, key), card + be64(pos + 1), false});
      pos += 2;
      ++wallet_version[u];
    }
    ap.Submit(std::move(req), first);
    if (Status st = ap.Finish(); !st.ok()) correctness("fill: an append failed: " + st.ToString());
    must(db->CatchUp(), "CatchUp");
    must(history->CatchUp(), "ProjectionHistory::CatchUp");
    const uint64_t now = dir_bytes(dir, ".log");
    if (now < last) flushed = true;
    if (!flushed) max_before_flush = std::max(max_before_flush, now);
    last = now;
    if (flushed && now * 10 >= max_before_flush * 9) break;
  }
  if (db->position() != pos || store->LastPosition() != pos)
    correctness("fill: log at " + std::to_string(store->LastPosition()) + ", projections at " +
                std::to_string(db->position()) + ", expected " + std::to_string(pos));
  *wal_bytes = last;
  std::cerr << "fill: " << pos - start << " events appended; WAL " << (last >> 20) << " MB (largest before the flush "
            << (max_before_flush >> 20) << " MB)" << (flushed ? "" : "; NO flush happened: ran out of cards") << "\n";
  return pos - start;
}

int run_restart(const RestartOptions& o) {
  std::string exe = o.giftcard;
  if (exe.empty()) exe = (fs::canonical("/proc/self/exe").parent_path() / "giftcard").string();
  if (::access(exe.c_str(), X_OK) != 0) setup_error("no giftcard executable at " + exe + " (--giftcard)");
  json out;
  out["bench"] = "restart";
  out["machine"] = machine();
  fs::path work = make_temp(o.src.tmp, "gc-restart");
  // The two prepared stores (never modified by the runs, which use clones):
  // in the temp dir, or kept in --bases for later invocations.
  const fs::path bases = o.bases.empty() ? work : fs::path(o.bases);
  const fs::path base_behind = bases / "base-behind", base_head = bases / "base-head";
  const bool reuse = !o.bases.empty() && fs::exists(bases / "prepared.json");
  Plan plan;
  if (reuse) {
    json prep;
    std::ifstream(bases / "prepared.json") >> prep;
    plan = Plan::from_json(prep.at("plan"));
    if (auto why = plan.compute(); !why.empty()) setup_error("prepared.json: " + why);
    if (prep.at("behind") != o.behind)
      setup_error("--bases " + o.bases + " was prepared with --behind " + prep.at("behind").dump());
    out["source"] = "prepared " + o.bases;
    out["plan"] = plan.to_json();
  } else {
    std::error_code ec;
    if (!o.bases.empty() && fs::exists(bases) && !fs::is_empty(bases, ec))
      setup_error("--bases " + o.bases + " is neither empty nor prepared");
    fs::create_directories(bases);
    fs::path gen_store;
    plan = prepare_source(o.src, bases, &gen_store, &out);
    fs::rename(gen_store, base_behind);
  }
  const int64_t N = plan.events;
  const int64_t K = std::clamp<int64_t>(o.behind, 1, N - 1);
  out["behind"] = K;

  // The cards and users of the post-restart purchases: card 1 / user 1 get the
  // snapshots an actor writes when it stops; card 2 / user 2 have none (their
  // actors recover from the whole stream).
  const int64_t snap_card = 1 % plan.cards, cold_card = 2 % plan.cards;
  const int64_t snap_user = 1 % plan.users, cold_user = 2 % plan.users;

  // base_behind: projections checkpointed at N - K; snapshots of card 1/user 1.
  if (!reuse) {
    auto store = open_store(base_behind, /*sync=*/true);
    std::unique_ptr<ProjectionDb> db;
    must(ProjectionDb::Open(store.get(), &db), "ProjectionDb::Open");
    out["quiet_wait_before_catchup_s"] = wait_quiet();
    auto t0 = Clock::now();
    const double c0 = thread_cpu();
    must(db->CatchUp(16384, N - K, [&, next = int64_t{1000000}](int64_t p) mutable {
      if (p >= next) {
        std::cerr << "projections: " << p << " (" << round_to(secs(Clock::now() - t0), 1) << " s)\n";
        next += 1000000;
      }
    }), "CatchUp");
    double s = secs(Clock::now() - t0);
    if (db->position() != N - K) correctness("catch-up stopped at " + std::to_string(db->position()));
    out["catchup_from_1_s"] = round_to(s, 2);
    out["catchup_from_1_cpu_s"] = round_to(thread_cpu() - c0, 2);
    out["catchup_from_1_events_per_s"] = std::round(static_cast<double>(N - K) / s);
    std::cerr << "projections: " << N - K << " events from position 1 in " << round_to(s, 1) << " s ("
              << std::round(static_cast<double>(N - K) / s) << "/s)\n";
    out["history_catchup_s"] = round_to(history_catch_up(store.get()), 2);
    write_snapshot<CardState>(store.get(), card_stream(Plan::card_id(snap_card)));
    write_snapshot<WalletState>(store.get(), wallet_stream(Plan::user_id(snap_user)));
    db.reset();
    close_store(store);
  }
  // base_head: the same, caught up to the head.
  if (!reuse) {
    clone_store(base_behind, base_head);
    auto store = open_store(base_head, /*sync=*/true);
    std::unique_ptr<ProjectionDb> db;
    must(ProjectionDb::Open(store.get(), &db), "ProjectionDb::Open");
    must(db->CatchUp(), "CatchUp");
    if (db->position() != N) correctness("catch-up stopped at " + std::to_string(db->position()));
    // Spot checks of the persisted models against the plan.
    for (int64_t c : {snap_card, cold_card}) {
      CardView v;
      must(db->Card(Plan::card_id(c), &v), "Card");
      if (!(v == expected_card(plan, c))) correctness("projected card view of " + Plan::card_id(c));
    }
    for (int64_t u : {snap_user, cold_user}) {
      int64_t b = 0;
      must(db->Balance(Plan::user_id(u), &b), "Balance");
      if (b != plan.final_balance(u)) correctness("projected balance of " + Plan::user_id(u));
    }
    db.reset();
    close_store(store);
    std::ofstream(bases / "prepared.json") << json{{"plan", plan.to_json()}, {"behind", K}}.dump() << "\n";
    std::ofstream(bases / "history.json") << "{}\n";
  }
  // Bases prepared before the time-travel checkpoints existed get them now.
  if (!fs::exists(bases / "history.json")) {
    for (const fs::path& b : {base_behind, base_head}) {
      auto store = open_store(b, /*sync=*/true);
      double s = history_catch_up(store.get());
      std::cerr << "history checkpoints of " << b.filename().string() << ": " << round_to(s, 1) << " s\n";
      close_store(store);
    }
    std::error_code ec;
    fs::remove(bases / "base-wal.json", ec);  // made again from the new base_head
    std::ofstream(bases / "history.json") << "{}\n";
  }
  // base_wal: base_head plus purchases, caught up, with the WAL as full as it gets.
  const fs::path base_wal = bases / "base-wal";
  int64_t wal_events = 0;
  if (!fs::exists(bases / "base-wal.json")) {
    std::error_code ec;
    fs::remove_all(base_wal, ec);
    clone_store(base_head, base_wal);
    auto store = open_store(base_wal, /*sync=*/true);
    std::unique_ptr<ProjectionDb> db;
    must(ProjectionDb::Open(store.get(), &db), "ProjectionDb::Open");
    uint64_t wal_bytes = 0;
    wal_events = fill_wal(plan, store.get(), db.get(), base_wal, &wal_bytes);
    db.reset();
    close_store(store);
    std::ofstream(bases / "base-wal.json") << json{{"events", wal_events}}.dump() << "\n";
  } else {
    json j;
    std::ifstream(bases / "base-wal.json") >> j;
    wal_events = j.at("events");
  }
  out["full_wal_extra_events"] = wal_events;
  out["store_mb"] = dir_bytes(base_head) >> 20;
  std::cerr << "store: " << (dir_bytes(base_head) >> 20) << " MB; WAL at restart: head "
            << (dir_bytes(base_head, ".log") >> 20) << " MB, behind "
            << (dir_bytes(base_behind, ".log") >> 20) << " MB\n";

  std::vector<double> ready_full, store_open, ready1, ready2, connect, buy_snap, buy_cold, stop, ready_behind, caught_behind,
      open_inproc, catchup_inproc;
  json jruns = json::array();
  fs::path run_dir = work / "run";
  fs::path log = work / "serve.log";
  for (int r = 0; r < o.runs; ++r) {
    json jr;
    jr["quiet_wait_s"] = wait_quiet();
    // 1. Restart with the projections at the head; first purchases.
    clone_store(base_head, run_dir);
    jr["wal_mb"] = round_to(static_cast<double>(dir_bytes(run_dir, ".log")) / 1048576.0, 1);
    {
      Server srv;
      spawn_serve(exe, run_dir, log, &srv);
      jr["ready_ms"] = round_to(srv.ready_ms, 1);
      ready1.push_back(srv.ready_ms);
      {
        NodeConfig cfg(TlsOptions{});
        caf::actor_system sys{cfg};
        auto t0 = Clock::now();
        auto shop = connect_shop(sys, HostPort{"127.0.0.1", srv.port}, false);
        if (!shop) setup_error("cannot connect to the server: " + sys.render(shop.error()));
        caf::scoped_actor self{sys};
        std::string err;
        ShopStatus st;
        if (!ask(self, *shop, &st, &err, status_atom::value)) correctness("status: " + err);
        double connect_ms = millis(Clock::now() - t0);
        if (st.log_position != N || st.projection_position != N)
          correctness("after restart: log at " + std::to_string(st.log_position) + ", projections at " +
                      std::to_string(st.projection_position) + ", expected " + std::to_string(N));
        auto buy = [&](int64_t c, int64_t u, const std::string& key, int64_t expect_pos) {
          Purchase p;
          auto b0 = Clock::now();
          if (!ask(self, *shop, &p, &err, purchase_atom::value, Plan::card_id(c), Plan::user_id(u), key))
            correctness("first purchase on " + Plan::card_id(c) + " after restart: " + err);
          double ms = millis(Clock::now() - b0);
          // Card c's codes go out in import order: the next is number sold[c].
          if (p.card_id != Plan::card_id(c) || p.user_id != Plan::user_id(u) ||
              p.price != plan.price(c) || p.replayed || p.position != expect_pos ||
              p.code != Plan::code(c, plan.sold[static_cast<size_t>(c)]))
            correctness("purchase after restart: got code " + p.code + " at position " +
                        std::to_string(p.position));
          return ms;
        };
        double snap_ms = buy(snap_card, snap_user, "restart-snap", N + 1);
        double cold_ms = buy(cold_card, cold_user, "restart-cold", N + 3);
        jr["connect_ms"] = round_to(connect_ms, 1);
        jr["first_purchase_snapshot_ms"] = round_to(snap_ms, 2);
        jr["first_purchase_no_snapshot_ms"] = round_to(cold_ms, 2);
        jr["spawn_to_first_purchase_ms"] = round_to(millis(Clock::now() - srv.spawned), 1);
        connect.push_back(connect_ms);
        buy_snap.push_back(snap_ms);
        buy_cold.push_back(cold_ms);
        // Read-your-writes through the projections.
        WalletView w;
        if (!ask(self, *shop, &w, &err, wallet_atom::value, Plan::user_id(cold_user), N + 4) ||
            w.balance != plan.final_balance(cold_user) - plan.price(cold_card))
          correctness("wallet of " + Plan::user_id(cold_user) + " after the purchase: " + err);
      }
      double stop_ms = stop_serve(srv, log);
      jr["stop_ms"] = round_to(stop_ms, 1);
      jr["store_open_ms"] = round_to(srv.store_open_ms->load(), 1);
      store_open.push_back(srv.store_open_ms->load());
      stop.push_back(stop_ms);
    }
    // 2. Once more on the same directory: the WAL was flushed by the last open.
    {
      jr["wal2_mb"] = round_to(static_cast<double>(dir_bytes(run_dir, ".log")) / 1048576.0, 1);
      Server srv;
      spawn_serve(exe, run_dir, log, &srv);
      jr["ready_again_ms"] = round_to(srv.ready_ms, 1);
      ready2.push_back(srv.ready_ms);
      stop_serve(srv, log);
      jr["store_open_again_ms"] = round_to(srv.store_open_ms->load(), 1);
    }
    // 3. Restart with the checkpoint K behind: time until a query with
    //    after=N answers, i.e. the projections include the whole log.
    clone_store(base_behind, run_dir);
    {
      Server srv;
      spawn_serve(exe, run_dir, log, &srv);
      jr["behind_ready_ms"] = round_to(srv.ready_ms, 1);
      ready_behind.push_back(srv.ready_ms);
      {
        NodeConfig cfg(TlsOptions{});
        caf::actor_system sys{cfg};
        auto shop = connect_shop(sys, HostPort{"127.0.0.1", srv.port}, false);
        if (!shop) setup_error("cannot connect to the server: " + sys.render(shop.error()));
        caf::scoped_actor self{sys};
        std::string err;
        WalletView w;
        for (int attempt = 0;; ++attempt) {
          if (ask(self, *shop, &w, &err, wallet_atom::value, Plan::user_id(cold_user), N)) break;
          if (attempt > 20 || err.rfind("projection_lagging", 0) != 0) correctness("wallet query after=N: " + err);
        }
        double ms = millis(Clock::now() - srv.spawned);
        if (w.balance != plan.final_balance(cold_user) || w.position < N)
          correctness("projected balance after catch-up");
        jr["behind_caught_up_ms"] = round_to(ms, 1);
        caught_behind.push_back(ms);
      }
      stop_serve(srv, log);
    }
    // 4. Restart with the WAL as full as it gets (projections at the head).
    clone_store(base_wal, run_dir);
    jr["full_wal_mb"] = round_to(static_cast<double>(dir_bytes(run_dir, ".log")) / 1048576.0, 1);
    {
      Server srv;
      spawn_serve(exe, run_dir, log, &srv);
      jr["full_wal_ready_ms"] = round_to(srv.ready_ms, 1);
      ready_full.push_back(srv.ready_ms);
      {
        NodeConfig cfg(TlsOptions{});
        caf::actor_system sys{cfg};
        auto shop = connect_shop(sys, HostPort{"127.0.0.1", srv.port}, false);
        if (!shop) setup_error("cannot connect to the server: " + sys.render(shop.error()));
        caf::scoped_actor self{sys};
        std::string err;
        ShopStatus st;
        if (!ask(self, *shop, &st, &err, status_atom::value)) correctness("status: " + err);
        if (st.log_position != N + wal_events || st.projection_position != N + wal_events)
          correctness("full-WAL restart: log at " + std::to_string(st.log_position) + ", projections at " +
                      std::to_string(st.projection_position) + ", expected " + std::to_string(N + wal_events));
      }
      stop_serve(srv, log);
      jr["full_wal_store_open_ms"] = round_to(srv.store_open_ms->load(), 1);
    }
    // 5. The same catch-up in process: open the store, ProjectionDb::Open, CatchUp.
    clone_store(base_behind, run_dir);
    {
      auto t0 = Clock::now();
      auto store = open_store(run_dir, true);
      std::unique_ptr<ProjectionDb> db;
      must(ProjectionDb::Open(store.get(), &db), "ProjectionDb::Open");
      double open_ms = millis(Clock::now() - t0);
      // What a first purchase's actors do first: recover card 1 (snapshot +
      // empty tail), card 2 (its whole stream) and wallet 2, on a cold store.
      auto timed_recover = [&](auto state, const std::string& stream, int64_t* events) {
        int64_t version = 0, tail = 0;
        auto r0 = Clock::now();
        must(recover(store.get(), stream, &state, &version, &tail), "recover " + stream);
        *events = tail;
        return millis(Clock::now() - r0);
      };
      int64_t tail_snap = 0, tail_cold = 0, tail_wallet = 0;
      jr["recover_card_snapshot_ms"] =
          round_to(timed_recover(CardState{}, card_stream(Plan::card_id(snap_card)), &tail_snap), 2);
      jr["recover_card_no_snapshot_ms"] =
          round_to(timed_recover(CardState{}, card_stream(Plan::card_id(cold_card)), &tail_cold), 2);
      jr["recover_wallet_no_snapshot_ms"] =
          round_to(timed_recover(WalletState{}, wallet_stream(Plan::user_id(cold_user)), &tail_wallet), 2);
      if (tail_snap != 0 || tail_cold != plan.card_events() + plan.sold[static_cast<size_t>(cold_card)] ||
          tail_wallet != 1 + plan.bought[static_cast<size_t>(cold_user)])
        correctness("recovery folded " + std::to_string(tail_snap) + "/" + std::to_string(tail_cold) + "/" +
                    std::to_string(tail_wallet) + " events");
      auto t1 = Clock::now();
      const double c1 = thread_cpu();
      must(db->CatchUp(), "CatchUp");
      double cu_ms = millis(Clock::now() - t1);
      jr["inproc_catchup_cpu_ms"] = round_to((thread_cpu() - c1) * 1000, 1);
      if (db->position() != N) correctness("in-process catch-up stopped at " + std::to_string(db->position()));
      jr["inproc_open_ms"] = round_to(open_ms, 1);
      jr["inproc_catchup_ms"] = round_to(cu_ms, 1);
      open_inproc.push_back(open_ms);
      catchup_inproc.push_back(cu_ms);
      db.reset();
      close_store(store);
    }
    std::error_code ec;
    fs::remove_all(run_dir, ec);
    std::cerr << "run " << r + 1 << ": " << jr.dump() << "\n";
    jruns.push_back(jr);
  }
  out["runs"] = jruns;
  out["median"] = json{{"store_open_ms", round_to(median(store_open), 1)},
                       {"ready_ms", round_to(median(ready1), 1)},
                       {"ready_again_ms", round_to(median(ready2), 1)},
                       {"full_wal_ready_ms", round_to(median(ready_full), 1)},
                       {"connect_ms", round_to(median(connect), 1)},
                       {"first_purchase_snapshot_ms", round_to(median(buy_snap), 2)},
                       {"first_purchase_no_snapshot_ms", round_to(median(buy_cold), 2)},
                       {"stop_ms", round_to(median(stop), 1)},
                       {"behind_ready_ms", round_to(median(ready_behind), 1)},
                       {"behind_caught_up_ms", round_to(median(caught_behind), 1)},
                       {"inproc_open_ms", round_to(median(open_inproc), 1)},
                       {"inproc_catchup_ms", round_to(median(catchup_inproc), 1)}};
  // The cards' stream lengths, for reading the first-purchase figures.
  out["card_stream_events"] = plan.card_events() + plan.sold[static_cast<size_t>(cold_card)];
  out["wallet_stream_events"] = 1 + plan.bought[static_cast<size_t>(cold_user)];
  out["verified"] = true;
  cleanup_temp();
  std::cout << out.dump() << std::endl;
  return 0;
}

// ---- lag subcommand --------------------------------------------------------------
struct LagOptions {
  int buyers = 256;
  int cards = 1;
  int seconds = 10;
  int runs = 3;
  std::string tmp = "/tmp";
  bool history = true;  // the driver keeps the time-travel checkpoints, as in serve
};

using stop_atom = caf::atom_constant<caf::atom("bstop")>;
constexpr int64_t kLagPrice = 100;

struct LagShared {
  shop_actor shop;
  std::atomic<int> phase{0};  // 0 running, 2 stop
  std::atomic<int> running{0};
  std::atomic<uint64_t> errors{0};
};

struct Buyer {
  int index = 0;
  std::string card, user;
  uint64_t next_key = 0;
  std::vector<std::string> codes;
  std::map<std::string, uint64_t> errors;
};

void buyer_finish(caf::event_based_actor* self, LagShared* sh) {
  sh->running.fetch_sub(1, std::memory_order_release);
  self->quit();
}

void buy_next(caf::event_based_actor* self, LagShared* sh, Buyer* b) {
  if (sh->phase.load(std::memory_order_acquire) == 2) return buyer_finish(self, sh);
  std::string key = "k" + std::to_string(b->index) + "-" + std::to_string(b->next_key++);
  self->request(sh->shop, caf::infinite, purchase_atom::value, b->card, b->user, std::move(key))
      .then(
          [=](Purchase& p) {
            b->codes.push_back(std::move(p.code));
            buy_next(self, sh, b);
          },
          [=](caf::error& e) {
            Errc c = errc_of(e);
            ++b->errors[std::string(to_string(c))];
            if (sh->errors.fetch_add(1) < 5)
              std::cerr << "lag: buyer " << b->index << ": " << to_string(c) << ": " << detail_of(e) << "\n";
            if (c == Errc::out_of_stock) return buyer_finish(self, sh);
            buy_next(self, sh, b);
          });
}

caf::behavior buyer(caf::event_based_actor* self, LagShared* sh, Buyer* b) {
  buy_next(self, sh, b);
  return {[=](stop_atom) { buyer_finish(self, sh); }};
}

json run_lag_once(const LagOptions& o) {
  fs::path dir = make_temp(o.tmp, "gc-lag");
  auto store = open_store(dir, /*sync=*/true);  // every purchase synced, as serve runs
  std::unique_ptr<ProjectionDb> db;
  must(ProjectionDb::Open(store.get(), &db), "ProjectionDb::Open");
  std::unique_ptr<ProjectionHistory> history;
  must(ProjectionHistory::Open(store.get(), &history), "ProjectionHistory::Open");
  ShopContext ctx;  // as serve sets it up
  ctx.store = store.get();
  ctx.projections = db.get();
  if (o.history) ctx.history = history.get();
  std::mutex lag_mu;
  std::vector<int64_t> lags;
  std::atomic<bool> measuring{false};
  // Set before the driver exists: it calls this on its own thread.
  ctx.metrics.on_projection_lag = [&](int64_t lag) {
    if (!measuring.load(std::memory_order_acquire)) return;
    std::lock_guard lock(lag_mu);
    lags.push_back(lag);
  };
  json out;
  {
    NodeConfig cfg(TlsOptions{});
    caf::actor_system sys{cfg};
    auto internal = spawn_shop(sys, &ctx);
    LagShared sh;
    sh.shop = caf::actor_cast<shop_actor>(internal);
    caf::scoped_actor self{sys};
    std::string err;
    // Cards with enough codes for ~60,000 purchases/s (twice the measured rate).
    const int64_t want = std::min<int64_t>(2000000, 60000LL * (o.seconds + 3) * 12 / 10);
    const int64_t per_card = want / o.cards + 1;
    std::vector<std::string> card_ids;
    for (int c = 0; c < o.cards; ++c) {
      card_ids.push_back("lag-" + std::to_string(c));
      CardInfo ci;
      if (!ask(self, sh.shop, &ci, &err, create_atom::value,
               CardSpec{card_ids.back(), "Lag card " + std::to_string(c), kLagPrice, kLagPrice}))
        setup_error("create card: " + err);
      for (int64_t done = 0; done < per_card;) {
        int64_t n = std::min<int64_t>(100000, per_card - done);
        std::vector<CodeSpec> codes;
        codes.reserve(static_cast<size_t>(n));
        for (int64_t i = 0; i < n; ++i)
          codes.push_back(CodeSpec{"L" + std::to_string(c) + "-" + std::to_string(done + i), 0});
        AddCodesReply ar;
        if (!ask(self, sh.shop, &ar, &err, add_codes_atom::value, card_ids.back(), std::move(codes)))
          setup_error("add codes: " + err);
        done += n;
      }
    }
    std::vector<std::unique_ptr<Buyer>> buyers;
    for (int i = 0; i < o.buyers; ++i) {
      auto b = std::make_unique<Buyer>();
      b->index = i;
      b->card = card_ids[static_cast<size_t>(i % o.cards)];
      b->user = "lagu" + std::to_string(i);
      CreditReply cr;
      if (!ask(self, sh.shop, &cr, &err, credit_atom::value, b->user, kLagPrice * (want + 1),
               std::string("setup")))
        setup_error("credit: " + err);
      buyers.push_back(std::move(b));
    }
    // The projections take in the setup before the load starts.
    if (!db->WaitFor(store->LastPosition(), std::chrono::seconds(120)))
      setup_error("projections did not catch up with the setup");
    std::cerr << "lag: setup done: " << o.cards << " card(s), " << per_card * o.cards << " codes, "
              << o.buyers << " wallets\n";

    sh.running = o.buyers;
    for (auto& b : buyers) sys.spawn(buyer, &sh, b.get());
    std::this_thread::sleep_for(std::chrono::seconds(1));  // warm-up
    const StoreStats s0 = store->Stats();
    const uint64_t ok0 = ctx.metrics.purchases_ok.load();
    const uint64_t batches0 = ctx.metrics.projection_batches.load();
    measuring.store(true, std::memory_order_release);
    const auto t0 = Clock::now();
    std::this_thread::sleep_for(std::chrono::seconds(o.seconds));
    measuring.store(false, std::memory_order_release);
    const auto t1 = Clock::now();
    const StoreStats s1 = store->Stats();
    const uint64_t ok1 = ctx.metrics.purchases_ok.load();
    const uint64_t batches1 = ctx.metrics.projection_batches.load();
    sh.phase.store(2, std::memory_order_release);
    auto deadline = Clock::now() + std::chrono::seconds(60);
    while (sh.running.load(std::memory_order_acquire) > 0) {
      if (Clock::now() > deadline) bail(3, "HANG: buyers still wait for replies 60 s after the stop");
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    // Drain as serve does: every actor, then the projection driver.
    bool drained = false;
    self->request(internal, std::chrono::seconds(120), DrainMsg{})
        .receive([&](bool ok) { drained = ok; }, [&](caf::error& e) { err = sys.render(e); });
    if (!drained) correctness("drain failed: " + err);

    // ---- checks
    std::vector<std::string> codes;
    std::map<std::string, uint64_t> errors;
    for (auto& b : buyers) {
      for (auto& c : b->codes) codes.push_back(std::move(c));
      for (auto& [k, v] : b->errors) errors[k] += v;
    }
    const size_t ok_total = codes.size();
    std::sort(codes.begin(), codes.end());
    if (std::unique(codes.begin(), codes.end()) != codes.end()) correctness("a code was handed out twice");
    if (db->position() != store->LastPosition())
      correctness("projections at " + std::to_string(db->position()) + " after the drain, log at " +
                  std::to_string(store->LastPosition()));
    int64_t assigned = 0;
    for (auto& id : card_ids) {
      CardView v;
      must(db->Card(id, &v), "projected card");
      assigned += v.assigned;
    }
    if (assigned != static_cast<int64_t>(ok_total))
      correctness("projections count " + std::to_string(assigned) + " assigned codes, buyers got " +
                  std::to_string(ok_total));
    ReadModels live, replayed;
    must(db->LoadAll(&live), "LoadAll");
    replay_in_memory(store.get(), 8192, &replayed);
    require_equal(live, replayed, "live projections vs replay from position 1");
    if (static_cast<int64_t>(live.purchases.size()) != static_cast<int64_t>(ok_total))
      correctness("projections hold " + std::to_string(live.purchases.size()) + " purchases, buyers got " +
                  std::to_string(ok_total));

    std::sort(lags.begin(), lags.end());
    const double window = secs(t1 - t0);
    const uint64_t events = s1.events - s0.events;
    out["buyers"] = o.buyers;
    out["cards"] = o.cards;
    out["history"] = o.history;
    out["seconds"] = round_to(window, 3);
    out["purchases_per_s"] = std::round(static_cast<double>(ok1 - ok0) / window);
    out["events_per_s"] = std::round(static_cast<double>(events) / window);
    out["catchups"] = lags.size();
    out["catchups_counted"] = batches1 - batches0;
    out["events_per_catchup"] =
        lags.empty() ? 0.0 : round_to(static_cast<double>(events) / static_cast<double>(lags.size()), 1);
    out["lag_p50_ms"] = round_to(percentile(lags, 0.50) / 1000.0, 2);
    out["lag_p90_ms"] = round_to(percentile(lags, 0.90) / 1000.0, 2);
    out["lag_p99_ms"] = round_to(percentile(lags, 0.99) / 1000.0, 2);
    out["lag_max_ms"] = lags.empty() ? 0.0 : round_to(static_cast<double>(lags.back()) / 1000.0, 2);
    out["purchases_total"] = ok_total;
    out["errors"] = errors;
    out["verified"] = true;
    std::cerr << "lag: " << out.dump() << "\n";
    self->send_exit(internal, caf::exit_reason::user_shutdown);
  }
  history.reset();
  db.reset();
  close_store(store);
  std::error_code ec;
  fs::remove_all(dir, ec);
  std::erase(g_temp, dir);
  return out;
}

int run_lag(const LagOptions& o) {
  if (o.buyers < 1 || o.cards < 1 || o.seconds < 1 || o.runs < 1)
    setup_error("--buyers, --cards, --seconds and --runs must be positive");
  json out;
  out["bench"] = "lag";
  out["machine"] = machine();
  json runs = json::array();
  std::vector<double> p50, p99, mx, rate;
  for (int r = 0; r < o.runs; ++r) {
    json j = run_lag_once(o);
    p50.push_back(j["lag_p50_ms"]);
    p99.push_back(j["lag_p99_ms"]);
    mx.push_back(j["lag_max_ms"]);
    rate.push_back(j["purchases_per_s"]);
    runs.push_back(j);
  }
  out["runs"] = runs;
  out["median"] = json{{"lag_p50_ms", median(p50)},
                       {"lag_p99_ms", median(p99)},
                       {"lag_max_ms", median(mx)},
                       {"purchases_per_s", median(rate)}};
  out["verified"] = true;
  out["peak_rss_mb"] = peak_rss_mb();
  std::cout << out.dump() << std::endl;
  return 0;
}

}  // namespace
}  // namespace giftcard

int main(int argc, char** argv) {
  using namespace giftcard;
  CLI::App app{"giftcard-projection-bench: replay, rebuild, restart and projection-lag figures (issue #3)"};
  app.require_subcommand(1);

  GenOptions gen;
  gen.events = 10000000;
  std::string out_dir;
  auto* g = app.add_subcommand("generate", "Write a realistic log of N events into DIR/store (plan in DIR/plan.json)");
  g->add_option("--out", out_dir, "directory to create (must be empty)")->required();
  g->add_option("--events", gen.events, "events in the log")->capture_default_str();
  add_gen_options(g, &gen);

  SourceOptions rs;
  int replay_runs = 3;
  size_t chunk = 8192;
  std::string replay_only;
  auto* rp = app.add_subcommand(
      "replay", "(a) in-memory replay and (b) ProjectionDb catch-up and Rebuild from position 1");
  add_source_options(rp, &rs, 1000000);
  rp->add_option("--runs", replay_runs, "runs (medians are reported)")->capture_default_str();
  rp->add_option("--only", replay_only, "run only (a) the in-memory replay or (b) the ProjectionDb part")
      ->check(CLI::IsMember({"a", "b"}));
  rp->add_option("--chunk", chunk, "events per ReadAll page in (a), as `giftcard replay`")->capture_default_str();

  RestartOptions ro;
  auto* rs2 = app.add_subcommand(
      "restart", "`giftcard serve` to ready over a big log; first purchase; catch-up of K events");
  add_source_options(rs2, &ro.src, 10000000);
  rs2->add_option("--behind", ro.behind, "events the checkpoint lags in the catch-up runs")->capture_default_str();
  rs2->add_option("--runs", ro.runs, "runs (medians are reported)")->capture_default_str();
  rs2->add_option("--bases", ro.bases,
                  "keep the two prepared stores here (or reuse them if prepared with the same --behind)");
  rs2->add_option("--giftcard", ro.giftcard, "the giftcard executable (default: beside this one)");

  LagOptions lo;
  auto* lg = app.add_subcommand("lag", "projection lag under load: N buyers purchasing in process");
  lg->add_option("--buyers", lo.buyers, "concurrent buyers")->capture_default_str();
  lg->add_option("--cards", lo.cards, "cards (buyers round-robin)")->capture_default_str();
  lg->add_option("--seconds", lo.seconds, "measured seconds (after a 1 s warm-up)")->capture_default_str();
  lg->add_option("--runs", lo.runs, "runs (medians are reported)")->capture_default_str();
  lg->add_option("--history", lo.history,
                 "the driver also keeps the time-travel checkpoints (as serve does): true|false")
      ->capture_default_str();
  lg->add_option("--tmp", lo.tmp, "where stores are made (removed at the end)")->capture_default_str();

  CLI11_PARSE(app, argc, argv);
  if (replay_runs < 1 || ro.runs < 1 || chunk < 1) {
    std::cerr << "giftcard-projection-bench: --runs and --chunk must be positive\n";
    return 2;
  }
  if (*g) return run_generate(gen, out_dir);
  if (*rp) return run_replay(rs, replay_runs, chunk, replay_only);
  if (*rs2) return run_restart(ro);
  return run_lag(lo);
}
