// The HTTP API of docs/CONTRACT.md, "HTTP API" against a real `giftcard serve` child process over
// real sockets (tests/support/http_client.h): every route and error code
// (http_routes), the bad-input table of RELIABILITY.md §7 (http_bad_input),
// bearer tokens and the non-loopback refusal (http_auth), concurrent clients
// and idempotency-key repeats (http_concurrency), and graceful SIGTERM, slow
// clients and Server-Sent Events (http_lifecycle).
//
// Every server is started with `--http 127.0.0.1:0 --caf 127.0.0.1:0` (free
// ports: tests run in parallel) on a fresh data directory; its ports come from
// its `ready http=HOST:PORT caf=HOST:PORT` line, its stderr goes to a log file
// that tests grep for secrets.
//
// Here: every route and error code (http_routes) and the domain edges of
// issue #14 §6 (domain_edges). The bad-input table and bearer tokens:
// http_bad_input_test.cc; concurrency, SIGTERM, slow clients and event
// streams: http_lifecycle_test.cc.
#include "tests/api/http_api_fixture.h"

using namespace giftcard::http_test;
using giftcard::test::Headers;
using giftcard::test::HttpConnection;
using giftcard::test::HttpReply;
namespace test = giftcard::test;

// ===========================================================================
BOOST_AUTO_TEST_SUITE(http_routes)

