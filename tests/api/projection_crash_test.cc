// Crashes of the persisted projections (issue #3, invariants 4-6 (docs/CONTRACT.md, "Invariants")),
// with real processes: `giftcard serve` runs as a child, a concurrent workload talks to it over
// CAF, and it is killed with SIGKILL at chosen moments.
//
// The moment "between the append and the projection update" is caught, not
// hoped for: the server is frozen with SIGSTOP, the store is read through a
// RocksDB secondary instance in this process (log head and the projections'
// checkpoint), and only if the log is ahead of the checkpoint is the frozen
// server killed — so the disk is exactly in the state that was read. After the
// restart the server must report that state ("open at position L",
// "projections at position C"), catch up, and its read models must equal a
// fresh fold of the log: nothing lost, nothing applied twice.
//
// Cases: (1) kill -9 between append and projection update, several rounds
// under concurrent load, then every answer checked against `giftcard events`,
// `giftcard replay` and `giftcard verify`; (2) a clean SIGTERM restart resumes
// at the checkpoint with nothing to catch up and every model unchanged;
// (3) kill -9 while rebuild_atom folds a new generation (caught on disk the
// same way): the old generation stays active and whole, the next rebuild works.
// Under ASan+UBSan (__SANITIZE_ADDRESS__) the workload shrinks and deadlines grow.
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/api/projection_crash_disk.h"
#include "tests/api/projection_crash_load.h"

using namespace giftcard;
using namespace giftcard::crash_test;

BOOST_AUTO_TEST_SUITE(projection_crash)

// Several rounds of: concurrent credits and purchases from three connections,
// then kill -9 at a moment when the log is ahead of the projections on disk;
// restart, check the catch-up; more load; ... Finally every acknowledged write
// is there exactly once, and every answer of the server equals the log.
BOOST_AUTO_TEST_CASE(
    a_crash_between_append_and_projection_update_loses_nothing_and_applies_nothing_twice) {
  const auto t0 = Clock::now();
  const int kRounds = by_build(6, 3);
  const int kClients = 3;
  const int kWindow = 16;
  const int kCodes = by_build(1500, 800);
  std::mt19937_64 rng(std::random_device{}());
  const uint64_t seed = rng();
  rng.seed(seed);
  BOOST_TEST_MESSAGE("seed " << seed);

  TempDir dir;
  const std::string data = dir.str("data");
  Catalog cat;
  cat.cards = {{"alpha", 100}, {"beta", 250}, {"gamma", 399}};
  for (int u = 0; u < 10; ++u) cat.users.push_back("user-" + std::to_string(u));
  auto load = std::make_shared<Load>();

  auto serve = std::make_unique<ServeProcess>(data, dir.str("serve-0.log"));
  {
    Client c(serve->port());
    set_up_shop(c, cat, kCodes, 20000);
  }
  int between = 0;
  for (int round = 0; round < kRounds; ++round) {
    const int64_t before = load->acks;
    const int64_t target = before + by_build(150, 80) +
                           static_cast<int64_t>(rng() % by_build(400, 150));
    {
      auto clients = start_load(serve->port(), load, cat, "r" + std::to_string(round), kClients,
                                kWindow, rng);
      wait_acks(*load, target, std::chrono::milliseconds(60000 * kSlow));
      load->killed = true;  // failures from here on are the crash's
      CrashPoint cp = kill_between_append_and_projection(
          *serve, data, dir.str("sec-kill-" + std::to_string(round)), rng, 40);
      between += cp.between();
      BOOST_TEST_MESSAGE("round " << round << ": killed after " << load->acks - before
                                  << " acks; log " << cp.disk.log << ", projections "
                                  << cp.disk.checkpoint << " (" << cp.freezes << " freezes)");
      clients.clear();  // drops whatever was still in flight
      load->unanswered += load->in_flight.exchange(0);
      load->killed = false;
      // Restart: it must resume exactly from the state the crash left.
      serve = std::make_unique<ServeProcess>(
          data, dir.str("serve-" + std::to_string(round + 1) + ".log"));
      check_restart_report(*serve, cp, "round " + std::to_string(round));
      Client c(serve->port());
      ShopStatus st = c.wait_caught_up(std::chrono::milliseconds(30000 * kSlow));
      BOOST_TEST(st.log_position == cp.disk.log);
      BOOST_TEST(st.generation == static_cast<int64_t>(cp.disk.generation));
    }
    // Idle and caught up: the persisted models are exactly the fold of the log.
    require_models_equal_fold(data, dir.str("sec-check-" + std::to_string(round)),
                              "after crash " + std::to_string(round));
  }
  BOOST_TEST_MESSAGE(load->summary());
  // The crash landed between an append and its projection update at least
  // once (the freezing makes this all but certain; each round tries 40 times).
  BOOST_TEST(between >= 1,
             between << " of " << kRounds << " crashes between append and projection");

  // What the server answers now, then a clean stop, then the audit tools.
  Views views;
  {
    Client c(serve->port());
    ShopStatus st = c.wait_caught_up(std::chrono::milliseconds(30000 * kSlow));
    std::set<std::string> users(cat.users.begin(), cat.users.end());
    std::set<std::string> cards;
    for (const auto& [id, _] : cat.cards) cards.insert(id);
    views = capture(c, users, cards);
    BOOST_TEST(views.status.log_position == st.log_position);
    // Acknowledged purchases via lookup; the log is read after the stop.
    LogFacts facts_live = read_log(data);  // secondary instance beside the live server
    BOOST_TEST(facts_live.last == st.log_position);
    check_acked(c, *load, facts_live);
  }
  serve->stop_clean();
  serve.reset();
  LogFacts facts = read_log(data);
  BOOST_TEST(facts.last == views.status.log_position);
  BOOST_TEST((keys_of(facts.cards) == std::set<std::string>{"alpha", "beta", "gamma"}));
  check_views_against_log(views, facts, run_replay(data));
  require_verify_ok(data);
  require_models_equal_fold(data, dir.str("sec-final"), "after the clean stop");
  BOOST_TEST_MESSAGE("crash rounds: " << ms_since(t0) << " ms, " << facts.last << " events");
}

