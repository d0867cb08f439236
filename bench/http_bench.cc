// giftcard-http-bench: purchases over HTTP against a real `giftcard serve`
// process, measured by an asynchronous Boost.Beast/Asio client on the same
// machine.
//
//   giftcard-http-bench purchase [--clients 1,8,64] [--seconds S] [--repeat R] ...
//   giftcard-http-bench slow     [--clients 64] [--slowloris 32] [--viewers 16] [--rounds R] ...
//   giftcard-http-bench wrk      [--clients 64] [--rounds R] [--script bench/http/purchase.lua] ...
//   giftcard-http-bench whale    [--clients 8] [--readers 40] [--whale 45588] [--rounds R] ...
//   giftcard-http-bench soak     [--minutes 10] [--clients 64] [--codes 5000000] [--repeat-rate 0|10|50]
//                                [--users N] [--repeat-delay 5] [--interval 60] ...
//
// Every subcommand starts `giftcard serve --data DIR --http 127.0.0.1:0 --caf
// 127.0.0.1:0` (fork/exec; the bound ports come from its `ready http=... caf=...`
// line), seeds it over HTTP (a card, its codes in batches of at most 100,000,
// credited buyers), runs the load, checks the results, stops the server with
// SIGTERM (it must exit 0) and runs `giftcard verify` on the store.
//
// purchase: N keep-alive connections, each one buyer with one POST
//           /api/purchases in flight (a fresh Idempotency-Key each), all on one
//           hot card. One fresh card and fresh buyers per run.
// slow:     the same purchase load without, then with, S slowloris connections
//           (one header byte every 4 s) and V Server-Sent-Event viewers reading
//           GET /api/events/stream; rounds alternate the order (AB, BA, ...).
//           Checks that every stalled header is cut by the server within
//           --cut-limit seconds and that every viewer saw every event, in order.
// wrk:      Debian's wrk with a Lua script (fresh keys) against the same server,
//           alternating with this generator, as a cross-check of the generator.
// whale:    issue #14 row 5. One user ("whale") with W purchases (seeded once,
//           over HTTP); then the purchase load without, then with, R readers
//           each walking the whale's history page by page (GET
//           /api/users/whale/purchases?limit=1000&from=..., following `next`,
//           from the start again at the end); rounds alternate the order. Both
//           arms also poll an unrelated GET /api/cards/x every 20 ms. Reports
//           purchase p50/p99 and purchases/s per arm, the readers' pages/s and
//           page latency, and the card read's latency; the summary has the
//           medians over the rounds side by side.
// soak:     issue #16. ONE card with --codes codes (default 5M) bought by
//           --clients lanes for --minutes on one server, a JSON line a minute;
//           --repeat-rate P sends P % of the purchases twice with the same key
//           (half concurrently, half later). Only 201s that are not replays
//           count as purchases (bench/http_bench_soak.h).
//
// Correctness of every purchase run: every 201 carries a distinct code; the
// number of 201s equals the card's `assigned` (GET /api/cards/{id}?after=P);
// every buyer's balance is exactly its credit minus price x its 201s
// (GET /api/wallets/{user}?after=P); no response is a replay.
//
// Progress goes to stderr; each run's result is one JSON line on stdout, and a
// summary line with medians closes the output. Exit codes: 0 ok, 1 a
// correctness or slow-client check failed, 2 usage or setup error, 3 the load
// did not drain (hang). Missing a throughput or latency target is reported in
// the JSON ("targets"), not in the exit code.
#include <CLI/CLI.hpp>
#include <iostream>

#include "bench/http_bench_soak.h"
#include "bench/http_bench_whale.h"  // and _slow.h, _load.h, _common.h

