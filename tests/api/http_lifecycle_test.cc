// The HTTP API of docs/CONTRACT.md, "HTTP API" against a real `giftcard serve` child process:
// concurrent clients and idempotency-key repeats (http_concurrency), and
// graceful SIGTERM, slow clients and Server-Sent Events (http_lifecycle).
// Shared set-up: http_api_fixture.h.
#include "tests/api/http_api_fixture.h"

using namespace giftcard::http_test;
using giftcard::test::Headers;
using giftcard::test::HttpConnection;
using giftcard::test::HttpReply;
namespace test = giftcard::test;

// ===========================================================================
BOOST_AUTO_TEST_SUITE(http_concurrency)

namespace {

// `n` threads, each on its own connection, send the same request at once
// (released together by a latch). The replies, by thread.
std::vector<HttpReply> all_at_once(uint16_t port, int n, const std::string& target,
                                   const std::string& body, const Headers& headers) {
  std::vector<HttpReply> replies(static_cast<size_t>(n));
  std::vector<HttpConnection> conns;
  for (int i = 0; i < n; ++i) {
    conns.emplace_back(port);
    conns.back().timeout = by_build(30s, 120s);
    BOOST_REQUIRE(conns.back().connect());
  }
  std::latch go(n);
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i)
    threads.emplace_back([&, i] {
      go.arrive_and_wait();
      replies[static_cast<size_t>(i)] = conns[static_cast<size_t>(i)].post(
          target, std::string_view(body), headers);
    });
  for (auto& t : threads) t.join();
  return replies;
}

// All replies 201 with one body; exactly one of them is not a replay.
void check_one_outcome(const std::vector<HttpReply>& replies, const std::string& what) {
  int fresh = 0;
  for (size_t i = 0; i < replies.size(); ++i) {
    const HttpReply& r = replies[i];
    BOOST_TEST(r.status == 201, what << ", thread " << i << ": " << r.describe());
    BOOST_TEST(r.body == replies[0].body, what << ", thread " << i << ": a different body: "
                                               << r.body << " vs " << replies[0].body);
    if (r.header("Idempotent-Replayed") != "true") ++fresh;
  }
  BOOST_TEST(fresh == 1, what << ": " << fresh << " replies are not marked Idempotent-Replayed");
}

}  // namespace

BOOST_AUTO_TEST_CASE(concurrent_repeats_of_one_key_charge_once) {
  TempDir dir;
  Server srv(dir.str("data"), dir.str("serve.log"));
  HttpConnection c(srv.port());
  const int kThreads = 32;
  const int kRounds = by_build(20, 4);
  const int64_t kPrice = 250;
  make_card(c, "hot", kPrice, numbered("HOT", 2 * kRounds));
  fund(c, "dup",
       kPrice * kRounds * 2);  // enough for twice the rounds: a double charge would succeed
  std::set<std::string> codes;
  for (int round = 0; round < kRounds; ++round) {
    const std::string k = "same-key-" + std::to_string(round);
    auto replies = all_at_once(srv.port(), kThreads, "/api/purchases",
                               R"({"card_id":"hot","user_id":"dup"})", {{"Idempotency-Key", k}});
    check_one_outcome(replies, "purchase round " + std::to_string(round));
    codes.insert(jstr(replies[0].json(), "code"));
  }
  BOOST_TEST(codes.size() == static_cast<size_t>(kRounds));
  // The same for credits.
  for (int round = 0; round < kRounds; ++round) {
    auto replies = all_at_once(srv.port(), kThreads, "/api/wallets/cred/credits",
                               R"({"amount":100})",
                               {{"Idempotency-Key", "credit-key-" + std::to_string(round)}});
    check_one_outcome(replies, "credit round " + std::to_string(round));
    BOOST_TEST(jint(replies[0].json(), "balance") == 100 * (round + 1));
  }
  // Charged once per key; one code per key; one CodeAssigned per key in the log.
  int64_t head = log_position(srv.port());
  std::string after = "?after=" + std::to_string(head);
  json dup = expect_json(c.get("/api/wallets/dup" + after), 200, "dup");
  BOOST_TEST(jint(dup, "balance") == kPrice * kRounds);
  json cred = expect_json(c.get("/api/wallets/cred" + after), 200, "cred");
  BOOST_TEST(jint(cred, "balance") == 100 * kRounds);
  json hot = expect_json(c.get("/api/cards/hot" + after), 200, "hot");
  BOOST_TEST(jint(hot, "assigned") == kRounds);
  std::map<std::string, int> assigned_per_key, credits_per_key;
  for (const json& e : all_events(c)) {
    if (jstr(e, "type") == "CodeAssigned") ++assigned_per_key[jstr(e["data"], "idempotency_key")];
    if (jstr(e, "type") == "WalletCredited" && jstr(e["data"], "user_id") == "cred")
      ++credits_per_key[jstr(e["data"], "idempotency_key")];
  }
  BOOST_TEST(assigned_per_key.size() == static_cast<size_t>(kRounds));
  for (const auto& [k, n] : assigned_per_key)
    BOOST_TEST(n == 1, k << " assigned " << n << " codes");
  BOOST_TEST(credits_per_key.size() == static_cast<size_t>(kRounds));
  for (const auto& [k, n] : credits_per_key) BOOST_TEST(n == 1, k << " credited " << n << " times");
  require_clean_stop(srv);
  require_verified(srv.data());
}