// A clean SIGTERM drains the projections to the log's head and persists the
// checkpoint: the restart resumes there (nothing to catch up, nothing applied
// again), and every model is unchanged.
BOOST_AUTO_TEST_CASE(a_restart_after_sigterm_resumes_from_the_checkpoint) {
  const auto t0 = Clock::now();
  std::mt19937_64 rng(std::random_device{}());
  TempDir dir;
  const std::string data = dir.str("data");
  Catalog cat;
  cat.cards = {{"delta", 120}, {"epsilon", 310}};
  for (int u = 0; u < 6; ++u) cat.users.push_back("shopper-" + std::to_string(u));
  std::set<std::string> users(cat.users.begin(), cat.users.end());
  std::set<std::string> cards{"delta", "epsilon"};
  auto load = std::make_shared<Load>();

  Views before;
  {
    ServeProcess serve(data, dir.str("serve-1.log"));
    {
      Client c(serve.port());
      set_up_shop(c, cat, by_build(1000, 500), 10000);
    }
    {
      auto clients = start_load(serve.port(), load, cat, "clean", 2, 16, rng);
      wait_acks(*load, by_build(600, 250), std::chrono::milliseconds(60000 * kSlow));
      load->stop = true;
      auto deadline = Clock::now() + std::chrono::milliseconds(60000 * kSlow);
      while (load->in_flight > 0 && Clock::now() < deadline) std::this_thread::sleep_for(2ms);
      BOOST_REQUIRE_MESSAGE(load->in_flight == 0, load->in_flight << " requests never answered");
    }
    Client c(serve.port());
    c.wait_caught_up(std::chrono::milliseconds(30000 * kSlow));
    before = capture(c, users, cards);
    serve.stop_clean();
  }
  BOOST_TEST_MESSAGE(load->summary());
  BOOST_TEST(load->unexpected.empty(), load->unexpected.size() << " unexpected failures");
  require_models_equal_fold(data, dir.str("sec-1"), "after SIGTERM");

  for (int restart = 2; restart <= 3; ++restart) {
    const std::string what = "restart " + std::to_string(restart);
    ServeProcess serve(data, dir.str("serve-" + std::to_string(restart) + ".log"));
    StartupReport rep = startup_report(serve.log());
    BOOST_TEST(rep.log == before.status.log_position, what);
    BOOST_TEST(!rep.projections, what << ": serve had to catch up after a clean stop:\n"
                                      << serve.log());
    Client c(serve.port());
    // The very first status: the checkpoint is the log's head already.
    ShopStatus st = c.status();
    BOOST_TEST(st.log_position == before.status.log_position, what);
    BOOST_TEST(st.projection_position == st.log_position, what);
    BOOST_TEST(st.generation == before.status.generation, what);
    Views after = capture(c, users, cards);
    BOOST_TEST((after.wallets == before.wallets), what << ": balances changed across the restart");
    BOOST_TEST(after.cards.size() == before.cards.size());
    for (const auto& [id, ci] : before.cards) {
      BOOST_TEST((after.cards.count(id) && same_card(after.cards.at(id), ci)),
                 what << ": card " << id);
      BOOST_TEST(after.cards.at(id).position == ci.position, what << ": card " << id);
    }
    BOOST_TEST((after.histories == before.histories), what << ": purchase histories changed");
    BOOST_TEST(after.purchases.size() == before.purchases.size());
    for (const auto& [id, p] : before.purchases)
      BOOST_TEST((after.purchases.count(id) && same_purchase(after.purchases.at(id), p)),
                 what << ": " << id);
    BOOST_TEST_MESSAGE(what << ": ready in " << serve.ready_ms() << " ms");

    if (restart == 2) {
      // New work after the restart counts once, on top of the unchanged models.
      int64_t last = 0;
      std::map<std::string, int64_t> expect = before.wallets;
      std::map<std::string, int64_t> sold;
      for (size_t u = 0; u < cat.users.size(); ++u) {
        const std::string& user = cat.users[u];
        auto cr = c.ask<CreditReply>(credit_atom::value, user, int64_t{1000},
                                     std::string("after-restart"));
        BOOST_REQUIRE_MESSAGE(cr, c.why(cr));
        expect[user] += 1000;
        BOOST_TEST(cr->balance == expect[user], user);
        const auto& [card, price] = cat.cards[u % cat.cards.size()];
        auto p = c.ask<Purchase>(purchase_atom::value, card, user, std::string("after-restart"));
        BOOST_REQUIRE_MESSAGE(p, c.why(p));
        expect[user] -= price;
        ++sold[card];
        last = p->position + 1;
      }
      for (const auto& user : cat.users) {
        auto w = c.ask<WalletView>(wallet_atom::value, user, last);
        BOOST_REQUIRE_MESSAGE(w, c.why(w));
        BOOST_TEST(w->balance == expect[user], user);
      }
      for (const auto& id : cards) {
        auto ci = c.ask<CardInfo>(card_atom::value, id, last);
        BOOST_REQUIRE_MESSAGE(ci, c.why(ci));
        BOOST_TEST(ci->assigned == before.cards.at(id).assigned + sold[id], id);
        BOOST_TEST(ci->available == before.cards.at(id).available - sold[id], id);
      }
      c.wait_caught_up(std::chrono::milliseconds(30000 * kSlow));
      before = capture(c, users, cards);  // the next restart must keep these
    }
    serve.stop_clean();
  }
  require_models_equal_fold(data, dir.str("sec-3"), "after the last SIGTERM");
  LogFacts facts = read_log(data);
  check_views_against_log(before, facts, run_replay(data));
  require_verify_ok(data);
  BOOST_TEST_MESSAGE("clean restarts: " << ms_since(t0) << " ms");
}

