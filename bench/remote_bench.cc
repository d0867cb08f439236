// giftcard-remote-bench: durable purchases through a real `giftcard serve`
// process, over CAF remote messaging (pipelined) or over HTTP (keep-alive), on
// one hot card or spread over K cards. The networked half of issue #7's
// comparison (bench/compare/run.sh); the in-process half is giftcard-bench.
//
//   giftcard-remote-bench purchase --transport caf|http [--clients N] [--cards K]
//                                  [--depth D] [--warmup W] [--seconds S] ...
//
// One run per invocation: `giftcard serve --data DIR --http 127.0.0.1:0 --caf
// 127.0.0.1:0` on a fresh store (fork/exec; ports from its `ready` line), seeded
// over CAF (K cards at price 100, codes sized from --est-rate, N credited
// buyers), then the load:
//
// caf:  N buyer actors in this process's actor system, all talking to the
//       remote shop handle over ONE CAF connection (the middleman multiplexes
//       them). Each buyer keeps D purchase requests in flight (asynchronous
//       request(...).then, no waiting between sends): N x D requests are
//       pipelined on the connection at any time.
// http: N keep-alive connections (Boost.Beast, one I/O thread by default), one
//       POST /api/purchases in flight each, a fresh Idempotency-Key per request.
//
// Buyer i buys from card i % K (as giftcard-bench does). W seconds of warm-up,
// then S seconds measured; latency is send-to-reply per request. Conflicts: the
// store's rejected appends (version or claim conflicts) during the window, from
// /metrics; the clients never retry, so every failed request is in "errors".
//
// After the run: every success carries a distinct code; the cards' `assigned`
// add up to the successes; every buyer's balance is exactly its credit minus
// 100 x its successes; the server stops on SIGTERM with status 0; `giftcard
// verify` passes on the store (unless --no-verify).
//
// Progress on stderr; one JSON line on stdout. Exit codes: 0 ok, 1 a
// correctness check failed, 2 usage or setup error, 3 the load did not drain.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
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
#include <iostream>
#include <limits>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "actors/errors.h"
#include "actors/messages.h"
#include "api/address.h"
#include "api/node_config.h"
#include "bench/support/bench_support.h"
#include "bench/support/http_load.h"

namespace giftcard {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using json = nlohmann::json;
using namespace giftcard::bench;
using stop_atom = caf::atom_constant<caf::atom("rbstop")>;

constexpr int64_t kPrice = 100;
constexpr int64_t kCodesPerBatch = 100000;


struct Options {
  std::string transport = "caf";
  int clients = 64;
  int cards = 1;
  int depth = 1;
  double warmup = 1;
  double seconds = 10;
  int64_t codes = 0;           // per card with buyers; 0: estimated
  int64_t est_rate = 60000;    // purchases/s assumed at most, when sizing codes
  int64_t per_client_rate = 4000;  // purchases/s assumed per client, when sizing codes
  int client_threads = 0;      // caf: CAF scheduler threads; http: I/O threads (0: 2 / 1)
  std::string giftcard;        // executable (default: beside this one)
  std::string tmp = "/tmp";
  bool keep = false;
  bool verify = true;
  std::string server_scheduler;  // passed to serve --scheduler if set
  int server_http_threads = 0;
  int timeout_s = 60;
};

// ------------------------------------------------------------------ the server process


// ------------------------------------------------------------------ CPU and memory





// ------------------------------------------------------------------ /metrics

std::map<std::string, double> scrape(const HostPort& at) {
  std::map<std::string, double> out;
  try {
    net::io_context ioc;
    tcp::socket sock(ioc);
    sock.connect(tcp::endpoint(net::ip::make_address(at.host), at.port));
    http::request<http::empty_body> req{http::verb::get, "/metrics", 11};
    req.set(http::field::host, at.host);
    req.keep_alive(false);
    http::write(sock, req);
    beast::flat_buffer buf;
    http::response<http::string_body> res;
    http::read(sock, buf, res);
    std::istringstream in(res.body());
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty() || line[0] == '#') continue;
      auto sp = line.rfind(' ');
      if (sp != std::string::npos) out[line.substr(0, sp)] = std::atof(line.c_str() + sp + 1);
    }
    beast::error_code ec;
    sock.shutdown(tcp::socket::shutdown_both, ec);
  } catch (const std::exception& e) {
    std::cerr << "remote-bench: /metrics: " << e.what() << "\n";
  }
  return out;
}

