// giftcard-http-bench: purchases over HTTP against a real `giftcard serve`
// process, measured by an asynchronous Boost.Beast/Asio client on the same
// machine.
//
//   giftcard-http-bench purchase [--clients 1,8,64] [--seconds S] [--repeat R] ...
//   giftcard-http-bench slow     [--clients 64] [--slowloris 32] [--viewers 16] [--rounds R] ...
//   giftcard-http-bench wrk      [--clients 64] [--rounds R] [--script bench/http/purchase.lua] ...
//   giftcard-http-bench whale    [--clients 8] [--readers 40] [--whale 45588] [--rounds R] ...
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
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <limits>
#include <map>
#include <future>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "bench/support/bench_support.h"
#include "bench/support/http_load.h"

namespace giftcard_http_bench {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using json = nlohmann::json;
using namespace giftcard::bench;
using giftcard::HostPort;

constexpr int64_t kPrice = 100;
constexpr int64_t kCodesPerBatch = 100000;  // SPEC §4: 1..100000 codes per import
constexpr double kTargetPurchasesPerS = 25000;  // issue #4
constexpr double kTargetSlowP99Ms = 200;        // RELIABILITY.md §7


// ------------------------------------------------------------------ options

struct Common {
  std::string giftcard;  // path of the giftcard executable
  std::string data;      // store directory (default: fresh temp dir, removed)
  bool keep = false;
  bool verify = true;
  int server_http_threads = 0;  // 0: serve's default
  int threads = 1;              // generator I/O threads
  double warmup = 2;
  double seconds = 10;
  int64_t codes = 0;            // per run; 0: estimated
  int64_t est_rate = 50000;     // purchases/s assumed when sizing a run's codes
  int server_query_threads = 0;  // 0: serve's default
};

struct PurchaseOpts {
  std::vector<int> clients{1, 8, 64};
  int repeat = 1;
};

struct SlowOpts {
  int clients = 64;
  int slowloris = 32;
  int viewers = 16;
  double slow_interval = 4;  // seconds between two header bytes
  double cut_limit = 11;     // a stalled header must be cut within this (server: 10 s)
  int rounds = 1;
};

struct WhaleOpts {
  int clients = 8;         // purchasing connections (one buyer each)
  int readers = 40;        // connections walking the whale's history
  int64_t whale = 45588;   // the whale's purchases (issue #14: 45,588)
  int64_t page = 1000;     // `limit` of each page (the API's largest)
  int rounds = 3;          // rounds of (without, with); order alternates
  int seed_connections = 16;
  int card_poll_ms = 20;   // GET /api/cards/x period
};

struct WrkOpts {
  int clients = 64;
  int rounds = 1;
  int wrk_threads = 1;
  std::string wrk = "wrk";
  std::string script;  // default: bench/http/purchase.lua next to this source
};

// ------------------------------------------------------------------ the server process



// ------------------------------------------------------------------ CPU accounting


std::string thread_name(pid_t pid, int tid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/comm");
  std::string name;
  std::getline(in, name);
  return name;
}

std::map<int, int64_t> thread_ticks(pid_t pid) {
  std::map<int, int64_t> out;
  std::error_code ec;
  auto dir = "/proc/" + std::to_string(pid) + "/task";
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    int tid = std::atoi(e.path().filename().c_str());
    out[tid] = proc_ticks(e.path() / "stat");
  }
  return out;
}


struct CpuSnapshot {
  pid_t pid = 0;
  Clock::time_point at;
  int64_t server = 0;
  std::map<int, int64_t> server_threads;
  double self = 0;
  std::array<int64_t, 2> machine{};  // busy, total jiffies of the whole machine
};

std::array<int64_t, 2> machine_ticks() {
  std::ifstream in("/proc/stat");
  std::string cpu;
  in >> cpu;
  int64_t v, total = 0, idle = 0;
  for (int i = 0; i < 10 && in >> v; ++i) {
    total += v;
    if (i == 3 || i == 4) idle += v;  // idle, iowait
  }
  return {total - idle, total};
}

CpuSnapshot cpu_snapshot(pid_t server) {
  CpuSnapshot s;
  s.pid = server;
  s.at = Clock::now();
  s.server = proc_ticks("/proc/" + std::to_string(server) + "/stat");
  s.server_threads = thread_ticks(server);
  s.self = self_cpu_seconds();
  s.machine = machine_ticks();
  return s;
}

