// giftcard-http-bench (http_bench.cc): `soak`, issue #16. One server, ONE hot
// card with millions of codes, N keep-alive lanes buying it for M minutes, one
// JSON line per minute (purchases/s, requests/s, p50/p99, server RSS, store
// size on disk, log position, projection lag), then the correctness checks and
// a summary with the targets.
//
// --repeat-rate P: P % of the fresh purchases are sent a second time with the
// same user and Idempotency-Key. Half of those (alternating per lane) go at
// the same moment over the lane's second connection, as a client retrying
// after a timeout while the first attempt is in flight; the other half are
// replayed --repeat-delay seconds after the answer, from a bounded ring, by
// whichever lane finds them due. docs/API.md, "Idempotency": a repeat gets the
// first result again, 201 with `Idempotent-Replayed: true` and the same code;
// a concurrent repeat waits for the first attempt. Only a 201 WITHOUT that
// header counts as a purchase; a repeat answered otherwise is a failure.
// The lanes: bench/http_bench_soak_load.h; connections and latency
// histograms: bench/support/http_load.h.
//
// Memory stays bounded: codes are `<card>-%08d` (seeded here), so a purchase
// sets one bit of a bitmap over the pool (5M codes: 625 KB) and a second 201
// with the same code is caught when it arrives; latencies go to log-linear
// histograms per minute (< 0.4 % error), never to vectors.
#pragma once

#include "bench/http_bench_soak_load.h"

