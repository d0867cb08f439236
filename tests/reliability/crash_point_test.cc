// RELIABILITY.md §2: named crash points. `giftcard serve` runs with
// GIFTCARD_CRASH_POINT=<point>:1-in-N under the mixed 64-client HTTP load of
// §1 and _exits at that line (store/crash_point.h); a clean server restarted
// on the same data settles the unanswered calls; then the next crashing
// server. Each point is hit 3 times in `make test` and 20 times in `make soak`,
// and the whole oracle runs on each point's history.
//
// N adapts: a round that ends without a hit (the load ran, then the server was
// idle long enough to passivate and checkpoint) halves it, a hit within half a
// second doubles it, so that hits land at varied moments under load.
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <iostream>
#include <memory>
#include <thread>

#include "store/crash_point.h"
#include "tests/reliability/http_workload.h"
#include "tests/reliability/oracle.h"
#include "tests/support/process.h"
#include "tests/support/serve_child.h"

namespace giftcard::reliability {
namespace {

using namespace std::chrono_literals;
using test::ServeArgs;
using test::ServeChild;
using test::TempDir;

// First guesses of N (passes per second under the load differ by point).
uint64_t initial_one_in(std::string_view point) {
  if (point == "passivation.before_quit" || point == "snapshot.mid_batch") return 4;
  if (point.rfind("checkpoint.", 0) == 0 || point == "projection.before_apply") return 50;
  return 500;  // every group commit
}

struct PointRun {
  int hits = 0, rounds = 0, misses = 0, before_ready = 0;
  // Rounds whose SIGKILL (no hit within 6 s) landed after the point had logged
  // its hit but before the process exited: logged, not counted as hits.
  int hit_at_kill = 0;
  std::vector<int64_t> ms_to_hit;
  Counters counters;
  std::vector<std::string> problems;
};

PointRun run_point(std::string_view point, int target, std::mt19937_64& rng) {
  TempDir dir("giftcard-rel-cp");
  const std::string data = dir.str("data"), log_path = dir.str("serve.log");
  LoadConfig cfg;
  History history;
  PointRun run;
  {
    ServeChild setup(data, log_path);
    set_up_shop(setup.port(), cfg);
    top_up_codes(setup.port(), cfg, 0, 4000, 4000);
    setup.stop_clean(10s);
  }
  uint64_t one_in = initial_one_in(point);
  const int max_rounds = target * 4 + 4;
  while (run.hits < target && run.rounds < max_rounds) {
    ++run.rounds;
    ServeArgs a;
    a.env = {{"GIFTCARD_CRASH_POINT", std::string(point) + ":1-in-" + std::to_string(one_in)},
             {"GIFTCARD_CRASH_SEED", std::to_string(rng())}};
    // Idle actors passivate (and snapshot) within 50 ms once the load stops.
    a.flags = {"--passivate-after-ms", "50"};
    a.may_exit_before_ready = true;
    const size_t log_before = test::read_file_text(log_path).size();
    ServeChild crashy(data, log_path, a);
    std::optional<int> status;
    const auto t0 = std::chrono::steady_clock::now();
    if (!crashy.ready()) {
      status = crashy.last_status();
      ++run.before_ready;
    } else {
      HttpLoad load(crashy.port(), cfg, &history, rng(), "cp" + std::to_string(run.rounds));
      load.start();
      status = crashy.wait(4s);
      load.stop();
      if (!status) status = crashy.wait(2s);  // idle: passivation, the last checkpoint
      if (!status) {
        crashy.kill_hard();
        const std::string round_log = test::read_file_text(log_path).substr(log_before);
        if (round_log.find("crash point " + std::string(point) + " hit") != std::string::npos)
          ++run.hit_at_kill;
      }
    }
    const int64_t ms = test::ms_since(t0);
    if (status) {
      BOOST_REQUIRE_MESSAGE(WIFEXITED(*status) && WEXITSTATUS(*status) == kCrashPointExit,
                            point << ": serve ended otherwise than at the crash point: "
                                  << test::describe_status(*status) << "\n"
                                  << crashy.log());
      ++run.hits;
      run.ms_to_hit.push_back(ms);
      if (ms < 500) one_in *= 2;
    } else {
      ++run.misses;
      one_in = std::max<uint64_t>(1, one_in / 2);
    }
    // Recovery on the same data, without the point: every unanswered call
    // must settle, and the next round needs codes.
    ServeChild clean(data, log_path);
    resolve_infos(clean.port(), &history);
    top_up_codes(clean.port(), cfg, run.rounds, 4000, 4000);
    clean.stop_clean(10s);
  }
  const std::string log = test::read_file_text(log_path);
  size_t said = 0;
  const std::string line = "crash point " + std::string(point) + " hit";
  for (size_t at = log.find(line); at != std::string::npos; at = log.find(line, at + 1)) ++said;
  BOOST_TEST(said == static_cast<size_t>(run.hits + run.hit_at_kill),
             point << ": the log names " << said << " hits; counted " << run.hits << " + "
                   << run.hit_at_kill << " cut short by the SIGKILL");
  ServeChild last(data, log_path);
  run.counters = final_check(last, cfg, &history, &run.problems);
  return run;
}

BOOST_AUTO_TEST_SUITE(crash_points)

BOOST_AUTO_TEST_CASE(an_unknown_point_or_a_bad_ratio_is_refused_at_start) {
  TempDir dir("giftcard-rel-cp-bad");
  for (std::string bad :
       {"commit.before_writes:1-in-2", "commit.before_write:1-in-0", "commit.before_write:one"}) {
    auto r = test::run_giftcard(
        {"serve", "--data", dir.str("data"), "--http", "127.0.0.1:0", "--caf", "127.0.0.1:0"},
        {{"GIFTCARD_CRASH_POINT", bad}});
    BOOST_TEST(r.exited());
    BOOST_TEST(r.code() == 2, bad << ": " << r.err);
    BOOST_TEST(r.err.find("GIFTCARD_CRASH_POINT") != std::string::npos, r.err);
  }
}

BOOST_AUTO_TEST_CASE(each_point_hit_repeatedly_under_mixed_load_loses_nothing) {
  uint64_t seed = 0;
  auto rng = seeded_rng("crash_points", &seed);
  const int target = tier_count(3, 20);
  nlohmann::json figures;
  Counters total;
  int64_t hits = 0;
  for (auto point : ::giftcard::crash_points()) {
    PointRun run = run_point(point, target, rng);
    nlohmann::json f = run.counters.to_json();
    f["hits"] = run.hits;
    f["rounds"] = run.rounds;
    f["hit_before_ready"] = run.before_ready;
    f["ms_to_hit_p50"] = percentile(run.ms_to_hit, 0.5);
    figures["points"][std::string(point)] = f;
    hits += run.hits;
    std::cout << "crash_points: " << point << ": " << run.hits << " hits in " << run.rounds
              << " rounds (" << run.before_ready << " during recovery), " << run.counters.summary()
              << std::endl;
    BOOST_TEST(run.hits >= target,
               point << ": hit " << run.hits << " times in " << run.rounds << " rounds");
    BOOST_TEST(run.counters.clean(), "seed " << seed << ", " << point << ": "
                                             << run.counters.summary() << join(run.problems));
    total += run.counters;
  }
  figures.update(total.to_json());
  figures["seed"] = seed;
  figures["hits"] = hits;
  report("crash_points", figures);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace giftcard::reliability