BOOST_AUTO_TEST_CASE(sixty_four_keep_alive_clients_on_one_hot_card) {
  TempDir dir;
  Server srv(dir.str("data"), dir.str("serve.log"));
  HttpConnection admin(srv.port());
  const int kClients = 64;
  const int kAffordable = by_build(40, 4);            // purchases each wallet can pay for
  const int kAttempts = kAffordable + 2;              // purchases each client tries
  const int kCodes = kClients * kAffordable * 3 / 4;  // fewer codes than the wallets can pay for
  const int64_t kPrice = 100;
  make_card(admin, "hot", kPrice, numbered("HOT", kCodes));
  for (int u = 0; u < kClients; ++u)
    fund(admin, "buyer-" + std::to_string(u), kPrice * kAffordable);

  struct Result {
    std::vector<HttpReply> replies;
    int connects = 0;
  };
  std::vector<Result> results(kClients);
  std::latch go(kClients);
  auto t0 = Clock::now();
  std::vector<std::thread> threads;
  for (int u = 0; u < kClients; ++u)
    threads.emplace_back([&, u] {
      HttpConnection c(srv.port());
      c.timeout = by_build(60s, 180s);
      const std::string body = R"({"card_id":"hot","user_id":"buyer-)" + std::to_string(u) + "\"}";
      c.connect();
      go.arrive_and_wait();
      for (int a = 0; a < kAttempts; ++a)
        results[static_cast<size_t>(u)].replies.push_back(
            c.post("/api/purchases", std::string_view(body),
                   {{"Idempotency-Key", "k-" + std::to_string(u) + "-" + std::to_string(a)}}));
      results[static_cast<size_t>(u)].connects = c.connects();
    });
  for (auto& t : threads) t.join();
  const int64_t elapsed = ms_since(t0);
  BOOST_TEST_MESSAGE(kClients * kAttempts << " purchases by " << kClients
                                          << " keep-alive clients in " << elapsed << " ms");

  std::set<std::string> codes;
  std::vector<int> bought(kClients, 0);
  int total = 0, max_position = 0;
  for (int u = 0; u < kClients; ++u) {
    const auto& res = results[static_cast<size_t>(u)];
    BOOST_TEST(res.connects == 1, "client " << u << " connected " << res.connects << " times");
    for (size_t a = 0; a < res.replies.size(); ++a) {
      const HttpReply& r = res.replies[a];
      if (r.status == 201) {
        json p = r.json();
        ++total;
        ++bought[static_cast<size_t>(u)];
        BOOST_TEST(codes.insert(jstr(p, "code")).second, "code sold twice: " << jstr(p, "code"));
        BOOST_TEST(jint(p, "price") == kPrice);
        BOOST_TEST(jstr(p, "user_id") == "buyer-" + std::to_string(u));
        BOOST_TEST(!r.has_header("Idempotent-Replayed"));
        max_position = std::max<int>(max_position, static_cast<int>(jint(p, "position")));
        continue;
      }
      std::string code = r.json().is_object() ? r.json().value("code", "") : "";
      bool expected = (r.status == 409 && code == "out_of_stock") ||
                      (r.status == 402 && code == "insufficient_funds");
      BOOST_TEST(expected, "client " << u << " attempt " << a << ": " << r.describe());
      // A client's attempts are sequential: its money runs out only after kAffordable purchases.
      if (code == "insufficient_funds")
        BOOST_TEST(bought[static_cast<size_t>(u)] == kAffordable, "client " << u);
    }
  }
  BOOST_TEST(total == std::min(kCodes, kClients * kAffordable));
  BOOST_TEST(codes.size() == static_cast<size_t>(total));

  // Every balance exact; the card's counts exact.
  const int64_t head = log_position(srv.port());
  BOOST_TEST(head >= max_position);
  const std::string after = "?after=" + std::to_string(head);
  for (int u = 0; u < kClients; ++u) {
    json w = expect_json(admin.get("/api/wallets/buyer-" + std::to_string(u) + after), 200,
                         "wallet");
    BOOST_TEST(jint(w, "balance") == kPrice * (kAffordable - bought[static_cast<size_t>(u)]),
               "buyer-" << u);
  }
  json card = expect_json(admin.get("/api/cards/hot" + after), 200, "card");
  BOOST_TEST(jint(card, "assigned") == total);
  BOOST_TEST(jint(card, "available") == kCodes - total);
  // The log holds exactly these purchases.
  std::set<std::string> logged;
  int debits = 0;
  for (const json& e : all_events(admin)) {
    if (jstr(e, "type") == "CodeAssigned")
      BOOST_TEST(logged.insert(jstr(e["data"], "code")).second);
    if (jstr(e, "type") == "WalletDebited") ++debits;
  }
  BOOST_TEST((logged == codes), "the log's assigned codes differ from the acknowledged ones");
  BOOST_TEST(debits == total);
  require_clean_stop(srv);
  require_verified(srv.data());
}