// ------------------------------------------------------------------ one buyer's results

// ------------------------------------------------------------------ CAF remote load

struct CafLoad {
  LoadShared* sh;
  shop_actor shop;
  std::chrono::seconds timeout;
};

void lane_done(caf::event_based_actor* self, CafLoad* L, Buyer* b) {
  if (--b->lanes_left == 0) self->quit();
  L->sh->running.fetch_sub(1, std::memory_order_release);
}

// One of a buyer's D request lanes: send, and on the reply send the next.
void lane(caf::event_based_actor* self, CafLoad* L, Buyer* b) {
  LoadShared* sh = L->sh;
  if (sh->phase.load(std::memory_order_acquire) == 2) return lane_done(self, L, b);
  std::string key = b->key_prefix + std::to_string(b->seq++);
  auto t0 = Clock::now();
  self->request(L->shop, L->timeout, purchase_atom::value, b->card, b->user, std::move(key))
      .then(
          [=](Purchase& p) {
            if (p.replayed) ++b->replayed;
            record_ok(sh, b, std::move(p.code), t0);
            lane(self, L, b);
          },
          [=](caf::error& e) {
            bool ours = e.category() == kErrorCategory;
            std::string name = ours ? std::string(to_string(errc_of(e))) : self->system().render(e);
            ++b->errors[name];
            if (sh->reported.fetch_add(1) < 5)
              std::cerr << "remote-bench: " << b->user << ": " << name
                        << (ours ? ": " + detail_of(e) : std::string()) << "\n";
            if (!ours) {  // timeout or a lost connection: stop this lane
              ++b->transport_errors;
              return lane_done(self, L, b);
            }
            if (errc_of(e) == Errc::out_of_stock) {
              sh->out_of_stock = true;
              return lane_done(self, L, b);
            }
            lane(self, L, b);
          });
}

caf::behavior buyer_actor(caf::event_based_actor* self, CafLoad* L, Buyer* b, int depth) {
  b->lanes_left = depth;
  for (int i = 0; i < depth; ++i) lane(self, L, b);
  return {[](stop_atom) {}};
}

// ------------------------------------------------------------------ HTTP load


// ------------------------------------------------------------------ blocking CAF calls

template <class Reply, class... Ts>
bool ask(caf::scoped_actor& self, const shop_actor& shop, Reply* reply, std::string* err, Ts&&... xs) {
  bool ok = false;
  self->request(shop, std::chrono::seconds(300), std::forward<Ts>(xs)...)
      .receive(
          [&](Reply& r) {
            *reply = std::move(r);
            ok = true;
          },
          [&](caf::error& e) {
            *err = e.category() == kErrorCategory
                       ? std::string(to_string(errc_of(e))) + ": " + detail_of(e)
                       : self->system().render(e);
          });
  return ok;
}

std::string card_id(int c) { return "rb-" + std::to_string(c); }

std::string code_id(int c, int64_t n) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "RB%d-%08lld", c, static_cast<long long>(n));
  return buf;
}



// ------------------------------------------------------------------ the run

