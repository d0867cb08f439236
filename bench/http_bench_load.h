// giftcard-http-bench (http_bench.cc): the purchase load. N keep-alive
// connections, each one buyer with one POST /api/purchases in flight, then
// every purchase checked against the server's cards and wallets.
#pragma once

#include "bench/http_bench_common.h"

namespace giftcard_http_bench {

// ------------------------------------------------------------------ the purchase load

struct RunSpec {
  std::string scenario;  // purchase | baseline | slow_clients | ours (wrk cross-check)
  int clients = 64;
  int threads = 1;
  double warmup = 2, seconds = 10;
  Fixture fixture;
  std::string key_prefix;
  // Called as the measured window opens and as it closes (side loads).
  std::function<void()> on_window_start, on_window_end;
};


// Checks a finished run against the server: distinct codes, the card's
// `assigned`, exact balances. `ok_by_user` counts 201s per buyer. Appends
// problems; fills `out`.
inline void check_against_server(SyncClient& admin, const Fixture& f, uint64_t ok_total,
                          const std::map<std::string, uint64_t>& ok_by_user,
                          std::vector<std::string>* codes, bool exact_count, uint64_t slack,
                          json* out, std::vector<std::string>* problems) {
  if (codes) {
    std::sort(codes->begin(), codes->end());
    size_t distinct = static_cast<size_t>(std::unique(codes->begin(), codes->end()) - codes->begin());
    (*out)["distinct_codes"] = distinct;
    if (distinct != ok_total)
      problems->push_back(std::to_string(ok_total - distinct) + " code(s) handed out twice (" +
                          std::to_string(ok_total) + " 201s, " + std::to_string(distinct) +
                          " distinct codes)");
  }
  const int64_t head = admin.log_position();
  json card = admin.get_json("/api/cards/" + f.card + "?after=" + std::to_string(head));
  const int64_t assigned = card.at("assigned").get<int64_t>();
  (*out)["assigned"] = assigned;
  if (exact_count ? assigned != static_cast<int64_t>(ok_total)
                  : (assigned < static_cast<int64_t>(ok_total) ||
                     assigned > static_cast<int64_t>(ok_total + slack)))
    problems->push_back("card " + f.card + " reports " + std::to_string(assigned) +
                        " assigned codes, the clients got " + std::to_string(ok_total) + " 201s");
  if (card.at("available").get<int64_t>() + assigned + card.at("expired").get<int64_t>() +
          card.at("revoked").get<int64_t>() != f.codes)
    problems->push_back("card " + f.card + ": available + assigned + expired + revoked != " +
                        std::to_string(f.codes) + ": " + card.dump());
  int64_t debited = 0;
  size_t wrong = 0;
  for (const auto& u : f.users) {
    json w = admin.get_json("/api/wallets/" + u + "?after=" + std::to_string(head));
    int64_t balance = w.at("balance").get<int64_t>();
    debited += f.credit - balance;
    if (!ok_by_user.empty()) {
      auto it = ok_by_user.find(u);
      int64_t n = it == ok_by_user.end() ? 0 : static_cast<int64_t>(it->second);
      if (balance != f.credit - kPrice * n && wrong++ < 3)
        problems->push_back("wallet " + u + ": balance " + std::to_string(balance) + ", expected " +
                            std::to_string(f.credit - kPrice * n));
    }
  }
  // Money: every assigned code was paid for exactly once.
  (*out)["debited"] = debited;
  if (debited != kPrice * assigned)
    problems->push_back("buyers were debited " + std::to_string(debited) + " for " +
                        std::to_string(assigned) + " codes at " + std::to_string(kPrice));
  (*out)["balances_exact"] = wrong == 0 && debited == kPrice * assigned;
}

// Waits up to 60 s after the stop for the load's `running` clients to finish,
// then joins its I/O threads; on a hang stops them first and returns false.
inline bool drain(const std::atomic<int>& running, std::vector<std::unique_ptr<net::io_context>>& iocs,
                  std::vector<std::thread>& threads, const char* clients) {
  auto deadline = Clock::now() + std::chrono::seconds(60);
  while (running.load(std::memory_order_acquire) > 0 && Clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  const int left = running.load(std::memory_order_acquire);
  if (left > 0) {
    std::cerr << "http-bench: HANG: " << left << " " << clients << " still wait for a response 60 s after the stop\n";
    for (auto& ioc : iocs) ioc->stop();
  }
  for (auto& t : threads) t.join();
  return left == 0;
}

struct RunOutcome {
  json result;
  bool verified = false;
  bool hang = false;
};


inline RunOutcome run_load(const ServerProcess& server, SyncClient& admin, const RunSpec& spec,
                    const std::function<void(json*)>& after_load = {}) {
  RunOutcome outcome;
  tcp::endpoint ep(net::ip::make_address(server.http().host), server.http().port);
  LoadShared sh;
  const int T = std::max(1, std::min(spec.threads, spec.clients));
  std::vector<std::unique_ptr<net::io_context>> iocs;
  for (int i = 0; i < T; ++i) iocs.push_back(std::make_unique<net::io_context>(1));
  std::vector<std::unique_ptr<Buyer>> buyers;
  std::vector<std::shared_ptr<HttpPurchaseClient>> clients;
  sh.running = spec.clients;
  for (int i = 0; i < spec.clients; ++i) {
    auto b = std::make_unique<Buyer>();
    b->card = spec.fixture.card;
    b->user = spec.fixture.users[static_cast<size_t>(i)];
    b->key_prefix = spec.key_prefix + "c" + std::to_string(i) + "-";
    clients.push_back(std::make_shared<HttpPurchaseClient>(*iocs[static_cast<size_t>(i % T)], ep, &sh,
                                                           b.get(), "http-bench"));
    buyers.push_back(std::move(b));
  }
  auto m0 = scrape(admin);
  const double load_before = loadavg_1m();
  const auto load_start = Clock::now();
  for (auto& c : clients) c->start();
  std::vector<std::thread> threads;
  for (auto& ioc : iocs) threads.emplace_back([&ioc] { ioc->run(); });

  auto sleep_until = [&](Clock::time_point until) {
    while (Clock::now() < until && sh.running.load() > 0)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
  };
  sleep_until(load_start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(spec.warmup)));
  auto c0 = cpu_snapshot(server.pid());
  auto m1 = scrape(admin);
  uint64_t ok0 = sh.ok.load();
  sh.phase.store(1, std::memory_order_release);
  if (spec.on_window_start) spec.on_window_start();
  const auto t0 = Clock::now();
  for (int i = 1; i <= static_cast<int>(std::ceil(spec.seconds)); ++i) {
    sleep_until(t0 + std::chrono::duration_cast<Clock::duration>(
                         std::chrono::duration<double>(std::min<double>(i, spec.seconds))));
    std::cerr << "load: " << spec.scenario << " clients=" << spec.clients << " t=" << i
              << "s purchases=" << sh.ok.load() - ok0 << "\n";
    if (sh.running.load() == 0) break;
  }
  sh.phase.store(2, std::memory_order_release);
  const auto t1 = Clock::now();
  auto c1 = cpu_snapshot(server.pid());
  if (spec.on_window_end) spec.on_window_end();
  auto m2 = scrape(admin);
  if (!drain(sh.running, iocs, threads, "clients")) {
    outcome.hang = true;
    return outcome;
  }
  const double drain_ms = secs(Clock::now() - t1) * 1000;

  // ---- results
  std::vector<uint32_t> lat;
  std::vector<std::string> codes;
  std::map<std::string, uint64_t> errors, ok_by_user;
  uint64_t ok_total = 0, ok_measured = 0, replayed = 0, transport = 0;
  for (auto& c : buyers) {
    ok_total += c->ok_total;
    ok_measured += c->ok_measured;
    replayed += c->replayed;
    transport += c->transport_errors;
    ok_by_user[c->user] += c->ok_total;
    lat.insert(lat.end(), c->latency_us.begin(), c->latency_us.end());
    for (auto& code : c->codes) codes.push_back(std::move(code));
    for (auto& [k, v] : c->errors) errors[k] += v;
  }
  std::sort(lat.begin(), lat.end());
  const double window = secs(t1 - t0);
  json& out = outcome.result;
  out["bench"] = "http";
  out["scenario"] = spec.scenario;
  out["clients"] = spec.clients;
  out["generator_threads"] = T;
  put_window(out, window, ok_measured, lat);
  out["errors"] = json::object();
  for (auto& [k, v] : errors) out["errors"][k] = v;
  out["replayed"] = replayed;
  out["purchases_total"] = ok_total;  // warm-up and drain included; all checked
  out["codes_loaded"] = spec.fixture.codes;
  out["drain_ms"] = round_to(drain_ms, 0.1);
  out["loadavg_1m_before"] = load_before;
  out.update(cpu_report(c0, c1, ok_measured));
  auto delta = [&](const char* k) { return m2[k] - m1[k]; };
  double batches = delta("giftcard_append_batches_total");
  out["store_batches"] = batches;
  out["requests_per_batch"] = batches > 0 ? round_to(delta("giftcard_append_requests_total") / batches, 0.01) : 0.0;
  out["events_per_batch"] = batches > 0 ? round_to(delta("giftcard_append_events_total") / batches, 0.01) : 0.0;
  out["sync_ms_per_batch"] =
      batches > 0 ? round_to(1000.0 * delta("giftcard_append_sync_seconds_total") / batches, 0.001) : 0.0;
  out["http_5xx"] = m2["giftcard_http_responses_total{class=\"5xx\"}"] - m0["giftcard_http_responses_total{class=\"5xx\"}"];

  std::vector<std::string> problems;
  if (sh.out_of_stock)
    std::cerr << "http-bench: WARNING: the card ran out of codes; raise --codes or --est-rate\n";
  out["out_of_stock"] = sh.out_of_stock.load();
  if (replayed) problems.push_back(std::to_string(replayed) + " response(s) replayed although every key is fresh");
  if (transport) problems.push_back(std::to_string(transport) + " request(s) failed on the connection");
  try {
    check_against_server(admin, spec.fixture, ok_total, ok_by_user, &codes, true, 0, &out, &problems);
    if (after_load) after_load(&out);
  } catch (const std::exception& e) {
    problems.push_back(std::string("check failed: ") + e.what());
  }
  if (auto it = out.find("side_problems"); it != out.end()) {
    for (const auto& p : *it) problems.push_back(p.get<std::string>());
    out.erase("side_problems");
  }
  for (auto& p : problems) std::cerr << "http-bench: CORRECTNESS: " << p << "\n";
  out["problems"] = problems;
  out["verified"] = problems.empty();
  outcome.verified = problems.empty();
  std::cerr << "load: " << spec.scenario << " clients=" << spec.clients << ": " << ok_measured
            << " purchases in " << window << " s = " << out["purchases_per_s"] << "/s, p99 "
            << out["p99_ms"] << " ms; " << (problems.empty() ? "verified" : "NOT VERIFIED") << "\n";
  return outcome;
}

}  // namespace giftcard_http_bench