BOOST_AUTO_TEST_SUITE_END()

// ===========================================================================
BOOST_AUTO_TEST_SUITE(http_lifecycle)

namespace {

struct Sent {
  std::string user;
  std::string key;
  Clock::time_point sent;  // when the whole request had been written
  HttpReply reply;
};

// Purchase ids of every CodeAssigned in a stopped server's log (giftcard events).
std::map<std::string, std::string> logged_purchases(const std::string& data) {
  RunResult r = run_giftcard({"events", "--data", data}, {}, by_build(60s, 180s));
  BOOST_REQUIRE_MESSAGE(r.code() == 0, "giftcard events: " << r.describe());
  std::map<std::string, std::string> out;  // purchase_id -> user/key
  std::istringstream in(r.out);
  std::string line;
  while (std::getline(in, line)) {
    json e = json::parse(line, nullptr, false);
    if (!e.is_object() || jstr(e, "type") != "CodeAssigned") continue;
    const json& d = e["data"];
    std::string id = jstr(d, "purchase_id");
    BOOST_TEST(out.count(id) == 0u, "purchase " << id << " twice in the log");
    out[id] = jstr(d, "user_id") + "/" + jstr(d, "idempotency_key");
  }
  return out;
}

// Reads SSE frames from `c` until `done(events so far)` or the deadline.
std::vector<test::SseEvent> read_events(
    HttpConnection& c, std::string* buf,
    const std::function<bool(const std::vector<test::SseEvent>&)>& done,
    std::chrono::milliseconds limit) {
  std::vector<test::SseEvent> got;
  auto deadline = Clock::now() + limit;
  while (!done(got)) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) break;
    std::string err;
    int n = c.read_some(buf, left, &err);
    if (n <= 0) break;
    for (auto& e : test::take_sse_events(buf)) got.push_back(std::move(e));
  }
  return got;
}

// Checks the frames: id = the event's position, event = its type, data = the
// event as JSON; ids contiguous from `first` (if > 0).
void check_frames(const std::vector<test::SseEvent>& evs, int64_t first, const std::string& what) {
  int64_t expect = first;
  for (const auto& e : evs) {
    json d = json::parse(e.data, nullptr, false);
    BOOST_TEST(d.is_object(), what << ": data is not JSON: " << e.data);
    int64_t id = std::atoll(e.id.c_str());
    BOOST_TEST(jint(d, "position") == id, what << ": id " << e.id << " vs " << e.data);
    BOOST_TEST(jstr(d, "type") == e.event, what << ": event " << e.event << " vs " << e.data);
    if (expect > 0) BOOST_TEST(id == expect, what << ": id " << id << ", expected " << expect);
    expect = id + 1;
  }
}