int run(const Options& o) {
  ::signal(SIGPIPE, SIG_IGN);
  const bool use_caf = o.transport == "caf";
  const int N = o.clients, K = o.cards;

  std::error_code ec;
  std::string tmpl = (std::filesystem::path(o.tmp) / "giftcard-remote-bench-XXXXXX").string();
  if (!::mkdtemp(tmpl.data())) {
    std::perror("giftcard-remote-bench: mkdtemp");
    return 2;
  }
  const std::filesystem::path root = tmpl, data = root / "data";
  const std::string log = (root / "server.log").string();
  const std::string exe = o.giftcard.empty() ? self_dir() + "/giftcard" : o.giftcard;

  // ---- sizes: codes per card, by the share of the buyers each card has
  std::vector<int> buyers_on(static_cast<size_t>(K), 0);
  for (int i = 0; i < N; ++i) ++buyers_on[static_cast<size_t>(i % K)];
  const double rate = std::min<double>(static_cast<double>(o.est_rate),
                                       static_cast<double>(o.per_client_rate) * N);
  const double want = rate * (o.warmup + o.seconds + 3) * 1.3;
  std::vector<int64_t> codes_of(static_cast<size_t>(K), 0);
  int64_t total_codes = 0;
  for (int c = 0; c < K; ++c) {
    int n = buyers_on[static_cast<size_t>(c)];
    if (n == 0) continue;
    codes_of[static_cast<size_t>(c)] =
        o.codes > 0 ? o.codes : static_cast<int64_t>(want * n / N) + 1000;
    total_codes += codes_of[static_cast<size_t>(c)];
  }
  const int64_t credit = kPrice * (total_codes + 1);  // no purchase can fail on funds

  ServerProcess server;
  std::string why;
  const auto setup_start = Clock::now();
  std::cerr << "setup: " << o.transport << " clients=" << N << " cards=" << K << " depth=" << o.depth
            << ": starting " << exe << " serve --data " << data.string() << "\n";
  std::vector<std::string> extra;
  if (o.server_http_threads > 0) extra = {"--http-threads", std::to_string(o.server_http_threads)};
  if (!o.server_scheduler.empty()) {
    extra.push_back("--scheduler");
    extra.push_back(o.server_scheduler);
  }
  if (!server.start(exe, data.string(), log, extra, &why)) {
    std::cerr << "giftcard-remote-bench: " << why << "\n";
    return 2;
  }
  std::cerr << "setup: server pid " << server.pid() << " http=" << server.http().host << ":"
            << server.http().port << " caf=" << server.caf().host << ":" << server.caf().port << "\n";

  json out;
  std::vector<std::string> problems;
  int rc = 0;
  {
    NodeConfig cfg(TlsOptions{});
    cfg.set("scheduler.max-threads", o.client_threads > 0 ? o.client_threads : 2);
    caf::actor_system sys{cfg};
    auto shop_or = connect_shop(sys, server.caf(), false);
    if (!shop_or) {
      std::cerr << "giftcard-remote-bench: cannot connect to the shop: " << sys.render(shop_or.error()) << "\n";
      return 2;
    }
    shop_actor shop = *shop_or;
    caf::scoped_actor self{sys};
    std::string err;

    // ---- seed over CAF: cards, codes, credited buyers
    std::vector<std::unique_ptr<Buyer>> buyers;
    for (int c = 0; c < K && err.empty(); ++c) {
      CardInfo ci;
      if (!ask(self, shop, &ci, &err, create_atom::value,
               CardSpec{card_id(c), "Remote bench " + std::to_string(c), kPrice, kPrice}))
        break;
      for (int64_t done = 0; done < codes_of[static_cast<size_t>(c)] && err.empty();) {
        int64_t n = std::min(kCodesPerBatch, codes_of[static_cast<size_t>(c)] - done);
        std::vector<CodeSpec> codes;
        codes.reserve(static_cast<size_t>(n));
        for (int64_t i = 0; i < n; ++i) codes.push_back(CodeSpec{code_id(c, done + i), 0});
        AddCodesReply r;
        if (ask(self, shop, &r, &err, add_codes_atom::value, card_id(c), std::move(codes)) && r.added != n)
          err = "added " + std::to_string(r.added) + " of " + std::to_string(n) + " codes";
        done += n;
      }
    }
    const std::string nonce = std::to_string(::getpid());
    for (int i = 0; i < N && err.empty(); ++i) {
      auto b = std::make_unique<Buyer>();
      b->card = card_id(i % K);
      b->user = "rbu-" + std::to_string(i);
      b->key_prefix = "rb" + nonce + "-" + std::to_string(i) + "-";
      CreditReply cr;
      ask(self, shop, &cr, &err, credit_atom::value, b->user, credit, "seed-" + b->user);
      buyers.push_back(std::move(b));
    }
    if (!err.empty()) {
      std::cerr << "giftcard-remote-bench: seeding failed: " << err << "\n";
      return 2;
    }
    const double setup_s = secs(Clock::now() - setup_start);
    std::cerr << "setup: " << K << " card(s), " << total_codes << " codes, " << N
              << " buyers seeded in " << round_to(setup_s, 0.1) << " s\n";

    // ---- load
    LoadShared sh;
    CafLoad cl{&sh, shop, std::chrono::seconds(o.timeout_s)};
    std::vector<std::unique_ptr<net::io_context>> iocs;
    std::vector<std::thread> io_threads;
    const int T = use_caf ? 0 : std::max(1, std::min(o.client_threads > 0 ? o.client_threads : 1, N));
    auto m0 = scrape(server.http());
    const double load_before = loadavg_1m();
    const auto load_start = Clock::now();
    if (use_caf) {
      sh.running = N * o.depth;
      for (auto& b : buyers) sys.spawn(buyer_actor, &cl, b.get(), o.depth);
    } else {
      sh.running = N;
      tcp::endpoint ep(net::ip::make_address(server.http().host), server.http().port);
      for (int i = 0; i < T; ++i) iocs.push_back(std::make_unique<net::io_context>(1));
      for (int i = 0; i < N; ++i)
        std::make_shared<HttpPurchaseClient>(*iocs[static_cast<size_t>(i % T)], ep, &sh,
                                             buyers[static_cast<size_t>(i)].get(), "remote-bench")
            ->start();
      for (auto& ioc : iocs) io_threads.emplace_back([&ioc] { ioc->run(); });
    }
    auto sleep_until = [&](Clock::time_point until) {
      while (Clock::now() < until && sh.running.load() > 0)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    };
    auto dur = [](double s) { return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s)); };
    sleep_until(load_start + dur(o.warmup));
    auto m1 = scrape(server.http());
    const int64_t srv0 = proc_ticks(server.pid());
    const double self0 = self_cpu_seconds();
    const uint64_t ok0 = sh.ok.load();
    sh.phase.store(1, std::memory_order_release);
    const auto t0 = Clock::now();
    for (int i = 1; i <= static_cast<int>(std::ceil(o.seconds)); ++i) {
      sleep_until(t0 + dur(std::min<double>(i, o.seconds)));
      std::cerr << "load: " << o.transport << " clients=" << N << " cards=" << K << " t=" << i
                << "s purchases=" << sh.ok.load() - ok0 << "\n";
      if (sh.running.load() == 0) break;
    }
    sh.phase.store(2, std::memory_order_release);
    const auto t1 = Clock::now();
    const int64_t srv1 = proc_ticks(server.pid());
    const double self1 = self_cpu_seconds();
    auto m2 = scrape(server.http());
    auto deadline = Clock::now() + std::chrono::seconds(o.timeout_s + 10);
    while (sh.running.load(std::memory_order_acquire) > 0 && Clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    if (sh.running.load() > 0) {
      std::cerr << "giftcard-remote-bench: HANG: " << sh.running.load()
                << " request lanes still wait for a reply after the stop\n";
      std::_Exit(3);  // do not wait for actors or sockets that may never finish
    }
    const double drain_ms = secs(Clock::now() - t1) * 1000;
    for (auto& t : io_threads) t.join();

    // ---- results
    std::vector<uint32_t> lat;
    std::vector<std::string> codes;
    std::map<std::string, uint64_t> errors;
    uint64_t ok_total = 0, ok_measured = 0, replayed = 0, transport = 0, errors_total = 0;
    for (auto& b : buyers) {
      ok_total += b->ok_total;
      ok_measured += b->ok_measured;
      replayed += b->replayed;
      transport += b->transport_errors;
      lat.insert(lat.end(), b->latency_us.begin(), b->latency_us.end());
      for (auto& c : b->codes) codes.push_back(std::move(c));
      for (auto& [k, v] : b->errors) {
        errors[k] += v;
        errors_total += v;
      }
    }
    std::sort(lat.begin(), lat.end());
    std::sort(codes.begin(), codes.end());
    const size_t distinct = static_cast<size_t>(std::unique(codes.begin(), codes.end()) - codes.begin());
    const double window = secs(t1 - t0);
    auto delta = [&](const char* k) { return m2[k] - m1[k]; };
    const double batches = delta("giftcard_append_batches_total");
    const double rejected = delta("giftcard_append_rejected_total");
    const double hz = static_cast<double>(::sysconf(_SC_CLK_TCK));
    const double n_measured = static_cast<double>(std::max<uint64_t>(ok_measured, 1));

    out["bench"] = "giftcard";
    out["transport"] = o.transport;
    out["clients"] = N;
    out["cards"] = K;
    out["depth"] = use_caf ? o.depth : 1;
    out["in_flight"] = use_caf ? N * o.depth : N;
    out["client_threads"] = use_caf ? (o.client_threads > 0 ? o.client_threads : 2) : T;
    out["warmup_s"] = o.warmup;
    put_window(out, window, ok_measured, lat);
    out["errors"] = json::object();
    for (auto& [k, v] : errors) out["errors"][k] = v;
    out["errors_total"] = errors_total;
    // The store's rejected appends (version or claim conflicts) in the window.
    out["conflicts"] = rejected;
    out["conflicts_per_purchase"] = round_to(rejected / n_measured, 0.0001);
    out["retries_per_purchase"] = 0;  // the clients never retry; failures are in "errors"
    out["replayed"] = replayed;
    out["purchases_total"] = ok_total;
    out["distinct_codes"] = distinct;
    out["codes_loaded"] = total_codes;
    out["store_batches"] = batches;
    out["requests_per_batch"] = batches > 0 ? round_to(delta("giftcard_append_requests_total") / batches, 0.01) : 0.0;
    out["events_per_batch"] = batches > 0 ? round_to(delta("giftcard_append_events_total") / batches, 0.01) : 0.0;
    out["sync_ms_per_batch"] =
        batches > 0 ? round_to(1000.0 * delta("giftcard_append_sync_seconds_total") / batches, 0.001) : 0.0;
    out["http_5xx"] = m2["giftcard_http_responses_total{class=\"5xx\"}"] - m0["giftcard_http_responses_total{class=\"5xx\"}"];
    out["server_cpu_pct"] = window > 0 ? round_to(100.0 * static_cast<double>(srv1 - srv0) / hz / window, 0.1) : 0.0;
    out["server_cpu_us_per_purchase"] = round_to(1e6 * static_cast<double>(srv1 - srv0) / hz / n_measured, 0.1);
    out["client_cpu_pct"] = window > 0 ? round_to(100.0 * (self1 - self0) / window, 0.1) : 0.0;
    out["client_cpu_us_per_purchase"] = round_to(1e6 * (self1 - self0) / n_measured, 0.1);
    out["server_peak_rss_mb"] = peak_rss_mb(server.pid());
    out["setup_s"] = round_to(setup_s, 0.1);
    out["drain_ms"] = round_to(drain_ms, 0.1);
    out["loadavg_1m_before"] = load_before;
    out["out_of_stock"] = sh.out_of_stock.load();
    if (sh.out_of_stock)
      std::cerr << "giftcard-remote-bench: WARNING: a card ran out of codes; raise --codes or --est-rate\n";

    // ---- correctness, against the server (over CAF)
    if (distinct != ok_total)
      problems.push_back(std::to_string(ok_total - distinct) + " code(s) handed out twice (" +
                         std::to_string(ok_total) + " successes, " + std::to_string(distinct) +
                         " distinct codes)");
    if (replayed) problems.push_back(std::to_string(replayed) + " replies replayed although every key is fresh");
    if (transport) problems.push_back(std::to_string(transport) + " request(s) lost (timeout or connection)");
    ShopStatus st;
    if (!ask(self, shop, &st, &err, status_atom::value)) {
      problems.push_back("status: " + err);
    } else {
      int64_t assigned = 0;
      for (int c = 0; c < K; ++c) {
        CardInfo ci;
        if (!ask(self, shop, &ci, &err, card_atom::value, card_id(c), st.log_position)) {
          problems.push_back("card " + card_id(c) + ": " + err);
          continue;
        }
        assigned += ci.assigned;
        if (ci.available + ci.assigned + ci.expired + ci.revoked != codes_of[static_cast<size_t>(c)])
          problems.push_back("card " + card_id(c) + ": available + assigned + expired + revoked != " +
                             std::to_string(codes_of[static_cast<size_t>(c)]));
      }
      if (assigned != static_cast<int64_t>(ok_total))
        problems.push_back("cards report " + std::to_string(assigned) + " assigned codes, the clients got " +
                           std::to_string(ok_total));
      int wrong = 0;
      for (auto& b : buyers) {
        WalletView w;
        if (!ask(self, shop, &w, &err, wallet_atom::value, b->user, st.log_position)) {
          problems.push_back("wallet " + b->user + ": " + err);
          break;
        }
        int64_t expect = credit - kPrice * static_cast<int64_t>(b->ok_total);
        if (w.balance != expect && wrong++ < 3)
          problems.push_back("wallet " + b->user + ": balance " + std::to_string(w.balance) +
                             ", expected " + std::to_string(expect));
      }
      out["balances_exact"] = wrong == 0;
    }
    std::cerr << "load: " << o.transport << " clients=" << N << " cards=" << K << ": " << ok_measured
              << " purchases in " << round_to(window, 0.001) << " s = " << out["purchases_per_s"]
              << "/s, p50 " << out["p50_ms"] << " ms, p99 " << out["p99_ms"] << " ms\n";
  }  // the client's actor system ends here

  double took = 0;
  int status = server.stop(std::chrono::seconds(180), &took);
  std::cerr << "setup: server stopped with status " << status << " after " << round_to(took, 0.01)
            << " s (SIGTERM)\n";
  if (status != 0) problems.push_back("giftcard serve exited with status " + std::to_string(status));
  if (o.verify) {
    std::string cmd = "'" + exe + "' verify --data '" + data.string() + "' > '" +
                      (root / "verify.log").string() + "' 2>&1";
    auto v0 = Clock::now();
    int v = std::system(cmd.c_str());
    out["verify_s"] = round_to(secs(Clock::now() - v0), 0.1);
    std::cerr << "verify: giftcard verify exited " << (WIFEXITED(v) ? WEXITSTATUS(v) : -1) << " after "
              << out["verify_s"] << " s\n";
    if (v != 0) problems.push_back("giftcard verify failed (" + (root / "verify.log").string() + ")");
  }
  out["verified"] = problems.empty();
  out["problems"] = problems;
  for (auto& p : problems) std::cerr << "giftcard-remote-bench: CORRECTNESS: " << p << "\n";
  if (!problems.empty()) rc = 1;
  std::cout << out.dump() << std::endl;
  if (rc == 0 && !o.keep) std::filesystem::remove_all(root, ec);
  else std::cerr << "setup: kept " << root.string() << "\n";
  return rc;
}

}  // namespace
}  // namespace giftcard

