// The HTTP API of docs/CONTRACT.md, "HTTP API" against a real `giftcard serve` child process: the
// bad-input table of RELIABILITY.md §7 (http_bad_input), bearer tokens and the
// non-loopback refusal (http_auth). Shared set-up: http_api_fixture.h.
#include "tests/api/http_api_fixture.h"

using namespace giftcard::http_test;
using giftcard::test::Headers;
using giftcard::test::HttpConnection;
using giftcard::test::HttpReply;
namespace test = giftcard::test;

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
    rows.push_back(
        {std::move(name),
         "POST",
         "/api/purchases",
         std::move(body),
         {{"Content-Type", "application/json"}, {"Idempotency-Key", "bad-" + std::to_string(++k)}},
         status,
         std::move(code)});
  };
  auto credit = [&](std::string name, std::string body, std::string user = "u1") {
    rows.push_back(
        {std::move(name),
         "POST",
         "/api/wallets/" + user + "/credits",
         std::move(body),
         {{"Content-Type", "application/json"}, {"Idempotency-Key", "bad-" + std::to_string(++k)}},
         400,
         "invalid_request"});
  };
  auto card = [&](std::string name, std::string body) {
    rows.push_back({std::move(name),
                    "POST",
                    "/api/cards",
                    std::move(body),
                    {{"Content-Type", "application/json"}},
                    400,
                    "invalid_request"});
  };
  auto codes = [&](std::string name, std::string body, std::string card_id = "bi") {
    rows.push_back({std::move(name),
                    "POST",
                    "/api/cards/" + card_id + "/codes",
                    std::move(body),
                    {{"Content-Type", "application/json"}},
                    400,
                    "invalid_request"});
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
  purchase("invalid UTF-8 (0xFF)",
           "{\"card_id\":\"bi\",\"user_id\":\"u\xff"
           "1\"}");
  purchase("overlong UTF-8",
           "{\"card_id\":\"bi\",\"user_id\":\"u\xc0\xaf"
           "1\"}");
  purchase("truncated UTF-8 sequence", "{\"card_id\":\"bi\",\"user_id\":\"u1\xe2\x82\"}");
  purchase("lone \\ud800", R"({"card_id":"bi","user_id":"u1\ud800"})");
  purchase("lone \\udc00", R"({"card_id":"bi","user_id":"u1\udc00"})");
  purchase("escaped \\u0000 in an id", R"({"card_id":"bi\u0000","user_id":"u1"})");
  card("invalid UTF-8 in a name", "{\"id\":\"nc-1\",\"name\":\"caf\xe9\",\"price\":1,\"value\":1}");
  card("lone \\ud800 in a name", R"({"id":"nc-2","name":"x\ud800y","price":1,"value":1})");
  card("surrogate encoded as UTF-8 in a name",
       "{\"id\":\"nc-3\",\"name\":\"x\xed\xa0\x80y\",\"price\":1,\"value\":1}");
  card("control character in a name", R"({"id":"nc-4","name":"a\u0007b","price":1,"value":1})");
  card("empty name", R"({"id":"nc-5","name":"","price":1,"value":1})");
  card("name of 201 characters",
       R"({"id":"nc-6","name":")" + std::string(201, 'n') + R"(","price":1,"value":1})");
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
  purchase("duplicate key, different values",
           R"({"card_id":"nope","card_id":"bi","user_id":"u1"})");
  credit("duplicate amount", R"({"amount":1,"amount":2})");
  card("duplicate id", R"({"id":"nc-12","id":"nc-13","name":"n","price":1,"value":1})");
  // Amounts.
  for (const char* v : {"0", "-1", "-0", "9223372036854775808", "18446744073709551616",
                        "-9223372036854775809", "1e400", "-1e400", "99999999999999999999999999"})
    credit(std::string("amount ") + v, std::string(R"({"amount":)") + v + "}");
  for (const char* v : {"0", "-1", "9223372036854775808", "1e400"}) {
    card(std::string("price ") + v,
         std::string(R"({"id":"nc-p","name":"n","price":)") + v + R"(,"value":1})");
    card(std::string("value ") + v,
         std::string(R"({"id":"nc-v","name":"n","price":1,"value":)") + v + "}");
  }
  // Ids that break the regex, or smuggle a path.
  for (const char* id : {"b/i", "..", ".", "bi%2F", "%2F", "bi%00", "b i", "", "bi\\n", "../bi"})
    purchase(std::string("card_id '") + id + "'",
             std::string(R"({"card_id":")") + id + R"(","user_id":"u1"})");
  for (const char* id : {"u1/..", "..", ".", "u%2F1", "u1%00", "u 1", "", "u1\\n", "u1#", "../u1"})
    purchase(std::string("user_id '") + id + "'",
             std::string(R"({"card_id":"bi","user_id":")") + id + "\"}");
  purchase("card_id of 65 characters",
           R"({"card_id":")" + std::string(65, 'c') + R"(","user_id":"u1"})");
  purchase("user_id of 129 characters",
           R"({"card_id":"bi","user_id":")" + std::string(129, 'u') + "\"}");
  for (const char* user : {"a%2Fb", "%2F", "%00", "u1%00", "..", ".", "%2e%2e", "u1%2F..", "u!1"})
    credit(std::string("credit path user '") + user + "'", R"({"amount":5})", user);
  credit("credit path user of 129 characters", R"({"amount":5})", std::string(129, 'u'));
  for (const char* user : {"u%zz", "u%", "u%4", "%G0u"})
    credit(std::string("malformed escape in the path: '") + user + "'", R"({"amount":5})", user);
  for (const std::string& id :
       std::vector<std::string>{"a/b", "..", "a%2Fb", "a%00", "", std::string(65, 'i')})
    card("card id '" + id + "'", R"({"id":")" + id + R"(","name":"n","price":1,"value":1})");
  for (const char* cid : {"..", "a%2Fb", "%00", "bi%2F..", "%2e%2e"})
    codes(std::string("codes path card '") + cid + "'", R"({"codes":[{"code":"BI-X-0004"}]})", cid);
  for (const std::string& code : std::vector<std::string>{
           "ab", "BI/X-0005", "BI%2FX-0005", "BI.X.0005", "BI X 0005", "..", std::string(65, 'C')})
    codes("code '" + code + "'", R"({"codes":[{"code":")" + code + "\"}]}");
  for (const char* code : {"..", "a%2Fb", "%00%00%00%00", "BI-0%2F", "ab"})
    rows.push_back({std::string("revoke code '") + code + "'",
                    "DELETE",
                    std::string("/api/cards/bi/codes/") + code,
                    "",
                    {},
                    400,
                    "invalid_request"});
  for (const char* cid : {"..", "a%2Fb", "%00"})
    rows.push_back({std::string("revoke on card '") + cid + "'",
                    "DELETE",
                    std::string("/api/cards/") + cid + "/codes/BI-000000",
                    "",
                    {},
                    400,
                    "invalid_request"});
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
    rows.push_back({"a batch with a duplicate inside",
                    "POST",
                    "/api/cards/bi/codes",
                    dup_inside.dump(),
                    {{"Content-Type", "application/json"}},
                    409,
                    "duplicate_codes"});
    rows.push_back({"a batch with a code of the store",
                    "POST",
                    "/api/cards/bj/codes",
                    codes_body({"NEW-000001", "BI-000005"}).dump(),
                    {{"Content-Type", "application/json"}},
                    409,
                    "duplicate_codes"});
  }
  // Idempotency keys.
  const std::string pbody = R"({"card_id":"bi","user_id":"u1"})";
  auto with_key = [&](std::string name, Headers h, int status, std::string code,
                      std::string target = "/api/purchases", std::string body = "") {
    h.emplace_back("Content-Type", "application/json");
    rows.push_back({std::move(name), "POST", std::move(target), body.empty() ? pbody : body,
                    std::move(h), status, std::move(code)});
  };
  with_key("no Idempotency-Key", {}, 400, "missing_idempotency_key");
  with_key("empty Idempotency-Key", {{"Idempotency-Key", ""}}, 400, "missing_idempotency_key");
  with_key("Idempotency-Key of 129 characters", {{"Idempotency-Key", std::string(129, 'k')}}, 400,
           "invalid_request");
  with_key("Idempotency-Key of 4000 characters", {{"Idempotency-Key", std::string(4000, 'k')}}, 400,
           "invalid_request");
  with_key("Idempotency-Key with a space", {{"Idempotency-Key", "a b"}}, 400, "invalid_request");
  with_key("Idempotency-Key with a byte 0xFF", {{"Idempotency-Key", "k\xff"}}, 400,
           "invalid_request");
  with_key("two Idempotency-Key headers",
           {{"Idempotency-Key", "two-1"}, {"Idempotency-Key", "two-2"}}, 400, "invalid_request");
  with_key("the same key for another card", {{"Idempotency-Key", "used-key"}}, 422,
           "idempotency_key_reused", "/api/purchases", R"({"card_id":"bj","user_id":"u1"})");
  with_key("credit without Idempotency-Key", {}, 400, "missing_idempotency_key",
           "/api/wallets/u1/credits", R"({"amount":5})");
  with_key("credit key of 129 characters", {{"Idempotency-Key", std::string(129, 'k')}}, 400,
           "invalid_request", "/api/wallets/u1/credits", R"({"amount":5})");
  with_key("credit reusing a key with another amount", {{"Idempotency-Key", "fund"}}, 422,
           "idempotency_key_reused", "/api/wallets/u1/credits", R"({"amount":5})");
  // A credit that would overflow int64 (rich holds INT64_MAX).
  rows.push_back({"credit overflowing int64",
                  "POST",
                  "/api/wallets/rich/credits",
                  R"({"amount":1})",
                  {{"Content-Type", "application/json"}, {"Idempotency-Key", "overflow"}},
                  422,
                  "balance_overflow"});
  // Content types.
  for (const char* ct : {"text/plain", "application/x-www-form-urlencoded", "application/jsonx",
                         "application/json-patch+json", "multipart/form-data; boundary=x"})
    rows.push_back({std::string("Content-Type ") + ct,
                    "POST",
                    "/api/purchases",
                    pbody,
                    {{"Content-Type", ct}, {"Idempotency-Key", "ct-" + std::to_string(++k)}},
                    415,
                    "unsupported_media_type"});
  rows.push_back({"no Content-Type",
                  "POST",
                  "/api/purchases",
                  pbody,
                  {{"Idempotency-Key", "ct-none"}},
                  415,
                  "unsupported_media_type"});
  rows.push_back({"credit with Content-Type text/plain",
                  "POST",
                  "/api/wallets/u1/credits",
                  R"({"amount":5})",
                  {{"Content-Type", "text/plain"}, {"Idempotency-Key", "ct-credit"}},
                  415,
                  "unsupported_media_type"});
  rows.push_back({"card with Content-Type text/plain",
                  "POST",
                  "/api/cards",
                  card_body("nc-ct", 1).dump(),
                  {{"Content-Type", "text/plain"}},
                  415,
                  "unsupported_media_type"});
  // Query strings.
  for (const char* q :
       {"/api/cards?after=abc", "/api/cards?after=-1", "/api/cards?after=1e3",
        "/api/cards?after=99999999999999999999", "/api/wallets/u1?after=%31", "/api/events?limit=0",
        "/api/events?limit=-5", "/api/events?from=x", "/api/events?limit=100000"})
    rows.push_back({std::string("GET ") + q, "GET", q, "", {}, 400, "invalid_request"});
  return rows;
}