std::set<std::string> assigned_ids(const std::vector<test::SseEvent>& evs) {
  std::set<std::string> out;
  for (const auto& e : evs) {
    if (e.event != "CodeAssigned") continue;
    json j = json::parse(e.data, nullptr, false);
    if (j.is_object() && j.contains("data")) out.insert(jstr(j["data"], "purchase_id"));
  }
  return out;
}

bool has_all(const std::set<std::string>& have, const std::vector<std::string>& want) {
  return std::all_of(want.begin(), want.end(),
                     [&](const std::string& w) { return have.count(w) > 0; });
}

}  // namespace

BOOST_AUTO_TEST_CASE(sigterm_answers_every_request_sent_before_it) {
  TempDir dir;
  const int kClients = 16;
  const int kCodes = by_build(20000, 4000);
  const int kBefore = by_build(2000, 300);  // purchases acknowledged before the signal
  const int64_t kFunds = 1000000000;
  std::vector<std::vector<Sent>> sent(kClients);
  Clock::time_point signalled;
  {
    Server srv(dir.str("data"), dir.str("serve.log"));
    HttpConnection admin(srv.port());
    make_card(admin, "drain", 1, numbered("DRN", kCodes));
    for (int u = 0; u < kClients; ++u) fund(admin, "d" + std::to_string(u), kFunds);

    std::atomic<int> acked{0};
    std::vector<std::thread> threads;
    for (int u = 0; u < kClients; ++u)
      threads.emplace_back([&, u] {
        HttpConnection c(srv.port());
        const std::string user = "d" + std::to_string(u);
        const std::string body = R"({"card_id":"drain","user_id":")" + user + "\"}";
        for (int a = 0; a < kCodes; ++a) {
          Sent s{user, "t-" + user + "-" + std::to_string(a), {}, {}};
          std::string bytes = c.format(
              "POST", "/api/purchases", body,
              {{"Content-Type", "application/json"}, {"Idempotency-Key", s.key}});
          bool ok = c.send(bytes, &s.reply.error);
          s.sent = Clock::now();
          if (ok) s.reply = c.read_reply(by_build(60s, 180s));
          sent[static_cast<size_t>(u)].push_back(s);
          if (!ok || !s.reply.ok() || !s.reply.keep_alive) break;  // the server is closing
          if (s.reply.status == 201) ++acked;
        }
      });
    auto t0 = Clock::now();
    while (acked.load() < kBefore && Clock::now() - t0 < 60s) std::this_thread::sleep_for(1ms);
    BOOST_TEST(acked.load() >= kBefore, "only " << acked.load() << " purchases in 60 s");
    signalled = Clock::now();
    srv.signal(SIGTERM);
    for (auto& t : threads) t.join();
    auto status = srv.wait(by_build(15s, 60s));
    BOOST_REQUIRE_MESSAGE(status, "serve did not exit after SIGTERM; stderr:\n" << srv.log());
    BOOST_TEST((WIFEXITED(*status) && WEXITSTATUS(*status) == 0),
               "serve after SIGTERM: " << describe_status(*status) << "\n"
                                       << srv.log());
    BOOST_TEST_MESSAGE("serve exited " << ms_since(signalled) << " ms after SIGTERM");
  }

  // Every request written before the signal was answered, and bought.
  int before = 0, after_answered = 0, after_cut = 0, lost = 0;
  std::string lost_keys;
  std::vector<const Sent*> unanswered;
  for (const auto& per_client : sent)
    for (const Sent& s : per_client) {
      if (s.sent < signalled) {
        ++before;
        if (s.reply.status != 201) {
          ++lost;
          lost_keys += " " + s.key + " (" + s.reply.describe().substr(0, 80) + ");";
        }
      } else if (s.reply.ok()) {
        ++after_answered;
        BOOST_TEST((s.reply.status == 201 || s.reply.status == 503),
                   s.key << ": " << s.reply.describe());
      } else {
        ++after_cut;
      }
      if (s.reply.status != 201) unanswered.push_back(&s);
    }
  BOOST_TEST_MESSAGE(before << " requests sent before SIGTERM; after it " << after_answered
                            << " answered, " << after_cut << " cut");
  BOOST_TEST(lost == 0, lost << " of " << before
                             << " requests written before SIGTERM got no 201:" << lost_keys);

  // Every acknowledged purchase is in the log, once.
  auto logged = logged_purchases(dir.str("data"));
  int acked_total = 0;
  for (const auto& per_client : sent)
    for (const Sent& s : per_client)
      if (s.reply.status == 201) {
        ++acked_total;
        std::string id = jstr(s.reply.json(), "purchase_id");
        BOOST_TEST(logged.count(id) == 1u,
                   "acknowledged purchase " << id << " (" << s.key << ") is not in the log");
      }

  // After a restart, a retry of every unanswered key settles to one outcome,
  // and every wallet paid exactly once per bought key.
  Server again(dir.str("data"), dir.str("serve-2.log"));
  HttpConnection c(again.port());
  std::map<std::string, int> bought;
  for (const auto& per_client : sent)
    for (const Sent& s : per_client)
      if (s.reply.status == 201) ++bought[s.user];
  for (const Sent* s : unanswered) {
    auto r = c.post("/api/purchases", json{{"card_id", "drain"}, {"user_id", s->user}},
                    key(s->key));
    BOOST_TEST(r.status == 201, "retry of " << s->key << ": " << r.describe());
    if (r.status == 201) ++bought[s->user];
  }
  const std::string after = "?after=" + std::to_string(log_position(again.port()));
  int64_t total = 0;
  for (int u = 0; u < kClients; ++u) {
    const std::string user = "d" + std::to_string(u);
    json w = expect_json(c.get("/api/wallets/" + user + after), 200, user);
    BOOST_TEST(jint(w, "balance") == kFunds - bought[user], user);
    total += bought[user];
  }
  json card = expect_json(c.get("/api/cards/drain" + after), 200, "card");
  BOOST_TEST(jint(card, "assigned") == total);
  require_clean_stop(again);
  require_verified(dir.str("data"));
}