int main(int argc, char** argv) {
  giftcard::Options o;
  CLI::App app{"giftcard-remote-bench: purchases through `giftcard serve` over CAF remote or HTTP"};
  app.require_subcommand(1);
  auto* p = app.add_subcommand("purchase", "N concurrent buyers on one hot card or K cards, one run");
  p->add_option("--transport", o.transport, "caf: pipelined CAF remote requests; http: keep-alive POSTs")
      ->check(CLI::IsMember({"caf", "http"}))
      ->capture_default_str();
  p->add_option("--clients", o.clients, "concurrent buyers")->check(CLI::Range(1, 100000))->capture_default_str();
  p->add_option("--cards", o.cards, "cards; buyer i buys from card i % K")->check(CLI::Range(1, 100000))
      ->capture_default_str();
  p->add_option("--depth", o.depth, "caf: requests in flight per buyer (pipelined)")
      ->check(CLI::Range(1, 1024))->capture_default_str();
  p->add_option("--warmup", o.warmup, "seconds of unmeasured load first")->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  p->add_option("--seconds", o.seconds, "measured seconds")->check(CLI::PositiveNumber)->capture_default_str();
  p->add_option("--codes", o.codes, "codes per card that has buyers (default: sized from the rates)");
  p->add_option("--est-rate", o.est_rate, "purchases/s assumed at most when sizing codes")->capture_default_str();
  p->add_option("--per-client-rate", o.per_client_rate, "purchases/s assumed per client when sizing codes")
      ->capture_default_str();
  p->add_option("--client-threads", o.client_threads,
                "caf: CAF scheduler threads of this client (default 2); http: I/O threads (default 1)");
  p->add_option("--giftcard", o.giftcard, "giftcard executable (default: next to this benchmark)");
  p->add_option("--tmp", o.tmp, "where the store directory is made")->capture_default_str();
  p->add_flag("--keep", o.keep, "keep the store directory and server.log");
  p->add_flag("!--no-verify", o.verify, "skip `giftcard verify` of the store after the server stopped");
  p->add_option("--server-scheduler", o.server_scheduler, "pass --scheduler to giftcard serve")
      ->check(CLI::IsMember({"sharing", "stealing"}));
  p->add_option("--server-http-threads", o.server_http_threads, "pass --http-threads to giftcard serve");
  p->add_option("--timeout", o.timeout_s, "seconds a request may take before it counts as lost")
      ->check(CLI::Range(1, 3600))->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (o.transport == "http" && o.depth != 1) {
    std::cerr << "giftcard-remote-bench: --depth applies to --transport caf only\n";
    return 2;
  }
  if (o.est_rate < 1 || o.per_client_rate < 1) {
    std::cerr << "giftcard-remote-bench: --est-rate and --per-client-rate must be positive\n";
    return 2;
  }
  return giftcard::run(o);
}
