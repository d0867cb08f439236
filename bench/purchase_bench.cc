// giftcard-bench: durable purchase throughput and latency of the in-process
// shop (actors + group-committed RocksDB store), without any network front end.
//
//   giftcard-bench purchase [--mode hot|many|million] [--buyers N] [--cards K]
//                           [--seconds S] [--users U] [--data DIR]
//                           [--passivate-after-ms M] [--codes C]
//
// hot:     N buyers, all on one card (the headline number).
// many:    N buyers spread round-robin over K cards (default 100).
// million: U distinct users (default 1,000,000), each credited once and making
//          ONE purchase, with up to N in flight; wallets passivate after M ms
//          (default 1000); reports peak RSS.
//
// Every buyer is an event-based actor in the shop's actor_system that keeps
// exactly one request in flight, so N requests are outstanding at any time.
// Progress goes to stderr; the result is one JSON line on stdout. Exit codes:
// 0 ok, 1 correctness check failed (a code handed out twice, counts that do not
// add up), 2 usage or setup error, 3 the load did not drain (hang).
#include <sys/resource.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <cmath>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "actors/errors.h"
#include "actors/shop_actor.h"
#include "api/node_config.h"
#include "bench/support/bench_support.h"
#include "store/rocks_event_store.h"

namespace giftcard {
namespace {

using Clock = std::chrono::steady_clock;
using stop_atom = caf::atom_constant<caf::atom("bstop")>;

constexpr int64_t kPrice = 100;
constexpr size_t kCodesPerBatch = 100000;  // kMaxCodesPerBatch
// Hot-mode estimate of the codes a card may need: this many purchases per second.
constexpr int64_t kEstimatedRate = 150000;
// Never hold more codes than this in the card actors (about 130 bytes each).
constexpr int64_t kMaxTotalCodes = 2000000;

enum class Mode { hot, many, million };
enum class Job { credit_only, purchase_loop, credit_then_purchase };

struct Options {
  Mode mode = Mode::hot;
  int buyers = 256;
  int cards = 1;
  int seconds = 10;
  int64_t users = 0;
  std::string data;
  int64_t passivate_after_ms = 30000;
  int64_t codes_per_card = 0;  // 0: estimate
};

// Shared by the main thread and every worker actor.
struct Shared {
  shop_actor shop;
  Job job = Job::purchase_loop;
  std::vector<std::string> card_ids;
  std::vector<std::string> user_ids;  // hot/many: the users; million: empty (generated)
  int64_t users = 0;
  int64_t credit_amount = 0;
  std::atomic<int> phase{0};  // 0 warm-up, 1 measuring, 2 stop
  std::atomic<int64_t> next_user{0};
  std::atomic<int> running{0};
  std::atomic<uint64_t> credits_ok{0};
  std::atomic<uint64_t> errors_seen{0};
  std::atomic<bool> out_of_stock{false};
};

// One worker's results. Written only by its actor; read by main after the
// actor has decremented Shared::running (release/acquire).
struct Worker {
  int index = 0;
  std::string card;
  std::string user;
  uint64_t next_key = 0;
  uint64_t ok_total = 0;     // every success, warm-up and drain included
  uint64_t ok_measured = 0;  // successes completed while measuring
  std::vector<uint32_t> latency_us;  // of the measured successes
  std::vector<std::string> codes;    // of every success
  std::map<std::string, uint64_t> errors;  // every failure, by error code
  Clock::time_point finished{};
};

std::string user_name(int64_t i) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "u%07lld", static_cast<long long>(i));
  return buf;
}

std::string card_name(int i) { return "bench-" + std::to_string(i); }

std::string code_name(int card, int64_t n) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "B%d-%07lld", card, static_cast<long long>(n));
  return buf;
}

void note_error(Shared* sh, Worker* w, const char* what, const caf::error& e) {
  Errc c = errc_of(e);
  std::string name = std::string(what) + std::string(to_string(c));
  ++w->errors[name];
  if (c == Errc::out_of_stock) sh->out_of_stock = true;
  if (sh->errors_seen.fetch_add(1) < 5)
    std::cerr << "bench: worker " << w->index << ": " << name << ": " << detail_of(e) << "\n";
}