BOOST_AUTO_TEST_CASE(cards_and_codes) {
  TempDir dir;
  Server srv(dir.str("data"), dir.str("serve.log"));
  HttpConnection c(srv.port());

  // POST /api/cards: 201, the card; a parameter on the media type is fine.
  auto created = c.post("/api/cards",
                        card_body("gc-1", 500,
                                  "Gift card \xe2\x82\xac"
                                  "5"),
                        {{"Content-Type", "application/json; charset=utf-8"}});
  json card = expect_json(created, 201, "create gc-1");
  BOOST_TEST(jstr(card, "id") == "gc-1");
  BOOST_TEST(jstr(card, "name") ==
             "Gift card \xe2\x82\xac"
             "5");
  BOOST_TEST(jint(card, "price") == 500);
  BOOST_TEST(jint(card, "value") == 500);
  BOOST_TEST(jint(card, "available") == 0);
  CHECK_PROBLEM(c.post("/api/cards", card_body("gc-1", 700)), 409, "card_exists");
  BOOST_REQUIRE(c.post("/api/cards", card_body("gc-2", 100)).status == 201);

  int64_t p0 = log_position(srv.port());
  auto view = c.get("/api/cards/gc-1?after=" + std::to_string(p0));
  json v = expect_json(view, 200, "GET gc-1");
  for (const char* f :
       {"id", "name", "price", "value", "available", "assigned", "expired", "revoked"})
    BOOST_TEST(v.contains(f), "card view lacks " << f << ": " << view.body);
  BOOST_TEST(jint(v, "price") == 500);
  CHECK_PROBLEM(c.get("/api/cards/nope"), 404, "card_not_found");

  json list = expect_json(c.get("/api/cards?after=" + std::to_string(p0)), 200, "GET /api/cards");
  BOOST_REQUIRE(list.contains("cards") && list["cards"].is_array());
  std::set<std::string> ids;
  for (const auto& x : list["cards"]) ids.insert(jstr(x, "id"));
  BOOST_TEST((ids == std::set<std::string>{"gc-1", "gc-2"}));

  // POST codes: 201 {"added","position"}.
  json codes = {{"codes",
                 {{{"code", "AAAA-0001"}},
                  {{"code", "AAAA-0002"}, {"expires_at", "2099-01-31T23:59:59Z"}},
                  {{"code", "AAAA-0003"}},
                  {{"code", "AAAA-0004"}}}}};
  json added = expect_json(c.post("/api/cards/gc-1/codes", codes), 201, "add codes");
  BOOST_TEST(jint(added, "added") == 4);
  BOOST_TEST(jint(added, "position") > p0);
  CHECK_PROBLEM(c.post("/api/cards/nope/codes", codes_body({"CCCC-0001"})), 404, "card_not_found");

  // Duplicates: 409 with the conflicting codes, and nothing of the batch added.
  auto dup = c.post("/api/cards/gc-1/codes", codes_body({"AAAA-0001", "NEW1-0001", "AAAA-0003"}));
  CHECK_PROBLEM(dup, 409, "duplicate_codes");
  json dj = dup.json();
  BOOST_REQUIRE_MESSAGE(dj.is_object() && dj.contains("codes") && dj["codes"].is_array(),
                        dup.describe());
  std::vector<std::string> dcodes = dj["codes"].get<std::vector<std::string>>();
  std::sort(dcodes.begin(), dcodes.end());
  BOOST_TEST((dcodes == std::vector<std::string>{"AAAA-0001", "AAAA-0003"}), dup.describe());
  auto cross = c.post("/api/cards/gc-2/codes", codes_body({"AAAA-0002", "BBBB-0001"}));
  CHECK_PROBLEM(cross, 409, "duplicate_codes");  // codes are unique across the system
  if (cross.json().is_object() && cross.json().contains("codes"))
    BOOST_TEST(cross.json()["codes"] == json::array({"AAAA-0002"}), cross.describe());
  int64_t p1 = log_position(srv.port());
  auto within = c.post("/api/cards/gc-2/codes", codes_body({"CCCC-0001", "CCCC-0001"}));
  CHECK_PROBLEM(within, 409, "duplicate_codes");  // a duplicate inside the batch
  if (within.json().is_object() && within.json().contains("codes"))
    BOOST_TEST(within.json()["codes"] == json::array({"CCCC-0001"}), within.describe());
  BOOST_TEST(log_position(srv.port()) == p1, "a batch with a duplicate inside changed the log");
  json g1 = expect_json(c.get("/api/cards/gc-1?after=" + std::to_string(p1)), 200, "gc-1");
  BOOST_TEST(jint(g1, "available") == 4);
  json g2 = expect_json(c.get("/api/cards/gc-2?after=" + std::to_string(p1)), 200, "gc-2");
  BOOST_TEST(jint(g2, "available") == 0);
  // The codes of the refused batches were not added: they can be added now.
  json again = expect_json(
      c.post("/api/cards/gc-2/codes", codes_body({"NEW1-0001", "BBBB-0001", "CCCC-0001"})), 201,
      "add formerly refused codes");
  BOOST_TEST(jint(again, "added") == 3);

  // DELETE a code: 204 once; then it is not available; unknown codes are 404.
  auto del = c.del("/api/cards/gc-1/codes/AAAA-0004");
  BOOST_TEST(del.status == 204, del.describe());
  BOOST_TEST(del.body.empty());
  CHECK_PROBLEM(c.del("/api/cards/gc-1/codes/AAAA-0004"), 409, "code_not_available");
  CHECK_PROBLEM(c.del("/api/cards/gc-1/codes/ZZZZ-9999"), 404, "code_not_found");
  CHECK_PROBLEM(c.del("/api/cards/gc-2/codes/AAAA-0001"), 404, "code_not_found");  // another card's
  auto gone = c.del("/api/cards/nope/codes/AAAA-0001");
  BOOST_TEST((gone.status == 404 && (gone.json().value("code", "") == "card_not_found" ||
                                     gone.json().value("code", "") == "code_not_found")),
             gone.describe());
  int64_t p2 = log_position(srv.port());
  json g1b = expect_json(c.get("/api/cards/gc-1?after=" + std::to_string(p2)), 200, "gc-1");
  BOOST_TEST(jint(g1b, "available") == 3);
  BOOST_TEST(jint(g1b, "revoked") == 1);
  BOOST_TEST(c.connects() == 1, "the client's keep-alive connection was not kept");
  require_clean_stop(srv);
}