// A raw request on its own connection: the reply (closing the connection
// after sending `bytes`, unless `keep_open`).
HttpReply raw_exchange(uint16_t port, const std::string& bytes,
                       std::chrono::milliseconds limit = 10s) {
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
  auto used = admin.post("/api/purchases", json{{"card_id", "bi"}, {"user_id", "u1"}},
                         key("used-key"));
  BOOST_REQUIRE_MESSAGE(used.status == 201, used.describe());

  const int64_t start = log_position(srv.port());
  int rows_passed = 0, rows_total = 0;
  auto check_row = [&](const std::string& name, const HttpReply& r, int status,
                       const std::string& code) {
    ++rows_total;
    bool alive = srv.alive();
    BOOST_REQUIRE_MESSAGE(
        alive, "the server died on row '"
                   << name << "': "
                   << (srv.last_status() ? describe_status(*srv.last_status()) : "?") << "\n"
                   << srv.log());
    int64_t pos = log_position(srv.port());
    std::string why = problem_mismatch(r, status, code);
    BOOST_TEST(why.empty(), "row '" << name << "': " << why << " — " << r.describe());
    BOOST_TEST(pos == start, "row '" << name << "' moved the log from " << start << " to " << pos);
    if (why.empty() && pos == start) ++rows_passed;
  };

  for (const BadRow& row : bad_rows()) {
    HttpConnection c(srv.port());
    c.timeout = by_build(30s, 120s);
    check_row(row.name, c.request(row.method, row.target, row.body, row.headers), row.status,
              row.code);
  }

  // ---- framing, on raw sockets: answered from the header alone.
  const std::string head =
      "POST /api/cards/bi/codes HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n";
  {
    // 413 from Content-Length before any of the body is sent.
    for (const char* length : {"1073741824", "16777217", "99999999999999"}) {
      HttpConnection c(srv.port());
      auto t0 = Clock::now();
      BOOST_REQUIRE(c.send(head + "Content-Length: " + length + "\r\n\r\n"));
      HttpReply r = c.read_reply(10s);
      check_row(std::string("Content-Length ") + length + ", no body sent", r, 413,
                "payload_too_large");
      BOOST_TEST(ms_since(t0) < 5000, "413 took " << ms_since(t0) << " ms");
      BOOST_TEST(!r.keep_alive, "the connection stays open after a 413");
    }
    // A chunk larger than the limit, announced by its size line.
    HttpConnection c(srv.port());
    BOOST_REQUIRE(c.send(head + "Transfer-Encoding: chunked\r\n\r\n1000001\r\n"));
    check_row("a chunk over the body limit", c.read_reply(10s), 413, "payload_too_large");
  }
  // 431: one header over 8 KiB; many small headers over 8 KiB together.
  check_row("a 9 KiB header",
            raw_exchange(srv.port(), head + "X-Big: " + std::string(9 * 1024, 'a') +
                                         "\r\nContent-Length: 2\r\n\r\n{}"),
            431, "request_header_fields_too_large");
  {
    std::string many = head;
    for (int i = 0; i < 200; ++i)
      many += "X-H" + std::to_string(i) + ": " + std::string(50, 'v') + "\r\n";
    check_row("200 headers of 60 bytes",
              raw_exchange(srv.port(), many + "Content-Length: 2\r\n\r\n{}"), 431,
              "request_header_fields_too_large");
  }
  // 400: Content-Length together with Transfer-Encoding (request smuggling).
  const std::string pbody = R"({"card_id":"bi","user_id":"u1"})";
  const std::string phead =
      "POST /api/purchases HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
      "Idempotency-Key: smuggle\r\n";
  check_row("Content-Length and Transfer-Encoding",
            raw_exchange(srv.port(), phead + "Content-Length: " + std::to_string(pbody.size()) +
                                         "\r\nTransfer-Encoding: chunked\r\n\r\n" + pbody),
            400, "invalid_request");
  {
    char size[16];
    std::snprintf(size, sizeof size, "%zx", pbody.size());
    check_row(
        "Transfer-Encoding and Content-Length",
        raw_exchange(srv.port(), phead + "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n" +
                                     size + "\r\n" + pbody + "\r\n0\r\n\r\n"),
        400, "invalid_request");
  }
  check_row(
      "two different Content-Lengths",
      raw_exchange(srv.port(), phead + "Content-Length: 31\r\nContent-Length: 5\r\n\r\n" + pbody),
      400, "invalid_request");
  check_row("a Content-Length that is not a number",
            raw_exchange(srv.port(), phead + "Content-Length: abc\r\n\r\n" + pbody), 400,
            "invalid_request");
  check_row("a garbage request line", raw_exchange(srv.port(), "HELLO THERE\r\n\r\n"), 400,
            "invalid_request");
  check_row("a NUL byte in the target",
            raw_exchange(srv.port(), std::string("GET /api/wallets/u1") + '\0' +
                                         "x HTTP/1.1\r\nHost: t\r\n\r\n"),
            400, "invalid_request");
  check_row("a bad chunk size",
            raw_exchange(srv.port(), phead + "Transfer-Encoding: chunked\r\n\r\nzz\r\n" + pbody +
                                         "\r\n0\r\n\r\n"),
            400, "invalid_request");
  BOOST_TEST_MESSAGE("bad-input rows passed: " << rows_passed << " / " << rows_total);

  // The shop is unharmed: nothing of the rows was bought, credited or added.
  int64_t after = log_position(srv.port());
  BOOST_TEST(after == start);
  json u1 = expect_json(admin.get("/api/wallets/u1?after=" + std::to_string(after)), 200, "u1");
  BOOST_TEST(jint(u1, "balance") == 900);
  json rich = expect_json(admin.get("/api/wallets/rich?after=" + std::to_string(after)), 200,
                          "rich");
  BOOST_TEST(jint(rich, "balance") == std::numeric_limits<int64_t>::max());
  json bi = expect_json(admin.get("/api/cards/bi?after=" + std::to_string(after)), 200, "bi");
  BOOST_TEST(jint(bi, "available") == 9);
  BOOST_TEST(jint(bi, "revoked") == 0);
  json list = expect_json(admin.get("/api/cards"), 200, "cards");
  BOOST_TEST(list["cards"].size() == 2u, "a refused card was created: " << list.dump());
  // ... and still serves: a good purchase moves the log by its two events.
  HttpConnection c(srv.port());
  auto ok = c.post("/api/purchases", json{{"card_id", "bi"}, {"user_id", "u1"}},
                   key("good-after-bad"));
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
void check_refused(Server& srv, const Guarded& g, const std::string& right,
                   const std::string& other) {
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

// The routes of docs/CONTRACT.md, "HTTP API" by guard, in an order in which each succeeds.
std::vector<Guarded> guarded_routes(std::shared_ptr<std::string> purchase_id) {
  const Headers js = {{"Content-Type", "application/json"}};
  auto fixed = [](std::string t) { return [t] { return t; }; };
  Headers credit_h = js, buy_h = js;
  credit_h.emplace_back("Idempotency-Key", "auth-credit");
  buy_h.emplace_back("Idempotency-Key", "auth-buy");
  return {
      {Guard::admin, "POST", fixed("/api/cards"), card_body("au-1", 100).dump(), js, 201},
      {Guard::admin, "POST", fixed("/api/cards/au-1/codes"), codes_body(numbered("AU", 5)).dump(),
       js, 201},
      {Guard::admin, "DELETE", fixed("/api/cards/au-1/codes/AU-000004"), "", {}, 204},
      {Guard::api, "POST", fixed("/api/wallets/w1/credits"), R"({"amount":500})", credit_h, 201},
      {Guard::api, "GET", fixed("/api/wallets/w1"), "", {}, 200},
      {Guard::api, "POST", fixed("/api/purchases"), R"({"card_id":"au-1","user_id":"w1"})", buy_h,
       201},
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
    BOOST_TEST(r.status == g.ok_status,
               g.method << " " << g.target() << " with the right token: " << r.describe());
    if (g.target() == "/api/purchases" &&
        r.status == 201)  // read it back with ?after=<its position>
      *purchase_id = jstr(r.json(), "purchase_id") +
                     "?after=" + std::to_string(jint(r.json(), "position"));
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
  for (const auto& s : secrets)
    BOOST_TEST(log.find(s) == std::string::npos, "a token in serve's stderr:\n" << log);
}

}  // namespace

BOOST_AUTO_TEST_CASE(flag_tokens_guard_every_route) {
  TempDir dir;
  const std::string admin = random_token("adm-"), api = random_token("api-");
  Server srv(
      dir.str("data"), dir.str("serve.log"),
      ServeArgs{
          "127.0.0.1:0", {"--admin-token", admin, "--api-token", api, "--no-rate-limit"}, {}});
  check_guards(srv, admin, api);
  require_clean_stop(srv);
  check_no_secret_in_log(srv, {admin, api});
}

BOOST_AUTO_TEST_CASE(environment_tokens_on_all_interfaces) {
  TempDir dir;
  const std::string admin = random_token("env-adm-"), api = random_token("env-api-");
  // 0.0.0.0 is not loopback: serve starts because both tokens are set.
  Server srv(dir.str("data"), dir.str("serve.log"),
             ServeArgs{"0.0.0.0:0",
                       {"--no-rate-limit"},
                       {{"GIFTCARD_ADMIN_TOKEN", admin}, {"GIFTCARD_API_TOKEN", api}}});
  check_guards(srv, admin, api);
  require_clean_stop(srv);
  check_no_secret_in_log(srv, {admin, api});
}

BOOST_AUTO_TEST_CASE(bearer_scheme_is_case_insensitive) {
  // RFC 9110 §11.1: the authentication scheme is a case-insensitive token.
  TempDir dir;
  const std::string admin = random_token("adm-"), api = random_token("api-");
  Server srv(
      dir.str("data"), dir.str("serve.log"),
      ServeArgs{
          "127.0.0.1:0", {"--admin-token", admin, "--api-token", api, "--no-rate-limit"}, {}});
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
      {"0.0.0.0, only GIFTCARD_ADMIN_TOKEN",
       {"--http", "0.0.0.0:0"},
       {{"GIFTCARD_ADMIN_TOKEN", admin}}},
      {"0.0.0.0, an empty API token",
       {"--http", "0.0.0.0:0", "--admin-token", admin, "--api-token", ""},
       {}},
  };
  int i = 0;
  for (const auto& c : cases) {
    std::vector<std::string> args{"serve", "--data", dir.str("d" + std::to_string(i++)), "--caf",
                                  "127.0.0.1:0"};
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