// kill -9 while a rebuild is folding the log into a new generation beside the
// live one (caught on disk: the new generation has a checkpoint, the old one
// is still active). After the restart the old generation is active and whole
// (equal to the fold of the log), the new one is not half-used, and the next
// rebuild succeeds and swaps in a whole new generation.
BOOST_AUTO_TEST_CASE(a_crash_during_a_rebuild_leaves_one_whole_generation) {
  const auto t0 = Clock::now();
  std::mt19937_64 rng(std::random_device{}());
  TempDir dir;
  const std::string data = dir.str("data");
  // More than one rebuild chunk (65536 events), so that a rebuild has a
  // partial new generation on disk for a while.
  const int kSeedEvents = by_build(100000, 80000);
  const int kSeedUsers = 100;
  const LogFacts seeded = seed_store(data, kSeedEvents, kSeedUsers);
  BOOST_TEST_MESSAGE("seeded " << kSeedEvents << " events in " << ms_since(t0) << " ms");
  Catalog cat;
  cat.cards = {{"zeta", 150}, {"eta", 90}};
  for (int u = 0; u < 6; ++u) cat.users.push_back("rb-" + std::to_string(u));
  auto load = std::make_shared<Load>();

  auto serve = std::make_unique<ServeProcess>(data, dir.str("serve-1.log"));
  int64_t full_rebuild_ms = 0;
  uint32_t gen_before = 0;
  CrashPoint cp;
  {
    Client c(serve->port());
    c.wait_caught_up(std::chrono::milliseconds(60000 * kSlow));  // the seeded log, from position 0
    BOOST_TEST_MESSAGE("server up and caught up with the seeded log at " << ms_since(t0) << " ms");
    set_up_shop(c, cat, by_build(3000, 1500), 50000);
    // A whole rebuild under load: generation 2.
    auto clients = start_load(serve->port(), load, cat, "rb1", 1, 8, rng);
    auto info = c.ask<RebuildInfo>(rebuild_atom::value);
    BOOST_REQUIRE_MESSAGE(info, "rebuild: " << c.why(info));
    BOOST_TEST(info->generation == 2);
    BOOST_TEST(info->events >= kSeedEvents);
    BOOST_TEST(c.status().generation == 2);
    full_rebuild_ms = std::max<int64_t>(info->millis, 1);
    BOOST_TEST_MESSAGE("rebuild under load: " << info->events << " events in " << info->millis
                                              << " ms");

    // Now rebuilds that are killed half-way: freeze the server at random
    // moments until the disk shows a partial new generation.
    bool caught = false;
    for (int attempt = 0; attempt < 8 && !caught; ++attempt) {
      gen_before = static_cast<uint32_t>(c.status().generation);
      Secondary sec(data, dir.str("sec-rb-" + std::to_string(attempt)));
      auto call = std::make_shared<RebuildCall>();
      auto rebuilder = start_rebuild(c, call);
      while (!call->done) {
        std::this_thread::sleep_for(std::chrono::microseconds(
            rng() % static_cast<uint64_t>(std::max<int64_t>(full_rebuild_ms * 1000 / 6, 1))));
        if (call->done) break;
        serve->freeze();
        DiskState d = read_disk_state(sec);
        if (d.generation == gen_before && d.next_generation_checkpoint) {
          cp.disk = d;
          caught = true;
          load->killed = true;
          serve->kill_hard();
          break;
        }
        serve->thaw();
      }
      caf::anon_send_exit(rebuilder, caf::exit_reason::kill);
      if (!caught) {
        std::lock_guard lock(call->mu);
        BOOST_REQUIRE_MESSAGE(call->result, "rebuild: " << c.why(call->result));
        BOOST_TEST(call->result->generation == gen_before + 1);
      }
    }
    BOOST_REQUIRE_MESSAGE(caught, "no rebuild was caught half-way in 8 attempts");
    BOOST_TEST_MESSAGE("caught a rebuild half-way at " << ms_since(t0) << " ms");
    BOOST_TEST_MESSAGE("killed during the rebuild of generation "
                       << gen_before + 1 << ": it had folded up to "
                       << *cp.disk.next_generation_checkpoint << "; live generation "
                       << cp.disk.generation << " at " << cp.disk.checkpoint << ", log at "
                       << cp.disk.log);
    clients.clear();
    load->unanswered += load->in_flight.exchange(0);
    load->killed = false;
  }

  // Restart: the old generation is active, whole, and catches up.
  serve = std::make_unique<ServeProcess>(data, dir.str("serve-2.log"));
  check_restart_report(*serve, cp, "restart after the crashed rebuild");
  {
    Client c(serve->port());
    ShopStatus st = c.wait_caught_up(std::chrono::milliseconds(30000 * kSlow));
    BOOST_TEST(st.generation == static_cast<int64_t>(gen_before));
    BOOST_TEST(st.log_position == cp.disk.log);
  }
  require_models_equal_fold(data, dir.str("sec-after-crash"), "after the crashed rebuild");
  {
    // The same through the front door, against the log and giftcard replay.
    Client c(serve->port());
    std::set<std::string> users(cat.users.begin(), cat.users.end());
    for (int u = 0; u < kSeedUsers; ++u) users.insert("seed-" + std::to_string(u));
    Views v = capture(c, users, {"zeta", "eta"});
    LogFacts facts = read_log(data, seeded);
    check_views_against_log(v, facts, run_replay(data));
    check_acked(c, *load, facts);
  }

  // The next rebuild (under load again) succeeds and swaps in gen_before + 1.
  {
    Client c(serve->port());
    auto clients = start_load(serve->port(), load, cat, "rb3", 1, 8, rng);
    auto info = c.ask<RebuildInfo>(rebuild_atom::value);
    BOOST_REQUIRE_MESSAGE(info, "rebuild after the crash: " << c.why(info));
    BOOST_TEST(info->generation == static_cast<int64_t>(gen_before + 1));
    stop_load(*load);
    ShopStatus st = c.wait_caught_up(std::chrono::milliseconds(30000 * kSlow));
    BOOST_TEST(st.generation == static_cast<int64_t>(gen_before + 1));
  }
  require_models_equal_fold(data, dir.str("sec-after-rebuild"), "after the rebuild that followed");
  {
    Secondary sec(data, dir.str("sec-keys"));
    sec.refresh();
    BOOST_TEST(generation_keys(sec, gen_before) == 0,
               "generation " << gen_before << " was not dropped");
    BOOST_TEST(generation_keys(sec, gen_before + 1) > 0);
    BOOST_TEST(generation_keys(sec, gen_before + 2) == 0);
  }
  {
    Client c(serve->port());
    LogFacts facts = read_log(data, seeded);
    check_acked(c, *load, facts);
  }
  serve->stop_clean();
  require_verify_ok(data);
  BOOST_TEST_MESSAGE(load->summary());
  BOOST_TEST_MESSAGE("rebuild crash: " << ms_since(t0) << " ms");
}

BOOST_AUTO_TEST_SUITE_END()