BOOST_AUTO_TEST_CASE(wallets_and_purchases) {
  TempDir dir;
  Server srv(dir.str("data"), dir.str("serve.log"));
  HttpConnection c(srv.port());
  make_card(c, "shop-1", 300, {"SHOP-0001", "SHOP-0002", "SHOP-0003"});
  make_card(c, "other", 100, {"OTHR-0001", "OTHR-0002"});
  make_card(c, "empty", 100, {});

  // Credits: 201 {"user_id","balance","position"}; a repeat is replayed.
  auto cr = c.post("/api/wallets/alice/credits", json{{"amount", 1000}}, key("fund-1"));
  json credit = expect_json(cr, 201, "credit");
  BOOST_TEST(jstr(credit, "user_id") == "alice");
  BOOST_TEST(jint(credit, "balance") == 1000);
  BOOST_TEST(jint(credit, "position") > 0);
  BOOST_TEST(!cr.has_header("Idempotent-Replayed"), cr.describe());
  auto cr2 = c.post("/api/wallets/alice/credits", json{{"amount", 1000}}, key("fund-1"));
  BOOST_TEST(cr2.status == 201, cr2.describe());
  BOOST_TEST(cr2.body == cr.body);
  BOOST_TEST(cr2.header("Idempotent-Replayed") == "true", cr2.describe());
  CHECK_PROBLEM(c.post("/api/wallets/alice/credits", json{{"amount", 999}}, key("fund-1")), 422,
                "idempotency_key_reused");
  CHECK_PROBLEM(c.post("/api/wallets/alice/credits", json{{"amount", 5}}), 400,
                "missing_idempotency_key");
  int64_t cpos = jint(credit, "position");
  json w = expect_json(c.get("/api/wallets/alice?after=" + std::to_string(cpos)), 200, "wallet");
  BOOST_TEST(jstr(w, "user_id") == "alice");
  BOOST_TEST(jint(w, "balance") == 1000);
  // Path segments are percent-decoded: %40 is '@', allowed in user ids.
  auto enc = c.post("/api/wallets/bob%40example.com/credits", json{{"amount", 70}}, key("enc-1"));
  json encj = expect_json(enc, 201, "credit to an encoded user id");
  BOOST_TEST(jstr(encj, "user_id") == "bob@example.com");
  json plain = expect_json(
      c.get("/api/wallets/bob@example.com?after=" + std::to_string(jint(encj, "position"))), 200,
      "the same wallet, unencoded");
  BOOST_TEST(jint(plain, "balance") == 70);
  json nobody = expect_json(c.get("/api/wallets/nobody"), 200, "unknown wallet");
  BOOST_TEST(jstr(nobody, "user_id") == "nobody");
  BOOST_TEST(jint(nobody, "balance") == 0);

  // Purchases.
  auto b1 = c.post("/api/purchases", json{{"card_id", "shop-1"}, {"user_id", "alice"}},
                   key("buy-1"));
  json p1 = expect_json(b1, 201, "purchase");
  for (const char* f :
       {"purchase_id", "card_id", "user_id", "code", "price", "purchased_at", "position"})
    BOOST_TEST(p1.contains(f), "purchase lacks " << f << ": " << b1.body);
  BOOST_TEST(jstr(p1, "card_id") == "shop-1");
  BOOST_TEST(jstr(p1, "user_id") == "alice");
  BOOST_TEST(jint(p1, "price") == 300);
  BOOST_TEST(jstr(p1, "code").rfind("SHOP-000", 0) == 0u, b1.body);
  BOOST_TEST(is_rfc3339_utc(jstr(p1, "purchased_at")), b1.body);
  BOOST_TEST(jint(p1, "position") > cpos);
  BOOST_TEST(!b1.has_header("Idempotent-Replayed"), b1.describe());
  auto b1r = c.post("/api/purchases", json{{"card_id", "shop-1"}, {"user_id", "alice"}},
                    key("buy-1"));
  BOOST_TEST(b1r.status == 201, b1r.describe());
  BOOST_TEST(b1r.body == b1.body, "a replay differs from the first response");
  BOOST_TEST(b1r.header("Idempotent-Replayed") == "true", b1r.describe());
  CHECK_PROBLEM(
      c.post("/api/purchases", json{{"card_id", "other"}, {"user_id", "alice"}}, key("buy-1")), 422,
      "idempotency_key_reused");
  CHECK_PROBLEM(c.post("/api/purchases", json{{"card_id", "shop-1"}, {"user_id", "alice"}}), 400,
                "missing_idempotency_key");
  CHECK_PROBLEM(
      c.post("/api/purchases", json{{"card_id", "shop-1"}, {"user_id", "alice"}}, key("")), 400,
      "missing_idempotency_key");
  CHECK_PROBLEM(
      c.post("/api/purchases", json{{"card_id", "nope"}, {"user_id", "alice"}}, key("buy-2")), 404,
      "card_not_found");
  CHECK_PROBLEM(
      c.post("/api/purchases", json{{"card_id", "empty"}, {"user_id", "alice"}}, key("buy-3")), 409,
      "out_of_stock");
  CHECK_PROBLEM(
      c.post("/api/purchases", json{{"card_id", "shop-1"}, {"user_id", "bob"}}, key("b-1")), 402,
      "insufficient_funds");
  // A refused attempt charged nothing and is not remembered: the same key
  // buys once the wallet is funded.
  fund(c, "bob", 300);
  auto bob = c.post("/api/purchases", json{{"card_id", "shop-1"}, {"user_id", "bob"}}, key("b-1"));
  BOOST_TEST(bob.status == 201, bob.describe());
  BOOST_TEST(!bob.has_header("Idempotent-Replayed"));
  // A key of exactly 128 characters is fine.
  auto b2 = c.post("/api/purchases", json{{"card_id", "shop-1"}, {"user_id", "alice"}},
                   key(std::string(128, 'k')));
  json p2 = expect_json(b2, 201, "purchase with a 128-character key");
  BOOST_TEST(jstr(p2, "code") != jstr(p1, "code"));
  BOOST_TEST(jstr(p2, "purchase_id") != jstr(p1, "purchase_id"));

  // Reads with ?after=P see the writes at P.
  int64_t pos2 = jint(p2, "position");
  json wa = expect_json(c.get("/api/wallets/alice?after=" + std::to_string(pos2)), 200, "wallet");
  BOOST_TEST(jint(wa, "balance") == 1000 - 2 * 300);
  auto look = c.get("/api/purchases/" + jstr(p1, "purchase_id") + "?after=" + std::to_string(pos2));
  BOOST_TEST(expect_json(look, 200, "GET purchase") == p1, look.describe());
  CHECK_PROBLEM(c.get("/api/purchases/p_does_not_exist_1"), 404, "purchase_not_found");
  json hist = expect_json(c.get("/api/users/alice/purchases?after=" + std::to_string(pos2)), 200,
                          "history");
  BOOST_REQUIRE(hist.contains("purchases") && hist["purchases"].is_array());
  BOOST_REQUIRE(hist["purchases"].size() == 2u);
  BOOST_TEST(hist["purchases"][0] == p1);  // log order
  BOOST_TEST(hist["purchases"][1] == p2);
  json none = expect_json(c.get("/api/users/nobody/purchases"), 200, "empty history");
  BOOST_TEST(none["purchases"] == json::array());
  json shop1 = expect_json(c.get("/api/cards/shop-1?after=" + std::to_string(pos2)), 200, "card");
  BOOST_TEST(jint(shop1, "assigned") == 3);
  BOOST_TEST(jint(shop1, "available") == 0);
  fund(c, "bob", 300, "fund-2");  // bob can pay, but nothing is left
  CHECK_PROBLEM(
      c.post("/api/purchases", json{{"card_id", "shop-1"}, {"user_id", "bob"}}, key("b-2")), 409,
      "out_of_stock");
  BOOST_TEST(c.connects() == 1, "the client's keep-alive connection was not kept");
  require_clean_stop(srv);
  require_verified(srv.data());
}

