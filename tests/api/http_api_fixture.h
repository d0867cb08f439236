// What the HTTP API tests share (http_api_test.cc: routes and domain edges;
// http_bad_input_test.cc: the bad-input table and bearer tokens;
// http_lifecycle_test.cc: concurrent clients, SIGTERM, slow clients and event
// streams): the serve child's clean stop and `giftcard verify`, JSON and RFC
// 9457 problem checks, request bodies, admin set-up through HTTP, RFC 3339 and
// Prometheus text checks, and the whole log through GET /api/events.
#pragma once

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
inline void require_clean_stop(Server& s, std::chrono::milliseconds timeout = by_build(15s, 60s)) {
  auto t0 = Clock::now();
  s.signal(SIGTERM);
  auto status = s.wait(timeout);
  if (!status)
    BOOST_FAIL("serve did not exit within " << timeout.count() << " ms of SIGTERM; stderr:\n"
                                            << s.log());
  BOOST_TEST_MESSAGE("serve stopped in " << ms_since(t0) << " ms");
  BOOST_TEST((WIFEXITED(*status) && WEXITSTATUS(*status) == 0),
             "serve after SIGTERM: " << describe_status(*status) << "; stderr:\n"
                                     << s.log());
}

// `giftcard verify` on a stopped server's data directory must exit 0.
inline void require_verified(const std::string& data) {
  auto v = run_giftcard({"verify", "--data", data}, {}, by_build(60s, 180s));
  BOOST_TEST(v.code() == 0, "giftcard verify: " << v.describe());
}

// ---------------------------------------------------------------------------
// JSON and problem details

inline int64_t jint(const json& j, const char* key,
                    int64_t dflt = std::numeric_limits<int64_t>::min()) {
  if (!j.is_object()) return dflt;
  auto it = j.find(key);
  if (it == j.end() || !it->is_number_integer()) return dflt;
  return it->get<int64_t>();
}
inline std::string jstr(const json& j, const char* key) {
  if (!j.is_object()) return "<not an object>";
  auto it = j.find(key);
  if (it == j.end() || !it->is_string()) return "<missing>";
  return it->get<std::string>();
}

inline std::string media_type(const HttpReply& r) {
  std::string ct = r.header("Content-Type");
  ct = ct.substr(0, ct.find(';'));
  while (!ct.empty() && ct.back() == ' ') ct.pop_back();
  return ct;
}

// Why `r` is not an RFC 9457 problem with this status and code ("" if it is).
inline std::string problem_mismatch(const HttpReply& r, int status, const std::string& code) {
  if (!r.ok()) return "no response: " + r.error;
  if (r.status != status)
    return "status " + std::to_string(r.status) + ", expected " + std::to_string(status);
  if (media_type(r) != "application/problem+json")
    return "Content-Type " + r.header("Content-Type");
  json j = r.json();
  if (!j.is_object()) return "body is not a JSON object";
  for (const char* f : {"type", "title", "detail", "code"})
    if (!j.contains(f) || !j[f].is_string())
      return std::string("field ") + f + " missing or not a string";
  if (jint(j, "status", -1) != status) return "field status is not " + std::to_string(status);
  if (j["code"] != code) return "code " + j["code"].get<std::string>() + ", expected " + code;
  return {};
}

#define CHECK_PROBLEM(reply, status, code)                                      \
  do {                                                                          \
    const HttpReply& r_ = (reply);                                              \
    std::string why_ = problem_mismatch(r_, (status), (code));                  \
    BOOST_TEST(why_.empty(), #reply << ": " << why_ << " — " << r_.describe()); \
  } while (0)

// A 2xx application/json reply with this status; its body.
inline json expect_json(const HttpReply& r, int status, const std::string& what) {
  BOOST_TEST(r.status == status, what << ": " << r.describe());
  BOOST_TEST(media_type(r) == "application/json", what << ": " << r.describe());
  json j = r.json();
  BOOST_TEST(j.is_object(), what << ": body is not a JSON object: " << r.describe());
  return j.is_object() ? j : json::object();
}

inline Headers key(const std::string& k) { return {{"Idempotency-Key", k}}; }
inline Headers bearer(const std::string& token) { return {{"Authorization", "Bearer " + token}}; }

inline json card_body(const std::string& id, int64_t price, const std::string& name = "") {
  return {
      {"id", id}, {"name", name.empty() ? "Card " + id : name}, {"price", price}, {"value", price}};
}

inline json codes_body(const std::vector<std::string>& codes) {
  json arr = json::array();
  for (const auto& c : codes) arr.push_back({{"code", c}});
  return {{"codes", arr}};
}

inline std::vector<std::string> numbered(const std::string& prefix, int n, int from = 0) {
  std::vector<std::string> out;
  char buf[16];
  for (int i = from; i < from + n; ++i) {
    std::snprintf(buf, sizeof buf, "%06d", i);
    out.push_back(prefix + "-" + buf);
  }
  return out;
}

// Admin set-up through HTTP: a card with codes; a funded wallet.
inline void make_card(HttpConnection& c, const std::string& id, int64_t price,
                      const std::vector<std::string>& codes) {
  auto r = c.post("/api/cards", card_body(id, price));
  BOOST_REQUIRE_MESSAGE(r.status == 201, "create " << id << ": " << r.describe());
  for (size_t i = 0; i < codes.size(); i += 100000) {
    std::vector<std::string> part(
        codes.begin() + static_cast<long>(i),
        codes.begin() + static_cast<long>(std::min(codes.size(), i + 100000)));
    auto a = c.post("/api/cards/" + id + "/codes", codes_body(part));
    BOOST_REQUIRE_MESSAGE(a.status == 201, "codes of " << id << ": " << a.describe());
  }
}
inline int64_t fund(HttpConnection& c, const std::string& user, int64_t amount,
                    const std::string& k = "fund") {
  auto r = c.post("/api/wallets/" + user + "/credits", json{{"amount", amount}}, key(k));
  BOOST_REQUIRE_MESSAGE(r.status == 201, "credit " << user << ": " << r.describe());
  return jint(r.json(), "position", -1);
}

// YYYY-MM-DDTHH:MM:SS[.fraction of 1..9 digits]Z
inline bool is_rfc3339_utc(const std::string& s) {
  const std::string shape = "dddd-dd-ddTdd:dd:dd";
  if (s.size() < shape.size() + 1 || s.back() != 'Z') return false;
  for (size_t i = 0; i < shape.size(); ++i)
    if (shape[i] == 'd' ? !std::isdigit(static_cast<unsigned char>(s[i])) : s[i] != shape[i])
      return false;
  std::string_view frac(s.data() + shape.size(), s.size() - shape.size() - 1);
  if (frac.empty()) return true;
  if (frac[0] != '.' || frac.size() < 2 || frac.size() > 10) return false;
  return std::all_of(frac.begin() + 1, frac.end(),
                     [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
}

// Prometheus text format (0.0.4), one line.
inline bool is_metric_name(std::string_view n) {
  if (n.empty() || std::isdigit(static_cast<unsigned char>(n[0]))) return false;
  return std::all_of(n.begin(), n.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == ':';
  });
}
// A sample `name{label="value",...} number`: its name and label set in *series
// ("name{...}") and its value in *value; false if malformed.
inline bool parse_sample(const std::string& line, std::string* name, std::string* series,
                         std::string* value) {
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
      if (label.empty() || label.find(':') != std::string_view::npos || !is_metric_name(label))
        return false;
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
inline std::vector<json> all_events(HttpConnection& c, int64_t page = 1000) {
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

}  // namespace giftcard::http_test