BOOST_AUTO_TEST_CASE(slow_clients_are_cut_and_do_not_starve_purchases) {
  TempDir dir;
  Server srv(dir.str("data"), dir.str("serve.log"));
  HttpConnection c(srv.port());
  const int kSlowloris = 32;
  const int kViewers = 16;
  const int kPurchases = by_build(2000, 300);
  make_card(c, "busy", 1, numbered("BSY", kPurchases));
  fund(c, "shopper", kPurchases);

  // 32 slowloris connections (one header byte every 4 s) and one idle one:
  // each must be cut within the 10 s header deadline.
  const std::string partial =
      "POST /api/purchases HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n";
  std::vector<int64_t> cut_ms(kSlowloris + 1, -1);
  std::vector<std::string> cut_how(kSlowloris + 1);
  std::vector<std::thread> slow;
  std::latch opened(kSlowloris + 1);
  for (int i = 0; i <= kSlowloris; ++i)
    slow.emplace_back([&, i] {
      HttpConnection s(srv.port());
      bool connected = s.connect();
      auto t0 = Clock::now();
      opened.count_down();
      if (!connected) return;
      std::string received;
      for (size_t b = 0; ms_since(t0) < 40000; ++b) {
        if (i < kSlowloris && !s.send(std::string_view(partial).substr(b % partial.size(), 1))) {
          cut_ms[static_cast<size_t>(i)] = ms_since(t0);
          cut_how[static_cast<size_t>(i)] = "send failed";
          return;
        }
        std::string how;
        if (s.wait_closed(4s, &received, &how)) {
          cut_ms[static_cast<size_t>(i)] = ms_since(t0);
          cut_how[static_cast<size_t>(i)] = how + (received.empty()
                                                       ? ""
                                                       : ", after " + received.substr(0, 12));
          return;
        }
      }
    });
  // A slow body: the header at once, then one body byte every 3 s: 408.
  HttpReply slow_body;
  int64_t slow_body_ms = -1;
  std::thread body_thread([&] {
    HttpConnection s(srv.port());
    const std::string body = R"({"card_id":"busy","user_id":"shopper"})";
    const std::string head =
        "POST /api/purchases HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        "Idempotency-Key: slow-body\r\nContent-Length: " +
        std::to_string(body.size()) + "\r\n\r\n";
    if (!s.send(head)) return;
    auto t0 = Clock::now();
    for (size_t b = 0; b + 1 < body.size() && ms_since(t0) < 60000; ++b) {
      if (!s.send(std::string_view(body).substr(b, 1))) break;
      pollfd p{s.fd(), POLLIN, 0};
      if (::poll(&p, 1, 3000) > 0) break;  // the server answered
    }
    slow_body = s.read_reply(20s);
    slow_body_ms = ms_since(t0);
  });
  // 16 event-stream viewers.
  std::vector<HttpConnection> viewers;
  std::vector<std::string> vbuf(kViewers);
  for (int i = 0; i < kViewers; ++i) {
    viewers.emplace_back(srv.port());
    BOOST_REQUIRE(viewers.back().send(viewers.back().format("GET", "/api/events/stream", "", {})));
    HttpReply head = viewers.back().read_reply(10s, true);
    BOOST_REQUIRE_MESSAGE(head.status == 200, "viewer " << i << ": " << head.describe());
  }

  // Meanwhile, purchases go on, one after the other.
  opened.wait();  // every slow connection is open
  std::vector<int64_t> lat_us;
  std::vector<std::string> ids;
  auto t0 = Clock::now();
  for (int i = 0; i < kPurchases && Clock::now() - t0 < 8s; ++i) {
    auto t = Clock::now();
    auto r = c.post("/api/purchases", json{{"card_id", "busy"}, {"user_id", "shopper"}},
                    key("b" + std::to_string(i)));
    lat_us.push_back(
        std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t).count());
    BOOST_REQUIRE_MESSAGE(r.status == 201,
                          "purchase " << i << " beside slow clients: " << r.describe());
    ids.push_back(jstr(r.json(), "purchase_id"));
  }
  std::vector<int64_t> sorted = lat_us;
  std::sort(sorted.begin(), sorted.end());
  int64_t p99 = sorted[sorted.size() * 99 / 100];
  BOOST_TEST_MESSAGE(lat_us.size()
                     << " purchases beside " << kSlowloris << " slowloris connections and "
                     << kViewers << " viewers: p50 " << sorted[sorted.size() / 2] << " us, p99 "
                     << p99 << " us, max " << sorted.back() << " us");
  BOOST_TEST(p99 < by_build(500000, 2000000), "purchase p99 " << p99 << " us beside slow clients");

  // Every viewer saw every purchase.
  for (int i = 0; i < kViewers; ++i) {
    auto evs = read_events(
        viewers[static_cast<size_t>(i)], &vbuf[static_cast<size_t>(i)],
        [&, seen = std::set<std::string>(),
         n = size_t{0}](const std::vector<test::SseEvent>& e) mutable {
          for (; n < e.size(); ++n)
            for (auto& id : assigned_ids({e[n]})) seen.insert(id);
          return has_all(seen, ids);
        },
        15s);
    // (read_events returns the frames of this call; check the union)
    std::set<std::string> seen = assigned_ids(evs);
    BOOST_TEST(has_all(seen, ids),
               "viewer " << i << " saw " << seen.size() << " of " << ids.size() << " purchases");
    check_frames(evs, 0, "viewer " + std::to_string(i));
  }

  for (auto& t : slow) t.join();
  body_thread.join();
  int64_t max_cut = 0;
  for (int i = 0; i <= kSlowloris; ++i) {
    BOOST_TEST(cut_ms[static_cast<size_t>(i)] >= 0, "connection " << i << " was never cut");
    BOOST_TEST(cut_ms[static_cast<size_t>(i)] <= 12500,
               (i < kSlowloris ? "slowloris " : "idle ")
                   << i << " cut after " << cut_ms[static_cast<size_t>(i)] << " ms ("
                   << cut_how[static_cast<size_t>(i)] << ")");
    max_cut = std::max(max_cut, cut_ms[static_cast<size_t>(i)]);
  }
  BOOST_TEST_MESSAGE("stalled headers cut within " << max_cut << " ms; the first: " << cut_how[0]
                                                   << "; the idle one: " << cut_how[kSlowloris]);
  CHECK_PROBLEM(slow_body, 408, "request_timeout");
  BOOST_TEST_MESSAGE("slow body answered after " << slow_body_ms << " ms");
  BOOST_TEST(slow_body_ms < 40000);
  // Nothing of the slow requests was bought.
  const std::string after = "?after=" + std::to_string(log_position(srv.port()));
  json w = expect_json(c.get("/api/wallets/shopper" + after), 200, "shopper");
  BOOST_TEST(jint(w, "balance") == kPurchases - static_cast<int64_t>(ids.size()));
  require_clean_stop(srv);
}