// CPU use between two snapshots, in % of one core; `purchases` completed
// between them (0: no per-purchase figures).
json cpu_report(const CpuSnapshot& a, const CpuSnapshot& b, uint64_t purchases) {
  const double hz = static_cast<double>(::sysconf(_SC_CLK_TCK));
  const double wall = secs(b.at - a.at);
  json j;
  if (wall <= 0) return j;
  const double server_s = static_cast<double>(b.server - a.server) / hz;
  j["server_cpu_pct"] = round_to(100.0 * server_s / wall, 0.1);
  j["generator_cpu_pct"] = round_to(100.0 * (b.self - a.self) / wall, 0.1);
  if (purchases > 0) {
    const double n = static_cast<double>(purchases);
    j["server_cpu_us_per_purchase"] = round_to(1e6 * server_s / n, 0.1);
    j["generator_cpu_us_per_purchase"] = round_to(1e6 * (b.self - a.self) / n, 0.1);
  }
  double busy = static_cast<double>(b.machine[0] - a.machine[0]);
  double total = static_cast<double>(b.machine[1] - a.machine[1]);
  j["machine_busy_pct"] = total > 0 ? round_to(100.0 * busy / total, 0.1) : 0.0;
  // The server's busiest threads (tids in creation order tell them apart:
  // RocksDB, writer, CAF workers, projection driver, event hub, HTTP I/O).
  std::vector<std::pair<double, int>> per;
  for (const auto& [tid, t1] : b.server_threads) {
    auto it = a.server_threads.find(tid);
    int64_t t0 = it == a.server_threads.end() ? 0 : it->second;
    double pct = 100.0 * static_cast<double>(t1 - t0) / hz / wall;
    if (pct >= 1.0) per.emplace_back(pct, tid);
  }
  std::sort(per.begin(), per.end(), std::greater<>());
  json threads = json::array();
  for (const auto& [pct, tid] : per)
    threads.push_back({{"tid", tid}, {"name", thread_name(b.pid, tid)}, {"cpu_pct", round_to(pct, 0.1)}});
  j["server_threads"] = threads;
  return j;
}

// ------------------------------------------------------------------ a blocking client (setup, checks)

struct Reply {
  int status = 0;
  std::string body;
  bool replayed = false;
};

class SyncClient {
 public:
  explicit SyncClient(HostPort at) : at_(std::move(at)), sock_(ioc_) {}

  Reply call(http::verb verb, const std::string& target, const std::string& body = "",
             const std::string& idempotency_key = "") {
    // The server closes connections idle for 10 s; reconnect after 5.
    if (sock_.is_open() && Clock::now() - last_used_ > std::chrono::seconds(5)) close();
    for (int attempt = 0;; ++attempt) {
      try {
        if (!sock_.is_open()) connect();
        http::request<http::string_body> req{verb, target, 11};
        req.set(http::field::host, at_.host);
        if (!body.empty()) req.set(http::field::content_type, "application/json");
        if (!idempotency_key.empty()) req.set("Idempotency-Key", idempotency_key);
        req.body() = body;
        req.keep_alive(true);
        req.prepare_payload();
        http::write(sock_, req);
        http::response_parser<http::string_body> parser;
        parser.body_limit(256u << 20);
        http::read(sock_, buf_, parser);
        last_used_ = Clock::now();
        auto& res = parser.get();
        Reply r{static_cast<int>(res.result_int()), res.body(), res.find("Idempotent-Replayed") != res.end()};
        if (!res.keep_alive()) close();
        return r;
      } catch (const std::exception& e) {
        close();
        // A connection the server closed meanwhile: every call here is safe to
        // repeat (reads, or writes under an idempotency key / unique id).
        if (attempt >= 1) throw std::runtime_error(target + ": " + e.what());
      }
    }
  }

  json get_json(const std::string& target) {
    Reply r = call(http::verb::get, target);
    if (r.status != 200)
      throw std::runtime_error("GET " + target + ": status " + std::to_string(r.status) + ": " + r.body);
    return json::parse(r.body);
  }

  int64_t log_position() { return get_json("/healthz").at("position").get<int64_t>(); }

 private:
  void connect() {
    buf_.clear();
    sock_.connect(tcp::endpoint(net::ip::make_address(at_.host), at_.port));
    sock_.set_option(tcp::no_delay(true));
    last_used_ = Clock::now();
  }
  void close() {
    beast::error_code ec;
    sock_.shutdown(tcp::socket::shutdown_both, ec);
    sock_.close(ec);
    buf_.clear();
  }

  HostPort at_;
  net::io_context ioc_;
  tcp::socket sock_;
  beast::flat_buffer buf_;
  Clock::time_point last_used_{};
};

// Prometheus counters of interest: synced batches and committed requests.
std::map<std::string, double> scrape(SyncClient& c) {
  std::map<std::string, double> out;
  Reply r = c.call(http::verb::get, "/metrics");
  std::istringstream in(r.body);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    auto sp = line.rfind(' ');
    if (sp == std::string::npos) continue;
    out[line.substr(0, sp)] = std::atof(line.c_str() + sp + 1);
  }
  return out;
}

