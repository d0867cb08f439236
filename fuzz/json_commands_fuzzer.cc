// Fuzz target `json_commands`: a JSON body -> the command validators.
//
// 1. The body is POSTed to each command route of the HTTP API (fuzz/api_world.h):
//    POST /api/cards, /api/cards/fz-card/codes, /api/wallets/fz-user/credits
//    and /api/purchases — the strict JSON reader (duplicate keys, depth,
//    non-finite numbers), the per-field type checks, then the shop's
//    validators (events/validate.h) and the aggregates' decide().
// 2. Every string and integer in the body (and the raw bytes) goes through
//    events/validate.h and parse_rfc3339 directly, against reference
//    implementations written here from docs/CONTRACT.md, "Domain".
//
// Oracles: the answers pass check_answer (never 500, problem+json...); a
// body that is not JSON at all is 400 invalid_request on every route; a
// command that succeeds (201) carried fields its validators accept; each
// validator agrees with its reference; the reason check_code gives depends on
// the code's shape only, never its characters (codes are secrets); RFC 3339
// times survive format/parse.
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "events/time_util.h"
#include "events/validate.h"
#include "fuzz/api_world.h"
#include "fuzz/fuzz_util.h"

using namespace giftcard;
using namespace giftcard::fuzz;
using json = nlohmann::json;

namespace {

// ------------------------------------------------------------ references (docs/CONTRACT.md, "Domain")

bool ref_utf8(std::string_view s, size_t* code_points, std::vector<uint32_t>* cps) {
  // Unicode 15, Table 3-7 (well-formed UTF-8 byte sequences).
  size_t i = 0, n = 0;
  auto in = [&](size_t k, unsigned lo, unsigned hi) {
    if (k >= s.size()) return false;
    auto b = static_cast<unsigned char>(s[k]);
    return b >= lo && b <= hi;
  };
  while (i < s.size()) {
    auto b = static_cast<unsigned char>(s[i]);
    size_t len;
    if (b <= 0x7F) len = 1;
    else if (b >= 0xC2 && b <= 0xDF && in(i + 1, 0x80, 0xBF)) len = 2;
    else if (b == 0xE0 && in(i + 1, 0xA0, 0xBF) && in(i + 2, 0x80, 0xBF)) len = 3;
    else if (((b >= 0xE1 && b <= 0xEC) || b == 0xEE || b == 0xEF) && in(i + 1, 0x80, 0xBF) &&
             in(i + 2, 0x80, 0xBF)) len = 3;
    else if (b == 0xED && in(i + 1, 0x80, 0x9F) && in(i + 2, 0x80, 0xBF)) len = 3;
    else if (b == 0xF0 && in(i + 1, 0x90, 0xBF) && in(i + 2, 0x80, 0xBF) && in(i + 3, 0x80, 0xBF)) len = 4;
    else if (b >= 0xF1 && b <= 0xF3 && in(i + 1, 0x80, 0xBF) && in(i + 2, 0x80, 0xBF) &&
             in(i + 3, 0x80, 0xBF)) len = 4;
    else if (b == 0xF4 && in(i + 1, 0x80, 0x8F) && in(i + 2, 0x80, 0xBF) && in(i + 3, 0x80, 0xBF)) len = 4;
    else return false;
    if (cps) {
      static const unsigned kMask[] = {0, 0x7F, 0x1F, 0x0F, 0x07};
      uint32_t cp = b & kMask[len];
      for (size_t k = 1; k < len; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
      cps->push_back(cp);
    }
    i += len;
    ++n;
  }
  if (code_points) *code_points = n;
  return true;
}

bool alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }

bool only(std::string_view s, std::string_view extra) {
  for (char c : s)
    if (!alnum(c) && extra.find(c) == std::string_view::npos) return false;
  return true;
}

bool ref_card_id(std::string_view s) { return s.size() >= 1 && s.size() <= 64 && only(s, "_-"); }
bool ref_code(std::string_view s) { return s.size() >= 4 && s.size() <= 64 && only(s, "-"); }
bool ref_user_id(std::string_view s) {
  return s.size() >= 1 && s.size() <= 128 && only(s, "_.@-") && s != "." && s != "..";
}
bool ref_idempotency_key(std::string_view s) {
  if (s.empty() || s.size() > 128) return false;
  for (char c : s)
    if (c < 0x21 || c > 0x7E) return false;
  return true;
}
bool ref_card_name(std::string_view s) {
  std::vector<uint32_t> cps;
  size_t n = 0;
  if (!ref_utf8(s, &n, &cps) || n < 1 || n > 200) return false;
  for (uint32_t cp : cps)
    if (cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F)) return false;
  return true;
}

// ------------------------------------------------------------ direct checks