BOOST_AUTO_TEST_CASE(event_stream_live_and_resumed) {
  TempDir dir;
  Server srv(dir.str("data"), dir.str("serve.log"));
  HttpConnection c(srv.port());
  make_card(c, "sse", 10, numbered("SSE", 20));
  fund(c, "viewer", 1000);
  auto buy = [&](const std::string& k) {
    auto r = c.post("/api/purchases", json{{"card_id", "sse"}, {"user_id", "viewer"}}, key(k));
    BOOST_REQUIRE_MESSAGE(r.status == 201, r.describe());
    return jstr(r.json(), "purchase_id");
  };
  auto open_stream = [&](HttpConnection& s, const std::string& target, const Headers& h) {
    BOOST_REQUIRE(s.send(s.format("GET", target, "", h)));
    HttpReply head = s.read_reply(10s, true);
    BOOST_REQUIRE_MESSAGE(head.status == 200, target << ": " << head.describe());
    BOOST_TEST(media_type(head) == "text/event-stream", head.describe());
  };
  auto upto = [](int64_t pos) {
    return [pos](const std::vector<test::SseEvent>& e) {
      return !e.empty() && std::atoll(e.back().id.c_str()) >= pos;
    };
  };

  // Live: purchases after connecting arrive as id:/event:/data: frames.
  HttpConnection s1(srv.port());
  std::string b1;
  open_stream(s1, "/api/events/stream", {});
  std::vector<std::string> live = {buy("s1"), buy("s2"), buy("s3")};
  int64_t head1 = log_position(srv.port());
  auto evs1 = read_events(s1, &b1, upto(head1), 10s);
  BOOST_REQUIRE_MESSAGE(!evs1.empty(), "no event on the stream");
  check_frames(evs1, 0, "live");
  BOOST_TEST(has_all(assigned_ids(evs1), live), "the live stream missed a purchase");
  BOOST_TEST(std::atoll(evs1.back().id.c_str()) == head1);
  int64_t last = std::atoll(evs1.back().id.c_str());
  s1.close();

  // Resume with Last-Event-ID: what happened meanwhile, then live again.
  std::vector<std::string> missed = {buy("s4"), buy("s5")};
  int64_t head2 = log_position(srv.port());
  HttpConnection s2(srv.port());
  std::string b2;
  open_stream(s2, "/api/events/stream", {{"Last-Event-ID", std::to_string(last)}});
  auto evs2 = read_events(s2, &b2, upto(head2), 10s);
  BOOST_REQUIRE(!evs2.empty());
  BOOST_TEST(std::atoll(evs2.front().id.c_str()) == last + 1);
  check_frames(evs2, last + 1, "resumed");
  BOOST_TEST(has_all(assigned_ids(evs2), missed), "the resumed stream missed a purchase");
  std::string later = buy("s6");
  int64_t head3 = log_position(srv.port());
  auto evs3 = read_events(s2, &b2, upto(head3), 10s);
  check_frames(evs3, head2 + 1, "resumed, live");
  BOOST_TEST(has_all(assigned_ids(evs3), {later}));

  // ?from=1: the whole log, then live.
  HttpConnection s3(srv.port());
  std::string b3;
  open_stream(s3, "/api/events/stream?from=1", {});
  auto evs4 = read_events(s3, &b3, upto(head3), 10s);
  BOOST_REQUIRE(!evs4.empty());
  check_frames(evs4, 1, "from=1");
  BOOST_TEST(std::atoll(evs4.back().id.c_str()) == head3);
  BOOST_TEST(evs4.front().event == "CardCreated");

  CHECK_PROBLEM(c.get("/api/events/stream", {{"Last-Event-ID", "abc"}}), 400, "invalid_request");
  CHECK_PROBLEM(c.get("/api/events/stream?from=x"), 400, "invalid_request");

  // SIGTERM ends open streams and exits 0.
  require_clean_stop(srv);
  BOOST_TEST(s2.wait_closed(5s), "an event stream outlived the server");
}

BOOST_AUTO_TEST_SUITE_END()
