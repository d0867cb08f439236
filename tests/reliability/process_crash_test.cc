// RELIABILITY.md §0 and §1: the oracle itself, then `giftcard serve` killed
// with SIGKILL (and stopped with SIGTERM) at random moments under 64 keep-alive
// HTTP clients on 8 hot cards — 70% purchases, 20% credits, 10% same-key
// retries, some of them concurrent with the original — restarted on the same
// data each time. At the end every call the clients saw acknowledged must be
// in the log exactly once, every unanswered call must settle when retried with
// its key, and the live views, `giftcard replay` and an in-test fold of the
// log must agree. Counts: 20 kills and 5 SIGTERMs in `make test`, 200 and 50
// in `make soak` (GIFTCARD_SOAK=1); the seed is printed and GIFTCARD_SEED
// repeats a run.
#include <algorithm>
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <iostream>
#include <memory>
#include <thread>

#include "tests/reliability/http_workload.h"
#include "tests/reliability/oracle.h"
#include "tests/support/process.h"
#include "tests/support/serve_child.h"

namespace giftcard::reliability {
namespace {

using namespace std::chrono_literals;
using test::ServeChild;
using test::TempDir;

// ---- The oracle must be able to fail --------------------------------------

Call ok_purchase(std::string user, std::string key, std::string card, std::string id,
                 std::string code, int64_t position, std::string body) {
  Call c;
  c.kind = Call::Kind::purchase;
  c.outcome = Call::Outcome::ok;
  c.user = std::move(user);
  c.key = std::move(key);
  c.card = std::move(card);
  c.purchase_id = std::move(id);
  c.code = std::move(code);
  c.position = position;
  c.status = 201;
  c.body = std::move(body);
  return c;
}

test::OracleReport one_purchase_log() {
  test::OracleReport log;
  log.events = 4;
  log.last_position = 4;
  log.purchases = 1;
  log.purchases_by_id["p1"] = test::LoggedPurchase{"alice", "card", "CODE-1", "k1", 3};
  log.purchases_by_key[{"alice", "k1"}] = {"p1"};
  log.balances["alice"] = 900;
  log.credited["alice"] = 1000;
  log.debited["alice"] = 100;
  log.credits_by_key[{"alice", "c1"}] = {2};
  return log;
}

BOOST_AUTO_TEST_SUITE(oracle)

BOOST_AUTO_TEST_CASE(a_matching_history_is_clean) {
  auto log = one_purchase_log();
  std::vector<Call> calls{ok_purchase("alice", "k1", "card", "p1", "CODE-1", 3, "{a}"),
                          ok_purchase("alice", "k1", "card", "p1", "CODE-1", 3, "{a}")};
  Call credit;
  credit.kind = Call::Kind::credit;
  credit.outcome = Call::Outcome::ok;
  credit.user = "alice";
  credit.key = "c1";
  credit.position = 2;
  calls.push_back(credit);
  std::vector<std::string> problems;
  auto c = check_history(calls, log, &problems);
  BOOST_TEST(c.clean(), c.summary() << join(problems));
  BOOST_TEST(c.ok == 3);
}

BOOST_AUTO_TEST_CASE(every_counter_fires) {
  auto log = one_purchase_log();
  std::vector<std::string> problems;
  // lost: acknowledged but not in the log; and acknowledged at another position.
  auto c = check_history({ok_purchase("alice", "k2", "card", "p2", "CODE-2", 4, "{b}"),
                          ok_purchase("alice", "k1", "card", "p1", "CODE-1", 2, "{a}")},
                         log, &problems);
  BOOST_TEST(c.lost == 2);
  // gaps: an acknowledged position past the log's end.
  c = check_history({ok_purchase("alice", "k1", "card", "p1", "CODE-1", 9, "{a}")}, log, &problems);
  BOOST_TEST(c.gaps == 1);
  // double_charge: two different bodies for one key.
  c = check_history({ok_purchase("alice", "k1", "card", "p1", "CODE-1", 3, "{a}"),
                     ok_purchase("alice", "k1", "card", "p1", "CODE-1", 3, "{a'}")},
                    log, &problems);
  BOOST_TEST(c.double_charge == 1);
  // dup_codes: one code in two acknowledged purchases.
  c = check_history({ok_purchase("alice", "k1", "card", "p1", "CODE-1", 3, "{a}"),
                     ok_purchase("bob", "k9", "card", "p9", "CODE-1", 3, "{c}")},
                    log, &problems);
  BOOST_TEST(c.dup_codes == 1);
  // info_unresolved: never retried; retried with an answer the log contradicts.
  Call info;
  info.kind = Call::Kind::purchase;
  info.outcome = Call::Outcome::info;
  info.user = "alice";
  info.key = "k1";
  Call denied = info;
  denied.retried = true;
  denied.retry_outcome = Call::Outcome::fail;  // but k1 is in the log
  Call settled = info;
  settled.retried = true;
  settled.retry_outcome = Call::Outcome::ok;
  c = check_history({info, denied, settled}, log, &problems);
  BOOST_TEST(c.info_unresolved == 2);
  // The log's own counters and an inconsistent balance.
  auto bad = log;
  bad.dup_codes = 1;
  bad.unmatched = 1;
  bad.overdraft = 1;
  bad.gaps = 1;
  bad.balances["alice"] = 901;
  c = check_history({}, bad, &problems);
  BOOST_TEST(c.dup_codes == 1);
  BOOST_TEST(c.unmatched == 1);
  BOOST_TEST(c.overdraft == 2);
  BOOST_TEST(c.gaps == 1);
  // replay_diff: a view that disagrees with the fold.
  Views v;
  v.balances["alice"] = 800;
  v.assigned["card"] = 2;
  v.purchases = 1;
  v.position = 4;
  BOOST_TEST(diff_views(v, log, "test", &problems) == 2);
  BOOST_TEST(!problems.empty());
}

BOOST_AUTO_TEST_SUITE_END()

// ---- §1 process crashes -----------------------------------------------------

BOOST_AUTO_TEST_SUITE(process_crash)

BOOST_AUTO_TEST_CASE(kill_9_at_random_moments_under_mixed_load) {
  uint64_t seed = 0;
  auto rng = seeded_rng("process_crash", &seed);
  const int kills = tier_count(20, 200);
  TempDir dir("giftcard-rel-kill");
  const std::string data = dir.str("data"), log_path = dir.str("serve.log");
  LoadConfig cfg;
  History history;
  std::vector<int64_t> ready;
  int64_t acked = 0;

  auto server = std::make_unique<ServeChild>(data, log_path);
  set_up_shop(server->port(), cfg);
  std::uniform_int_distribution<int> delay_ms(50, 3000);
  const auto t0 = std::chrono::steady_clock::now();
  for (int k = 0; k < kills; ++k) {
    top_up_codes(server->port(), cfg, k, 4000, 4000);
    HttpLoad load(server->port(), cfg, &history, rng(), "k" + std::to_string(k));
    load.start();
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms(rng)));
    server->kill_hard();
    load.stop();
    acked += load.acknowledged();
    server.reset();
    server = std::make_unique<ServeChild>(data, log_path);
    ready.push_back(server->ready_ms());
    resolve_infos(server->port(), &history);
    if ((k + 1) % 10 == 0 || k + 1 == kills)
      std::cout << "process_crash: " << (k + 1) << "/" << kills << " kills, " << acked
                << " calls acknowledged, restart ready in " << server->ready_ms() << " ms ("
                << test::ms_since(t0) / 1000 << " s)" << std::endl;
  }
  std::vector<std::string> problems;
  Counters c = final_check(*server, cfg, &history, &problems);
  auto figures = c.to_json();
  figures["kills"] = kills;
  figures["seed"] = seed;
  figures["restart_ready_ms_p50"] = percentile(ready, 0.5);
  figures["restart_ready_ms_p99"] = percentile(ready, 0.99);
  figures["restart_ready_ms_max"] = percentile(ready, 1.0);
  report("process_crash", figures);
  BOOST_TEST(c.clean(), "seed " << seed << ": " << c.summary() << join(problems));
  BOOST_TEST(c.ok > kills, "the load acknowledged too little to prove anything: " << c.summary());
}