void check_string(std::string_view s) {
  size_t n = 0;
  bool valid = ref_utf8(s, &n, nullptr);
  FUZZ_CHECK(is_valid_utf8(s) == valid, "is_valid_utf8 says " + std::string(valid ? "invalid" : "valid") +
                                            " for " + printable(s));
  if (valid) FUZZ_CHECK(utf8_length(s) == n, "utf8_length is wrong for " + printable(s));
  FUZZ_CHECK(check_card_id(s).empty() == ref_card_id(s), "check_card_id disagrees on " + printable(s));
  FUZZ_CHECK(check_card_name(s).empty() == ref_card_name(s), "check_card_name disagrees on " + printable(s));
  FUZZ_CHECK(check_user_id(s).empty() == ref_user_id(s), "check_user_id disagrees on " + printable(s));
  FUZZ_CHECK(check_idempotency_key(s).empty() == ref_idempotency_key(s),
             "check_idempotency_key disagrees on " + printable(s));
  std::string why = check_code(s);
  FUZZ_CHECK(why.empty() == ref_code(s), "check_code disagrees on " + printable(s));
  // The reason must not leak the code: it may depend on the code's shape
  // (length, which characters are allowed) but not on the characters.
  std::string shape(s);
  for (char& c : shape) c = alnum(c) ? 'X' : c == '-' ? '-' : '~';
  FUZZ_CHECK(why == check_code(shape), "check_code's reason depends on the code's characters: " + why);

  Micros t = 0;
  if (parse_rfc3339(s, &t)) {
    std::string text = format_rfc3339(t);
    Micros back = 0;
    FUZZ_CHECK(parse_rfc3339(text, &back) && back == t,
               "parse_rfc3339(format_rfc3339(t)) != t for " + printable(s) + " -> " + text);
    FUZZ_CHECK(format_rfc3339(back) == text, "format_rfc3339 is not canonical for " + text);
  }
}

void check_integer(int64_t v) {
  FUZZ_CHECK(check_amount(v, "amount").empty() == (v > 0), "check_amount disagrees on " + std::to_string(v));
  (void)format_rfc3339(v);  // codes' expires_at and purchase times are rendered with it
}

void walk(const json& j, int depth, size_t* budget) {
  if (*budget == 0 || depth > 64) return;
  --*budget;
  if (j.is_string()) {
    check_string(j.get_ref<const std::string&>());
  } else if (j.is_number_integer()) {
    check_integer(j.is_number_unsigned() ? static_cast<int64_t>(j.get<uint64_t>()) : j.get<int64_t>());
  } else if (j.is_object()) {
    for (const auto& [k, v] : j.items()) {
      check_string(k);
      walk(v, depth + 1, budget);
    }
  } else if (j.is_array()) {
    for (const auto& v : j) walk(v, depth + 1, budget);
  }
}

// ------------------------------------------------------------ through the routes

std::string str_field(const json& j, const char* name) {
  if (!j.is_object() || !j.contains(name) || !j[name].is_string()) return {};
  return j[name].get<std::string>();
}

void post(const std::string& target, const std::string& body, const std::string& key, bool wellformed,
          const std::function<void(int status)>& on_status) {
  HttpRequest req = make_request(http::verb::post, target, body);
  if (!key.empty()) req.set("Idempotency-Key", key);
  Answer a = call_api(std::move(req));
  check_answer(a, "POST " + target + " " + printable(body, 200));
  const int status = a.res.result_int();
  if (!wellformed) {
    json problem = json::parse(a.res.body(), nullptr, false);
    FUZZ_CHECK(status == 400 && problem.is_object() && problem["code"] == "invalid_request",
               "a body that is not JSON got " + std::to_string(status) + " from POST " + target + ": " +
                   printable(a.res.body()));
  }
  on_status(status);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string body(reinterpret_cast<const char*>(data), size);
  check_string(body);
  // Pieces between quotes: raw bytes that the JSON reader would refuse.
  for (size_t start = 0, n = 0; start < body.size() && n < 64; ++n) {
    size_t end = body.find('"', start);
    check_string(std::string_view(body).substr(start, end == std::string::npos ? end : end - start));
    if (end == std::string::npos) break;
    start = end + 1;
  }

  json doc = json::parse(body, nullptr, false);  // lenient: duplicates, any depth
  const bool wellformed = !doc.is_discarded();
  size_t budget = 4096;
  if (wellformed) walk(doc, 0, &budget);

  // A few idempotency keys per body, so repeated commands replay rather than
  // pile up state, but not all of them.
  const std::string key = "fuzz-" + std::to_string(std::hash<std::string>{}(body) % 16);
  post("/api/cards", body, "", wellformed, [&](int status) {
    if (status == 201)
      FUZZ_CHECK(check_card_id(str_field(doc, "id")).empty() && check_card_name(str_field(doc, "name")).empty(),
                 "POST /api/cards created a card from invalid fields: " + printable(body));
  });
  post(std::string("/api/cards/") + kCard + "/codes", body, "", wellformed, [&](int status) {
    if (status != 201) return;
    bool ok = doc.is_object() && doc.contains("codes") && doc["codes"].is_array() && !doc["codes"].empty();
    if (ok)
      for (const auto& c : doc["codes"]) ok = ok && check_code(str_field(c, "code")).empty();
    FUZZ_CHECK(ok, "codes were added from invalid fields: " + printable(body));
  });
  post(std::string("/api/wallets/") + kUser + "/credits", body, key, wellformed, [&](int status) {
    if (status == 201)
      FUZZ_CHECK(doc.is_object() && doc["amount"].is_number_integer() && doc["amount"].get<int64_t>() > 0,
                 "a credit was accepted without a positive amount: " + printable(body));
  });
  post("/api/purchases", body, key, wellformed, [&](int status) {
    if (status == 201)
      FUZZ_CHECK(check_card_id(str_field(doc, "card_id")).empty() && check_user_id(str_field(doc, "user_id")).empty(),
                 "a purchase was accepted from invalid fields: " + printable(body));
  });
  return 0;
}
