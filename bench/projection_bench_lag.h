// giftcard-projection-bench (projection_bench.cc): the lag subcommand. The
// in-process shop with N buyer actors; every projection catch-up's lag while
// measuring; every code sold once; the live projections equal a replay.
#pragma once

#include "bench/projection_bench_plan.h"

namespace giftcard::projbench {

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

inline void buyer_finish(caf::event_based_actor* self, LagShared* sh) {
  sh->running.fetch_sub(1, std::memory_order_release);
  self->quit();
}

inline void buy_next(caf::event_based_actor* self, LagShared* sh, Buyer* b) {
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

inline caf::behavior buyer(caf::event_based_actor* self, LagShared* sh, Buyer* b) {
  buy_next(self, sh, b);
  return {[=](stop_atom) { buyer_finish(self, sh); }};
}

inline json run_lag_once(const LagOptions& o) {
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

inline int run_lag(const LagOptions& o) {
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
  out["peak_rss_mb"] = bench::peak_rss_mb();
  std::cout << out.dump() << std::endl;
  return 0;
}

}  // namespace giftcard::projbench