void finish(caf::event_based_actor* self, Shared* sh, Worker* w) {
  w->finished = Clock::now();
  sh->running.fetch_sub(1, std::memory_order_release);
  self->quit();
}

void step(caf::event_based_actor* self, Shared* sh, Worker* w);

void purchase(caf::event_based_actor* self, Shared* sh, Worker* w, std::string card,
              std::string user, std::function<void()> next) {
  std::string key = "k" + std::to_string(w->index) + "-" + std::to_string(w->next_key++);
  auto t0 = Clock::now();
  self->request(sh->shop, caf::infinite, purchase_atom::value, std::move(card), std::move(user),
                std::move(key))
      .then(
          [=](Purchase& p) {
            ++w->ok_total;
            w->codes.push_back(std::move(p.code));
            if (sh->phase.load(std::memory_order_acquire) == 1) {
              auto us = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0);
              ++w->ok_measured;
              w->latency_us.push_back(static_cast<uint32_t>(
                  std::min<int64_t>(us.count(), std::numeric_limits<uint32_t>::max())));
            }
            next();
          },
          [=](caf::error& e) {
            note_error(sh, w, "", e);
            if (errc_of(e) == Errc::out_of_stock && sh->job == Job::purchase_loop) {
              finish(self, sh, w);  // nothing left to buy: do not spin
              return;
            }
            next();
          });
}

// Issues this worker's next request, or finishes.
void step(caf::event_based_actor* self, Shared* sh, Worker* w) {
  auto next = [=] { step(self, sh, w); };
  switch (sh->job) {
    case Job::purchase_loop:
      if (sh->phase.load(std::memory_order_acquire) == 2) return finish(self, sh, w);
      return purchase(self, sh, w, w->card, w->user, next);
    case Job::credit_only:
    case Job::credit_then_purchase: {
      int64_t u = sh->next_user.fetch_add(1);
      if (u >= sh->users) return finish(self, sh, w);
      std::string user = sh->user_ids.empty() ? user_name(u) : sh->user_ids[u];
      std::string card = sh->card_ids[u % sh->card_ids.size()];
      self->request(sh->shop, caf::infinite, credit_atom::value, user, sh->credit_amount,
                    std::string("setup"))
          .then(
              [=](CreditReply&) {
                ++sh->credits_ok;
                if (sh->job == Job::credit_only) return next();
                purchase(self, sh, w, card, user, next);
              },
              [=](caf::error& e) {
                note_error(sh, w, "credit:", e);
                next();
              });
      return;
    }
  }
}

caf::behavior worker(caf::event_based_actor* self, Shared* sh, Worker* w) {
  step(self, sh, w);
  return {[=](stop_atom) { finish(self, sh, w); }};
}

int64_t current_rss_mb() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::atoll(line.c_str() + 6) / 1024;
  return 0;
}

