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
//
// Files: projection_bench_common.h (shared helpers, the serve child),
// projection_bench_plan.h (the generated log and its checks),
// projection_bench_restart.h and projection_bench_lag.h (those subcommands);
// the replay and generate subcommands and main() are here.
#include <CLI/CLI.hpp>
#include <iostream>

#include "bench/projection_bench_lag.h"
#include "bench/projection_bench_restart.h"

namespace giftcard::projbench {
namespace {

// ---- replay subcommand ---------------------------------------------------------
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
      if (rr.events != plan.events)
        correctness("replay read " + std::to_string(rr.events) + " events");
      double rate = static_cast<double>(rr.events) / rr.seconds;
      replay_rate.push_back(rate);
      jr["replay_s"] = round_to(rr.seconds, 3);
      jr["replay_events_per_s"] = std::round(rate);
      jr["replay_cpu_s"] = round_to(rr.cpu_seconds, 3);
      jr["replay_events_per_cpu_s"] = std::round(static_cast<double>(rr.events) / rr.cpu_seconds);
      replay_cpu_rate.push_back(static_cast<double>(rr.events) / rr.cpu_seconds);
      std::cerr << "run " << r + 1 << ": (a) in-memory replay: " << rr.events << " events in "
                << round_to(rr.seconds, 3) << " s = " << std::round(rate) << "/s ("
                << std::round(static_cast<double>(rr.events) / rr.cpu_seconds)
                << " per CPU second)\n";
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
      if (db->position() != plan.events)
        correctness("catch-up stopped at " + std::to_string(db->position()));
      jr["catchup_from_1_s"] = round_to(s, 3);
      jr["catchup_from_1_events_per_s"] = std::round(static_cast<double>(plan.events) / s);
      std::cerr << "run 1: (b) ProjectionDb::CatchUp from position 1: " << round_to(s, 3)
                << " s = " << std::round(static_cast<double>(plan.events) / s) << "/s\n";
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
      if (rep.events != plan.events || rep.generation != gen_before + 1 ||
          db->generation() != rep.generation)
        correctness("rebuild folded " + std::to_string(rep.events) + " events into generation " +
                    std::to_string(rep.generation));
      double rate = static_cast<double>(rep.events) / s;
      rebuild_rate.push_back(rate);
      jr["rebuild_s"] = round_to(s, 3);
      jr["rebuild_events_per_s"] = std::round(rate);
      jr["rebuild_fold_s"] = round_to(rep.fold_seconds, 3);
      jr["rebuild_ingest_s"] = round_to(rep.ingest_seconds, 3);
      std::cerr << "run " << r + 1 << ": (b) ProjectionDb::Rebuild: " << rep.events << " events in "
                << round_to(s, 3) << " s = " << std::round(rate) << "/s (generation "
                << rep.generation << "; " << std::round(static_cast<double>(rep.events) / cpu)
                << " per CPU second of the caller; in-memory fold " << round_to(rep.fold_seconds, 3)
                << " s, tables written and ingested " << round_to(rep.ingest_seconds, 3) << " s)\n";
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
  out["peak_rss_mb"] = bench::peak_rss_mb();
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

}  // namespace
}  // namespace giftcard::projbench

int main(int argc, char** argv) {
  using namespace giftcard::projbench;
  CLI::App app{
      "giftcard-projection-bench: replay, rebuild, restart and projection-lag figures (issue #3)"};
  app.require_subcommand(1);

  GenOptions gen;
  gen.events = 10000000;
  std::string out_dir;
  auto* g = app.add_subcommand(
      "generate", "Write a realistic log of N events into DIR/store (plan in DIR/plan.json)");
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
  rp->add_option("--only", replay_only,
                 "run only (a) the in-memory replay or (b) the ProjectionDb part")
      ->check(CLI::IsMember({"a", "b"}));
  rp->add_option("--chunk", chunk, "events per ReadAll page in (a), as `giftcard replay`")
      ->capture_default_str();

  RestartOptions ro;
  auto* rs2 = app.add_subcommand(
      "restart", "`giftcard serve` to ready over a big log; first purchase; catch-up of K events");
  add_source_options(rs2, &ro.src, 10000000);
  rs2->add_option("--behind", ro.behind, "events the checkpoint lags in the catch-up runs")
      ->capture_default_str();
  rs2->add_option("--runs", ro.runs, "runs (medians are reported)")->capture_default_str();
  rs2->add_option(
      "--bases", ro.bases,
      "keep the two prepared stores here (or reuse them if prepared with the same --behind)");
  rs2->add_option("--giftcard", ro.giftcard, "the giftcard executable (default: beside this one)");

  LagOptions lo;
  auto* lg = app.add_subcommand("lag", "projection lag under load: N buyers purchasing in process");
  lg->add_option("--buyers", lo.buyers, "concurrent buyers")->capture_default_str();
  lg->add_option("--cards", lo.cards, "cards (buyers round-robin)")->capture_default_str();
  lg->add_option("--seconds", lo.seconds, "measured seconds (after a 1 s warm-up)")
      ->capture_default_str();
  lg->add_option("--runs", lo.runs, "runs (medians are reported)")->capture_default_str();
  lg->add_option("--history", lo.history,
                 "the driver also keeps the time-travel checkpoints (as serve does): true|false")
      ->capture_default_str();
  lg->add_option("--tmp", lo.tmp, "where stores are made (removed at the end)")
      ->capture_default_str();

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