BOOST_AUTO_TEST_CASE(read_your_writes_with_after) {
  TempDir dir;
  Server srv(dir.str("data"), dir.str("serve.log"));
  HttpConnection c(srv.port());
  const int kRounds = by_build(40, 15);
  make_card(c, "ryw", 10, numbered("RYW", kRounds));
  for (int i = 0; i < kRounds; ++i) {
    // Write, then read at once with after=<the write's position>.
    auto cr = c.post("/api/wallets/reader/credits", json{{"amount", 10}},
                     key("c-" + std::to_string(i)));
    json credit = expect_json(cr, 201, "credit");
    int64_t cp = jint(credit, "position");
    json w = expect_json(c.get("/api/wallets/reader?after=" + std::to_string(cp)), 200, "wallet");
    BOOST_TEST(jint(w, "balance") == 10,
               "round " << i << ": the credit at " << cp << " is not visible");
    auto pr = c.post("/api/purchases", json{{"card_id", "ryw"}, {"user_id", "reader"}},
                     key("p-" + std::to_string(i)));
    json p = expect_json(pr, 201, "purchase");
    int64_t pp = jint(p, "position");
    std::string after = "?after=" + std::to_string(pp);
    json w2 = expect_json(c.get("/api/wallets/reader" + after), 200, "wallet");
    BOOST_TEST(jint(w2, "balance") == 0,
               "round " << i << ": the debit at " << pp << " is not visible");
    json card = expect_json(c.get("/api/cards/ryw" + after), 200, "card");
    BOOST_TEST(jint(card, "assigned") == i + 1, "round " << i);
    auto look = c.get("/api/purchases/" + jstr(p, "purchase_id") + after);
    BOOST_TEST(look.status == 200, "round " << i << ": " << look.describe());
    json hist = expect_json(c.get("/api/users/reader/purchases" + after), 200, "history");
    BOOST_TEST(hist["purchases"].size() == static_cast<size_t>(i + 1), "round " << i);
  }
  // A position beyond the log is a bad request, on every GET that reads projections.
  int64_t head = log_position(srv.port());
  std::string beyond = "?after=" + std::to_string(head + 1000);
  for (const char* path :
       {"/api/cards", "/api/cards/ryw", "/api/wallets/reader", "/api/users/reader/purchases"})
    CHECK_PROBLEM(c.get(std::string(path) + beyond), 400, "invalid_request");
  CHECK_PROBLEM(c.get("/api/cards?after=abc"), 400, "invalid_request");
  CHECK_PROBLEM(c.get("/api/cards?after=-1"), 400, "invalid_request");
  BOOST_TEST(c.get("/api/cards?after=" + std::to_string(head)).status == 200);
  require_clean_stop(srv);
}