namespace giftcard_http_bench {
namespace {

// ------------------------------------------------------------------ the driver


int64_t codes_for(const Common& c, int clients) {
  if (c.codes > 0) return c.codes;
  // 3,000/s per client up to --est-rate, for warm-up + run + 2 s of drain, +20 %.
  double rate = std::min<double>(static_cast<double>(c.est_rate), 3000.0 * clients);
  return static_cast<int64_t>(rate * (c.warmup + c.seconds + 2) * 1.2) + 1000;
}

Fixture make_fixture(const std::string& card, const std::string& user_prefix, int users, int64_t codes) {
  Fixture f;
  f.card = card;
  f.codes = codes;
  for (int i = 0; i < users; ++i) f.users.push_back(user_prefix + std::to_string(i));
  f.credit = kPrice * (codes + 1);  // no purchase can fail on funds
  return f;
}

json median_of(std::vector<double> v) {
  if (v.empty()) return nullptr;
  std::sort(v.begin(), v.end());
  const size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

// Runs `body` against a fresh server in store directory `data`; handles temp
// dirs, stop and verify.
int with_server(const Common& c, const std::string& what,
                const std::function<int(ServerProcess&, SyncClient&, const std::filesystem::path&)>& body) {
  ::signal(SIGPIPE, SIG_IGN);
  std::error_code ec;
  std::filesystem::path root, data;
  bool remove_root = false;
  if (c.data.empty()) {
    std::string tmpl = (std::filesystem::temp_directory_path() / "giftcard-http-bench-XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) {
      std::perror("giftcard-http-bench: mkdtemp");
      return 2;
    }
    root = tmpl;
    data = root / "data";
    remove_root = !c.keep;
  } else {
    data = c.data;
    root = data.parent_path().empty() ? "." : data.parent_path();
    if (std::filesystem::exists(data) && !std::filesystem::is_empty(data, ec)) {
      std::cerr << "giftcard-http-bench: --data " << data << " is not empty\n";
      return 2;
    }
  }
  std::string exe = c.giftcard.empty() ? self_dir() + "/giftcard" : c.giftcard;
  std::string log = (root / "server.log").string();
  ServerProcess server;
  std::string why;
  std::cerr << "setup: " << what << ": starting " << exe << " serve --data " << data.string() << "\n";
  std::vector<std::string> extra;
  if (c.server_http_threads > 0) extra = {"--http-threads", std::to_string(c.server_http_threads)};
  if (c.server_query_threads > 0) {
    extra.push_back("--query-threads");
    extra.push_back(std::to_string(c.server_query_threads));
  }
  if (!server.start(exe, data.string(), log, extra, &why)) {
    std::cerr << "giftcard-http-bench: " << why << "\n";
    return 2;
  }
  std::cerr << "setup: server pid " << server.pid() << " http=" << server.http().host << ":"
            << server.http().port << " caf=" << server.caf().host << ":" << server.caf().port << "\n";
  SyncClient admin(server.http());
  int rc = 0;
  try {
    rc = body(server, admin, data);
  } catch (const std::exception& e) {
    std::cerr << "giftcard-http-bench: " << e.what() << "\n";
    rc = 2;
  }
  if (rc == 3) std::_Exit(3);  // a hang: do not wait for a drain that may never come
  double took = 0;
  int status = server.stop(std::chrono::seconds(180), &took);
  std::cerr << "setup: server stopped with status " << status << " after " << took << " s (SIGTERM)\n";
  if (status != 0) {
    std::cerr << "giftcard-http-bench: giftcard serve exited with " << status << " (log: " << log << ")\n";
    rc = rc ? rc : 1;
  }
  if (c.verify) {
    std::string cmd = "'" + exe + "' verify --data '" + data.string() + "' > '" + (root / "verify.log").string() + "' 2>&1";
    auto t0 = Clock::now();
    int v = std::system(cmd.c_str());
    std::cerr << "verify: giftcard verify exited " << (WIFEXITED(v) ? WEXITSTATUS(v) : -1) << " after "
              << secs(Clock::now() - t0) << " s\n";
    if (v != 0) {
      std::cerr << "giftcard-http-bench: CORRECTNESS: giftcard verify failed (" << (root / "verify.log").string() << ")\n";
      rc = rc ? rc : 1;
      remove_root = false;
    }
  }
  if (rc != 0) remove_root = false;
  if (remove_root) std::filesystem::remove_all(root, ec);
  else std::cerr << "setup: kept " << root.string() << "\n";
  return rc;
}

int with_server(const Common& c, const std::string& what,
                const std::function<int(ServerProcess&, SyncClient&)>& body) {
  return with_server(c, what, [&](ServerProcess& s, SyncClient& a, const std::filesystem::path&) { return body(s, a); });
}

void emit(const json& j) { std::cout << j.dump() << std::endl; }

int cmd_soak(const Common& c, const SoakOpts& o) {
  return with_server(c, "soak", [&](ServerProcess& server, SyncClient& admin, const std::filesystem::path& data) {
    return run_soak(c, o, server, admin, data, emit);
  });
}

// One measured run of `clients` buyers on a fresh fixture named `id`
// (fresh card, fresh buyers, keys unique to the run).
RunSpec run_spec(const Common& c, const std::string& scenario, const std::string& id, int clients) {
  RunSpec spec;
  spec.scenario = scenario;
  spec.clients = clients;
  spec.threads = c.threads;
  spec.warmup = c.warmup;
  spec.seconds = c.seconds;
  spec.fixture = make_fixture(id, id + "-u", clients, codes_for(c, clients));
  spec.key_prefix = id + "-";
  return spec;
}

int cmd_purchase(const Common& c, const PurchaseOpts& o) {
  return with_server(c, "purchase", [&](ServerProcess& server, SyncClient& admin) {
    int rc = 0;
    std::map<int, std::vector<double>> rate, p50, p99;
    int run = 0;
    for (int rep = 0; rep < o.repeat; ++rep)
      for (int n : o.clients) {
        ++run;
        std::string id = "h" + std::to_string(run) + "-c" + std::to_string(n);
        RunSpec spec = run_spec(c, "purchase", id, n);
        auto t0 = Clock::now();
        seed(admin, spec.fixture);
        std::cerr << "setup: " << id << ": " << spec.fixture.codes << " codes, " << n << " buyers seeded in "
                  << secs(Clock::now() - t0) << " s\n";
        RunOutcome r = run_load(server, admin, spec);
        if (r.hang) return 3;
        r.result["run"] = run;
        emit(r.result);
        if (!r.verified) rc = 1;
        rate[n].push_back(r.result["purchases_per_s"].get<double>());
        p50[n].push_back(r.result["p50_ms"].get<double>());
        p99[n].push_back(r.result["p99_ms"].get<double>());
      }
    json s = {{"bench", "http"}, {"scenario", "purchase_summary"}, {"runs_per_point", o.repeat}};
    for (auto& [n, v] : rate)
      s["by_clients"][std::to_string(n)] = {{"median_purchases_per_s", median_of(v)}, {"runs", v},
                                            {"median_p50_ms", median_of(p50[n])},
                                            {"median_p99_ms", median_of(p99[n])}};
    if (rate.count(64)) {
      double m = median_of(rate[64]).get<double>();
      s["targets"] = {{"purchases_per_s_64_clients", kTargetPurchasesPerS}, {"met", m >= kTargetPurchasesPerS}};
    }
    emit(s);
    return rc;
  });
}

int cmd_slow(const Common& c, const SlowOpts& o) {
  return with_server(c, "slow", [&](ServerProcess& server, SyncClient& admin) {
    int rc = 0;
    std::vector<double> p99_without, p99_with, rate_without, rate_with;
    int run = 0;
    for (int round = 0; round < o.rounds; ++round) {
      // AB, BA, AB, ...: neither side always runs on the older, smaller log.
      std::vector<bool> order = round % 2 == 0 ? std::vector<bool>{false, true} : std::vector<bool>{true, false};
      for (bool attack : order) {
        ++run;
        std::string id = "s" + std::to_string(run) + (attack ? "-with" : "-without");
        RunSpec spec = run_spec(c, attack ? "slow_clients" : "baseline", id, o.clients);
        seed(admin, spec.fixture);
        std::unique_ptr<SlowClients> side;
        if (attack) {
          side = std::make_unique<SlowClients>(server, o);
          std::string why;
          if (!side->start(&why)) throw std::runtime_error("slow clients: " + why);
          std::cerr << "slow: " << o.slowloris << " slowloris connections and " << o.viewers
                    << " SSE viewers connected\n";
        }
        RunOutcome r = run_load(server, admin, spec, [&](json* out) {
          if (!side) return;
          std::vector<std::string> problems;
          side->finish(admin.log_position(), out, &problems);
          (*out)["side_problems"] = problems;
        });
        if (r.hang) return 3;
        r.result["run"] = run;
        r.result["round"] = round + 1;
        emit(r.result);
        if (!r.verified) rc = 1;
        (attack ? p99_with : p99_without).push_back(r.result["p99_ms"].get<double>());
        (attack ? rate_with : rate_without).push_back(r.result["purchases_per_s"].get<double>());
      }
    }
    json s = {{"bench", "http"},
              {"scenario", "slow_summary"},
              {"clients", o.clients},
              {"rounds", o.rounds},
              {"without", {{"median_purchases_per_s", median_of(rate_without)}, {"median_p99_ms", median_of(p99_without)},
                           {"p99_ms", p99_without}}},
              {"with", {{"median_purchases_per_s", median_of(rate_with)}, {"median_p99_ms", median_of(p99_with)},
                        {"p99_ms", p99_with}, {"slowloris", o.slowloris}, {"sse_viewers", o.viewers}}}};
    if (!p99_with.empty())
      s["targets"] = {{"p99_ms_with_slow_clients", kTargetSlowP99Ms},
                      {"met", median_of(p99_with).get<double>() < kTargetSlowP99Ms}};
    emit(s);
    return rc;
  });
}

int cmd_wrk(const Common& c, WrkOpts o) {
  if (o.script.empty()) o.script = std::filesystem::path(__FILE__).parent_path() / "http" / "purchase.lua";
  if (!std::filesystem::exists(o.script)) {
    std::cerr << "giftcard-http-bench: no Lua script at " << o.script << " (--script)\n";
    return 2;
  }
  return with_server(c, "wrk", [&](ServerProcess& server, SyncClient& admin) {
    int rc = 0;
    std::vector<double> ours, theirs, ours_p99, theirs_p99;
    int run = 0;
    for (int round = 0; round < o.rounds; ++round) {
      std::vector<bool> order = round % 2 == 0 ? std::vector<bool>{false, true} : std::vector<bool>{true, false};
      for (bool use_wrk : order) {
        ++run;
        std::string id = "w" + std::to_string(run) + (use_wrk ? "-wrk" : "-ours");
        Fixture f = make_fixture(id, id + "-u", o.clients, codes_for(c, o.clients));
        seed(admin, f);
        if (!use_wrk) {
          RunSpec spec;
          spec.scenario = "ours";
          spec.clients = o.clients;
          spec.threads = c.threads;
          spec.warmup = c.warmup;
          spec.seconds = c.seconds;
          spec.fixture = f;
          spec.key_prefix = id + "-";
          RunOutcome r = run_load(server, admin, spec);
          if (r.hang) return 3;
          r.result["run"] = run;
          emit(r.result);
          if (!r.verified) rc = 1;
          ours.push_back(r.result["purchases_per_s"].get<double>());
          ours_p99.push_back(r.result["p99_ms"].get<double>());
          continue;
        }
        WrkResult w;
        std::string why;
        auto m1 = scrape(admin);
        const double load_before = loadavg_1m();
        auto c0 = cpu_snapshot(server.pid());
        if (!run_wrk(o, c, server, f, id + "-u", id, &w, &why)) throw std::runtime_error(why);
        auto c1 = cpu_snapshot(server.pid());
        json out = {{"bench", "http"}, {"scenario", "wrk"}, {"run", run}, {"clients", o.clients},
                    {"wrk_threads", o.wrk_threads}, {"seconds", static_cast<int>(c.warmup + c.seconds)},
                    {"requests", w.requests}, {"requests_per_s", w.requests_per_s}, {"non_2xx", w.non2xx},
                    {"socket_errors", w.socket_errors != 0}};
        for (auto& [k, v] : w.latency_ms) out["latency_ms"][k] = v;
        out["loadavg_1m_before"] = load_before;
        out.update(cpu_report(c0, c1, w.requests - w.non2xx));
        // The generator is wrk here: its CPU comes from the children's rusage.
        out["generator_cpu_pct"] = w.wall_s > 0 ? round_to(100.0 * w.cpu_s / w.wall_s, 0.1) : 0.0;
        out["generator_cpu_us_per_purchase"] =
            w.requests > 0 ? round_to(1e6 * w.cpu_s / static_cast<double>(w.requests), 0.1) : 0.0;
        std::vector<std::string> problems;
        if (w.non2xx) problems.push_back(std::to_string(w.non2xx) + " non-2xx responses");
        // wrk counts only completed responses: up to one request per
        // connection was still in flight at its deadline and committed anyway.
        uint64_t ok = w.requests - w.non2xx;
        check_against_server(admin, f, ok, {}, nullptr, false, static_cast<uint64_t>(o.clients), &out, &problems);
        auto m2 = scrape(admin);
        double batches = m2["giftcard_append_batches_total"] - m1["giftcard_append_batches_total"];
        out["requests_per_batch"] =
            batches > 0 ? round_to((m2["giftcard_append_requests_total"] - m1["giftcard_append_requests_total"]) / batches, 0.01)
                        : 0.0;
        for (auto& p : problems) std::cerr << "http-bench: CORRECTNESS: " << p << "\n";
        out["problems"] = problems;
        out["verified"] = problems.empty();
        if (!problems.empty()) rc = 1;
        emit(out);
        theirs.push_back(w.requests_per_s);
        theirs_p99.push_back(w.latency_ms.count("99%") ? w.latency_ms["99%"] : 0.0);
        std::cerr << "wrk: " << w.requests_per_s << " requests/s, p99 " << theirs_p99.back() << " ms\n";
      }
    }
    emit({{"bench", "http"}, {"scenario", "wrk_summary"}, {"clients", o.clients}, {"rounds", o.rounds},
          {"ours_median_purchases_per_s", median_of(ours)}, {"ours_median_p99_ms", median_of(ours_p99)},
          {"wrk_median_requests_per_s", median_of(theirs)}, {"wrk_median_p99_ms", median_of(theirs_p99)}});
    return rc;
  });
}

// The whale: a card with `n` codes, one credit, then n purchases over
// `connections` keep-alive connections. Returns the seconds it took.
double seed_whale(const ServerProcess& server, SyncClient& admin, const WhaleOpts& o) {
  auto t0 = Clock::now();
  Fixture f = make_fixture("whale-card", "-", 0, o.whale);
  seed(admin, f);  // the card and its codes (no buyers)
  Reply cr = admin.call(http::verb::post, "/api/wallets/whale/credits",
                        json{{"amount", kPrice * o.whale}}.dump(), "seed-whale");
  if (cr.status != 201) throw std::runtime_error("credit whale: status " + std::to_string(cr.status) + ": " + cr.body);
  const std::string body = json{{"card_id", f.card}, {"user_id", "whale"}}.dump();
  parallel_calls(server.http(), o.whale, o.seed_connections, [&](SyncClient& c, int64_t i) {
    Reply r = c.call(http::verb::post, "/api/purchases", body, "whale-" + std::to_string(i));
    if (r.status != 201)
      throw std::runtime_error("whale purchase: status " + std::to_string(r.status) + ": " + r.body);
  });
  json x = {{"id", "x"}, {"name", "The unrelated card"}, {"price", kPrice}, {"value", kPrice}};
  Reply xr = admin.call(http::verb::post, "/api/cards", x.dump());
  if (xr.status != 201) throw std::runtime_error("create card x: status " + std::to_string(xr.status));
  return secs(Clock::now() - t0);
}

int cmd_whale(const Common& c, const WhaleOpts& o) {
  return with_server(c, "whale", [&](ServerProcess& server, SyncClient& admin) {
    const double seed_s = seed_whale(server, admin, o);
    std::cerr << "setup: whale: " << o.whale << " purchases seeded in " << seed_s << " s\n";
    {
      json j = admin.get_json("/api/users/whale/purchases?limit=1");
      if (j.at("next").is_null() && o.whale > 1) throw std::runtime_error("the whale has no second page");
    }
    int rc = 0;
    std::map<bool, std::vector<double>> rate, p50, p99, card_p99, pages;
    int run = 0;
    for (int round = 0; round < o.rounds; ++round) {
      std::vector<bool> order = round % 2 == 0 ? std::vector<bool>{false, true} : std::vector<bool>{true, false};
      for (bool with : order) {
        ++run;
        std::string id = "wh" + std::to_string(run) + (with ? "-with" : "-without");
        RunSpec spec = run_spec(c, with ? "whale_readers" : "whale_baseline", id, o.clients);
        seed(admin, spec.fixture);
        WhaleSide side(server.http(), with ? o.readers : 0, o.page, "x", o.card_poll_ms);
        side.start();
        spec.on_window_start = [&] { side.window_start(); };
        spec.on_window_end = [&] { side.window_end(); };
        RunOutcome r = run_load(server, admin, spec, [&](json* out) {
          std::vector<std::string> problems;
          side.report(out, &problems);
          (*out)["side_problems"] = problems;
        });
        if (r.hang) return 3;
        r.result["run"] = run;
        r.result["round"] = round + 1;
        r.result["whale_purchases"] = o.whale;
        emit(r.result);
        if (!r.verified) rc = 1;
        rate[with].push_back(r.result["purchases_per_s"].get<double>());
        p50[with].push_back(r.result["p50_ms"].get<double>());
        p99[with].push_back(r.result["p99_ms"].get<double>());
        card_p99[with].push_back(r.result["card_reads"]["p99_ms"].get<double>());
        pages[with].push_back(r.result["whale_readers"]["pages_per_s"].get<double>());
      }
    }
    auto arm = [&](bool with) {
      json a = {{"median_purchases_per_s", median_of(rate[with])}, {"median_p50_ms", median_of(p50[with])},
                {"median_p99_ms", median_of(p99[with])}, {"median_card_read_p99_ms", median_of(card_p99[with])},
                {"purchases_per_s", rate[with]}, {"p99_ms", p99[with]}};
      if (with) a["readers"] = o.readers, a["median_whale_pages_per_s"] = median_of(pages[with]);
      return a;
    };
    emit({{"bench", "http"}, {"scenario", "whale_summary"}, {"clients", o.clients}, {"rounds", o.rounds},
          {"whale_purchases", o.whale}, {"page_limit", o.page}, {"seed_s", round_to(seed_s, 0.01)},
          {"without", arm(false)}, {"with", arm(true)}});
    return rc;
  });
}

void add_common(CLI::App* app, Common* c) {
  app->add_option("--giftcard", c->giftcard, "giftcard executable (default: next to this benchmark)");
  app->add_option("--data", c->data, "store directory (default: a fresh temp dir, removed unless --keep)");
  app->add_flag("--keep", c->keep, "keep the temp dir (store, server.log)");
  app->add_flag("!--no-verify", c->verify, "skip `giftcard verify` of the store after the server stopped");
  app->add_option("--server-http-threads", c->server_http_threads,
                  "pass --http-threads to giftcard serve (0: its default)")
      ->capture_default_str();
  app->add_option("--threads", c->threads, "I/O threads of this load generator")->capture_default_str();
  app->add_option("--warmup", c->warmup, "seconds of load before measuring")->capture_default_str();
  app->add_option("--seconds", c->seconds, "measured seconds per run")->capture_default_str();
  app->add_option("--codes", c->codes, "codes per run's card (default: sized from --est-rate)");
  app->add_option("--est-rate", c->est_rate, "purchases/s assumed when sizing a card's codes")
      ->capture_default_str();
  app->add_option("--server-query-threads", c->server_query_threads,
                  "pass --query-threads to giftcard serve (0: its default)")
      ->capture_default_str();
}

}  // namespace
}  // namespace giftcard_http_bench

int main(int argc, char** argv) {
  using namespace giftcard_http_bench;
  CLI::App app{"giftcard-http-bench: purchases over HTTP against a real `giftcard serve` process"};
  app.require_subcommand(1);
  Common common;
  PurchaseOpts po;
  SlowOpts so;
  WrkOpts wo;
  WhaleOpts who;
  SoakOpts sko;

  auto* purchase = app.add_subcommand("purchase", "keep-alive clients buying one hot card over HTTP");
  add_common(purchase, &common);
  purchase->add_option("--clients", po.clients, "connections (one buyer each); one run per value")
      ->delimiter(',')
      ->capture_default_str();
  purchase->add_option("--repeat", po.repeat, "repeat the list of runs R times (interleaved)")
      ->capture_default_str();

  auto* slow = app.add_subcommand("slow", "purchase p99 without and with slowloris connections and SSE viewers");
  add_common(slow, &common);
  slow->add_option("--clients", so.clients, "purchasing connections")->capture_default_str();
  slow->add_option("--slowloris", so.slowloris, "stalled-header connections")->capture_default_str();
  slow->add_option("--viewers", so.viewers, "GET /api/events/stream viewers")->capture_default_str();
  slow->add_option("--slow-interval", so.slow_interval, "seconds between two header bytes")
      ->capture_default_str();
  slow->add_option("--cut-limit", so.cut_limit, "a stalled header must be cut within this many seconds")
      ->capture_default_str();
  slow->add_option("--rounds", so.rounds, "rounds of (without, with); order alternates")
      ->capture_default_str();

  auto* wrk = app.add_subcommand("wrk", "cross-check: Debian's wrk and this generator, alternating");
  add_common(wrk, &common);
  wrk->add_option("--clients", wo.clients, "connections")->capture_default_str();
  wrk->add_option("--rounds", wo.rounds, "rounds of (ours, wrk); order alternates")->capture_default_str();
  wrk->add_option("--wrk-threads", wo.wrk_threads, "wrk -t")->capture_default_str();
  wrk->add_option("--wrk", wo.wrk, "the wrk executable")->capture_default_str();
  wrk->add_option("--script", wo.script, "Lua script (default: bench/http/purchase.lua of the source tree)");

  auto* whale = app.add_subcommand("whale", "purchase latency without and with readers paging one huge history");
  add_common(whale, &common);
  whale->add_option("--clients", who.clients, "purchasing connections (one buyer each)")->capture_default_str();
  whale->add_option("--readers", who.readers, "connections walking the whale's purchase pages")
      ->capture_default_str();
  whale->add_option("--whale", who.whale, "purchases in the whale's history")->capture_default_str();
  whale->add_option("--page", who.page, "limit of each page (1..1000)")->capture_default_str();
  whale->add_option("--rounds", who.rounds, "rounds of (without, with); order alternates")->capture_default_str();
  whale->add_option("--seed-connections", who.seed_connections, "connections seeding the whale's purchases")
      ->capture_default_str();
  whale->add_option("--card-poll-ms", who.card_poll_ms, "period of GET /api/cards/x")->capture_default_str();

  auto* soak = app.add_subcommand("soak", "one hot card with millions of codes bought for minutes");
  add_common(soak, &common);  // --codes: 5,000,000 unless given
  add_soak_options(soak, &sko);

  CLI11_PARSE(app, argc, argv);
  if (common.threads < 1 || common.seconds <= 0 || common.warmup < 0 || common.est_rate < 1) {
    std::cerr << "giftcard-http-bench: --threads, --seconds and --est-rate must be positive\n";
    return 2;
  }
  if (*purchase) {
    if (po.clients.empty() || po.repeat < 1 ||
        std::any_of(po.clients.begin(), po.clients.end(), [](int n) { return n < 1; })) {
      std::cerr << "giftcard-http-bench: --clients and --repeat must be positive\n";
      return 2;
    }
    return cmd_purchase(common, po);
  }
  if (*slow) {
    if (so.clients < 1 || so.slowloris < 0 || so.viewers < 0 || so.rounds < 1 || so.slow_interval <= 0) {
      std::cerr << "giftcard-http-bench: --clients, --rounds and --slow-interval must be positive\n";
      return 2;
    }
    return cmd_slow(common, so);
  }
  if (*whale) {
    if (who.clients < 1 || who.readers < 1 || who.whale < 1 || who.rounds < 1 || who.page < 1 ||
        who.page > 1000 || who.seed_connections < 1 || who.card_poll_ms < 1) {
      std::cerr << "giftcard-http-bench: --clients, --readers, --whale, --rounds, --seed-connections and "
                   "--card-poll-ms must be positive, --page 1..1000\n";
      return 2;
    }
    return cmd_whale(common, who);
  }
  if (*soak) {
    if (!soak_options_ok(sko)) return 2;
    return cmd_soak(common, sko);
  }
  if (wo.clients < 1 || wo.rounds < 1 || wo.wrk_threads < 1) {
    std::cerr << "giftcard-http-bench: --clients, --rounds and --wrk-threads must be positive\n";
    return 2;
  }
  return cmd_wrk(common, wo);
}