namespace giftcard_http_bench {

// ------------------------------------------------------------------ options

inline void add_soak_options(CLI::App* app, SoakOpts* o) {
  app->add_option("--minutes", o->minutes, "minutes of load (a JSON line each)")
      ->capture_default_str();
  app->add_option("--interval", o->interval, "seconds in a reported minute")->capture_default_str();
  app->add_option("--clients", o->clients, "keep-alive lanes")->capture_default_str();
  app->add_option("--users", o->users, "buyers (default: one per lane)");
  app->add_option("--repeat-rate", o->repeat_rate, "% of purchases sent twice with the same key")
      ->capture_default_str();
  app->add_option("--repeat-delay", o->repeat_delay, "seconds before a later repeat")
      ->capture_default_str();
  app->add_option("--ring", o->ring, "later repeats waiting, at most")->capture_default_str();
  app->add_option("--seed-connections", o->seed_connections, "connections crediting the buyers")
      ->capture_default_str();
}

inline bool soak_options_ok(const SoakOpts& o) {
  if (o.minutes >= 1 && o.interval > 0 && o.clients >= 1 && o.users >= 0 && o.repeat_rate >= 0 &&
      o.repeat_rate <= 100 && o.repeat_delay >= 0 && o.ring >= 1 && o.seed_connections >= 1)
    return true;
  std::cerr << "giftcard-http-bench: --minutes, --interval, --clients, --ring and "
               "--seed-connections must be positive, --repeat-rate 0..100\n";
  return false;
}

// ------------------------------------------------------------------ per-minute figures

struct SoakSample {
  CpuSnapshot cpu;
  std::map<std::string, double> m;  // /metrics
  int64_t rss_mb = 0, disk = 0;
};

inline SoakSample soak_sample(pid_t pid, SyncClient& admin, const std::filesystem::path& data) {
  SoakSample s;
  s.cpu = cpu_snapshot(pid);
  s.m = scrape(admin);
  s.rss_mb = vm_rss_mb(pid);
  s.disk = disk_bytes(data);
  return s;
}

inline json soak_minute(int minute, const SoakOpts& o, SoakSlot& s, const SoakSample& a,
                        const SoakSample& b) {
  const double w = secs(b.cpu.at - a.cpu.at);
  const auto fresh = s.fresh.load(), requests = s.requests.load();
  auto per_s = [&](uint64_t n) { return w > 0 ? std::round(static_cast<double>(n) / w) : 0.0; };
  auto g = [](const SoakSample& x, const char* k) {  // 0 for a metric the server does not export
    auto it = x.m.find(k);
    return it == x.m.end() ? 0.0 : it->second;
  };
  auto d = [&](const char* k) { return g(b, k) - g(a, k); };
  json j = {{"bench", "http"},
            {"scenario", "soak_minute"},
            {"minute", minute},
            {"repeat_rate", o.repeat_rate},
            {"seconds", round_to(w, 0.001)},
            {"purchases", fresh},
            {"purchases_per_s", per_s(fresh)},
            {"requests", requests},
            {"requests_per_s", per_s(requests)},
            {"p50_ms", s.fresh_lat.percentile_ms(0.5)},
            {"p99_ms", s.fresh_lat.percentile_ms(0.99)},
            {"max_ms", s.fresh_lat.max_ms()},
            {"repeats",
             {{"concurrent", s.concurrent.load()},
              {"later", s.later.load()},
              {"replayed_ok", s.repeats_ok.load()},
              {"p50_ms", s.repeat_lat.percentile_ms(0.5)},
              {"p99_ms", s.repeat_lat.percentile_ms(0.99)}}},
            {"failed", s.failed.load()},
            {"server_rss_mb", b.rss_mb},
            {"store_disk_mb", round_to(static_cast<double>(b.disk) / (1 << 20), 0.1)}};
  j["log_position"] = g(b, "giftcard_log_position");
  j["projection_position"] = g(b, "giftcard_projection_position");
  j["projection_lag_positions"] = g(b, "giftcard_log_position") -
                                  g(b, "giftcard_projection_position");
  j["projection_lag_s"] = g(b, "giftcard_projection_lag_seconds");
  const double batches = d("giftcard_append_batches_total");
  j["store_batches"] = batches;
  j["requests_per_batch"] = batches > 0
                                ? round_to(d("giftcard_append_requests_total") / batches, 0.01)
                                : 0.0;
  j["sync_ms_per_batch"] = batches > 0 ? round_to(1000.0 * d("giftcard_append_sync_seconds_total") /
                                                      batches,
                                                  0.001)
                                       : 0.0;
  j.update(cpu_report(a.cpu, b.cpu, fresh));
  // The machine may be shared: CPU used by neither the server nor this generator, in % of a core.
  if (j.contains("machine_busy_pct"))
    j["others_cpu_pct"] = round_to(
        std::max(0.0, j["machine_busy_pct"].get<double>() * std::thread::hardware_concurrency() -
                          j["server_cpu_pct"].get<double>() - j["generator_cpu_pct"].get<double>()),
        0.1);
  j["loadavg_1m"] = loadavg_1m();
  return j;
}

// ------------------------------------------------------------------ the soak

inline Fixture soak_fixture(const Common& c, const SoakOpts& o) {
  Fixture f;
  f.card = "soak";
  f.codes = c.codes > 0 ? c.codes : kSoakDefaultCodes;
  const int64_t users = o.users > 0 ? o.users : o.clients;
  for (int64_t i = 0; i < users; ++i) f.users.push_back("soak-u" + std::to_string(i));
  f.credit = kPrice * (f.codes + 1);  // no purchase can fail on funds
  return f;
}

// Seeds, runs the load minute by minute, checks; the exit code (0, 1, 3).
inline int run_soak(const Common& c, const SoakOpts& o, const ServerProcess& server,
                    SyncClient& admin, const std::filesystem::path& data,
                    const std::function<void(const json&)>& emit) {
  const Fixture f = soak_fixture(c, o);
  auto s0 = Clock::now();
  seed(admin, Fixture{f.card, {}, f.codes, 0});  // the card and its codes, in batches
  const double seed_codes_s = secs(Clock::now() - s0);
  parallel_calls(server.http(), static_cast<int64_t>(f.users.size()), o.seed_connections,
                 [&](SyncClient& sc, int64_t i) {
                   const std::string& u = f.users[static_cast<size_t>(i)];
                   Reply r = sc.call(http::verb::post, "/api/wallets/" + u + "/credits",
                                     json{{"amount", f.credit}}.dump(), "seed-" + u);
                   if (r.status != 201)
                     throw std::runtime_error("credit " + u + ": status " +
                                              std::to_string(r.status) + ": " + r.body);
                 });
  const double seed_s = secs(Clock::now() - s0);
  std::cerr << "setup: soak: " << f.codes << " codes in " << seed_codes_s << " s, "
            << f.users.size() << " buyers credited; seeding took " << seed_s << " s\n";

  SoakShared sh(o, f, tcp::endpoint(net::ip::make_address(server.http().host), server.http().port));
  const int T = std::max(1, std::min(c.threads, o.clients));
  std::vector<std::unique_ptr<net::io_context>> iocs;
  for (int i = 0; i < T; ++i) iocs.push_back(std::make_unique<net::io_context>(1));
  std::vector<std::shared_ptr<SoakLane>> lanes;
  for (int i = 0; i < o.clients; ++i)
    lanes.push_back(std::make_shared<SoakLane>(*iocs[static_cast<size_t>(i % T)], &sh,
                                               static_cast<uint32_t>(i)));
  const auto m_start = scrape(admin);
  SoakSample prev = soak_sample(server.pid(), admin, data);
  sh.running = o.clients;
  sh.t0 = Clock::now();
  for (auto& l : lanes) l->start();
  lanes.clear();  // the io_contexts own them now
  std::vector<std::thread> threads;
  for (auto& ioc : iocs) threads.emplace_back([&ioc] { ioc->run(); });

  std::vector<json> minutes;
  for (int m = 0; m < o.minutes && sh.running.load() > 0; ++m) {
    const auto until = sh.t0 + std::chrono::duration_cast<Clock::duration>(
                                   std::chrono::duration<double>(o.interval * (m + 1)));
    while (Clock::now() < until && sh.running.load() > 0)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    SoakSample cur = soak_sample(server.pid(), admin, data);
    json line = soak_minute(m + 1, o, *sh.slots[static_cast<size_t>(m)], prev, cur);
    if (sh.running.load() == 0) line["partial"] = true;  // the lanes stopped early
    emit(line);
    std::cerr << "soak: minute " << m + 1 << ": " << line["purchases_per_s"] << " purchases/s, "
              << line["requests_per_s"] << " requests/s, p99 " << line["p99_ms"] << " ms, rss "
              << line["server_rss_mb"] << " MB, position " << line["log_position"] << "\n";
    minutes.push_back(std::move(line));
    prev = std::move(cur);
  }
  sh.stop.store(true, std::memory_order_release);
  if (!drain(sh.running, iocs, threads, "lanes")) return 3;

  // ---- totals and correctness
  uint64_t fresh = 0, requests = 0, concurrent = 0, later = 0, repeats_ok = 0, failed = 0;
  for (auto& s : sh.slots) {
    fresh += s->fresh, requests += s->requests, concurrent += s->concurrent;
    later += s->later, repeats_ok += s->repeats_ok, failed += s->failed;
  }
  uint64_t distinct = 0;
  for (auto& w : sh.seen) distinct += static_cast<uint64_t>(__builtin_popcountll(w.load()));
  std::map<std::string, uint64_t> ok_by_user;
  for (size_t i = 0; i < f.users.size(); ++i) ok_by_user[f.users[i]] = sh.fresh_by_user[i].load();
  const auto m_end = scrape(admin);
  json out = {{"bench", "http"},
              {"scenario", "soak_summary"},
              {"minutes", minutes.size()},
              {"interval_s", o.interval},
              {"clients", o.clients},
              {"users", f.users.size()},
              {"connections", o.clients * (o.repeat_rate > 0 ? 2 : 1)},
              {"generator_threads", T},
              {"repeat_rate", o.repeat_rate},
              {"repeat_delay_s", o.repeat_delay},
              {"codes_loaded", f.codes},
              {"seed_s", round_to(seed_s, 0.01)},
              {"purchases", fresh},
              {"requests", requests},
              {"distinct_codes", distinct}};
  out["repeats"] = {{"concurrent", concurrent},
                    {"later", later},
                    {"replayed_ok", repeats_ok},
                    {"later_dropped_ring_full", sh.ring_dropped.load()},
                    {"later_unsent_at_end", sh.ring.size()}};
  out["failed"] = failed;
  out["errors"] = json::object();
  for (auto& [k, v] : sh.errors) out["errors"][k] = v;
  for (const char* k : {"ok", "replayed"}) {  // the server's own counts, for comparison
    const std::string name = std::string("giftcard_purchases_total{outcome=\"") + k + "\"}";
    out[std::string("server_purchases_") + k] = m_end.count(name)
                                                    ? m_end.at(name) - m_start.at(name)
                                                    : -1.0;
  }
  out["out_of_stock"] = sh.out_of_stock.load();
  if (sh.out_of_stock) std::cerr << "soak: WARNING: the card ran out of codes; raise --codes\n";

  std::vector<std::string> problems;
  auto count = [&](const std::atomic<uint64_t>& n, const std::string& what) {
    if (n.load()) problems.push_back(std::to_string(n.load()) + " " + what);
  };
  count(sh.duplicate_codes, "fresh 201(s) with a code handed out before");
  count(sh.foreign_codes, "201(s) with a code that is not the card's");
  count(sh.repeat_purchased, "repeat(s) that purchased again instead of replaying");
  count(sh.wrong_code, "repeat(s) replayed with another code than the first attempt's");
  count(sh.repeat_failed, "repeat(s) refused");
  count(sh.fresh_replayed, "fresh key(s) answered as replays");
  count(sh.transport, "request(s) failed on the connection");
  if (distinct + sh.duplicate_codes + sh.foreign_codes != fresh)
    problems.push_back("bitmap: " + std::to_string(distinct) + " distinct codes for " +
                       std::to_string(fresh) + " purchases");
  try {
    check_against_server(admin, f, fresh, ok_by_user, nullptr, true, 0, &out, &problems);
  } catch (const std::exception& e) {
    problems.push_back(std::string("check failed: ") + e.what());
  }

  // ---- the targets: steady rate and p99 every minute
  double worst_p99 = 0, worst_repeat_p99 = 0;
  json rates = json::array(), p99s = json::array();
  for (const auto& l : minutes) {
    worst_p99 = std::max(worst_p99, l["p99_ms"].get<double>());
    worst_repeat_p99 = std::max(worst_repeat_p99, l["repeats"]["p99_ms"].get<double>());
    rates.push_back(l["purchases_per_s"]);
    p99s.push_back(l["p99_ms"]);
  }
  const bool complete = static_cast<int>(minutes.size()) == o.minutes &&
                        !minutes.back().contains("partial");
  const double first = minutes.empty() ? 0 : minutes.front()["purchases_per_s"].get<double>();
  const double last = minutes.empty() ? 0 : minutes.back()["purchases_per_s"].get<double>();
  const double ratio = first > 0 ? round_to(last / first, 0.001) : 0.0;
  out["per_minute_purchases_per_s"] = rates;
  out["per_minute_p99_ms"] = p99s;
  out["first_minute_purchases_per_s"] = first;
  out["last_minute_purchases_per_s"] = last;
  out["last_over_first"] = ratio;
  out["worst_p99_ms"] = worst_p99;
  out["worst_repeat_p99_ms"] = worst_repeat_p99;
  out["server_peak_rss_mb"] = peak_rss_mb(server.pid());
  out["generator_peak_rss_mb"] = peak_rss_mb();
  out["complete"] = complete;
  const bool steady = complete && ratio >= kTargetSoakLastOverFirst,
             fast = complete && worst_p99 < kTargetSoakP99Ms;
  out["targets"] = {{"last_over_first", kTargetSoakLastOverFirst},
                    {"p99_ms_every_minute", kTargetSoakP99Ms},
                    {"steady_met", steady},
                    {"p99_met", fast},
                    {"met", steady && fast}};
  for (auto& p : problems) std::cerr << "http-bench: CORRECTNESS: " << p << "\n";
  out["problems"] = problems;
  out["verified"] = problems.empty();
  emit(out);
  std::cerr << "soak: " << fresh << " purchases, " << requests << " requests; first minute "
            << first << "/s, last " << last << "/s (" << ratio << "), worst p99 " << worst_p99
            << " ms; " << (problems.empty() ? "verified" : "NOT VERIFIED") << "\n";
  return problems.empty() ? 0 : 1;
}

}  // namespace giftcard_http_bench
