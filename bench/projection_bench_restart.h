// giftcard-projection-bench (projection_bench.cc): the restart subcommand.
// `giftcard serve` to ready over a big log, the first purchase on a card with
// and without a snapshot, and the catch-up of K events behind the log.
#pragma once

#include "bench/projection_bench_plan.h"

namespace giftcard::projbench {

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
inline double history_catch_up(EventStore* store) {
  auto t0 = Clock::now();
  std::unique_ptr<ProjectionHistory> h;
  must(ProjectionHistory::Open(store, &h), "ProjectionHistory::Open");
  must(h->CatchUp(), "ProjectionHistory::CatchUp");
  return secs(Clock::now() - t0);
}

// Writes the snapshot the card or wallet actor would write when it stops.
template <class State>
inline void write_snapshot(EventStore* store, const std::string& stream) {
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
inline int64_t fill_wal(const Plan& plan, EventStore* store, ProjectionDb* db, const fs::path& dir,
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

inline int run_restart(const RestartOptions& o) {
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

}  // namespace giftcard::projbench
