// The HTTP API of SPEC §4 against a real `giftcard serve` child process over
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
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/test/unit_test.hpp>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <latch>
#include <limits>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/http_client.h"
#include "tests/support/process.h"
#include "tests/support/serve_child.h"

extern char** environ;

namespace giftcard::http_test {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using json = nlohmann::json;
using namespace std::chrono_literals;
using test::Headers;
using test::HttpConnection;
using test::HttpReply;

using namespace giftcard::test;  // processes: tests/support/process.h

// The `giftcard serve` child: tests/support/serve_child.h.
using Server = test::ServeChild;

// SIGTERM: the server must exit 0 within `timeout`.
void require_clean_stop(Server& s, std::chrono::milliseconds timeout = by_build(15s, 60s)) {
  auto t0 = Clock::now();
  s.signal(SIGTERM);
  auto status = s.wait(timeout);
  if (!status)
    BOOST_FAIL("serve did not exit within " << timeout.count() << " ms of SIGTERM; stderr:\n"
                                            << s.log());
  BOOST_TEST_MESSAGE("serve stopped in " << ms_since(t0) << " ms");
  BOOST_TEST((WIFEXITED(*status) && WEXITSTATUS(*status) == 0),
             "serve after SIGTERM: " << describe_status(*status) << "; stderr:\n" << s.log());
}

// `giftcard verify` on a stopped server's data directory must exit 0.
void require_verified(const std::string& data) {
  auto v = run_giftcard({"verify", "--data", data}, {}, by_build(60s, 180s));
  BOOST_TEST(v.code() == 0, "giftcard verify: " << v.describe());
}

// ---------------------------------------------------------------------------
// JSON and problem details

int64_t jint(const json& j, const char* key, int64_t dflt = std::numeric_limits<int64_t>::min()) {
  if (!j.is_object()) return dflt;
  auto it = j.find(key);
  if (it == j.end() || !it->is_number_integer()) return dflt;
  return it->get<int64_t>();
}
std::string jstr(const json& j, const char* key) {
  if (!j.is_object()) return "<not an object>";
  auto it = j.find(key);
  if (it == j.end() || !it->is_string()) return "<missing>";
  return it->get<std::string>();
}

std::string media_type(const HttpReply& r) {
  std::string ct = r.header("Content-Type");
  ct = ct.substr(0, ct.find(';'));
  while (!ct.empty() && ct.back() == ' ') ct.pop_back();
  return ct;
}

// Why `r` is not an RFC 9457 problem with this status and code ("" if it is).
std::string problem_mismatch(const HttpReply& r, int status, const std::string& code) {
  if (!r.ok()) return "no response: " + r.error;
  if (r.status != status) return "status " + std::to_string(r.status) + ", expected " + std::to_string(status);
  if (media_type(r) != "application/problem+json") return "Content-Type " + r.header("Content-Type");
  json j = r.json();
  if (!j.is_object()) return "body is not a JSON object";
  for (const char* f : {"type", "title", "detail", "code"})
    if (!j.contains(f) || !j[f].is_string()) return std::string("field ") + f + " missing or not a string";
  if (jint(j, "status", -1) != status) return "field status is not " + std::to_string(status);
  if (j["code"] != code) return "code " + j["code"].get<std::string>() + ", expected " + code;
  return {};
}

#define CHECK_PROBLEM(reply, status, code)                                       \
  do {                                                                           \
    const HttpReply& r_ = (reply);                                               \
    std::string why_ = problem_mismatch(r_, (status), (code));                   \
    BOOST_TEST(why_.empty(), #reply << ": " << why_ << " — " << r_.describe());  \
  } while (0)

// A 2xx application/json reply with this status; its body.
json expect_json(const HttpReply& r, int status, const std::string& what) {
  BOOST_TEST(r.status == status, what << ": " << r.describe());
  BOOST_TEST(media_type(r) == "application/json", what << ": " << r.describe());
  json j = r.json();
  BOOST_TEST(j.is_object(), what << ": body is not a JSON object: " << r.describe());
  return j.is_object() ? j : json::object();
}

Headers key(const std::string& k) { return {{"Idempotency-Key", k}}; }
Headers bearer(const std::string& token) { return {{"Authorization", "Bearer " + token}}; }

json card_body(const std::string& id, int64_t price, const std::string& name = "") {
  return {{"id", id}, {"name", name.empty() ? "Card " + id : name}, {"price", price}, {"value", price}};
}

json codes_body(const std::vector<std::string>& codes) {
  json arr = json::array();
  for (const auto& c : codes) arr.push_back({{"code", c}});
  return {{"codes", arr}};
}

std::vector<std::string> numbered(const std::string& prefix, int n, int from = 0) {
  std::vector<std::string> out;
  char buf[16];
  for (int i = from; i < from + n; ++i) {
    std::snprintf(buf, sizeof buf, "%06d", i);
    out.push_back(prefix + "-" + buf);
  }
  return out;
}

// Admin set-up through HTTP: a card with codes; a funded wallet.
void make_card(HttpConnection& c, const std::string& id, int64_t price,
               const std::vector<std::string>& codes) {
  auto r = c.post("/api/cards", card_body(id, price));
  BOOST_REQUIRE_MESSAGE(r.status == 201, "create " << id << ": " << r.describe());
  for (size_t i = 0; i < codes.size(); i += 100000) {
    std::vector<std::string> part(codes.begin() + static_cast<long>(i),
                                  codes.begin() + static_cast<long>(std::min(codes.size(), i + 100000)));
    auto a = c.post("/api/cards/" + id + "/codes", codes_body(part));
    BOOST_REQUIRE_MESSAGE(a.status == 201, "codes of " << id << ": " << a.describe());
  }
}
int64_t fund(HttpConnection& c, const std::string& user, int64_t amount, const std::string& k = "fund") {
  auto r = c.post("/api/wallets/" + user + "/credits", json{{"amount", amount}}, key(k));
  BOOST_REQUIRE_MESSAGE(r.status == 201, "credit " << user << ": " << r.describe());
  return jint(r.json(), "position", -1);
}

// YYYY-MM-DDTHH:MM:SS[.fraction of 1..9 digits]Z
bool is_rfc3339_utc(const std::string& s) {
  const std::string shape = "dddd-dd-ddTdd:dd:dd";
  if (s.size() < shape.size() + 1 || s.back() != 'Z') return false;
  for (size_t i = 0; i < shape.size(); ++i)
    if (shape[i] == 'd' ? !std::isdigit(static_cast<unsigned char>(s[i])) : s[i] != shape[i]) return false;
  std::string_view frac(s.data() + shape.size(), s.size() - shape.size() - 1);
  if (frac.empty()) return true;
  if (frac[0] != '.' || frac.size() < 2 || frac.size() > 10) return false;
  return std::all_of(frac.begin() + 1, frac.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
}

// Prometheus text format (0.0.4), one line.
bool is_metric_name(std::string_view n) {
  if (n.empty() || std::isdigit(static_cast<unsigned char>(n[0]))) return false;
  return std::all_of(n.begin(), n.end(),
                     [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == ':'; });
}
// A sample `name{label="value",...} number`: its name and label set in *series
// ("name{...}") and its value in *value; false if malformed.
bool parse_sample(const std::string& line, std::string* name, std::string* series, std::string* value) {
  size_t i = 0;
  while (i < line.size() && line[i] != '{' && line[i] != ' ') ++i;
  *name = line.substr(0, i);
  if (!is_metric_name(*name)) return false;
  if (i < line.size() && line[i] == '{') {
    ++i;
    for (bool first = true;; first = false) {
      if (i < line.size() && line[i] == '}' && first) break;
      size_t eq = line.find('=', i);
      if (eq == std::string::npos) return false;
      std::string_view label(line.data() + i, eq - i);
      if (label.empty() || label.find(':') != std::string_view::npos || !is_metric_name(label)) return false;
      if (eq + 1 >= line.size() || line[eq + 1] != '"') return false;
      size_t close = eq + 2;
      while (close < line.size() && line[close] != '"') close += line[close] == '\\' ? 2 : 1;
      if (close >= line.size()) return false;
      i = close + 1;
      if (i < line.size() && line[i] == ',') {
        ++i;
        continue;
      }
      if (i < line.size() && line[i] == '}') break;
      return false;
    }
    ++i;  // the '}'
  }
  *series = line.substr(0, i);
  if (i >= line.size() || line[i] != ' ') return false;
  *value = line.substr(i + 1);
  if (*value == "NaN" || *value == "+Inf" || *value == "-Inf") return true;
  if (value->empty() || value->find(' ') != std::string::npos) return false;
  char* end = nullptr;
  std::strtod(value->c_str(), &end);
  return end == value->c_str() + value->size();
}

// Every event of the log through GET /api/events, page by page.
std::vector<json> all_events(HttpConnection& c, int64_t page = 1000) {
  std::vector<json> out;
  int64_t from = 1;
  for (int guard = 0; guard < 100000; ++guard) {
    auto r = c.get("/api/events?from=" + std::to_string(from) + "&limit=" + std::to_string(page));
    BOOST_REQUIRE_MESSAGE(r.status == 200, "GET /api/events: " << r.describe());
    json j = r.json();
    BOOST_REQUIRE(j.is_object() && j.contains("events") && j["events"].is_array());
    if (j["events"].empty()) break;
    for (auto& e : j["events"]) out.push_back(e);
    int64_t next = jint(j, "next", -1);
    BOOST_REQUIRE_MESSAGE(next > from, "next " << next << " after from " << from);
    from = next;
  }
  return out;
}

}  // namespace
}  // namespace giftcard::http_test

using namespace giftcard::http_test;
using giftcard::test::HttpConnection;
using giftcard::test::HttpReply;
using giftcard::test::Headers;
namespace test = giftcard::test;

// ===========================================================================
BOOST_AUTO_TEST_SUITE(http_routes)

BOOST_AUTO_TEST_CASE(cards_and_codes) {
  TempDir dir;
  Server srv(dir.str("data"), dir.str("serve.log"));
  HttpConnection c(srv.port());

  // POST /api/cards: 201, the card; a parameter on the media type is fine.
  auto created = c.post("/api/cards", card_body("gc-1", 500, "Gift card \xe2\x82\xac" "5"),
                        {{"Content-Type", "application/json; charset=utf-8"}});
  json card = expect_json(created, 201, "create gc-1");
  BOOST_TEST(jstr(card, "id") == "gc-1");
  BOOST_TEST(jstr(card, "name") == "Gift card \xe2\x82\xac" "5");
  BOOST_TEST(jint(card, "price") == 500);
  BOOST_TEST(jint(card, "value") == 500);
  BOOST_TEST(jint(card, "available") == 0);
  CHECK_PROBLEM(c.post("/api/cards", card_body("gc-1", 700)), 409, "card_exists");
  BOOST_REQUIRE(c.post("/api/cards", card_body("gc-2", 100)).status == 201);

  int64_t p0 = log_position(srv.port());
  auto view = c.get("/api/cards/gc-1?after=" + std::to_string(p0));
  json v = expect_json(view, 200, "GET gc-1");
  for (const char* f : {"id", "name", "price", "value", "available", "assigned", "expired", "revoked"})
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
  BOOST_REQUIRE_MESSAGE(dj.is_object() && dj.contains("codes") && dj["codes"].is_array(), dup.describe());
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
  json again = expect_json(c.post("/api/cards/gc-2/codes", codes_body({"NEW1-0001", "BBBB-0001", "CCCC-0001"})),
                           201, "add formerly refused codes");
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
  json plain = expect_json(c.get("/api/wallets/bob@example.com?after=" + std::to_string(jint(encj, "position"))),
                           200, "the same wallet, unencoded");
  BOOST_TEST(jint(plain, "balance") == 70);
  json nobody = expect_json(c.get("/api/wallets/nobody"), 200, "unknown wallet");
  BOOST_TEST(jstr(nobody, "user_id") == "nobody");
  BOOST_TEST(jint(nobody, "balance") == 0);

  // Purchases.
  auto b1 = c.post("/api/purchases", json{{"card_id", "shop-1"}, {"user_id", "alice"}}, key("buy-1"));
  json p1 = expect_json(b1, 201, "purchase");
  for (const char* f : {"purchase_id", "card_id", "user_id", "code", "price", "purchased_at", "position"})
    BOOST_TEST(p1.contains(f), "purchase lacks " << f << ": " << b1.body);
  BOOST_TEST(jstr(p1, "card_id") == "shop-1");
  BOOST_TEST(jstr(p1, "user_id") == "alice");
  BOOST_TEST(jint(p1, "price") == 300);
  BOOST_TEST(jstr(p1, "code").rfind("SHOP-000", 0) == 0u, b1.body);
  BOOST_TEST(is_rfc3339_utc(jstr(p1, "purchased_at")), b1.body);
  BOOST_TEST(jint(p1, "position") > cpos);
  BOOST_TEST(!b1.has_header("Idempotent-Replayed"), b1.describe());
  auto b1r = c.post("/api/purchases", json{{"card_id", "shop-1"}, {"user_id", "alice"}}, key("buy-1"));
  BOOST_TEST(b1r.status == 201, b1r.describe());
  BOOST_TEST(b1r.body == b1.body, "a replay differs from the first response");
  BOOST_TEST(b1r.header("Idempotent-Replayed") == "true", b1r.describe());
  CHECK_PROBLEM(c.post("/api/purchases", json{{"card_id", "other"}, {"user_id", "alice"}}, key("buy-1")),
                422, "idempotency_key_reused");
  CHECK_PROBLEM(c.post("/api/purchases", json{{"card_id", "shop-1"}, {"user_id", "alice"}}), 400,
                "missing_idempotency_key");
  CHECK_PROBLEM(c.post("/api/purchases", json{{"card_id", "shop-1"}, {"user_id", "alice"}}, key("")),
                400, "missing_idempotency_key");
  CHECK_PROBLEM(c.post("/api/purchases", json{{"card_id", "nope"}, {"user_id", "alice"}}, key("buy-2")),
                404, "card_not_found");
  CHECK_PROBLEM(c.post("/api/purchases", json{{"card_id", "empty"}, {"user_id", "alice"}}, key("buy-3")),
                409, "out_of_stock");
  CHECK_PROBLEM(c.post("/api/purchases", json{{"card_id", "shop-1"}, {"user_id", "bob"}}, key("b-1")),
                402, "insufficient_funds");
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
  json hist = expect_json(c.get("/api/users/alice/purchases?after=" + std::to_string(pos2)), 200, "history");
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
  CHECK_PROBLEM(c.post("/api/purchases", json{{"card_id", "shop-1"}, {"user_id", "bob"}}, key("b-2")),
                409, "out_of_stock");
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
    auto cr = c.post("/api/wallets/reader/credits", json{{"amount", 10}}, key("c-" + std::to_string(i)));
    json credit = expect_json(cr, 201, "credit");
    int64_t cp = jint(credit, "position");
    json w = expect_json(c.get("/api/wallets/reader?after=" + std::to_string(cp)), 200, "wallet");
    BOOST_TEST(jint(w, "balance") == 10, "round " << i << ": the credit at " << cp << " is not visible");
    auto pr = c.post("/api/purchases", json{{"card_id", "ryw"}, {"user_id", "reader"}}, key("p-" + std::to_string(i)));
    json p = expect_json(pr, 201, "purchase");
    int64_t pp = jint(p, "position");
    std::string after = "?after=" + std::to_string(pp);
    json w2 = expect_json(c.get("/api/wallets/reader" + after), 200, "wallet");
    BOOST_TEST(jint(w2, "balance") == 0, "round " << i << ": the debit at " << pp << " is not visible");
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
  for (const char* path : {"/api/cards", "/api/cards/ryw", "/api/wallets/reader",
                           "/api/users/reader/purchases"})
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
    auto r = c.post("/api/purchases", json{{"card_id", "ev"}, {"user_id", "eve"}}, key("e" + std::to_string(i)));
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
    BOOST_TEST((jstr(e, "stream").rfind("card-", 0) == 0 || jstr(e, "stream").rfind("wallet-", 0) == 0), e.dump());
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
  BOOST_TEST(m.header("Content-Type").find("version=0.0.4") != std::string::npos, m.header("Content-Type"));
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
      static const std::set<std::string> kTypes = {"counter", "gauge", "histogram", "summary", "untyped"};
      BOOST_TEST((is_metric_name(name) && kTypes.count(type) == 1 && extra.empty()), "bad TYPE line: " << line);
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
  for (auto [method, path] : {Wrong{"PUT", "/api/cards"}, Wrong{"DELETE", "/api/cards/ev"},
                              Wrong{"GET", "/api/cards/ev/codes"}, Wrong{"POST", "/api/cards/ev/codes/EVT-000000"},
                              Wrong{"DELETE", "/api/purchases"}, Wrong{"POST", "/api/wallets/eve"},
                              Wrong{"GET", "/api/wallets/eve/credits"}, Wrong{"PATCH", "/api/purchases/x"},
                              Wrong{"POST", "/api/events"}, Wrong{"POST", "/healthz"},
                              Wrong{"DELETE", "/metrics"}, Wrong{"POST", "/api/users/eve/purchases"}}) {
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

// ===========================================================================
BOOST_AUTO_TEST_SUITE(http_bad_input)

namespace {

// One row of the bad-input table: a request and the problem it must get.
struct BadRow {
  std::string name;
  std::string method;
  std::string target;
  std::string body;
  Headers headers;
  int status;
  std::string code;
};

std::string nested(size_t depth, char open, char close, const std::string& inner = "1") {
  return std::string(depth, open) + inner + std::string(depth, close);
}
std::string nested_objects(size_t depth) {
  std::string s;
  s.reserve(depth * 6 + 8);
  for (size_t i = 0; i < depth; ++i) s += "{\"a\":";
  s += "1";
  s.append(depth, '}');
  return s;
}

// The rows that are plain requests (framing rows are below, on raw sockets).
std::vector<BadRow> bad_rows() {
  std::vector<BadRow> rows;
  int k = 0;
  auto purchase = [&](std::string name, std::string body, int status = 400,
                      std::string code = "invalid_request") {
    rows.push_back({std::move(name), "POST", "/api/purchases", std::move(body),
                    {{"Content-Type", "application/json"}, {"Idempotency-Key", "bad-" + std::to_string(++k)}},
                    status, std::move(code)});
  };
  auto credit = [&](std::string name, std::string body, std::string user = "u1") {
    rows.push_back({std::move(name), "POST", "/api/wallets/" + user + "/credits", std::move(body),
                    {{"Content-Type", "application/json"}, {"Idempotency-Key", "bad-" + std::to_string(++k)}},
                    400, "invalid_request"});
  };
  auto card = [&](std::string name, std::string body) {
    rows.push_back({std::move(name), "POST", "/api/cards", std::move(body),
                    {{"Content-Type", "application/json"}}, 400, "invalid_request"});
  };
  auto codes = [&](std::string name, std::string body, std::string card_id = "bi") {
    rows.push_back({std::move(name), "POST", "/api/cards/" + card_id + "/codes", std::move(body),
                    {{"Content-Type", "application/json"}}, 400, "invalid_request"});
  };
  const std::string ok_tail = R"(,"user_id":"u1"})";

  // Malformed JSON.
  purchase("truncated JSON", R"({"card_id":"bi","user_id":"u1")");
  purchase("truncated in a string", R"({"card_id":"b)");
  purchase("truncated after a key", R"({"card_id")");
  purchase("trailing bytes", R"({"card_id":"bi","user_id":"u1"} x)");
  purchase("two documents", R"({"card_id":"bi","user_id":"u1"}{"card_id":"bi","user_id":"u1"})");
  purchase("trailing comma", R"({"card_id":"bi","user_id":"u1",})");
  purchase("single quotes", R"({'card_id':'bi','user_id':'u1'})");
  purchase("empty body", "");
  purchase("only whitespace", "   ");
  purchase("array, not an object", R"([{"card_id":"bi","user_id":"u1"}])");
  purchase("string, not an object", R"("bi")");
  purchase("null, not an object", "null");
  purchase("NUL byte in the body", std::string(R"({"card_id":"bi")") + '\0' + ok_tail);
  // Encoding.
  purchase("invalid UTF-8 (0xFF)", "{\"card_id\":\"bi\",\"user_id\":\"u\xff" "1\"}");
  purchase("overlong UTF-8", "{\"card_id\":\"bi\",\"user_id\":\"u\xc0\xaf" "1\"}");
  purchase("truncated UTF-8 sequence", "{\"card_id\":\"bi\",\"user_id\":\"u1\xe2\x82\"}");
  purchase("lone \\ud800", R"({"card_id":"bi","user_id":"u1\ud800"})");
  purchase("lone \\udc00", R"({"card_id":"bi","user_id":"u1\udc00"})");
  purchase("escaped \\u0000 in an id", R"({"card_id":"bi\u0000","user_id":"u1"})");
  card("invalid UTF-8 in a name", "{\"id\":\"nc-1\",\"name\":\"caf\xe9\",\"price\":1,\"value\":1}");
  card("lone \\ud800 in a name", R"({"id":"nc-2","name":"x\ud800y","price":1,"value":1})");
  card("surrogate encoded as UTF-8 in a name", "{\"id\":\"nc-3\",\"name\":\"x\xed\xa0\x80y\",\"price\":1,\"value\":1}");
  card("control character in a name", R"({"id":"nc-4","name":"a\u0007b","price":1,"value":1})");
  card("empty name", R"({"id":"nc-5","name":"","price":1,"value":1})");
  card("name of 201 characters", R"({"id":"nc-6","name":")" + std::string(201, 'n') + R"(","price":1,"value":1})");
  // Nesting.
  purchase("arrays nested 100k deep", nested(100000, '[', ']'));
  purchase("objects nested 100k deep", nested_objects(100000));
  purchase("nesting 100k deep inside a field",
           R"({"card_id":"bi","user_id":"u1","x":)" + nested(100000, '[', ']') + "}");
  credit("nesting 100k deep as the amount", R"({"amount":)" + nested(100000, '[', ']') + "}");
  // Types.
  for (const char* v : {"\"100\"", "1.5", "100.0", "1e2", "true", "null", "[100]", "{}"})
    credit(std::string("amount ") + v, std::string(R"({"amount":)") + v + "}");
  purchase("card_id a number", R"({"card_id":5,"user_id":"u1"})");
  purchase("card_id an array", R"({"card_id":["bi"],"user_id":"u1"})");
  purchase("user_id true", R"({"card_id":"bi","user_id":true})");
  purchase("user_id null", R"({"card_id":"bi","user_id":null})");
  card("price a string", R"({"id":"nc-7","name":"n","price":"100","value":100})");
  card("price a float", R"({"id":"nc-8","name":"n","price":1.5,"value":100})");
  card("value true", R"({"id":"nc-9","name":"n","price":100,"value":true})");
  card("id a number", R"({"id":7,"name":"n","price":100,"value":100})");
  codes("codes a string", R"({"codes":"BI-X-0001"})");
  codes("a code a number", R"({"codes":[1234]})");
  codes("a code field a number", R"({"codes":[{"code":1234}]})");
  codes("expires_at a number", R"({"codes":[{"code":"BI-X-0002","expires_at":5}]})");
  codes("expires_at not RFC 3339", R"({"codes":[{"code":"BI-X-0003","expires_at":"tomorrow"}]})");
  // Missing fields.
  purchase("missing user_id", R"({"card_id":"bi"})");
  purchase("missing card_id", R"({"user_id":"u1"})");
  purchase("empty object", "{}");
  credit("missing amount", "{}");
  credit("amount under another name", R"({"amuont":5})");
  card("missing name", R"({"id":"nc-10","price":1,"value":1})");
  card("missing price", R"({"id":"nc-11","name":"n","value":1})");
  codes("missing codes", "{}");
  codes("a code without its code", R"({"codes":[{"expires_at":"2099-01-01T00:00:00Z"}]})");
  // Duplicate keys.
  purchase("duplicate key", R"({"card_id":"bi","user_id":"u1","user_id":"u1"})");
  purchase("duplicate key, different values", R"({"card_id":"nope","card_id":"bi","user_id":"u1"})");
  credit("duplicate amount", R"({"amount":1,"amount":2})");
  card("duplicate id", R"({"id":"nc-12","id":"nc-13","name":"n","price":1,"value":1})");
  // Amounts.
  for (const char* v : {"0", "-1", "-0", "9223372036854775808", "18446744073709551616",
                        "-9223372036854775809", "1e400", "-1e400", "99999999999999999999999999"})
    credit(std::string("amount ") + v, std::string(R"({"amount":)") + v + "}");
  for (const char* v : {"0", "-1", "9223372036854775808", "1e400"}) {
    card(std::string("price ") + v, std::string(R"({"id":"nc-p","name":"n","price":)") + v + R"(,"value":1})");
    card(std::string("value ") + v, std::string(R"({"id":"nc-v","name":"n","price":1,"value":)") + v + "}");
  }
  // Ids that break the regex, or smuggle a path.
  for (const char* id : {"b/i", "..", ".", "bi%2F", "%2F", "bi%00", "b i", "", "bi\\n", "../bi"})
    purchase(std::string("card_id '") + id + "'",
             std::string(R"({"card_id":")") + id + R"(","user_id":"u1"})");
  for (const char* id : {"u1/..", "..", ".", "u%2F1", "u1%00", "u 1", "", "u1\\n", "u1#", "../u1"})
    purchase(std::string("user_id '") + id + "'", std::string(R"({"card_id":"bi","user_id":")") + id + "\"}");
  purchase("card_id of 65 characters", R"({"card_id":")" + std::string(65, 'c') + R"(","user_id":"u1"})");
  purchase("user_id of 129 characters", R"({"card_id":"bi","user_id":")" + std::string(129, 'u') + "\"}");
  for (const char* user : {"a%2Fb", "%2F", "%00", "u1%00", "..", ".", "%2e%2e", "u1%2F..", "u!1"})
    credit(std::string("credit path user '") + user + "'", R"({"amount":5})", user);
  credit("credit path user of 129 characters", R"({"amount":5})", std::string(129, 'u'));
  for (const char* user : {"u%zz", "u%", "u%4", "%G0u"})
    credit(std::string("malformed escape in the path: '") + user + "'", R"({"amount":5})", user);
  for (const std::string& id : std::vector<std::string>{"a/b", "..", "a%2Fb", "a%00", "", std::string(65, 'i')})
    card("card id '" + id + "'", R"({"id":")" + id + R"(","name":"n","price":1,"value":1})");
  for (const char* cid : {"..", "a%2Fb", "%00", "bi%2F..", "%2e%2e"})
    codes(std::string("codes path card '") + cid + "'", R"({"codes":[{"code":"BI-X-0004"}]})", cid);
  for (const std::string& code : std::vector<std::string>{"ab", "BI/X-0005", "BI%2FX-0005", "BI.X.0005",
                                                          "BI X 0005", "..", std::string(65, 'C')})
    codes("code '" + code + "'", R"({"codes":[{"code":")" + code + "\"}]}");
  for (const char* code : {"..", "a%2Fb", "%00%00%00%00", "BI-0%2F", "ab"})
    rows.push_back({std::string("revoke code '") + code + "'", "DELETE",
                    std::string("/api/cards/bi/codes/") + code, "", {}, 400, "invalid_request"});
  for (const char* cid : {"..", "a%2Fb", "%00"})
    rows.push_back({std::string("revoke on card '") + cid + "'", "DELETE",
                    std::string("/api/cards/") + cid + "/codes/BI-000000", "", {}, 400, "invalid_request"});
  // Batches.
  codes("empty batch", R"({"codes":[]})");
  {
    json big = codes_body(numbered("BIG", 100001));
    codes("a batch of 100,001 codes", big.dump());
    json last_bad = codes_body(numbered("BAD", 99999));
    last_bad["codes"].push_back({{"code", "no/good"}});
    codes("100,000 codes, the last one invalid", last_bad.dump());
    json dup_inside = codes_body(numbered("DIN", 3));
    dup_inside["codes"].push_back({{"code", "DIN-000000"}});
    rows.push_back({"a batch with a duplicate inside", "POST", "/api/cards/bi/codes", dup_inside.dump(),
                    {{"Content-Type", "application/json"}}, 409, "duplicate_codes"});
    rows.push_back({"a batch with a code of the store", "POST", "/api/cards/bj/codes",
                    codes_body({"NEW-000001", "BI-000005"}).dump(),
                    {{"Content-Type", "application/json"}}, 409, "duplicate_codes"});
  }
  // Idempotency keys.
  const std::string pbody = R"({"card_id":"bi","user_id":"u1"})";
  auto with_key = [&](std::string name, Headers h, int status, std::string code, std::string target = "/api/purchases",
                      std::string body = "") {
    h.emplace_back("Content-Type", "application/json");
    rows.push_back({std::move(name), "POST", std::move(target), body.empty() ? pbody : body, std::move(h), status,
                    std::move(code)});
  };
  with_key("no Idempotency-Key", {}, 400, "missing_idempotency_key");
  with_key("empty Idempotency-Key", {{"Idempotency-Key", ""}}, 400, "missing_idempotency_key");
  with_key("Idempotency-Key of 129 characters", {{"Idempotency-Key", std::string(129, 'k')}}, 400, "invalid_request");
  with_key("Idempotency-Key of 4000 characters", {{"Idempotency-Key", std::string(4000, 'k')}}, 400, "invalid_request");
  with_key("Idempotency-Key with a space", {{"Idempotency-Key", "a b"}}, 400, "invalid_request");
  with_key("Idempotency-Key with a byte 0xFF", {{"Idempotency-Key", "k\xff"}}, 400, "invalid_request");
  with_key("two Idempotency-Key headers", {{"Idempotency-Key", "two-1"}, {"Idempotency-Key", "two-2"}}, 400,
           "invalid_request");
  with_key("the same key for another card", {{"Idempotency-Key", "used-key"}}, 422, "idempotency_key_reused",
           "/api/purchases", R"({"card_id":"bj","user_id":"u1"})");
  with_key("credit without Idempotency-Key", {}, 400, "missing_idempotency_key", "/api/wallets/u1/credits",
           R"({"amount":5})");
  with_key("credit key of 129 characters", {{"Idempotency-Key", std::string(129, 'k')}}, 400, "invalid_request",
           "/api/wallets/u1/credits", R"({"amount":5})");
  with_key("credit reusing a key with another amount", {{"Idempotency-Key", "fund"}}, 422, "idempotency_key_reused",
           "/api/wallets/u1/credits", R"({"amount":5})");
  // A credit that would overflow int64 (rich holds INT64_MAX).
  rows.push_back({"credit overflowing int64", "POST", "/api/wallets/rich/credits", R"({"amount":1})",
                  {{"Content-Type", "application/json"}, {"Idempotency-Key", "overflow"}}, 422, "balance_overflow"});
  // Content types.
  for (const char* ct : {"text/plain", "application/x-www-form-urlencoded", "application/jsonx",
                         "application/json-patch+json", "multipart/form-data; boundary=x"})
    rows.push_back({std::string("Content-Type ") + ct, "POST", "/api/purchases", pbody,
                    {{"Content-Type", ct}, {"Idempotency-Key", "ct-" + std::to_string(++k)}}, 415,
                    "unsupported_media_type"});
  rows.push_back({"no Content-Type", "POST", "/api/purchases", pbody, {{"Idempotency-Key", "ct-none"}}, 415,
                  "unsupported_media_type"});
  rows.push_back({"credit with Content-Type text/plain", "POST", "/api/wallets/u1/credits", R"({"amount":5})",
                  {{"Content-Type", "text/plain"}, {"Idempotency-Key", "ct-credit"}}, 415, "unsupported_media_type"});
  rows.push_back({"card with Content-Type text/plain", "POST", "/api/cards", card_body("nc-ct", 1).dump(),
                  {{"Content-Type", "text/plain"}}, 415, "unsupported_media_type"});
  // Query strings.
  for (const char* q : {"/api/cards?after=abc", "/api/cards?after=-1", "/api/cards?after=1e3",
                        "/api/cards?after=99999999999999999999", "/api/wallets/u1?after=%31",
                        "/api/events?limit=0", "/api/events?limit=-5", "/api/events?from=x",
                        "/api/events?limit=100000"})
    rows.push_back({std::string("GET ") + q, "GET", q, "", {}, 400, "invalid_request"});
  return rows;
}

// A raw request on its own connection: the reply (closing the connection
// after sending `bytes`, unless `keep_open`).
HttpReply raw_exchange(uint16_t port, const std::string& bytes, std::chrono::milliseconds limit = 10s) {
  HttpConnection c(port);
  HttpReply r;
  if (!c.send(bytes, &r.error)) return r;
  return c.read_reply(limit);
}

}  // namespace

BOOST_AUTO_TEST_CASE(every_row_is_a_4xx_problem_and_changes_nothing) {
  TempDir dir;
  Server srv(dir.str("data"), dir.str("serve.log"));
  HttpConnection admin(srv.port());
  make_card(admin, "bi", 100, numbered("BI", 10));
  make_card(admin, "bj", 100, numbered("BJ", 10));
  fund(admin, "u1", 1000);
  fund(admin, "rich", std::numeric_limits<int64_t>::max());
  auto used = admin.post("/api/purchases", json{{"card_id", "bi"}, {"user_id", "u1"}}, key("used-key"));
  BOOST_REQUIRE_MESSAGE(used.status == 201, used.describe());

  const int64_t start = log_position(srv.port());
  int rows_passed = 0, rows_total = 0;
  auto check_row = [&](const std::string& name, const HttpReply& r, int status, const std::string& code) {
    ++rows_total;
    bool alive = srv.alive();
    BOOST_REQUIRE_MESSAGE(alive, "the server died on row '" << name << "': "
                                     << (srv.last_status() ? describe_status(*srv.last_status()) : "?")
                                     << "\n" << srv.log());
    int64_t pos = log_position(srv.port());
    std::string why = problem_mismatch(r, status, code);
    BOOST_TEST(why.empty(), "row '" << name << "': " << why << " — " << r.describe());
    BOOST_TEST(pos == start, "row '" << name << "' moved the log from " << start << " to " << pos);
    if (why.empty() && pos == start) ++rows_passed;
  };

  for (const BadRow& row : bad_rows()) {
    HttpConnection c(srv.port());
    c.timeout = by_build(30s, 120s);
    check_row(row.name, c.request(row.method, row.target, row.body, row.headers), row.status, row.code);
  }

  // ---- framing, on raw sockets: answered from the header alone.
  const std::string head = "POST /api/cards/bi/codes HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n";
  {
    // 413 from Content-Length before any of the body is sent.
    for (const char* length : {"1073741824", "16777217", "99999999999999"}) {
      HttpConnection c(srv.port());
      auto t0 = Clock::now();
      BOOST_REQUIRE(c.send(head + "Content-Length: " + length + "\r\n\r\n"));
      HttpReply r = c.read_reply(10s);
      check_row(std::string("Content-Length ") + length + ", no body sent", r, 413, "payload_too_large");
      BOOST_TEST(ms_since(t0) < 5000, "413 took " << ms_since(t0) << " ms");
      BOOST_TEST(!r.keep_alive, "the connection stays open after a 413");
    }
    // A chunk larger than the limit, announced by its size line.
    HttpConnection c(srv.port());
    BOOST_REQUIRE(c.send(head + "Transfer-Encoding: chunked\r\n\r\n1000001\r\n"));
    check_row("a chunk over the body limit", c.read_reply(10s), 413, "payload_too_large");
  }
  // 431: one header over 8 KiB; many small headers over 8 KiB together.
  check_row("a 9 KiB header", raw_exchange(srv.port(), head + "X-Big: " + std::string(9 * 1024, 'a') +
                                                           "\r\nContent-Length: 2\r\n\r\n{}"),
            431, "request_header_fields_too_large");
  {
    std::string many = head;
    for (int i = 0; i < 200; ++i) many += "X-H" + std::to_string(i) + ": " + std::string(50, 'v') + "\r\n";
    check_row("200 headers of 60 bytes", raw_exchange(srv.port(), many + "Content-Length: 2\r\n\r\n{}"), 431,
              "request_header_fields_too_large");
  }
  // 400: Content-Length together with Transfer-Encoding (request smuggling).
  const std::string pbody = R"({"card_id":"bi","user_id":"u1"})";
  const std::string phead = "POST /api/purchases HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                            "Idempotency-Key: smuggle\r\n";
  check_row("Content-Length and Transfer-Encoding",
            raw_exchange(srv.port(), phead + "Content-Length: " + std::to_string(pbody.size()) +
                                         "\r\nTransfer-Encoding: chunked\r\n\r\n" + pbody),
            400, "invalid_request");
  {
    char size[16];
    std::snprintf(size, sizeof size, "%zx", pbody.size());
    check_row("Transfer-Encoding and Content-Length",
              raw_exchange(srv.port(), phead + "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n" + size +
                                           "\r\n" + pbody + "\r\n0\r\n\r\n"),
              400, "invalid_request");
  }
  check_row("two different Content-Lengths",
            raw_exchange(srv.port(), phead + "Content-Length: 31\r\nContent-Length: 5\r\n\r\n" + pbody), 400,
            "invalid_request");
  check_row("a Content-Length that is not a number",
            raw_exchange(srv.port(), phead + "Content-Length: abc\r\n\r\n" + pbody), 400, "invalid_request");
  check_row("a garbage request line", raw_exchange(srv.port(), "HELLO THERE\r\n\r\n"), 400, "invalid_request");
  check_row("a NUL byte in the target",
            raw_exchange(srv.port(), std::string("GET /api/wallets/u1") + '\0' + "x HTTP/1.1\r\nHost: t\r\n\r\n"), 400,
            "invalid_request");
  check_row("a bad chunk size",
            raw_exchange(srv.port(), phead + "Transfer-Encoding: chunked\r\n\r\nzz\r\n" + pbody + "\r\n0\r\n\r\n"),
            400, "invalid_request");
  BOOST_TEST_MESSAGE("bad-input rows passed: " << rows_passed << " / " << rows_total);

  // The shop is unharmed: nothing of the rows was bought, credited or added.
  int64_t after = log_position(srv.port());
  BOOST_TEST(after == start);
  json u1 = expect_json(admin.get("/api/wallets/u1?after=" + std::to_string(after)), 200, "u1");
  BOOST_TEST(jint(u1, "balance") == 900);
  json rich = expect_json(admin.get("/api/wallets/rich?after=" + std::to_string(after)), 200, "rich");
  BOOST_TEST(jint(rich, "balance") == std::numeric_limits<int64_t>::max());
  json bi = expect_json(admin.get("/api/cards/bi?after=" + std::to_string(after)), 200, "bi");
  BOOST_TEST(jint(bi, "available") == 9);
  BOOST_TEST(jint(bi, "revoked") == 0);
  json list = expect_json(admin.get("/api/cards"), 200, "cards");
  BOOST_TEST(list["cards"].size() == 2u, "a refused card was created: " << list.dump());
  // ... and still serves: a good purchase moves the log by its two events.
  HttpConnection c(srv.port());
  auto ok = c.post("/api/purchases", json{{"card_id", "bi"}, {"user_id", "u1"}}, key("good-after-bad"));
  BOOST_TEST(ok.status == 201, ok.describe());
  BOOST_TEST(log_position(srv.port()) == start + 2);
  require_clean_stop(srv);
  require_verified(srv.data());
}

BOOST_AUTO_TEST_SUITE_END()

// ===========================================================================
BOOST_AUTO_TEST_SUITE(http_auth)

namespace {

std::string random_token(const std::string& prefix) {
  std::random_device rd;
  std::string out = prefix;
  const char* hex = "0123456789abcdef";
  for (int i = 0; i < 32; ++i) out += hex[rd() % 16];
  return out;
}

enum class Guard { admin, api };

// A guarded route and the request that succeeds on it with the right token.
struct Guarded {
  Guard guard;
  std::string method;
  std::function<std::string()> target;
  std::string body;
  Headers headers;
  int ok_status;
  bool stream = false;  // an event stream: only the head is read
};

HttpReply send_once(uint16_t port, const Guarded& g, const Headers& auth, bool head_only = false) {
  HttpConnection c(port);
  Headers h = g.headers;
  h.insert(h.end(), auth.begin(), auth.end());
  HttpReply r;
  if (!c.send(c.format(g.method, g.target(), g.body, h), &r.error)) return r;
  return c.read_reply(30s, head_only);
}

// Every way of not presenting the right token: each must be a 401 problem
// with a Bearer challenge, and change nothing.
void check_refused(Server& srv, const Guarded& g, const std::string& right, const std::string& other) {
  const std::string what = g.method + " " + g.target();
  const int64_t before = log_position(srv.port());
  std::vector<std::pair<std::string, Headers>> attempts = {
      {"no Authorization", {}},
      {"a wrong token", bearer("wrong-token")},
      {"the other class's token", bearer(other)},
      {"the token with a character more", bearer(right + "x")},
      {"the token without its last character", bearer(right.substr(0, right.size() - 1))},
      {"an empty bearer token", {{"Authorization", "Bearer "}}},
      {"the token without a scheme", {{"Authorization", right}}},
      {"the token as Basic credentials", {{"Authorization", "Basic " + right}}},
      {"the token in another header", {{"X-Api-Token", right}}},
  };
  for (const auto& [how, auth] : attempts) {
    HttpReply r = send_once(srv.port(), g, auth);
    std::string why = problem_mismatch(r, 401, "unauthorized");
    BOOST_TEST(why.empty(), what << " with " << how << ": " << why << " — " << r.describe());
    BOOST_TEST(r.header("WWW-Authenticate").rfind("Bearer", 0) == 0u,
               what << " with " << how << ": no Bearer challenge");
    BOOST_TEST(r.body.find(right) == std::string::npos, what << ": the token is echoed");
  }
  BOOST_TEST(log_position(srv.port()) == before, what << ": a refused request changed the log");
}

// The routes of SPEC §4 by guard, in an order in which each succeeds.
std::vector<Guarded> guarded_routes(std::shared_ptr<std::string> purchase_id) {
  const Headers js = {{"Content-Type", "application/json"}};
  auto fixed = [](std::string t) { return [t] { return t; }; };
  Headers credit_h = js, buy_h = js;
  credit_h.emplace_back("Idempotency-Key", "auth-credit");
  buy_h.emplace_back("Idempotency-Key", "auth-buy");
  return {
      {Guard::admin, "POST", fixed("/api/cards"), card_body("au-1", 100).dump(), js, 201},
      {Guard::admin, "POST", fixed("/api/cards/au-1/codes"), codes_body(numbered("AU", 5)).dump(), js, 201},
      {Guard::admin, "DELETE", fixed("/api/cards/au-1/codes/AU-000004"), "", {}, 204},
      {Guard::api, "POST", fixed("/api/wallets/w1/credits"), R"({"amount":500})", credit_h, 201},
      {Guard::api, "GET", fixed("/api/wallets/w1"), "", {}, 200},
      {Guard::api, "POST", fixed("/api/purchases"), R"({"card_id":"au-1","user_id":"w1"})", buy_h, 201},
      {Guard::api, "GET", [purchase_id] { return "/api/purchases/" + *purchase_id; }, "", {}, 200},
      {Guard::api, "GET", fixed("/api/users/w1/purchases"), "", {}, 200},
      {Guard::admin, "GET", fixed("/api/events?from=1&limit=10"), "", {}, 200},
      {Guard::admin, "GET", fixed("/api/events/stream"), "", {}, 200, true},
      {Guard::admin, "GET", fixed("/metrics"), "", {}, 200},
      {Guard::admin, "POST", fixed("/api/projections/rebuild"), "", js, 200},
      {Guard::admin, "GET", fixed("/api/admin/state"), "", {}, 200},
      {Guard::admin, "GET", fixed("/api/admin/wallets?q=w"), "", {}, 200},
      {Guard::admin, "GET", fixed("/api/admin/purchases"), "", {}, 200},
  };
}

// Runs every guarded route: refused without the right token, served with it.
void check_guards(Server& srv, const std::string& admin, const std::string& api) {
  auto purchase_id = std::make_shared<std::string>("p_unknown");
  for (const Guarded& g : guarded_routes(purchase_id)) {
    const std::string& right = g.guard == Guard::admin ? admin : api;
    const std::string& other = g.guard == Guard::admin ? api : admin;
    if (g.guard == Guard::admin) check_refused(srv, g, right, other);
    else check_refused(srv, g, right, "not-" + right);  // (the admin token may open API routes)
    HttpReply r = send_once(srv.port(), g, bearer(right), g.stream);
    BOOST_TEST(r.status == g.ok_status, g.method << " " << g.target() << " with the right token: " << r.describe());
    if (g.target() == "/api/purchases" && r.status == 201)  // read it back with ?after=<its position>
      *purchase_id = jstr(r.json(), "purchase_id") + "?after=" + std::to_string(jint(r.json(), "position"));
    if (g.target() == "/metrics") {
      BOOST_TEST(r.body.find(admin) == std::string::npos, "the admin token in /metrics");
      BOOST_TEST(r.body.find(api) == std::string::npos, "the API token in /metrics");
    }
  }
  // Public routes need no token.
  HttpConnection c(srv.port());
  for (const char* path : {"/api/cards", "/api/cards/au-1", "/healthz"}) {
    auto r = c.get(path);
    BOOST_TEST(r.status == 200, path << " without a token: " << r.describe());
  }
}

void check_no_secret_in_log(Server& srv, const std::vector<std::string>& secrets) {
  std::string log = srv.log();
  for (const auto& s : secrets) BOOST_TEST(log.find(s) == std::string::npos, "a token in serve's stderr:\n" << log);
}

}  // namespace

BOOST_AUTO_TEST_CASE(flag_tokens_guard_every_route) {
  TempDir dir;
  const std::string admin = random_token("adm-"), api = random_token("api-");
  Server srv(dir.str("data"), dir.str("serve.log"), ServeArgs{"127.0.0.1:0", {"--admin-token", admin, "--api-token", api, "--no-rate-limit"}, {}});
  check_guards(srv, admin, api);
  require_clean_stop(srv);
  check_no_secret_in_log(srv, {admin, api});
}

BOOST_AUTO_TEST_CASE(environment_tokens_on_all_interfaces) {
  TempDir dir;
  const std::string admin = random_token("env-adm-"), api = random_token("env-api-");
  // 0.0.0.0 is not loopback: serve starts because both tokens are set.
  Server srv(dir.str("data"), dir.str("serve.log"),
             ServeArgs{"0.0.0.0:0", {"--no-rate-limit"}, {{"GIFTCARD_ADMIN_TOKEN", admin}, {"GIFTCARD_API_TOKEN", api}}});
  check_guards(srv, admin, api);
  require_clean_stop(srv);
  check_no_secret_in_log(srv, {admin, api});
}

BOOST_AUTO_TEST_CASE(bearer_scheme_is_case_insensitive) {
  // RFC 9110 §11.1: the authentication scheme is a case-insensitive token.
  TempDir dir;
  const std::string admin = random_token("adm-"), api = random_token("api-");
  Server srv(dir.str("data"), dir.str("serve.log"), ServeArgs{"127.0.0.1:0", {"--admin-token", admin, "--api-token", api, "--no-rate-limit"}, {}});
  HttpConnection c(srv.port());
  for (const char* scheme : {"bearer ", "BEARER ", "Bearer "}) {
    auto r = c.get("/api/events?limit=1", {{"Authorization", scheme + admin}});
    BOOST_TEST(r.status == 200, "'" << scheme << "' + the admin token: " << r.describe());
    auto w = c.get("/api/wallets/w1", {{"Authorization", scheme + api}});
    BOOST_TEST(w.status == 200, "'" << scheme << "' + the API token: " << w.describe());
  }
  require_clean_stop(srv);
}

BOOST_AUTO_TEST_CASE(non_loopback_without_both_tokens_is_refused) {
  TempDir dir;
  const std::string admin = random_token("adm-"), api = random_token("api-");
  struct Case {
    std::string name;
    std::vector<std::string> flags;
    EnvVars env;
  };
  std::vector<Case> cases = {
      {"10.1.2.3, no tokens", {"--http", "10.1.2.3:0"}, {}},
      {"0.0.0.0, no tokens", {"--http", "0.0.0.0:0"}, {}},
      {"[::], no tokens", {"--http", "[::]:0"}, {}},
      {"0.0.0.0, only --admin-token", {"--http", "0.0.0.0:0", "--admin-token", admin}, {}},
      {"0.0.0.0, only --api-token", {"--http", "0.0.0.0:0", "--api-token", api}, {}},
      {"0.0.0.0, only GIFTCARD_API_TOKEN", {"--http", "0.0.0.0:0"}, {{"GIFTCARD_API_TOKEN", api}}},
      {"0.0.0.0, only GIFTCARD_ADMIN_TOKEN", {"--http", "0.0.0.0:0"}, {{"GIFTCARD_ADMIN_TOKEN", admin}}},
      {"0.0.0.0, an empty API token", {"--http", "0.0.0.0:0", "--admin-token", admin, "--api-token", ""}, {}},
  };
  int i = 0;
  for (const auto& c : cases) {
    std::vector<std::string> args{"serve", "--data", dir.str("d" + std::to_string(i++)), "--caf", "127.0.0.1:0"};
    args.insert(args.end(), c.flags.begin(), c.flags.end());
    RunResult r = run_giftcard(args, c.env, 30s);
    BOOST_TEST(!r.timed_out, c.name << ": serve did not exit: " << r.describe());
    BOOST_TEST(r.exited(), c.name << ": " << r.describe());
    BOOST_TEST(r.code() != 0, c.name << ": " << r.describe());
    BOOST_TEST(!r.err.empty(), c.name << ": no message on stderr");
    BOOST_TEST(r.out.find("ready") == std::string::npos, c.name << ": " << r.describe());
    BOOST_TEST(r.elapsed < 10s, c.name);
    BOOST_TEST(r.err.find(admin) == std::string::npos, c.name << ": the admin token on stderr");
    BOOST_TEST(r.err.find(api) == std::string::npos, c.name << ": the API token on stderr");
  }
}

BOOST_AUTO_TEST_SUITE_END()

// ===========================================================================
BOOST_AUTO_TEST_SUITE(http_concurrency)

namespace {

// `n` threads, each on its own connection, send the same request at once
// (released together by a latch). The replies, by thread.
std::vector<HttpReply> all_at_once(uint16_t port, int n, const std::string& target, const std::string& body,
                                   const Headers& headers) {
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
      replies[static_cast<size_t>(i)] = conns[static_cast<size_t>(i)].post(target, std::string_view(body), headers);
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
    BOOST_TEST(r.body == replies[0].body, what << ", thread " << i << ": a different body: " << r.body
                                                << " vs " << replies[0].body);
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
  fund(c, "dup", kPrice * kRounds * 2);  // enough for twice the rounds: a double charge would succeed
  std::set<std::string> codes;
  for (int round = 0; round < kRounds; ++round) {
    const std::string k = "same-key-" + std::to_string(round);
    auto replies = all_at_once(srv.port(), kThreads, "/api/purchases", R"({"card_id":"hot","user_id":"dup"})",
                               {{"Idempotency-Key", k}});
    check_one_outcome(replies, "purchase round " + std::to_string(round));
    codes.insert(jstr(replies[0].json(), "code"));
  }
  BOOST_TEST(codes.size() == static_cast<size_t>(kRounds));
  // The same for credits.
  for (int round = 0; round < kRounds; ++round) {
    auto replies = all_at_once(srv.port(), kThreads, "/api/wallets/cred/credits", R"({"amount":100})",
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
  for (const auto& [k, n] : assigned_per_key) BOOST_TEST(n == 1, k << " assigned " << n << " codes");
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
  const int kAffordable = by_build(40, 4);  // purchases each wallet can pay for
  const int kAttempts = kAffordable + 2;    // purchases each client tries
  const int kCodes = kClients * kAffordable * 3 / 4;  // fewer codes than the wallets can pay for
  const int64_t kPrice = 100;
  make_card(admin, "hot", kPrice, numbered("HOT", kCodes));
  for (int u = 0; u < kClients; ++u) fund(admin, "buyer-" + std::to_string(u), kPrice * kAffordable);

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
  BOOST_TEST_MESSAGE(kClients * kAttempts << " purchases by " << kClients << " keep-alive clients in " << elapsed
                                          << " ms");

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
      bool expected = (r.status == 409 && code == "out_of_stock") || (r.status == 402 && code == "insufficient_funds");
      BOOST_TEST(expected, "client " << u << " attempt " << a << ": " << r.describe());
      // A client's attempts are sequential: its money runs out only after kAffordable purchases.
      if (code == "insufficient_funds") BOOST_TEST(bought[static_cast<size_t>(u)] == kAffordable, "client " << u);
    }
  }
  BOOST_TEST(total == std::min(kCodes, kClients * kAffordable));
  BOOST_TEST(codes.size() == static_cast<size_t>(total));

  // Every balance exact; the card's counts exact.
  const int64_t head = log_position(srv.port());
  BOOST_TEST(head >= max_position);
  const std::string after = "?after=" + std::to_string(head);
  for (int u = 0; u < kClients; ++u) {
    json w = expect_json(admin.get("/api/wallets/buyer-" + std::to_string(u) + after), 200, "wallet");
    BOOST_TEST(jint(w, "balance") == kPrice * (kAffordable - bought[static_cast<size_t>(u)]), "buyer-" << u);
  }
  json card = expect_json(admin.get("/api/cards/hot" + after), 200, "card");
  BOOST_TEST(jint(card, "assigned") == total);
  BOOST_TEST(jint(card, "available") == kCodes - total);
  // The log holds exactly these purchases.
  std::set<std::string> logged;
  int debits = 0;
  for (const json& e : all_events(admin)) {
    if (jstr(e, "type") == "CodeAssigned") BOOST_TEST(logged.insert(jstr(e["data"], "code")).second);
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
std::vector<test::SseEvent> read_events(HttpConnection& c, std::string* buf,
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
  return std::all_of(want.begin(), want.end(), [&](const std::string& w) { return have.count(w) > 0; });
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
          std::string bytes = c.format("POST", "/api/purchases", body,
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
               "serve after SIGTERM: " << describe_status(*status) << "\n" << srv.log());
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
        BOOST_TEST((s.reply.status == 201 || s.reply.status == 503), s.key << ": " << s.reply.describe());
      } else {
        ++after_cut;
      }
      if (s.reply.status != 201) unanswered.push_back(&s);
    }
  BOOST_TEST_MESSAGE(before << " requests sent before SIGTERM; after it " << after_answered << " answered, "
                            << after_cut << " cut");
  BOOST_TEST(lost == 0, lost << " of " << before << " requests written before SIGTERM got no 201:" << lost_keys);

  // Every acknowledged purchase is in the log, once.
  auto logged = logged_purchases(dir.str("data"));
  int acked_total = 0;
  for (const auto& per_client : sent)
    for (const Sent& s : per_client)
      if (s.reply.status == 201) {
        ++acked_total;
        std::string id = jstr(s.reply.json(), "purchase_id");
        BOOST_TEST(logged.count(id) == 1u, "acknowledged purchase " << id << " (" << s.key << ") is not in the log");
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
    auto r = c.post("/api/purchases", json{{"card_id", "drain"}, {"user_id", s->user}}, key(s->key));
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
  const std::string partial = "POST /api/purchases HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n";
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
          cut_how[static_cast<size_t>(i)] = how + (received.empty() ? "" : ", after " + received.substr(0, 12));
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
    const std::string head = "POST /api/purchases HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                             "Idempotency-Key: slow-body\r\nContent-Length: " + std::to_string(body.size()) +
                             "\r\n\r\n";
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
    auto r = c.post("/api/purchases", json{{"card_id", "busy"}, {"user_id", "shopper"}}, key("b" + std::to_string(i)));
    lat_us.push_back(std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t).count());
    BOOST_REQUIRE_MESSAGE(r.status == 201, "purchase " << i << " beside slow clients: " << r.describe());
    ids.push_back(jstr(r.json(), "purchase_id"));
  }
  std::vector<int64_t> sorted = lat_us;
  std::sort(sorted.begin(), sorted.end());
  int64_t p99 = sorted[sorted.size() * 99 / 100];
  BOOST_TEST_MESSAGE(lat_us.size() << " purchases beside " << kSlowloris << " slowloris connections and "
                                   << kViewers << " viewers: p50 " << sorted[sorted.size() / 2] << " us, p99 " << p99
                                   << " us, max " << sorted.back() << " us");
  BOOST_TEST(p99 < by_build(500000, 2000000), "purchase p99 " << p99 << " us beside slow clients");

  // Every viewer saw every purchase.
  for (int i = 0; i < kViewers; ++i) {
    auto evs = read_events(viewers[static_cast<size_t>(i)], &vbuf[static_cast<size_t>(i)],
                           [&, seen = std::set<std::string>(), n = size_t{0}](
                               const std::vector<test::SseEvent>& e) mutable {
                             for (; n < e.size(); ++n)
                               for (auto& id : assigned_ids({e[n]})) seen.insert(id);
                             return has_all(seen, ids);
                           },
                           15s);
    // (read_events returns the frames of this call; check the union)
    std::set<std::string> seen = assigned_ids(evs);
    BOOST_TEST(has_all(seen, ids), "viewer " << i << " saw " << seen.size() << " of " << ids.size() << " purchases");
    check_frames(evs, 0, "viewer " + std::to_string(i));
  }

  for (auto& t : slow) t.join();
  body_thread.join();
  int64_t max_cut = 0;
  for (int i = 0; i <= kSlowloris; ++i) {
    BOOST_TEST(cut_ms[static_cast<size_t>(i)] >= 0, "connection " << i << " was never cut");
    BOOST_TEST(cut_ms[static_cast<size_t>(i)] <= 12500,
               (i < kSlowloris ? "slowloris " : "idle ") << i << " cut after " << cut_ms[static_cast<size_t>(i)]
                                                          << " ms (" << cut_how[static_cast<size_t>(i)] << ")");
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

// ===========================================================================
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
      {json::array({json{{"code", "LIVE-0001"}}, code_with_expiry("EPOCH-0003", "1970-01-01T00:00:00.000000Z"),
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
  CHECK_PROBLEM(c.post("/api/purchases", json{{"card_id", "edge-1"}, {"user_id", "eve"}}, key("e-1")),
                409, "out_of_stock");
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
  BOOST_REQUIRE(expect_json(c.post("/api/cards/edge-2/codes", soon), 201, "soon").value("added", 0) == 1);
  std::this_thread::sleep_for(ahead + std::chrono::milliseconds(1500));
  CHECK_PROBLEM(c.post("/api/purchases", json{{"card_id", "edge-2"}, {"user_id", "eve"}}, key("e-3")),
                409, "out_of_stock");
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
      {"dup-b", {"DUP-0001", "NEW-0001"}, {"DUP-0001"}},                  // another card's: store claim
      {"dup-b", {"DUP-0002", "NEW-0002", "DUP-0003"}, {"DUP-0002", "DUP-0003"}},
      {"dup-a", {"NEW-0003", "DUP-0001"}, {"DUP-0001"}},                  // this card's: decided
  };
  for (const auto& k : cases) {
    auto r = c.post("/api/cards/" + k.card + "/codes", codes_body(k.batch));
    CHECK_PROBLEM(r, 409, "duplicate_codes");
    json j = r.json();
    BOOST_REQUIRE_MESSAGE(j.is_object() && j.contains("codes") && j["codes"].is_array(), r.describe());
    auto listed = j["codes"].get<std::vector<std::string>>();
    std::sort(listed.begin(), listed.end());
    BOOST_TEST(listed == k.conflicts, r.describe());
    BOOST_TEST(leading_count(jstr(j, "detail")) == static_cast<int64_t>(listed.size()), r.describe());
  }
  BOOST_TEST(log_position(srv.port()) == p0, "a refused batch changed the log");
  json b = expect_json(c.get("/api/cards/dup-b?after=" + std::to_string(p0)), 200, "dup-b");
  BOOST_TEST(jint(b, "available") == 0);
  require_clean_stop(srv);
}

BOOST_AUTO_TEST_SUITE_END()