BOOST_AUTO_TEST_CASE(events_health_metrics_and_unknown_routes) {
  TempDir dir;
  Server srv(dir.str("data"), dir.str("serve.log"));
  HttpConnection c(srv.port());
  make_card(c, "ev", 50, numbered("EVT", 5));
  fund(c, "eve", 500);
  std::vector<json> bought;
  for (int i = 0; i < 3; ++i) {
    auto r = c.post("/api/purchases", json{{"card_id", "ev"}, {"user_id", "eve"}},
                    key("e" + std::to_string(i)));
    bought.push_back(expect_json(r, 201, "purchase"));
  }
  BOOST_REQUIRE(c.del("/api/cards/ev/codes/" + std::string("EVT-000004")).status == 204);

  // /healthz
  auto h = c.get("/healthz");
  json hj = expect_json(h, 200, "healthz");
  BOOST_TEST(jstr(hj, "status") == "ok");
  const int64_t head = jint(hj, "position");
  // card + codes + credit + 3 x (CodeAssigned + WalletDebited) + revoke
  BOOST_TEST(head == 1 + 1 + 1 + 3 * 2 + 1, h.body);

  // GET /api/events: pages of `limit`, "next" to continue, positions 1..head.
  std::vector<json> events;
  int64_t from = 1;
  int pages = 0;
  for (;;) {
    auto r = c.get("/api/events?from=" + std::to_string(from) + "&limit=4");
    json j = expect_json(r, 200, "events page");
    BOOST_REQUIRE(j.contains("events") && j["events"].is_array());
    int64_t next = jint(j, "next", -1);
    if (j["events"].empty()) {
      BOOST_TEST(next == from, "next of an empty page: " << r.body);
      break;
    }
    BOOST_TEST(j["events"].size() <= 4u);
    BOOST_TEST(next == jint(j["events"].back(), "position") + 1, r.body);
    for (auto& e : j["events"]) events.push_back(e);
    from = next;
    BOOST_REQUIRE(++pages < 100);
  }
  BOOST_TEST(pages == 3);
  BOOST_REQUIRE(events.size() == static_cast<size_t>(head));
  std::map<std::string, int> types;
  for (size_t i = 0; i < events.size(); ++i) {
    const json& e = events[i];
    BOOST_TEST(jint(e, "position") == static_cast<int64_t>(i + 1));
    BOOST_TEST(jint(e, "version") >= 1);
    BOOST_TEST(
        (jstr(e, "stream").rfind("card-", 0) == 0 || jstr(e, "stream").rfind("wallet-", 0) == 0),
        e.dump());
    BOOST_TEST(is_rfc3339_utc(jstr(e, "recorded_at")), e.dump());
    BOOST_TEST((e.contains("data") && e["data"].is_object()), e.dump());
    ++types[jstr(e, "type")];
  }
  BOOST_TEST(types["CardCreated"] == 1);
  BOOST_TEST(types["CodesAdded"] == 1);
  BOOST_TEST(types["WalletCredited"] == 1);
  BOOST_TEST(types["CodeAssigned"] == 3);
  BOOST_TEST(types["WalletDebited"] == 3);
  BOOST_TEST(types["CodeRevoked"] == 1);
  // A purchase's position is its CodeAssigned event.
  for (const auto& p : bought) {
    const json& e = events.at(static_cast<size_t>(jint(p, "position") - 1));
    BOOST_TEST(jstr(e, "type") == "CodeAssigned");
    BOOST_TEST(jstr(e["data"], "purchase_id") == jstr(p, "purchase_id"));
    BOOST_TEST(jstr(e["data"], "code") == jstr(p, "code"));
  }
  json dflt = expect_json(c.get("/api/events"), 200, "events, default paging");
  BOOST_TEST(dflt["events"].size() == static_cast<size_t>(head));
  BOOST_TEST(jint(dflt, "next") == head + 1);
  CHECK_PROBLEM(c.get("/api/events?limit=0"), 400, "invalid_request");
  CHECK_PROBLEM(c.get("/api/events?from=abc"), 400, "invalid_request");

  // /metrics: Prometheus text format.
  auto m = c.get("/metrics");
  BOOST_TEST(m.status == 200, m.describe());
  BOOST_TEST(media_type(m) == "text/plain", m.header("Content-Type"));
  BOOST_TEST(m.header("Content-Type").find("version=0.0.4") != std::string::npos,
             m.header("Content-Type"));
  std::set<std::string> typed;
  std::map<std::string, std::string> values;
  std::istringstream lines(m.body);
  std::string line;
  int samples = 0;
  while (std::getline(lines, line)) {
    if (line.empty() || line.rfind("# HELP ", 0) == 0) continue;
    if (line.rfind("# TYPE ", 0) == 0) {
      std::istringstream words(line.substr(7));
      std::string name, type, extra;
      words >> name >> type >> extra;
      static const std::set<std::string> kTypes = {"counter", "gauge", "histogram", "summary",
                                                   "untyped"};
      BOOST_TEST((is_metric_name(name) && kTypes.count(type) == 1 && extra.empty()),
                 "bad TYPE line: " << line);
      typed.insert(name);
      continue;
    }
    BOOST_TEST(line[0] != '#', "unknown comment: " << line);
    std::string name, series, value;
    bool ok = parse_sample(line, &name, &series, &value);
    BOOST_TEST(ok, "not a Prometheus sample: " << line);
    if (!ok) continue;
    ++samples;
    BOOST_TEST(typed.count(name) == 1u, "sample before its # TYPE: " << line);
    values[series] = value;
  }
  BOOST_TEST(samples >= 5);
  BOOST_TEST(values["giftcard_log_position"] == std::to_string(head), m.body);
  BOOST_TEST(values["giftcard_purchases_total{outcome=\"ok\"}"] == "3", m.body);
  for (const auto& p : bought)
    BOOST_TEST(m.body.find(jstr(p, "code")) == std::string::npos, "an activation code in /metrics");

  // Unknown routes: 404; known routes with a wrong method: 405 with Allow.
  CHECK_PROBLEM(c.get("/api/nothing"), 404, "not_found");
  CHECK_PROBLEM(c.get("/"), 404, "not_found");
  CHECK_PROBLEM(c.get("/api/cards/ev/codes/EVT-000000/extra"), 404, "not_found");
  std::string without_allow;
  struct Wrong {
    const char* method;
    const char* path;
  };
  for (auto [method, path] :
       {Wrong{"PUT", "/api/cards"}, Wrong{"DELETE", "/api/cards/ev"},
        Wrong{"GET", "/api/cards/ev/codes"}, Wrong{"POST", "/api/cards/ev/codes/EVT-000000"},
        Wrong{"DELETE", "/api/purchases"}, Wrong{"POST", "/api/wallets/eve"},
        Wrong{"GET", "/api/wallets/eve/credits"}, Wrong{"PATCH", "/api/purchases/x"},
        Wrong{"POST", "/api/events"}, Wrong{"POST", "/healthz"}, Wrong{"DELETE", "/metrics"},
        Wrong{"POST", "/api/users/eve/purchases"}}) {
    auto r = c.request(method, path, std::string_view(method) == "POST" ? "{}" : "",
                       {{"Content-Type", "application/json"}});
    CHECK_PROBLEM(r, 405, "method_not_allowed");
    if (!r.has_header("Allow")) without_allow += std::string(" ") + method + " " + path + ";";
  }
  // RFC 9110 §15.5.6: "The origin server MUST generate an Allow header field
  // in a 405 response containing a list of the target resource's currently
  // supported methods."
  BOOST_TEST(without_allow.empty(), "405 without an Allow header:" << without_allow);
  BOOST_TEST(log_position(srv.port()) == head, "bad routes changed the log");
  require_clean_stop(srv);
}

