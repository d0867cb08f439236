// Issue #14 row 5, against a real `giftcard serve`: one user with a very long
// purchase history ("the whale"), 40 clients paging through it in a loop
// (GET /api/users/whale/purchases?limit=1000&from=...), beside a purchase
// load and an unrelated GET /api/cards/x. Queries run on the bounded query
// pool, never on the shop actor: every purchase completes within the normal
// command timeout, the card read answers, and every walk of the whale's pages
// sees exactly its purchases, in log order, each once. No timing asserts
// beyond that (the figures go to the log; bench: giftcard-http-bench whale).
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/http_client.h"
#include "tests/support/process.h"
#include "tests/support/serve_child.h"

namespace giftcard::whale_test {
namespace {

using Clock = std::chrono::steady_clock;
using json = nlohmann::json;
using namespace std::chrono_literals;
using namespace giftcard::test;

constexpr int64_t kMaxPage = 1000;  // the HTTP API's largest `limit`

Headers key(const std::string& k) { return {{"Idempotency-Key", k}}; }

int64_t ms(Clock::duration d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}

// A card with `n` codes, imported in batches of at most 100,000.
void create_card(HttpConnection& c, const std::string& id, int64_t price, int64_t n) {
  auto r = c.post("/api/cards",
                  json{{"id", id}, {"name", "Card " + id}, {"price", price}, {"value", price}});
  BOOST_REQUIRE_MESSAGE(r.status == 201, "create " << id << ": " << r.describe());
  for (int64_t done = 0; done < n;) {
    const int64_t part = std::min<int64_t>(100000, n - done);
    std::string body = "{\"codes\":[";
    char code[64];
    for (int64_t i = 0; i < part; ++i) {
      std::snprintf(code, sizeof code, "%s{\"code\":\"%s-%08lld\"}", i ? "," : "", id.c_str(),
                    static_cast<long long>(done + i));
      body += code;
    }
    body += "]}";
    auto a = c.post("/api/cards/" + id + "/codes", std::string_view(body));
    BOOST_REQUIRE_MESSAGE(a.status == 201, "codes for " << id << ": " << a.describe());
    done += part;
  }
}

void credit(HttpConnection& c, const std::string& user, int64_t amount) {
  auto r = c.post("/api/wallets/" + user + "/credits", json{{"amount", amount}},
                  key("seed-" + user));
  BOOST_REQUIRE_MESSAGE(r.status == 201, "credit " << user << ": " << r.describe());
}

// One walk through the whale's pages; what it saw.
struct Walk {
  int64_t purchases = 0;
  int pages = 0;
  std::string problem;   // empty: every page well-formed and in order
  bool busy = false;     // a page was refused with 503 busy (the pool was full)
  bool stopped = false;  // *stop was set between two pages: not a whole walk
};

Walk walk_whale(HttpConnection& c, int64_t limit, const std::atomic<bool>* stop = nullptr) {
  Walk w;
  int64_t from = 0, last = 0;
  for (;;) {
    if (stop && stop->load()) {
      w.stopped = true;
      return w;
    }
    auto r = c.get("/api/users/whale/purchases?limit=" + std::to_string(limit) +
                   "&from=" + std::to_string(from));
    ++w.pages;
    if (r.status == 503 && r.json().is_object() &&
        r.json().value("code", std::string()) == "busy") {
      w.busy = true;
      return w;
    }
    if (r.status != 200) {
      w.problem = "page from " + std::to_string(from) + ": " + r.describe();
      return w;
    }
    json j = r.json();
    if (!j.is_object() || !j.contains("purchases") || !j["purchases"].is_array() ||
        !j.contains("next") || !j.contains("position")) {
      w.problem = "malformed page: " + r.describe();
      return w;
    }
    const auto& ps = j["purchases"];
    if (static_cast<int64_t>(ps.size()) > limit) {
      w.problem = "a page of " + std::to_string(ps.size()) + " for limit " + std::to_string(limit);
      return w;
    }
    for (const auto& p : ps) {
      const int64_t pos = p.value("position", int64_t{-1});
      if (p.value("user_id", std::string()) != "whale" || pos < from || pos <= last) {
        w.problem = "purchase out of order or not the whale's: " + p.dump() + " (from " +
                    std::to_string(from) + ", last " + std::to_string(last) + ")";
        return w;
      }
      last = pos;
      ++w.purchases;
    }
    if (j["next"].is_null()) return w;
    if (!j["next"].is_number_integer() || j["next"].get<int64_t>() <= last ||
        static_cast<int64_t>(ps.size()) != limit) {
      w.problem = "bad next " + j["next"].dump() + " after " + std::to_string(ps.size()) +
                  " purchases up to " + std::to_string(last);
      return w;
    }
    from = j["next"].get<int64_t>();
  }
}

}  // namespace

BOOST_AUTO_TEST_SUITE(whale_queries)

BOOST_AUTO_TEST_CASE(whale_readers_do_not_stall_purchases) {
  // Release: 20,000 whale purchases, 10 s of load. ASan: fewer, longer waits.
  const int64_t kWhale = by_build<int64_t>(20000, 6000);
  const int kReaders = 40;
  const int kBuyers = 8;
  const auto kLoad = by_build(10s, 20s);
  const int kSeedConnections = 16;

  TempDir dir("giftcard-whale");
  ServeArgs args;
  args.flags = {"--no-rate-limit"};
  ServeChild srv(dir.str("data"), dir.str("serve.log"), args);
  const uint16_t port = srv.port();
  auto t_setup = Clock::now();
  {
    HttpConnection admin(port);
    admin.timeout = by_build(60s, 180s);
    create_card(admin, "whalecard", 1, kWhale);
    create_card(admin, "loadcard", 1, by_build<int64_t>(200000, 100000));
    create_card(admin, "x", 5, 10);
    credit(admin, "whale", kWhale);
    for (int b = 0; b < kBuyers; ++b) credit(admin, "buyer" + std::to_string(b), 1000000);
  }

  // The whale's history: kWhale purchases over several keep-alive connections.
  {
    std::atomic<int64_t> next{0};
    std::mutex mu;
    std::vector<std::string> problems;
    std::vector<std::thread> ts;
    for (int t = 0; t < kSeedConnections; ++t)
      ts.emplace_back([&, t] {
        HttpConnection c(port);
        c.timeout = 35s;
        const std::string body = R"({"card_id":"whalecard","user_id":"whale"})";
        for (int64_t i; (i = next++) < kWhale;) {
          auto r = c.post("/api/purchases", std::string_view(body), key("w" + std::to_string(i)));
          if (r.status != 201) {
            std::lock_guard lock(mu);
            problems.push_back("whale purchase " + std::to_string(i) + " (connection " +
                               std::to_string(t) + "): " + r.describe());
            return;
          }
        }
      });
    for (auto& t : ts) t.join();
    BOOST_REQUIRE_MESSAGE(problems.empty(), (problems.empty() ? std::string() : problems.front()));
  }
  BOOST_TEST_MESSAGE("setup: " << kWhale << " whale purchases in " << ms(Clock::now() - t_setup)
                               << " ms");

  // A walk before the load: exactly the whale's purchases; the default page
  // is 100; limits outside 1..1000 are refused.
  {
    HttpConnection c(port);
    c.timeout = by_build(30s, 90s);
    Walk w = walk_whale(c, kMaxPage);
    BOOST_REQUIRE_MESSAGE(w.problem.empty(), w.problem);
    BOOST_TEST(w.purchases == kWhale);
    BOOST_TEST(w.pages == (kWhale + kMaxPage - 1) / kMaxPage);
    auto d = c.get("/api/users/whale/purchases");
    BOOST_REQUIRE_MESSAGE(d.status == 200, d.describe());
    json j = d.json();
    BOOST_TEST(j["purchases"].size() == 100u);
    BOOST_TEST(j["next"].is_number_integer());
    for (const char* bad : {"limit=0", "limit=1001", "limit=-1", "from=-1"}) {
      auto b = c.get(std::string("/api/users/whale/purchases?") + bad);
      BOOST_TEST(b.status == 400, bad << ": " << b.describe());
    }
  }

  // The load: 40 readers walking the whale's pages, buyers buying, and a
  // reader of GET /api/cards/x, all at once.
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::vector<std::string> problems;
  auto problem = [&](std::string p) {
    std::lock_guard lock(mu);
    if (problems.size() < 20) problems.push_back(std::move(p));
  };
  std::atomic<int64_t> walks{0}, pages{0}, busy{0};
  std::atomic<int> walked{0};  // readers that finished at least one walk
  std::vector<std::thread> readers;
  for (int i = 0; i < kReaders; ++i)
    readers.emplace_back([&] {
      HttpConnection c(port);
      c.timeout = by_build(60s, 180s);
      bool once = false;
      while (!stop.load()) {
        Walk w = walk_whale(c, kMaxPage, &stop);
        pages += w.pages;
        if (w.stopped) break;
        if (w.busy) {  // a full query pool may refuse: that is the bound working
          ++busy;
          continue;
        }
        if (!w.problem.empty()) return problem("reader: " + w.problem);
        if (w.purchases != kWhale)
          return problem("a walk saw " + std::to_string(w.purchases) + " purchases, not " +
                         std::to_string(kWhale));
        ++walks;
        if (!once) ++walked, once = true;
      }
    });
  // Let the readers get going before the purchase load starts.
  std::this_thread::sleep_for(by_build(500ms, 2000ms));

  std::atomic<int64_t> bought{0}, slowest_us{0};
  std::vector<std::thread> buyers;
  for (int b = 0; b < kBuyers; ++b)
    buyers.emplace_back([&, b] {
      HttpConnection c(port);
      c.timeout = 35s;  // the server's command timeout is 30 s
      const std::string user = "buyer" + std::to_string(b);
      const std::string body = R"({"card_id":"loadcard","user_id":")" + user + R"("})";
      for (int64_t i = 0; !stop.load(); ++i) {
        auto t0 = Clock::now();
        auto r = c.post("/api/purchases", std::string_view(body),
                        key(user + "-" + std::to_string(i)));
        auto us = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0).count();
        for (int64_t m = slowest_us.load(); us > m && !slowest_us.compare_exchange_weak(m, us);) {
        }
        if (r.status != 201) return problem("purchase by " + user + ": " + r.describe());
        ++bought;
      }
    });
  std::atomic<int64_t> card_reads{0}, card_slowest_us{0};
  std::thread card_reader([&] {
    HttpConnection c(port);
    c.timeout = 35s;
    while (!stop.load()) {
      auto t0 = Clock::now();
      auto r = c.get("/api/cards/x");
      auto us = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0).count();
      for (int64_t m = card_slowest_us.load();
           us > m && !card_slowest_us.compare_exchange_weak(m, us);) {
      }
      if (r.status != 200 || r.json().value("id", std::string()) != "x")
        return problem("GET /api/cards/x: " + r.describe());
      ++card_reads;
      std::this_thread::sleep_for(50ms);
    }
  });

  // At least kLoad, and until every reader has walked the whole history once
  // (bounded: the test fails below if they never do).
  auto t_load = Clock::now();
  const auto kMaxLoad = by_build(60s, 180s);
  while ((Clock::now() - t_load < kLoad || walked.load() < kReaders) &&
         Clock::now() - t_load < kMaxLoad) {
    std::this_thread::sleep_for(100ms);
    std::lock_guard lock(mu);
    if (!problems.empty()) break;
  }
  stop = true;
  for (auto& t : buyers) t.join();
  card_reader.join();
  for (auto& t : readers) t.join();
  const int64_t load_ms = ms(Clock::now() - t_load);
  BOOST_TEST_MESSAGE("load: " << load_ms << " ms; " << bought.load() << " purchases (slowest "
                              << slowest_us.load() / 1000 << " ms), " << card_reads.load()
                              << " card reads (slowest " << card_slowest_us.load() / 1000
                              << " ms), " << walks.load() << " whale walks (by " << walked.load()
                              << " readers), " << pages.load() << " pages, " << busy.load()
                              << " busy");
  for (const auto& p : problems) BOOST_ERROR(p);
  BOOST_TEST(bought.load() > 0);
  BOOST_TEST(card_reads.load() > 0);
  BOOST_TEST(walked.load() == kReaders);  // every reader finished a walk at least once

  // The buyers' purchases are all there: the load card's `assigned`.
  {
    HttpConnection c(port);
    c.timeout = 60s;
    auto h = c.get("/healthz");
    BOOST_REQUIRE_MESSAGE(h.status == 200, h.describe());
    const int64_t head = h.json().value("position", int64_t{0});
    auto card = c.get("/api/cards/loadcard?after=" + std::to_string(head));
    BOOST_REQUIRE_MESSAGE(card.status == 200, card.describe());
    BOOST_TEST(card.json().value("assigned", int64_t{-1}) == bought.load());
  }
  srv.stop_clean(by_build(60s, 180s));
  auto v = run_giftcard({"verify", "--data", dir.str("data")}, {}, by_build(120s, 300s));
  BOOST_TEST(v.code() == 0, "giftcard verify: " << v.describe());
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace giftcard::whale_test
