// giftcard-http-bench (http_bench.cc): the options of its subcommands, the
// CPU accounting of the server's threads, a blocking HTTP client for set-up
// and checks, and the seeding of a card and its buyers.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
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

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using json = nlohmann::json;
using namespace giftcard::bench;
using giftcard::HostPort;

constexpr int64_t kPrice = 100;
constexpr int64_t kCodesPerBatch = 100000;  // docs/CONTRACT.md, "HTTP API": 1..100000 codes per import
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


inline std::string thread_name(pid_t pid, int tid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/comm");
  std::string name;
  std::getline(in, name);
  return name;
}

inline std::map<int, int64_t> thread_ticks(pid_t pid) {
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

inline std::array<int64_t, 2> machine_ticks() {
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

inline CpuSnapshot cpu_snapshot(pid_t server) {
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
inline json cpu_report(const CpuSnapshot& a, const CpuSnapshot& b, uint64_t purchases) {
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

// ------------------------------------------------------------------ the server's memory and store

// VmRSS (resident now) of a process, in MiB.
inline int64_t vm_rss_mb(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::atoll(line.c_str() + 6) / 1024;
  return 0;
}

// Bytes on disk (allocated blocks) of the regular files below `dir`. RocksDB
// deletes files as it compacts: a walk that trips over one starts again.
inline int64_t disk_bytes(const std::filesystem::path& dir) {
  namespace fs = std::filesystem;
  int64_t total = 0;
  std::error_code ec;
  for (int attempt = 0; attempt < 3; ++attempt) {
    total = 0;
    ec.clear();
    for (fs::recursive_directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec), end;
         !ec && it != end; it.increment(ec)) {
      struct stat st {};
      if (::lstat(it->path().c_str(), &st) == 0 && S_ISREG(st.st_mode))
        total += static_cast<int64_t>(st.st_blocks) * 512;
    }
    if (!ec) break;
  }
  return total;
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
inline std::map<std::string, double> scrape(SyncClient& c) {
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

// `fn(client, i)` for every i in [0, n), spread over `connections` threads with
// a blocking client each; the first exception stops the others and is rethrown.
inline void parallel_calls(const HostPort& at, int64_t n, int connections,
                           const std::function<void(SyncClient&, int64_t)>& fn) {
  std::atomic<int64_t> next{0};
  std::mutex mu;
  std::string failure;
  std::vector<std::thread> ts;
  for (int t = 0; t < std::max(1, connections); ++t)
    ts.emplace_back([&] {
      try {
        SyncClient c(at);
        for (int64_t i; (i = next++) < n;) fn(c, i);
      } catch (const std::exception& e) {
        std::lock_guard lock(mu);
        if (failure.empty()) failure = e.what();
        next = n;
      }
    });
  for (auto& t : ts) t.join();
  if (!failure.empty()) throw std::runtime_error(failure);
}

// ------------------------------------------------------------------ seeding

struct Fixture {
  std::string card;
  std::vector<std::string> users;
  int64_t codes = 0;
  int64_t credit = 0;  // per user
};

inline void seed(SyncClient& c, const Fixture& f) {
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

}  // namespace giftcard_http_bench