double secs(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// Spawns `n` workers for sh->job and returns them; sh->running counts them.
std::vector<std::unique_ptr<Worker>> spawn_workers(caf::actor_system& sys, Shared* sh, int n) {
  std::vector<std::unique_ptr<Worker>> ws;
  sh->running = n;
  for (int i = 0; i < n; ++i) {
    auto w = std::make_unique<Worker>();
    w->index = i;
    if (!sh->card_ids.empty()) w->card = sh->card_ids[i % sh->card_ids.size()];
    if (!sh->user_ids.empty()) w->user = sh->user_ids[i % sh->user_ids.size()];
    ws.push_back(std::move(w));
  }
  for (auto& w : ws) sys.spawn(worker, sh, w.get());
  return ws;
}

// Waits for every worker to finish; false after `limit`.
bool wait_workers(Shared* sh, std::chrono::seconds limit) {
  auto deadline = Clock::now() + limit;
  while (sh->running.load(std::memory_order_acquire) > 0) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

int run_purchase(Options o) {
  const char* mode_name = o.mode == Mode::hot ? "hot" : o.mode == Mode::many ? "many" : "million";
  if (o.buyers < 1 || o.cards < 1 || o.seconds < 1 || o.users < 1 || o.passivate_after_ms < 1) {
    std::cerr << "giftcard-bench: --buyers, --cards, --seconds, --users and --passivate-after-ms "
                 "must be positive\n";
    return 2;
  }
  // ---- the data directory
  bool remove_data = false;
  std::filesystem::path data;
  std::error_code ec;
  if (o.data.empty()) {
    std::string tmpl = (std::filesystem::temp_directory_path() / "giftcard-bench-XXXXXX").string();
    if (!mkdtemp(tmpl.data())) {
      std::perror("giftcard-bench: mkdtemp");
      return 2;
    }
    data = tmpl;
    remove_data = true;
  } else {
    data = o.data;
    if (std::filesystem::exists(data) && !std::filesystem::is_empty(data, ec)) {
      std::cerr << "giftcard-bench: --data " << data << " is not empty\n";
      return 2;
    }
  }
  std::unique_ptr<EventStore> store;
  StoreOptions so;
  so.path = data.string();  // sync = true: every group commit is a synced WAL write
  if (Status s = OpenRocksEventStore(so, &store); !s.ok()) {
    std::cerr << "giftcard-bench: cannot open store: " << s.ToString() << "\n";
    return 2;
  }
  std::unique_ptr<ProjectionDb> projections;
  if (Status s = ProjectionDb::Open(store.get(), &projections); !s.ok()) {
    std::cerr << "giftcard-bench: cannot open projections: " << s.ToString() << "\n";
    return 2;
  }
  ShopContext ctx;
  ctx.store = store.get();
  ctx.projections = projections.get();
  ctx.config.passivate_after = std::chrono::milliseconds(o.passivate_after_ms);

  // ---- sizes
  const int K = o.cards;
  const int64_t U = o.users;
  std::vector<int64_t> codes_per_card(K);
  if (o.mode == Mode::million) {
    for (int c = 0; c < K; ++c) codes_per_card[c] = U / K + (c < U % K ? 1 : 0);
  } else if (o.codes_per_card > 0) {
    std::fill(codes_per_card.begin(), codes_per_card.end(), o.codes_per_card);
  } else {
    // Need at the estimated rate for warm-up + run + drain, split by the share
    // of buyers each card gets (round-robin), with 20% slack per card; scaled
    // down to kMaxTotalCodes in all.
    int64_t want = kEstimatedRate * (o.seconds + 2) * 12 / 10;
    double scale = std::min(1.0, static_cast<double>(kMaxTotalCodes) / static_cast<double>(want));
    for (int c = 0; c < K; ++c) {
      int64_t buyers_here = o.buyers / K + (c < o.buyers % K ? 1 : 0);
      codes_per_card[c] = static_cast<int64_t>(scale * static_cast<double>(want) *
                                               static_cast<double>(buyers_here) / o.buyers);
    }
  }
  int64_t total_codes = 0;
  for (auto n : codes_per_card) total_codes += n;

  nlohmann::json out;
  int rc = 0;
  {
    NodeConfig cfg(TlsOptions{});
    caf::actor_system sys{cfg};
    auto internal = spawn_shop(sys, &ctx);
    auto shop = caf::actor_cast<shop_actor>(internal);
    caf::scoped_actor self{sys};
    std::string failure;
    auto on_error = [&](caf::error& e) { failure = sys.render(e); };

    // ---- setup: cards and codes
    auto setup_start = Clock::now();
    std::cerr << "setup: mode=" << mode_name << " store=" << data.string() << " cards=" << K
              << " codes=" << total_codes << " users=" << U << " buyers=" << o.buyers << "\n";
    Shared sh;
    sh.shop = shop;
    for (int c = 0; c < K && failure.empty(); ++c) {
      sh.card_ids.push_back(card_name(c));
      self->request(shop, std::chrono::seconds(60), create_atom::value,
                    CardSpec{card_name(c), "Bench card " + std::to_string(c), kPrice, kPrice})
          .receive([](CardInfo&) {}, on_error);
      for (int64_t done = 0; done < codes_per_card[c] && failure.empty();) {
        int64_t n = std::min<int64_t>(kCodesPerBatch, codes_per_card[c] - done);
        std::vector<CodeSpec> codes;
        codes.reserve(n);
        for (int64_t i = 0; i < n; ++i) codes.push_back(CodeSpec{code_name(c, done + i), 0});
        self->request(shop, std::chrono::seconds(300), add_codes_atom::value, card_name(c),
                      std::move(codes))
            .receive([](AddCodesReply&) {}, on_error);
        done += n;
        if (K <= 10 || c % 10 == 9 || c == K - 1)
          if (done == codes_per_card[c] || K == 1)
            std::cerr << "setup: " << card_name(c) << ": " << done << "/" << codes_per_card[c]
                      << " codes (" << secs(Clock::now() - setup_start) << " s)\n";
      }
    }
    if (!failure.empty()) {
      std::cerr << "giftcard-bench: setup failed: " << failure << "\n";
      rc = 2;
    }

    // ---- setup: wallets (hot/many; million credits during the load)
    std::vector<std::unique_ptr<Worker>> workers;
    if (rc == 0 && o.mode != Mode::million) {
      for (int64_t u = 0; u < U; ++u) sh.user_ids.push_back(user_name(u));
      sh.users = U;
      // Enough for every code of every card: no purchase can fail on funds.
      sh.credit_amount = kPrice * (total_codes + 1);
      sh.job = Job::credit_only;
      workers = spawn_workers(sys, &sh, static_cast<int>(std::min<int64_t>(o.buyers, U)));
      if (!wait_workers(&sh, std::chrono::seconds(600))) {
        std::cerr << "giftcard-bench: crediting did not finish\n";
        std::_Exit(3);
      }
      if (sh.credits_ok.load() != static_cast<uint64_t>(U)) {
        std::cerr << "giftcard-bench: only " << sh.credits_ok.load() << "/" << U
                  << " credits succeeded\n";
        rc = 2;
      }
      std::cerr << "setup: " << U << " wallets credited (" << secs(Clock::now() - setup_start)
                << " s)\n";
    }

    // ---- load
    if (rc == 0) {
      sh.errors_seen = 0;
      sh.next_user = 0;
      if (o.mode == Mode::million) {
        sh.users = U;
        sh.credit_amount = kPrice;
        sh.job = Job::credit_then_purchase;
        sh.phase = 1;
      } else {
        sh.job = Job::purchase_loop;
        sh.phase = 0;
      }
      auto progress = [&](Clock::time_point start, uint64_t ok_before) {
        uint64_t ok = ctx.metrics.purchases_ok.load() - ok_before;
        std::cerr << "load: t=" << static_cast<int>(secs(Clock::now() - start) + 0.5)
                  << "s purchases=" << ok << " live_wallets=" << ctx.metrics.live_wallets.load()
                  << " passivations=" << ctx.metrics.passivations.load()
                  << " rss_mb=" << current_rss_mb() << "\n";
      };
      int64_t live_wallets_peak = 0;
      StoreStats s0, s1;
      Clock::time_point t0, t1;
      uint64_t ok_base = ctx.metrics.purchases_ok.load();
      const auto load_start = Clock::now();
      workers = spawn_workers(sys, &sh, o.buyers);
      if (o.mode == Mode::million) {
        t0 = load_start;
        s0 = store->Stats();
        auto next_report = t0 + std::chrono::seconds(1);
        while (sh.running.load(std::memory_order_acquire) > 0) {
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
          live_wallets_peak = std::max<int64_t>(live_wallets_peak, ctx.metrics.live_wallets.load());
          if (Clock::now() >= next_report) {
            progress(load_start, ok_base);
            next_report += std::chrono::seconds(5);
          }
        }
        t1 = load_start;
        for (auto& w : workers) t1 = std::max(t1, w->finished);
        s1 = store->Stats();
      } else {
        std::this_thread::sleep_until(load_start + std::chrono::seconds(1));  // warm-up
        s0 = store->Stats();
        t0 = Clock::now();
        sh.phase.store(1, std::memory_order_release);
        for (int i = 1; i <= o.seconds; ++i) {
          auto until = t0 + std::chrono::seconds(i);
          while (Clock::now() < until) {
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
            live_wallets_peak =
                std::max<int64_t>(live_wallets_peak, ctx.metrics.live_wallets.load());
          }
          progress(load_start, ok_base);
          if (sh.running.load() == 0) break;  // every buyer ran out of codes
        }
        sh.phase.store(2, std::memory_order_release);
        t1 = Clock::now();
        s1 = store->Stats();
      }
      int64_t live_wallets_end = ctx.metrics.live_wallets.load();
      if (!wait_workers(&sh, std::chrono::seconds(60))) {
        std::cerr << "giftcard-bench: HANG: " << sh.running.load()
                  << " buyers still wait for a reply 60 s after the stop\n";
        std::_Exit(3);
      }
      auto load_end = Clock::now();

      // ---- results
      std::vector<uint32_t> lat;
      std::vector<std::string> codes;
      std::map<std::string, uint64_t> errors;
      uint64_t ok_total = 0, ok_measured = 0;
      for (auto& w : workers) {
        ok_total += w->ok_total;
        ok_measured += w->ok_measured;
        lat.insert(lat.end(), w->latency_us.begin(), w->latency_us.end());
        for (auto& c : w->codes) codes.push_back(std::move(c));
        for (auto& [k, v] : w->errors) errors[k] += v;
      }
      std::sort(lat.begin(), lat.end());
      auto pct = [&](double p) -> double {
        if (lat.empty()) return 0;
        size_t i = static_cast<size_t>(std::ceil(p * static_cast<double>(lat.size())));
        return lat[std::clamp<size_t>(i, 1, lat.size()) - 1] / 1000.0;
      };
      std::sort(codes.begin(), codes.end());
      size_t distinct = static_cast<size_t>(std::unique(codes.begin(), codes.end()) - codes.begin());

      // Correctness: every success got its own code; the cards and the shop agree.
      std::vector<std::string> problems;
      if (distinct != ok_total)
        problems.push_back(std::to_string(ok_total - distinct) + " code(s) handed out twice (" +
                           std::to_string(ok_total) + " successes, " + std::to_string(distinct) +
                           " distinct codes)");
      uint64_t shop_ok = ctx.metrics.purchases_ok.load() - ok_base;
      if (shop_ok != ok_total)
        problems.push_back("shop counted " + std::to_string(shop_ok) + " purchases, buyers got " +
                           std::to_string(ok_total));
      if (ctx.metrics.purchases_replayed.load() != 0)
        problems.push_back(std::to_string(ctx.metrics.purchases_replayed.load()) +
                           " purchase(s) replayed although every key is fresh");
      int64_t assigned = 0;
      for (const auto& id : sh.card_ids) {
        self->request(shop, std::chrono::seconds(60), card_atom::value, id, store->LastPosition())
            .receive([&](CardInfo& ci) { assigned += ci.assigned; },
                     [&](caf::error& e) { problems.push_back("card " + id + ": " + sys.render(e)); });
      }
      if (assigned != static_cast<int64_t>(ok_total))
        problems.push_back("cards report " + std::to_string(assigned) + " assigned codes, buyers got " +
                           std::to_string(ok_total));
      for (auto& p : problems) std::cerr << "giftcard-bench: CORRECTNESS: " << p << "\n";
      if (!problems.empty()) rc = 1;
      if (sh.out_of_stock)
        std::cerr << "giftcard-bench: WARNING: cards ran out of codes; raise --codes\n";

      double window = secs(t1 - t0);
      uint64_t batches = s1.batches - s0.batches;
      uint64_t events = s1.events - s0.events;
      uint64_t requests = s1.requests - s0.requests;
      uint64_t counted = o.mode == Mode::million ? ok_total : ok_measured;
      out["mode"] = mode_name;
      out["buyers"] = o.buyers;
      out["cards"] = K;
      out["users"] = U;
      out["seconds"] = std::round(window * 1000) / 1000;
      out["purchases"] = counted;
      out["purchases_per_s"] = window > 0 ? std::round(static_cast<double>(counted) / window) : 0.0;
      out["p50_ms"] = pct(0.50);
      out["p90_ms"] = pct(0.90);
      out["p99_ms"] = pct(0.99);
      out["max_ms"] = lat.empty() ? 0.0 : lat.back() / 1000.0;
      out["errors"] = nlohmann::json::object();
      for (auto& [k, v] : errors) out["errors"][k] = v;
      out["store_batches"] = batches;
      out["events_per_batch"] =
          batches ? std::round(100.0 * static_cast<double>(events) / static_cast<double>(batches)) / 100
                  : 0.0;
      out["requests_per_batch"] =
          batches ? std::round(100.0 * static_cast<double>(requests) / static_cast<double>(batches)) / 100
                  : 0.0;
      out["sync_ms_per_batch"] =
          batches ? std::round(1000.0 * static_cast<double>(s1.sync_micros - s0.sync_micros) /
                               static_cast<double>(batches)) / 1e6
                  : 0.0;
      out["live_wallets_end"] = live_wallets_end;
      out["live_wallets_peak"] = live_wallets_peak;
      out["passivations"] = ctx.metrics.passivations.load();
      out["purchases_total"] = ok_total;  // warm-up and drain included; all verified
      out["distinct_codes"] = distinct;
      out["codes_loaded"] = total_codes;
      out["setup_s"] = std::round(secs(load_start - setup_start) * 10) / 10;
      out["drain_ms"] = std::round(secs(load_end - t1) * 10000) / 10;
      out["verified"] = problems.empty();
      std::cerr << "load: " << counted << " purchases in " << window << " s; "
                << (problems.empty() ? "verified: every code handed out once" : "NOT VERIFIED")
                << "\n";
    }

    // ---- shutdown, as serve does
    self->request(internal, std::chrono::seconds(120), DrainMsg{})
        .receive([](bool) {},
                 [&](caf::error& e) {
                   std::cerr << "giftcard-bench: drain incomplete: " << sys.render(e) << "\n";
                 });
    self->send_exit(internal, caf::exit_reason::user_shutdown);
  }
  store->Close();
  if (Status h = store->Health(); !h.ok()) {
    std::cerr << "giftcard-bench: store failed: " << h.ToString() << "\n";
    rc = rc ? rc : 1;
  }
  store.reset();
  if (!out.empty()) {
    out["peak_rss_mb"] = bench::peak_rss_mb();
    std::cout << out.dump() << std::endl;
  }
  if (remove_data) std::filesystem::remove_all(data, ec);
  return rc;
}

}  // namespace
}  // namespace giftcard