// ------------------------------------------------------------------ seeding

struct Fixture {
  std::string card;
  std::vector<std::string> users;
  int64_t codes = 0;
  int64_t credit = 0;  // per user
};

void seed(SyncClient& c, const Fixture& f) {
  auto expect = [](const Reply& r, int status, const std::string& what) {
    if (r.status != status)
      throw std::runtime_error(what + ": status " + std::to_string(r.status) + ": " + r.body.substr(0, 300));
  };
  json card = {{"id", f.card}, {"name", "HTTP bench " + f.card}, {"price", kPrice}, {"value", kPrice}};
  expect(c.call(http::verb::post, "/api/cards", card.dump()), 201, "create card " + f.card);
  for (int64_t done = 0; done < f.codes;) {
    int64_t n = std::min(kCodesPerBatch, f.codes - done);
    std::string body;
    body.reserve(static_cast<size_t>(n) * 40 + 16);
    body += "{\"codes\":[";
    char code[80];
    for (int64_t i = 0; i < n; ++i) {
      std::snprintf(code, sizeof code, "%s{\"code\":\"%s-%08lld\"}", i ? "," : "", f.card.c_str(),
                    static_cast<long long>(done + i));
      body += code;
    }
    body += "]}";
    Reply r = c.call(http::verb::post, "/api/cards/" + f.card + "/codes", body);
    expect(r, 201, "import codes into " + f.card);
    if (json::parse(r.body).at("added").get<int64_t>() != n)
      throw std::runtime_error("import into " + f.card + ": wrong count: " + r.body);
    done += n;
  }
  for (const auto& u : f.users) {
    Reply r = c.call(http::verb::post, "/api/wallets/" + u + "/credits",
                     json{{"amount", f.credit}}.dump(), "seed-" + u);
    expect(r, 201, "credit " + u);
  }
}

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
void check_against_server(SyncClient& admin, const Fixture& f, uint64_t ok_total,
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

struct RunOutcome {
  json result;
  bool verified = false;
  bool hang = false;
};


RunOutcome run_load(const ServerProcess& server, SyncClient& admin, const RunSpec& spec,
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
  auto deadline = Clock::now() + std::chrono::seconds(60);
  while (sh.running.load(std::memory_order_acquire) > 0 && Clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  if (sh.running.load() > 0) {
    std::cerr << "http-bench: HANG: " << sh.running.load()
              << " clients still wait for a response 60 s after the stop\n";
    for (auto& ioc : iocs) ioc->stop();
    for (auto& t : threads) t.join();
    outcome.hang = true;
    return outcome;
  }
  const double drain_ms = secs(Clock::now() - t1) * 1000;
  for (auto& t : threads) t.join();

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

// ------------------------------------------------------------------ slow clients

struct SlowStats {
  std::mutex mu;
  std::vector<double> cuts_s;           // connect to server close, per cut connection
  std::map<std::string, uint64_t> how;  // "408", "eof", ...
  uint64_t connections = 0;
  uint64_t connect_errors = 0;
};

constexpr std::string_view kSlowHeader =
    "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slowloris\r\nX-Padding: "
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

// One slowloris slot: a connection that sends one header byte every
// `interval` and never finishes its header. When the server cuts it, the time
// from connect to cut is recorded and the slot connects again.
class Slowloris : public std::enable_shared_from_this<Slowloris> {
 public:
  Slowloris(net::io_context& ioc, tcp::endpoint ep, Clock::duration interval, SlowStats* st)
      : ioc_(ioc), ep_(ep), interval_(interval), st_(st), timer_(ioc) {}

  void start() {
    if (stopping_) return;
    ++gen_;
    sock_.emplace(ioc_);
    sent_ = 0;
    inbox_.clear();
    sock_->async_connect(ep_, [self = shared_from_this(), g = gen_](beast::error_code ec) {
      if (g != self->gen_ || self->stopping_) return;
      if (ec) {
        std::lock_guard lock(self->st_->mu);
        ++self->st_->connect_errors;
        return;
      }
      {
        std::lock_guard lock(self->st_->mu);
        ++self->st_->connections;
      }
      self->connected_ = Clock::now();
      self->open_ = true;
      self->drip(g);
      self->read(g);
    });
  }

  // Age of the current connection if it is still open (on the I/O thread).
  std::optional<double> open_for() const {
    if (!open_) return std::nullopt;
    return secs(Clock::now() - connected_);
  }

  void stop() {
    stopping_ = true;
    ++gen_;
    timer_.cancel();
    if (sock_) {
      beast::error_code ec;
      sock_->close(ec);
    }
    open_ = false;
  }

 private:
  void drip(uint64_t g) {
    if (g != gen_ || !open_) return;
    auto byte = std::make_shared<char>(kSlowHeader[sent_ % kSlowHeader.size()]);
    ++sent_;
    net::async_write(*sock_, net::buffer(byte.get(), 1), [byte](beast::error_code, size_t) {});
    timer_.expires_after(interval_);
    timer_.async_wait([self = shared_from_this(), g](beast::error_code ec) {
      if (!ec) self->drip(g);
    });
  }

  void read(uint64_t g) {
    sock_->async_read_some(net::buffer(rbuf_), [self = shared_from_this(), g](beast::error_code ec, size_t n) {
      if (g != self->gen_) return;
      if (!ec) {
        self->inbox_.append(self->rbuf_.data(), n);
        return self->read(g);  // read on until the server closes
      }
      self->on_cut();
    });
  }

  void on_cut() {
    double took = secs(Clock::now() - connected_);
    std::string how = "eof";
    if (inbox_.rfind("HTTP/1.1 ", 0) == 0) how = inbox_.substr(9, 3);
    {
      std::lock_guard lock(st_->mu);
      st_->cuts_s.push_back(took);
      ++st_->how[how];
    }
    open_ = false;
    timer_.cancel();
    beast::error_code ec;
    sock_->close(ec);
    start();  // as an attacker would: connect again
  }

  net::io_context& ioc_;
  tcp::endpoint ep_;
  Clock::duration interval_;
  SlowStats* st_;
  net::steady_timer timer_;
  std::optional<tcp::socket> sock_;
  std::array<char, 1024> rbuf_{};
  std::string inbox_;
  size_t sent_ = 0;
  uint64_t gen_ = 0;
  bool open_ = false;
  bool stopping_ = false;
  Clock::time_point connected_;
};

// One Server-Sent-Events viewer: reads everything as fast as it comes and
// checks that the event ids are consecutive.
class SseViewer : public std::enable_shared_from_this<SseViewer> {
 public:
  SseViewer(net::io_context& ioc, tcp::endpoint ep) : sock_(ioc), ep_(ep), buf_(64 * 1024) {}

  void start() {
    sock_.async_connect(ep_, [self = shared_from_this()](beast::error_code ec) {
      if (ec) {
        self->error = "connect: " + ec.message();
        self->ended = true;
        return;
      }
      self->req_ = "GET /api/events/stream HTTP/1.1\r\nHost: " + self->ep_.address().to_string() +
                   "\r\nAccept: text/event-stream\r\n\r\n";
      net::async_write(self->sock_, net::buffer(self->req_), [self](beast::error_code ec2, size_t) {
        if (ec2) {
          self->error = "write: " + ec2.message();
          self->ended = true;
          return;
        }
        self->read();
      });
    });
  }

  void stop() {
    stopping_ = true;
    beast::error_code ec;
    sock_.close(ec);
  }

  // Written by the I/O thread; read by main (atomics).
  std::atomic<int> status{0};
  std::atomic<int64_t> first_id{-1}, last_id{-1};
  std::atomic<uint64_t> events{0}, gaps{0}, bytes{0};
  std::atomic<bool> ended{false};
  std::string error;  // set before `ended`

 private:
  void read() {
    sock_.async_read_some(net::buffer(buf_), [self = shared_from_this()](beast::error_code ec, size_t n) {
      if (ec) {
        if (!self->stopping_) self->error = "server closed the stream: " + ec.message();
        self->ended = true;
        return;
      }
      self->bytes += n;
      self->consume(std::string_view(self->buf_.data(), n));
      self->read();
    });
  }

  void consume(std::string_view data) {
    if (!in_body_) {
      head_.append(data);
      auto end = head_.find("\r\n\r\n");
      if (end == std::string::npos) return;
      if (head_.rfind("HTTP/1.1 ", 0) == 0) status = std::atoi(head_.c_str() + 9);
      in_body_ = true;
      std::string rest = head_.substr(end + 4);
      head_.clear();
      return consume_body(rest);
    }
    consume_body(data);
  }

  void consume_body(std::string_view data) {
    while (!data.empty()) {
      auto nl = data.find('\n');
      if (nl == std::string_view::npos) {
        line_.append(data);
        return;
      }
      std::string_view line = data.substr(0, nl);
      if (!line_.empty()) {
        line_.append(line);
        on_line(line_);
        line_.clear();
      } else {
        on_line(line);
      }
      data.remove_prefix(nl + 1);
    }
  }

  void on_line(std::string_view line) {
    if (line.size() < 4 || line.substr(0, 4) != "id: ") return;
    int64_t id = std::atoll(std::string(line.substr(4)).c_str());
    int64_t last = last_id.load(std::memory_order_relaxed);
    if (last >= 0 && id != last + 1) ++gaps;
    if (first_id.load(std::memory_order_relaxed) < 0) first_id = id;
    last_id.store(id, std::memory_order_release);
    events.fetch_add(1, std::memory_order_relaxed);
  }

  tcp::socket sock_;
  tcp::endpoint ep_;
  std::vector<char> buf_;
  std::string req_, head_, line_;
  bool in_body_ = false;
  bool stopping_ = false;
};

class SlowClients {
 public:
  SlowClients(const ServerProcess& server, const SlowOpts& o) : o_(o) {
    tcp::endpoint ep(net::ip::make_address(server.http().host), server.http().port);
    auto interval = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.slow_interval));
    for (int i = 0; i < o.slowloris; ++i) slow_.push_back(std::make_shared<Slowloris>(ioc_, ep, interval, &stats_));
    for (int i = 0; i < o.viewers; ++i) viewers_.push_back(std::make_shared<SseViewer>(ioc_, ep));
  }

  // Connects everything; true once every viewer has its 200 and every
  // slowloris is connected.
  bool start(std::string* error) {
    started_ = Clock::now();
    for (auto& s : slow_) s->start();
    for (auto& v : viewers_) v->start();
    thread_ = std::thread([this] {
      auto guard = net::make_work_guard(ioc_);
      ioc_.run();
    });
    auto deadline = Clock::now() + std::chrono::seconds(10);
    for (;;) {
      int ready = 0;
      for (auto& v : viewers_) ready += v->status.load() == 200;
      uint64_t conns;
      {
        std::lock_guard lock(stats_.mu);
        conns = stats_.connections;
      }
      if (ready == o_.viewers && conns >= static_cast<uint64_t>(o_.slowloris)) return true;
      if (Clock::now() > deadline) {
        *error = std::to_string(ready) + "/" + std::to_string(o_.viewers) + " viewers and " +
                 std::to_string(conns) + "/" + std::to_string(o_.slowloris) +
                 " slowloris connections up after 10 s";
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }

  // After the load: waits until every viewer has seen `head`, and until the
  // first connection of every slowloris slot had time to be cut; then stops
  // everything and reports.
  void finish(int64_t head, json* out, std::vector<std::string>* problems) {
    auto t0 = Clock::now();
    auto caught_up = [&] {
      for (auto& v : viewers_)
        if (!v->ended && v->last_id.load() < head) return false;
      return true;
    };
    while (!caught_up() && Clock::now() - t0 < std::chrono::seconds(30))
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    double catch_up_s = secs(Clock::now() - t0);
    // Every slot's first connection must have been cut by now (or be younger
    // than the limit): wait until cut_limit + 1 s after the start at least.
    auto first_gen_end = started_ + std::chrono::duration_cast<Clock::duration>(
                                        std::chrono::duration<double>(o_.cut_limit + 1));
    while (Clock::now() < first_gen_end) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    uint64_t survivors = 0;
    double oldest = 0;
    std::promise<void> aged;
    net::post(ioc_, [&] {
      for (auto& s : slow_)
        if (auto age = s->open_for()) {
          oldest = std::max(oldest, *age);
          if (*age > o_.cut_limit) ++survivors;
        }
      aged.set_value();
    });
    aged.get_future().wait();
    // ---- SSE report (before stopping: `ended` means the server closed it)
    json sse;
    uint64_t emin = std::numeric_limits<uint64_t>::max(), emax = 0, gaps = 0, bytes = 0, ended = 0;
    int64_t lag_max = 0;
    for (auto& v : viewers_) {
      emin = std::min<uint64_t>(emin, v->events.load());
      emax = std::max<uint64_t>(emax, v->events.load());
      gaps += v->gaps.load();
      bytes += v->bytes.load();
      if (v->ended) ++ended;
      lag_max = std::max<int64_t>(lag_max, head - v->last_id.load());
    }
    sse["viewers"] = o_.viewers;
    sse["events_min"] = viewers_.empty() ? 0 : emin;
    sse["events_max"] = emax;
    sse["bytes_total"] = bytes;
    sse["gaps"] = gaps;
    sse["closed_by_server"] = ended;
    sse["behind_head_max"] = lag_max;
    sse["catch_up_s"] = round_to(catch_up_s, 0.001);
    (*out)["sse"] = sse;
    if (gaps) problems->push_back("SSE viewers saw " + std::to_string(gaps) + " gap(s) in the event ids");
    if (ended) {
      std::string why;
      for (auto& v : viewers_)
        if (v->ended) why = v->error;
      problems->push_back(std::to_string(ended) + " SSE viewer(s) were disconnected: " + why);
    }
    if (lag_max > 0) problems->push_back("an SSE viewer is " + std::to_string(lag_max) + " events behind the log after 30 s");

    for (auto& s : slow_) net::post(ioc_, [s] { s->stop(); });
    for (auto& v : viewers_) net::post(ioc_, [v] { v->stop(); });
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    ioc_.stop();
    thread_.join();

    json sl;
    std::lock_guard lock(stats_.mu);
    std::vector<double> cuts = stats_.cuts_s;
    std::sort(cuts.begin(), cuts.end());
    sl["slots"] = o_.slowloris;
    sl["interval_s"] = o_.slow_interval;
    sl["connections"] = stats_.connections;
    sl["connect_errors"] = stats_.connect_errors;
    sl["cut"] = cuts.size();
    sl["cut_s_min"] = cuts.empty() ? 0.0 : round_to(cuts.front(), 0.001);
    sl["cut_s_median"] = cuts.empty() ? 0.0 : round_to(cuts[cuts.size() / 2], 0.001);
    sl["cut_s_max"] = cuts.empty() ? 0.0 : round_to(cuts.back(), 0.001);
    sl["answered"] = stats_.how;
    sl["open_past_limit"] = survivors;
    sl["oldest_open_s"] = round_to(oldest, 0.001);
    sl["cut_limit_s"] = o_.cut_limit;
    (*out)["slowloris"] = sl;
    if (o_.slowloris > 0 && cuts.size() < static_cast<size_t>(o_.slowloris))
      problems->push_back("only " + std::to_string(cuts.size()) + " of " + std::to_string(o_.slowloris) +
                          " stalled headers were cut");
    if (!cuts.empty() && cuts.back() > o_.cut_limit)
      problems->push_back("a stalled header was cut only after " + std::to_string(cuts.back()) + " s");
    if (survivors) problems->push_back(std::to_string(survivors) + " stalled connection(s) open longer than " +
                                       std::to_string(o_.cut_limit) + " s");
    if (stats_.connect_errors) problems->push_back(std::to_string(stats_.connect_errors) + " slowloris connect error(s)");
  }

 private:
  SlowOpts o_;
  net::io_context ioc_{1};
  std::thread thread_;
  SlowStats stats_;
  std::vector<std::shared_ptr<Slowloris>> slow_;
  std::vector<std::shared_ptr<SseViewer>> viewers_;
  Clock::time_point started_;
};

// ------------------------------------------------------------------ whale readers

// The side load of `whale`: `readers` connections walking the whale's
// purchase pages in a loop, and one connection polling GET /api/cards/<card>.
// Latencies are kept only inside the measured window (window_start() to
// window_end(), which also stops everything).
class WhaleSide {
 public:
  WhaleSide(HostPort at, int readers, int64_t page, std::string card, int card_poll_ms)
      : at_(std::move(at)), page_(page), poll_ms_(card_poll_ms), readers_(static_cast<size_t>(readers)) {
    card_.id = std::move(card);
  }
  ~WhaleSide() { stop(); }

  void start() {
    for (size_t i = 0; i < readers_.size(); ++i) threads_.emplace_back([this, i] { read(readers_[i]); });
    threads_.emplace_back([this] { poll_card(); });
  }
  void window_start() {
    t0_ = Clock::now();
    measuring_.store(true, std::memory_order_release);
  }
  void window_end() {
    measuring_.store(false, std::memory_order_release);
    t1_ = Clock::now();
    stop();
  }
  void stop() {
    stop_ = true;
    for (auto& t : threads_) t.join();
    threads_.clear();
  }

  // After window_end(): the report, and problems (transport errors, bad answers).
  void report(json* out, std::vector<std::string>* problems) {
    const double window = secs(t1_ - t0_);
    std::vector<uint32_t> lat;
    uint64_t pages = 0, walks = 0, busy = 0, errors = 0, bytes = 0;
    std::string last_error;
    for (auto& r : readers_) {
      lat.insert(lat.end(), r.lat_us.begin(), r.lat_us.end());
      pages += r.pages;
      walks += r.walks;
      busy += r.busy;
      errors += r.errors;
      bytes += r.bytes;
      if (!r.last_error.empty()) last_error = r.last_error;
    }
    std::sort(lat.begin(), lat.end());
    json rd = {{"readers", readers_.size()},
               {"page_limit", page_},
               {"pages", pages},
               {"pages_per_s", window > 0 ? round_to(static_cast<double>(pages) / window, 0.1) : 0.0},
               {"walks_completed", walks},
               {"mb_per_s", window > 0 ? round_to(static_cast<double>(bytes) / 1e6 / window, 0.1) : 0.0},
               {"busy_503", busy},
               {"errors", errors},
               {"page_p50_ms", percentile_ms(lat, 0.50)},
               {"page_p99_ms", percentile_ms(lat, 0.99)},
               {"page_max_ms", lat.empty() ? 0.0 : lat.back() / 1000.0}};
    (*out)["whale_readers"] = rd;
    std::sort(card_.lat_us.begin(), card_.lat_us.end());
    (*out)["card_reads"] = {{"reads", card_.lat_us.size()},
                            {"errors", card_.errors},
                            {"p50_ms", percentile_ms(card_.lat_us, 0.50)},
                            {"p99_ms", percentile_ms(card_.lat_us, 0.99)},
                            {"max_ms", card_.lat_us.empty() ? 0.0 : card_.lat_us.back() / 1000.0}};
    // (A walk of a 45,588-purchase history is 46 pages: with 40 readers
    // sharing the server a reader may finish none within the window.)
    if (errors) problems->push_back(std::to_string(errors) + " whale page read(s) failed: " + last_error);
    if (card_.errors) problems->push_back(std::to_string(card_.errors) + " GET /api/cards/" + card_.id +
                                          " failed: " + card_.last_error);
  }

 private:
  struct Reader {
    std::vector<uint32_t> lat_us;
    uint64_t pages = 0, walks = 0, busy = 0, errors = 0, bytes = 0;
    std::string last_error;
  };
  struct CardPoll {
    std::vector<uint32_t> lat_us;
    uint64_t errors = 0;
    std::string last_error;
    std::string id;
  };

  static uint32_t us_since(Clock::time_point t0) {
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0).count();
    return static_cast<uint32_t>(std::min<int64_t>(us, std::numeric_limits<uint32_t>::max()));
  }

  // `next` of a page without parsing the whole body: the top-level object's
  // keys are sorted, so the body starts with {"next":<position or null>.
  static std::optional<int64_t> next_of(const std::string& body, bool* ok) {
    auto k = body.find("\"next\":");
    *ok = k != std::string::npos;
    if (!*ok) return std::nullopt;
    const char* v = body.c_str() + k + 7;
    if (std::strncmp(v, "null", 4) == 0) return std::nullopt;
    char* end = nullptr;
    long long n = std::strtoll(v, &end, 10);
    *ok = end != v && n > 0;
    return n;
  }

  void read(Reader& r) {
    SyncClient c(at_);
    int64_t from = 0;
    const std::string base = "/api/users/whale/purchases?limit=" + std::to_string(page_) + "&from=";
    while (!stop_) {
      auto t0 = Clock::now();
      Reply rep;
      try {
        rep = c.call(http::verb::get, base + std::to_string(from));
      } catch (const std::exception& e) {
        ++r.errors;
        r.last_error = e.what();
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        continue;
      }
      const bool in_window = measuring_.load(std::memory_order_acquire);
      if (rep.status == 503 && rep.body.find("\"busy\"") != std::string::npos) {
        if (in_window) ++r.busy;
        continue;
      }
      bool ok = false;
      auto next = rep.status == 200 ? next_of(rep.body, &ok) : std::nullopt;
      if (!ok) {
        ++r.errors;
        r.last_error = "status " + std::to_string(rep.status) + ": " + rep.body.substr(0, 200);
        from = 0;
        continue;
      }
      if (in_window) {
        r.lat_us.push_back(us_since(t0));
        ++r.pages;
        r.bytes += rep.body.size();
      }
      if (next) {
        from = *next;
      } else {
        from = 0;
        if (in_window) ++r.walks;
      }
    }
  }

  void poll_card() {
    SyncClient c(at_);
    const std::string target = "/api/cards/" + card_.id;
    while (!stop_) {
      auto t0 = Clock::now();
      try {
        Reply rep = c.call(http::verb::get, target);
        if (rep.status != 200) {
          ++card_.errors;
          card_.last_error = "status " + std::to_string(rep.status) + ": " + rep.body.substr(0, 200);
        } else if (measuring_.load(std::memory_order_acquire)) {
          card_.lat_us.push_back(us_since(t0));
        }
      } catch (const std::exception& e) {
        ++card_.errors;
        card_.last_error = e.what();
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(poll_ms_));
    }
  }

  HostPort at_;
  int64_t page_;
  CardPoll card_;
  int poll_ms_;
  std::vector<Reader> readers_;
  std::vector<std::thread> threads_;
  std::atomic<bool> stop_{false}, measuring_{false};
  Clock::time_point t0_, t1_;

};

// ------------------------------------------------------------------ wrk

struct WrkResult {
  double requests_per_s = 0;
  uint64_t requests = 0, non2xx = 0, socket_errors = 0;
  std::map<std::string, double> latency_ms;  // "50%", "75%", "90%", "99%"
  std::string raw;
  double cpu_s = 0, wall_s = 0;  // wrk's CPU time and wall time
};

double to_ms(const std::string& v) {
  double x = std::atof(v.c_str());
  if (v.size() >= 2 && v.substr(v.size() - 2) == "us") return x / 1000;
  if (v.size() >= 2 && v.substr(v.size() - 2) == "ms") return x;
  if (v.size() >= 1 && v.back() == 's') return x * 1000;
  if (v.size() >= 1 && v.back() == 'm') return x * 60000;
  return x;
}

bool run_wrk(const WrkOpts& o, const Common& c, const ServerProcess& server, const Fixture& f,
             const std::string& user_prefix, const std::string& key_prefix, WrkResult* r, std::string* error) {
  std::string url = "http://" + server.http().host + ":" + std::to_string(server.http().port);
  std::ostringstream cmd;
  // The script reads its card, buyers and key prefix from the environment.
  cmd << "GIFTCARD_CARD=" << f.card << " GIFTCARD_USER_PREFIX=" << user_prefix
      << " GIFTCARD_USERS=" << f.users.size() << " GIFTCARD_KEY_PREFIX=" << key_prefix << " '" << o.wrk
      << "' -t" << o.wrk_threads << " -c" << o.clients << " -d" << static_cast<int>(c.warmup + c.seconds)
      << "s --latency -s '" << o.script << "' " << url << " 2>&1";
  std::cerr << "wrk: " << cmd.str() << "\n";
  rusage before{}, after{};
  getrusage(RUSAGE_CHILDREN, &before);
  auto t0 = Clock::now();
  FILE* p = ::popen(cmd.str().c_str(), "r");
  if (!p) {
    *error = "cannot run wrk";
    return false;
  }
  char buf[4096];
  while (size_t n = std::fread(buf, 1, sizeof buf, p)) r->raw.append(buf, n);
  int st = ::pclose(p);
  // wrk's own CPU: the children waited for meanwhile are the shell and wrk.
  getrusage(RUSAGE_CHILDREN, &after);
  auto tv = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
  r->cpu_s = tv(after.ru_utime) + tv(after.ru_stime) - tv(before.ru_utime) - tv(before.ru_stime);
  r->wall_s = secs(Clock::now() - t0);
  if (st != 0) {
    *error = "wrk failed (status " + std::to_string(st) + "): " + r->raw;
    return false;
  }
  std::istringstream in(r->raw);
  std::string line;
  bool dist = false;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string a, b;
    ls >> a;
    if (a == "Latency" && line.find("Distribution") != std::string::npos) {
      dist = true;
      continue;
    }
    if (dist && !a.empty() && a.back() == '%') {
      ls >> b;
      r->latency_ms[a] = to_ms(b);
      continue;
    }
    dist = dist && !a.empty() && a.back() == '%';
    if (a == "Requests/sec:") ls >> r->requests_per_s;
    if (line.find("requests in") != std::string::npos) r->requests = std::strtoull(a.c_str(), nullptr, 10);
    if (line.find("Non-2xx or 3xx responses:") != std::string::npos)
      r->non2xx = std::strtoull(line.substr(line.rfind(':') + 1).c_str(), nullptr, 10);
    if (line.find("Socket errors:") != std::string::npos) r->socket_errors = 1;
  }
  if (r->requests == 0) {
    *error = "cannot parse wrk's output: " + r->raw;
    return false;
  }
  return true;
}

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

// Runs `body` against a fresh server; handles temp dirs, stop and verify.
int with_server(const Common& c, const std::string& what,
                const std::function<int(ServerProcess&, SyncClient&)>& body) {
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
    rc = body(server, admin);
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

void emit(const json& j) { std::cout << j.dump() << std::endl; }

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
  std::atomic<int64_t> next{0};
  std::mutex mu;
  std::string failure;
  std::vector<std::thread> ts;
  const std::string body = json{{"card_id", f.card}, {"user_id", "whale"}}.dump();
  for (int t = 0; t < o.seed_connections; ++t)
    ts.emplace_back([&] {
      try {
        SyncClient c(server.http());
        for (int64_t i; (i = next++) < o.whale;) {
          Reply r = c.call(http::verb::post, "/api/purchases", body, "whale-" + std::to_string(i));
          if (r.status != 201) throw std::runtime_error("status " + std::to_string(r.status) + ": " + r.body);
        }
      } catch (const std::exception& e) {
        std::lock_guard lock(mu);
        failure = e.what();
        next = o.whale;
      }
    });
  for (auto& t : ts) t.join();
  if (!failure.empty()) throw std::runtime_error("whale purchase: " + failure);
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
  if (wo.clients < 1 || wo.rounds < 1 || wo.wrk_threads < 1) {
    std::cerr << "giftcard-http-bench: --clients, --rounds and --wrk-threads must be positive\n";
    return 2;
  }
  return cmd_wrk(common, wo);
}