BOOST_AUTO_TEST_CASE(sigterm_exits_0_quickly_and_keeps_every_acknowledged_call) {
  uint64_t seed = 0;
  auto rng = seeded_rng("sigterm", &seed);
  const int cycles = tier_count(8, 50);
  const auto limit = test::by_build(std::chrono::milliseconds(5000),
                                    std::chrono::milliseconds(20000));
  TempDir dir("giftcard-rel-term");
  const std::string data = dir.str("data"), log_path = dir.str("serve.log");
  LoadConfig cfg;
  History history;
  std::vector<int64_t> exit_ms;
  auto server = std::make_unique<ServeChild>(data, log_path);
  set_up_shop(server->port(), cfg);
  std::uniform_int_distribution<int> delay_ms(100, 1500);
  for (int k = 0; k < cycles; ++k) {
    top_up_codes(server->port(), cfg, k, 4000, 4000);
    HttpLoad load(server->port(), cfg, &history, rng(), "t" + std::to_string(k));
    load.start();
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms(rng)));
    exit_ms.push_back(server->stop_clean(limit).count());  // exit 0 within the limit
    load.stop();
    server.reset();
    server = std::make_unique<ServeChild>(data, log_path);
    resolve_infos(server->port(), &history);
  }
  std::vector<std::string> problems;
  Counters c = final_check(*server, cfg, &history, &problems);
  auto figures = c.to_json();
  figures["sigterms"] = cycles;
  figures["seed"] = seed;
  figures["exit_ms_p50"] = percentile(exit_ms, 0.5);
  figures["exit_ms_max"] = percentile(exit_ms, 1.0);
  report("sigterm", figures);
  BOOST_TEST(c.clean(), "seed " << seed << ": " << c.summary() << join(problems));
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace giftcard::reliability