int main(int argc, char** argv) {
  using giftcard::Mode;
  CLI::App app{"giftcard-bench: durable purchase benchmark of the in-process shop"};
  app.require_subcommand(1);
  giftcard::Options o;
  std::string mode = "hot";
  auto* purchase = app.add_subcommand("purchase", "N concurrent buyers purchasing through the shop actor");
  purchase->add_option("--mode", mode, "hot: one card; many: K cards; million: 1M users, one purchase each")
      ->check(CLI::IsMember({"hot", "many", "million"}))
      ->capture_default_str();
  purchase->add_option("--buyers", o.buyers, "concurrent buyers (requests in flight)")
      ->capture_default_str();
  auto* cards = purchase->add_option("--cards", o.cards, "cards (default 1; 100 in many mode)");
  purchase->add_option("--seconds", o.seconds, "measured seconds (after a 1 s warm-up)")
      ->capture_default_str();
  auto* users = purchase->add_option(
      "--users", o.users, "distinct users (default: = buyers; 1,000,000 in million mode)");
  purchase->add_option("--data", o.data, "store directory (default: a fresh temp dir, removed)");
  auto* passivate = purchase->add_option("--passivate-after-ms", o.passivate_after_ms,
                                         "idle time before an actor passivates (default 30000; "
                                         "1000 in million mode)");
  purchase->add_option("--codes", o.codes_per_card,
                       "codes per card (default: estimated from --seconds; ignored in million mode)");
  CLI11_PARSE(app, argc, argv);

  o.mode = mode == "hot" ? Mode::hot : mode == "many" ? Mode::many : Mode::million;
  if (cards->count() == 0) o.cards = o.mode == Mode::many ? 100 : 1;
  if (o.mode == Mode::hot && o.cards != 1) {
    std::cerr << "giftcard-bench: hot mode uses one card; ignoring --cards\n";
    o.cards = 1;
  }
  if (users->count() == 0) o.users = o.mode == Mode::million ? 1000000 : o.buyers;
  if (passivate->count() == 0 && o.mode == Mode::million) o.passivate_after_ms = 1000;
  return giftcard::run_purchase(o);
}