BOOST_AUTO_TEST_SUITE_END()

// Domain edge cases of issue #14 §6 against the real server: an expiry at or
// before the Unix epoch is an expiry, never "never" (events/events.h,
// CodeSpec v2), and importing an already expired code is refused whole; the
// duplicate_codes detail counts the codes it lists.
BOOST_AUTO_TEST_SUITE(domain_edges)

namespace {

json code_with_expiry(const std::string& code, const std::string& expires_at) {
  return {{"code", code}, {"expires_at", expires_at}};
}

// The leading count of a detail such as "2 code(s) already exist ..."; -1 if none.
int64_t leading_count(const std::string& detail) {
  size_t n = 0;
  while (n < detail.size() && std::isdigit(static_cast<unsigned char>(detail[n]))) ++n;
  return n == 0 ? -1 : std::stoll(detail.substr(0, n));
}

// Now + `ahead` as RFC 3339 UTC, whole seconds rounded up.
std::string rfc3339_in(std::chrono::seconds ahead) {
  auto t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now() + ahead) + 1;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace

BOOST_AUTO_TEST_CASE(expiry_at_or_before_the_epoch_is_never_sold) {
  TempDir dir;
  Server srv(dir.str("data"), dir.str("serve.log"));
  HttpConnection c(srv.port());
  BOOST_REQUIRE(c.post("/api/cards", card_body("edge-1", 100)).status == 201);
  fund(c, "eve", 1000);
  const int64_t p0 = log_position(srv.port());

  // Was stored as 0 = "never expires" and sold: now an expiry, already past,
  // refused with the index and the instant. The same for an instant before the
  // epoch (was "bad expires_at"), the epoch with an offset, and a batch that
  // holds one such code among good ones: nothing of it is added.
  const std::vector<std::pair<json, std::string>> refused = {
      {json::array({code_with_expiry("EPOCH-0001", "1970-01-01T00:00:00Z")}), "codes[0]"},
      {json::array({code_with_expiry("PRE-0001", "1969-12-31T23:59:59Z")}), "codes[0]"},
      {json::array({code_with_expiry("EPOCH-0002", "1970-01-01T01:00:00+01:00")}), "codes[0]"},
      {json::array({json{{"code", "LIVE-0001"}},
                    code_with_expiry("EPOCH-0003", "1970-01-01T00:00:00.000000Z"),
                    code_with_expiry("LIVE-0002", "2099-01-01T00:00:00Z")}),
       "codes[1]"},
      {json::array({code_with_expiry("OLD-0001", "0001-01-01T00:00:00Z")}), "codes[0]"},
  };
  for (const auto& [codes, where] : refused) {
    auto r = c.post("/api/cards/edge-1/codes", json{{"codes", codes}});
    CHECK_PROBLEM(r, 400, "invalid_request");
    const std::string detail = r.json().is_object() ? jstr(r.json(), "detail") : "";
    BOOST_TEST(detail.rfind(where + ": expires_at ", 0) == 0u, r.describe());
    BOOST_TEST(detail.find("already expired") != std::string::npos, r.describe());
  }
  BOOST_TEST(log_position(srv.port()) == p0, "a refused import changed the log");

  // Nothing was sold: out of stock, nothing counted as available or expired.
  CHECK_PROBLEM(
      c.post("/api/purchases", json{{"card_id", "edge-1"}, {"user_id", "eve"}}, key("e-1")), 409,
      "out_of_stock");
  json v = expect_json(c.get("/api/cards/edge-1?after=" + std::to_string(p0)), 200, "edge-1");
  BOOST_TEST(jint(v, "available") == 0);
  BOOST_TEST(jint(v, "expired") == 0);
  BOOST_TEST(jint(v, "assigned") == 0);

  // The refused codes were not claimed: with a corrected expiry they import.
  json fixed = {{"codes", json::array({code_with_expiry("EPOCH-0001", "2099-01-01T00:00:00Z"),
                                       json{{"code", "PRE-0001"}}})}};
  json added = expect_json(c.post("/api/cards/edge-1/codes", fixed), 201, "corrected import");
  BOOST_TEST(jint(added, "added") == 2);
  // GET /api/events shows the expiry that is there and none for "never".
  bool seen = false;
  for (const auto& e : all_events(c)) {
    if (e.value("type", "") != "CodesAdded" || !e.contains("data")) continue;
    const json& cs = e["data"]["codes"];
    BOOST_REQUIRE(cs.is_array() && cs.size() == 2u);
    BOOST_TEST(jstr(cs[0], "code") == "EPOCH-0001");
    BOOST_TEST(jstr(cs[0], "expires_at") == "2099-01-01T00:00:00.000000Z", e.dump());
    BOOST_TEST(jstr(cs[1], "code") == "PRE-0001");
    BOOST_TEST(!cs[1].contains("expires_at"), e.dump());
    seen = true;
  }
  BOOST_TEST(seen, "no CodesAdded in GET /api/events");
  auto b = c.post("/api/purchases", json{{"card_id", "edge-1"}, {"user_id", "eve"}}, key("e-2"));
  BOOST_TEST(jstr(expect_json(b, 201, "purchase"), "code") == "EPOCH-0001");

  // An expiry still ahead at import is accepted, then expires like any other:
  // never sold after it, recorded as expired.
  BOOST_REQUIRE(c.post("/api/cards", card_body("edge-2", 100)).status == 201);
  const auto ahead = by_build(std::chrono::seconds(2), std::chrono::seconds(10));
  json soon = {{"codes", json::array({code_with_expiry("SOON-0001", rfc3339_in(ahead))})}};
  BOOST_REQUIRE(
      expect_json(c.post("/api/cards/edge-2/codes", soon), 201, "soon").value("added", 0) == 1);
  std::this_thread::sleep_for(ahead + std::chrono::milliseconds(1500));
  CHECK_PROBLEM(
      c.post("/api/purchases", json{{"card_id", "edge-2"}, {"user_id", "eve"}}, key("e-3")), 409,
      "out_of_stock");
  // The CodesExpired that the purchase attempt found is appended after its
  // answer: wait for it.
  json v2;
  for (auto until = Clock::now() + by_build(10s, 30s); Clock::now() < until;
       std::this_thread::sleep_for(50ms)) {
    const int64_t p1 = log_position(srv.port());
    v2 = expect_json(c.get("/api/cards/edge-2?after=" + std::to_string(p1)), 200, "edge-2");
    if (jint(v2, "expired") == 1) break;
  }
  BOOST_TEST(jint(v2, "expired") == 1, v2.dump());
  BOOST_TEST(jint(v2, "available") == 0, v2.dump());

  require_clean_stop(srv);
  require_verified(dir.str("data"));
}

// A code that another card holds: 409 duplicate_codes whose detail counts the
// codes it lists (it once said "0 code(s)": the count was taken after the
// list had been moved into the error).
BOOST_AUTO_TEST_CASE(duplicate_codes_detail_counts_the_listed_codes) {
  TempDir dir;
  Server srv(dir.str("data"), dir.str("serve.log"));
  HttpConnection c(srv.port());
  make_card(c, "dup-a", 100, {"DUP-0001", "DUP-0002", "DUP-0003"});
  BOOST_REQUIRE(c.post("/api/cards", card_body("dup-b", 100)).status == 201);
  const int64_t p0 = log_position(srv.port());

  struct Case {
    std::string card;
    std::vector<std::string> batch, conflicts;
  };
  const std::vector<Case> cases = {
      {"dup-b", {"DUP-0001", "NEW-0001"}, {"DUP-0001"}},  // another card's: store claim
      {"dup-b", {"DUP-0002", "NEW-0002", "DUP-0003"}, {"DUP-0002", "DUP-0003"}},
      {"dup-a", {"NEW-0003", "DUP-0001"}, {"DUP-0001"}},  // this card's: decided
  };
  for (const auto& k : cases) {
    auto r = c.post("/api/cards/" + k.card + "/codes", codes_body(k.batch));
    CHECK_PROBLEM(r, 409, "duplicate_codes");
    json j = r.json();
    BOOST_REQUIRE_MESSAGE(j.is_object() && j.contains("codes") && j["codes"].is_array(),
                          r.describe());
    auto listed = j["codes"].get<std::vector<std::string>>();
    std::sort(listed.begin(), listed.end());
    BOOST_TEST(listed == k.conflicts, r.describe());
    BOOST_TEST(leading_count(jstr(j, "detail")) == static_cast<int64_t>(listed.size()),
               r.describe());
  }
  BOOST_TEST(log_position(srv.port()) == p0, "a refused batch changed the log");
  json b = expect_json(c.get("/api/cards/dup-b?after=" + std::to_string(p0)), 200, "dup-b");
  BOOST_TEST(jint(b, "available") == 0);
  require_clean_stop(srv);
}

BOOST_AUTO_TEST_SUITE_END()
