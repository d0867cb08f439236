// Tests of input validation (events/validate.h), RFC 3339 time handling
// (events/time_util.h) and the stable error codes (events/errc.h).
#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "events/errc.h"
#include "events/time_util.h"
#include "events/validate.h"

namespace giftcard {
namespace {

bool valid_card_id(std::string_view s) { return check_card_id(s).empty(); }
bool valid_name(std::string_view s) { return check_card_name(s).empty(); }
bool valid_code(std::string_view s) { return check_code(s).empty(); }
bool valid_user(std::string_view s) { return check_user_id(s).empty(); }
bool valid_key(std::string_view s) { return check_idempotency_key(s).empty(); }

std::string repeat(std::string_view unit, size_t n) {
  std::string s;
  for (size_t i = 0; i < n; ++i) s.append(unit);
  return s;
}

// Every byte value that is not in `allowed`, as a one-character string.
std::vector<std::string> forbidden_bytes(std::string_view allowed) {
  std::vector<std::string> out;
  for (int c = 0; c < 256; ++c)
    if (allowed.find(static_cast<char>(c)) == std::string_view::npos)
      out.emplace_back(1, static_cast<char>(c));
  return out;
}

const std::string kAlnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

Micros parse_ok(std::string_view s) {
  Micros t = -42;
  BOOST_TEST_INFO("parsing '" << s << "'");
  BOOST_REQUIRE(parse_rfc3339(s, &t));
  return t;
}

bool parses(std::string_view s) {
  Micros t = 0;
  return parse_rfc3339(s, &t);
}

constexpr Micros kSec = 1000000;
constexpr Micros kDay = 86400 * kSec;

}  // namespace

BOOST_AUTO_TEST_SUITE(validate)

// ------------------------------------------------------------------ card id

BOOST_AUTO_TEST_CASE(card_id_lengths) {
  BOOST_TEST(!valid_card_id(""));
  BOOST_TEST(valid_card_id("a"));
  BOOST_TEST(valid_card_id(std::string(64, 'Z')));
  BOOST_TEST(!valid_card_id(std::string(65, 'Z')));
  BOOST_TEST(valid_card_id(kAlnum.substr(0, 62) + "_-"));
}

BOOST_AUTO_TEST_CASE(card_id_forbidden_chars) {
  const std::string allowed = kAlnum + "_-";
  for (const auto& c : forbidden_bytes(allowed)) {
    BOOST_TEST_INFO("byte " << static_cast<int>(static_cast<unsigned char>(c[0])));
    BOOST_TEST(!valid_card_id("card" + c + "x"));
    BOOST_TEST(!valid_card_id(c));
  }
  for (const std::string& bad : std::vector<std::string>{
           "a/b", "a%2F", "a b", std::string("a\0b", 3), "a.b", "..", "a@b", "caf\xC3\xA9"})
    BOOST_TEST(!valid_card_id(bad), "'" << bad << "' must be rejected");
  BOOST_TEST(!check_card_id("a/b").empty());
}

// --------------------------------------------------------------------- code

BOOST_AUTO_TEST_CASE(code_lengths) {
  BOOST_TEST(!valid_code(""));
  BOOST_TEST(!valid_code("A"));
  BOOST_TEST(!valid_code("ABC"));
  BOOST_TEST(valid_code("ABCD"));
  BOOST_TEST(valid_code(std::string(64, '7')));
  BOOST_TEST(!valid_code(std::string(65, '7')));
  BOOST_TEST(valid_code("----"));
}

BOOST_AUTO_TEST_CASE(code_forbidden_chars) {
  for (const auto& c : forbidden_bytes(kAlnum + "-")) {
    BOOST_TEST_INFO("byte " << static_cast<int>(static_cast<unsigned char>(c[0])));
    BOOST_TEST(!valid_code("ABCD" + c));
    BOOST_TEST(!valid_code("AB" + c + "CD"));
  }
  for (const std::string& bad : std::vector<std::string>{"AB_CD", "AB/CD", "AB%CD", "AB CD",
                                                         std::string("ABC\0", 4), "AB.CD"})
    BOOST_TEST(!valid_code(bad), "'" << bad << "' must be rejected");
  // The reason never echoes the (secret) code.
  BOOST_TEST(check_code("SECRET_CODE").find("SECRET") == std::string::npos);
}

// ------------------------------------------------------------------ user id

BOOST_AUTO_TEST_CASE(user_id_lengths) {
  BOOST_TEST(!valid_user(""));
  BOOST_TEST(valid_user("u"));
  BOOST_TEST(valid_user(std::string(128, 'u')));
  BOOST_TEST(!valid_user(std::string(129, 'u')));
  BOOST_TEST(valid_user("alice.smith@example.com"));
  BOOST_TEST(valid_user("a_b-c.d@e"));
}

BOOST_AUTO_TEST_CASE(user_id_forbidden_chars_and_dots) {
  for (const auto& c : forbidden_bytes(kAlnum + "_.@-")) {
    BOOST_TEST_INFO("byte " << static_cast<int>(static_cast<unsigned char>(c[0])));
    BOOST_TEST(!valid_user("alice" + c));
    BOOST_TEST(!valid_user(c));
  }
  for (const std::string& bad : std::vector<std::string>{"a/b", "../etc", "a%2e", "a b",
                                                         std::string("a\0", 2), "a+b", "a:b"})
    BOOST_TEST(!valid_user(bad), "'" << bad << "' must be rejected");
  // Path-like names that would alias directories.
  BOOST_TEST(!valid_user("."));
  BOOST_TEST(!valid_user(".."));
  BOOST_TEST(valid_user(".alice"));
  BOOST_TEST(valid_user("a..b"));
}

// --------------------------------------------------------- idempotency key

BOOST_AUTO_TEST_CASE(idempotency_key) {
  BOOST_TEST(!valid_key(""));
  BOOST_TEST(check_idempotency_key("") == "idempotency key is required");
  BOOST_TEST(valid_key("k"));
  BOOST_TEST(valid_key(std::string(kMaxIdempotencyKey, 'k')));
  BOOST_TEST(!valid_key(std::string(kMaxIdempotencyKey + 1, 'k')));
  BOOST_TEST(kMaxIdempotencyKey == 128u);
  // Printable ASCII without spaces: 0x21..0x7e.
  for (int c = 0; c < 256; ++c) {
    std::string key = "key" + std::string(1, static_cast<char>(c));
    BOOST_TEST_INFO("byte " << c);
    BOOST_TEST(valid_key(key) == (c > 0x20 && c < 0x7f));
  }
  BOOST_TEST(valid_key("550e8400-e29b-41d4-a716-446655440000"));
  BOOST_TEST(valid_key("a/b%20c..d"));
  BOOST_TEST(!valid_key("a b"));
  BOOST_TEST(!valid_key(std::string("a\0b", 3)));
}

// ---------------------------------------------------------------- amounts

BOOST_AUTO_TEST_CASE(amounts) {
  BOOST_TEST(check_amount(1, "price").empty());
  BOOST_TEST(check_amount(std::numeric_limits<int64_t>::max(), "price").empty());
  BOOST_TEST(!check_amount(0, "price").empty());
  BOOST_TEST(!check_amount(-1, "price").empty());
  BOOST_TEST(!check_amount(std::numeric_limits<int64_t>::min(), "price").empty());
  BOOST_TEST(check_amount(0, "value").find("value") != std::string::npos);
}

// --------------------------------------------------------------- card name

BOOST_AUTO_TEST_CASE(card_name_lengths) {
  BOOST_TEST(!valid_name(""));
  BOOST_TEST(valid_name("x"));
  BOOST_TEST(valid_name(std::string(200, 'x')));
  BOOST_TEST(!valid_name(std::string(201, 'x')));
  // Length counts code points, not bytes: 2-, 3- and 4-byte characters.
  for (std::string_view ch : {"\xC3\xA9", "\xE2\x82\xAC", "\xF0\x9F\x8E\x81"}) {
    BOOST_TEST_INFO("char of " << ch.size() << " bytes");
    BOOST_TEST(valid_name(repeat(ch, 200)));
    BOOST_TEST(!valid_name(repeat(ch, 201)));
    BOOST_TEST(valid_name(repeat(ch, 1)));
    BOOST_TEST(utf8_length(repeat(ch, 201)) == 201u);
  }
  BOOST_TEST(
      valid_name("Steam \xE2\x82\xAC"
                 "50 \xF0\x9F\x8E\x81 caf\xC3\xA9"));
  BOOST_TEST(valid_name(" "));  // only control characters are forbidden
}

BOOST_AUTO_TEST_CASE(card_name_control_chars) {
  for (int c = 0; c < 0x20; ++c) {
    BOOST_TEST_INFO("byte " << c);
    BOOST_TEST(!valid_name("Gift" + std::string(1, static_cast<char>(c)) + "card"));
  }
  BOOST_TEST(!valid_name("Gift\x7f"));
  BOOST_TEST(!valid_name(std::string("a\0b", 3)));
  BOOST_TEST(valid_name("Gift~card"));
}

BOOST_AUTO_TEST_CASE(card_name_invalid_utf8) {
  const std::vector<std::string> bad = {
      "\xC0\x80",                  // overlong NUL
      "\xC0\xAF",                  // overlong '/'
      "\xC1\xBF",                  // overlong 0x7F
      "\xE0\x80\xAF",              // overlong '/', 3 bytes
      "\xE0\x9F\xBF",              // overlong U+07FF
      "\xF0\x80\x80\xAF",          // overlong '/', 4 bytes
      "\xF0\x8F\xBF\xBF",          // overlong U+FFFF
      "\xED\xA0\x80",              // lone high surrogate U+D800
      "\xED\xBF\xBF",              // lone low surrogate U+DFFF
      "\xED\xA0\xBD\xED\xB8\x80",  // surrogate pair (CESU-8)
      "\xF4\x90\x80\x80",          // U+110000
      "\xF5\x80\x80\x80",          // lead byte beyond U+10FFFF
      "\xF8\x88\x80\x80\x80",      // 5-byte form
      "\xFE",                      // never valid
      "\xFF",                      // never valid
      "\x80",                      // lone continuation byte
      "a\xBF",                     // stray continuation byte
      "\xC3",                      // truncated 2-byte
      "\xE2\x82",                  // truncated 3-byte
      "\xF0\x9F\x8E",              // truncated 4-byte
      "\xC3"
      "a",             // lead byte followed by ASCII
      "\xE2\x28\xA1",  // bad second byte
      "\xE2\x82\x28",  // bad third byte
      "abc\xE2\x82",   // truncated at the end
  };
  for (const auto& s : bad) {
    BOOST_TEST_INFO("bytes of size " << s.size() << " at index " << (&s - bad.data()));
    BOOST_TEST(!is_valid_utf8(s));
    BOOST_TEST(!valid_name(s));
    BOOST_TEST(!valid_name("Gift " + s + " card"));
  }
}

BOOST_AUTO_TEST_CASE(utf8_boundaries_valid) {
  const std::vector<std::string> good = {
      "",
      "\x7f",
      "\xC2\x80",          // U+0080
      "\xDF\xBF",          // U+07FF
      "\xE0\xA0\x80",      // U+0800
      "\xED\x9F\xBF",      // U+D7FF, just below the surrogates
      "\xEE\x80\x80",      // U+E000, just above
      "\xEF\xBF\xBF",      // U+FFFF
      "\xF0\x90\x80\x80",  // U+10000
      "\xF4\x8F\xBF\xBF",  // U+10FFFF
  };
  for (const auto& s : good) {
    BOOST_TEST_INFO("index " << (&s - good.data()));
    BOOST_TEST(is_valid_utf8(s));
  }
  BOOST_TEST(utf8_length("") == 0u);
  BOOST_TEST(utf8_length("a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x8E\x81") == 4u);
}

// --------------------------------------------------------------- RFC 3339

BOOST_AUTO_TEST_CASE(format_rfc3339_values) {
  BOOST_TEST(format_rfc3339(0) == "1970-01-01T00:00:00.000000Z");
  BOOST_TEST(format_rfc3339(1767225600000000) == "2026-01-01T00:00:00.000000Z");
  BOOST_TEST(format_rfc3339(1795341600123456) == "2026-11-22T10:00:00.123456Z");
  BOOST_TEST(format_rfc3339(-1) == "1969-12-31T23:59:59.999999Z");
  BOOST_TEST(format_rfc3339(951782400 * kSec) == "2000-02-29T00:00:00.000000Z");
  BOOST_TEST(format_rfc3339(253402300799999999) == "9999-12-31T23:59:59.999999Z");
}

// format_rfc3339 takes any int64; the extremes have 6-digit years (which
// parse_rfc3339 does not accept) but must still be exact, without overflow.
BOOST_AUTO_TEST_CASE(format_rfc3339_whole_int64_range) {
  BOOST_TEST(format_rfc3339(std::numeric_limits<Micros>::max()) == "294247-01-10T04:00:54.775807Z");
  BOOST_TEST(format_rfc3339(std::numeric_limits<Micros>::min() + 1000000) ==
             "-290308-12-21T19:59:06.224192Z");
  BOOST_TEST(format_rfc3339(std::numeric_limits<Micros>::min()) ==
             "-290308-12-21T19:59:05.224192Z");
}

BOOST_AUTO_TEST_CASE(rfc3339_round_trip) {
  const Micros samples[] = {0,
                            1,
                            -1,
                            999999,
                            1000000,
                            1767225600000000,
                            1795341600123456,
                            951782400 * kSec + 1,  // 2000-02-29
                            4107542399999999,      // 2100-02-28T23:59:59.999999
                            -62135596800 * kSec,   // 0001-01-01
                            253402300799999999};   // 9999-12-31T23:59:59.999999
  for (Micros t : samples) {
    const std::string s = format_rfc3339(t);
    BOOST_TEST_INFO(t << " -> " << s);
    BOOST_TEST(parse_ok(s) == t);
  }
  // A day-by-day sweep across several leap cycles.
  for (Micros t = -3 * 366 * kDay; t < 40 * 366 * kDay; t += kDay + 3723 * kSec + 17) {
    const std::string s = format_rfc3339(t);
    Micros back = 0;
    BOOST_REQUIRE_MESSAGE(parse_rfc3339(s, &back) && back == t, s);
  }
}

BOOST_AUTO_TEST_CASE(rfc3339_offsets) {
  const Micros utc = parse_ok("2026-11-22T10:00:00Z");
  BOOST_TEST(utc == 1795341600 * kSec);
  BOOST_TEST(parse_ok("2026-11-22T12:00:00+02:00") == utc);
  BOOST_TEST(parse_ok("2026-11-22T07:30:00-02:30") == utc);
  BOOST_TEST(parse_ok("2026-11-22T10:00:00+00:00") == utc);
  BOOST_TEST(parse_ok("2026-11-22T10:00:00-00:00") == utc);
  BOOST_TEST(parse_ok("2026-11-23T09:59:00+23:59") == utc);
  // Offsets crossing a day and a year boundary.
  BOOST_TEST(parse_ok("2027-01-01T01:00:00+02:00") == parse_ok("2026-12-31T23:00:00Z"));
  // Accepted separators and lowercase.
  BOOST_TEST(parse_ok("2026-11-22t10:00:00z") == utc);
  BOOST_TEST(parse_ok("2026-11-22 10:00:00Z") == utc);

  for (const char* bad :
       {"2026-11-22T10:00:00+2:00", "2026-11-22T10:00:00+02", "2026-11-22T10:00:00+0200",
        "2026-11-22T10:00:00+24:00", "2026-11-22T10:00:00+02:60", "2026-11-22T10:00:00+02:00Z",
        "2026-11-22T10:00:00 +02:00", "2026-11-22T10:00:00+", "2026-11-22T10:00:00+02:0"}) {
    BOOST_TEST(!parses(bad), "'" << bad << "' must be rejected");
  }
}

BOOST_AUTO_TEST_CASE(rfc3339_fractional_seconds) {
  const Micros base = 1795341600 * kSec;
  BOOST_TEST(parse_ok("2026-11-22T10:00:00.5Z") == base + 500000);
  BOOST_TEST(parse_ok("2026-11-22T10:00:00.05Z") == base + 50000);
  BOOST_TEST(parse_ok("2026-11-22T10:00:00.123456Z") == base + 123456);
  BOOST_TEST(parse_ok("2026-11-22T10:00:00.000001Z") == base + 1);
  // Below a microsecond is truncated; at most 9 digits.
  BOOST_TEST(parse_ok("2026-11-22T10:00:00.1234567Z") == base + 123456);
  BOOST_TEST(parse_ok("2026-11-22T10:00:00.999999999Z") == base + 999999);
  BOOST_TEST(parse_ok("2026-11-22T12:00:00.25+02:00") == base + 250000);
  BOOST_TEST(!parses("2026-11-22T10:00:00.1234567890Z"));
  BOOST_TEST(!parses("2026-11-22T10:00:00.Z"));
  BOOST_TEST(!parses("2026-11-22T10:00:00,5Z"));
  BOOST_TEST(!parses("2026-11-22T10:00:00.5"));
}

BOOST_AUTO_TEST_CASE(rfc3339_invalid_dates) {
  for (const char* bad : {
           "2026-02-30T00:00:00Z",  // Feb 30
           "2026-02-29T00:00:00Z",  // not a leap year
           "2100-02-29T00:00:00Z",  // century, not a leap year
           "2026-13-01T00:00:00Z",  // month 13
           "2026-00-10T00:00:00Z",  // month 0
           "2026-01-00T00:00:00Z",  // day 0
           "2026-01-32T00:00:00Z",  // day 32
           "2026-04-31T00:00:00Z",  // April has 30 days
           "2026-01-01T24:00:00Z",  // hour 24
           "2026-01-01T23:60:00Z",  // minute 60
           "2026-01-01T23:59:61Z",  // second 61
           "2026-01-01T00:00:00",   // missing Z
           "2026-01-01T00:00:00.123456",
           "2026-01-01",            // date only
           "2026-01-01X00:00:00Z",  // bad separator
           "2026-1-01T00:00:00Z",   // short month
           "26-01-01T00:00:00Z",
           "2026/01/01T00:00:00Z",
           "2026-01-01T00:00:00ZZ",  // trailing garbage
           "2026-01-01T00:00:00Z ",
           " 2026-01-01T00:00:00Z",
           "+2026-01-01T00:00:00Z",
           "2026-01-01T00:00:0aZ",
           "",
       }) {
    BOOST_TEST(!parses(bad), "'" << bad << "' must be rejected");
  }
  // Rejection leaves the output alone.
  Micros t = 77;
  BOOST_TEST(!parse_rfc3339("2026-02-30T00:00:00Z", &t));
  BOOST_TEST(t == 77);
}

BOOST_AUTO_TEST_CASE(rfc3339_leap_years) {
  BOOST_TEST(parses("2024-02-29T00:00:00Z"));
  BOOST_TEST(parses("2000-02-29T00:00:00Z"));  // divisible by 400
  BOOST_TEST(parses("2400-02-29T00:00:00Z"));
  BOOST_TEST(!parses("1900-02-29T00:00:00Z"));  // divisible by 100 only
  BOOST_TEST(!parses("2023-02-29T00:00:00Z"));
  BOOST_TEST(parse_ok("2024-03-01T00:00:00Z") - parse_ok("2024-02-28T00:00:00Z") == 2 * kDay);
  BOOST_TEST(parse_ok("2023-03-01T00:00:00Z") - parse_ok("2023-02-28T00:00:00Z") == kDay);
  BOOST_TEST(parse_ok("2025-01-01T00:00:00Z") - parse_ok("2024-01-01T00:00:00Z") == 366 * kDay);
  BOOST_TEST(parse_ok("2024-02-29T12:34:56Z") == 1709210096 * kSec);
  BOOST_TEST(format_rfc3339(1709210096 * kSec) == "2024-02-29T12:34:56.000000Z");
}

BOOST_AUTO_TEST_CASE(rfc3339_leap_second_is_clamped) {
  BOOST_TEST(parse_ok("2016-12-31T23:59:60Z") == parse_ok("2016-12-31T23:59:59Z"));
}

BOOST_AUTO_TEST_CASE(now_micros_is_plausible) {
  const Micros a = now_micros();
  const Micros b = now_micros();
  BOOST_TEST(a > parse_ok("2024-01-01T00:00:00Z"));
  BOOST_TEST(b >= a);
}

// -------------------------------------------------------------------- errc

// The contract's table of problem codes (docs/CONTRACT.md, "Problem codes":
// | `code` | status | Errc value | when |) is the expected side: every row
// with an Errc value must be what events/errc.cc says, and every Errc value
// must have its row, so the page and the code cannot drift apart.
BOOST_AUTO_TEST_CASE(errc_names_and_http_status_are_the_contract) {
  const auto contract = std::filesystem::path(__FILE__).parent_path() / ".." / ".." / "docs" /
                        "CONTRACT.md";
  std::ifstream in(contract);
  BOOST_REQUIRE_MESSAGE(in, "cannot read " << contract);
  const std::regex row(R"(^\| `([a-z_]+)` \| ([0-9]{3}) \| ([0-9]+) \|)");
  std::set<int> seen;
  std::string line;
  while (std::getline(in, line)) {
    std::smatch m;
    if (!std::regex_search(line, m, row)) continue;
    const std::string name = m[1];
    const int status = std::stoi(m[2]), value = std::stoi(m[3]);
    BOOST_TEST_INFO("contract row " << name);
    const auto e = static_cast<Errc>(value);
    BOOST_TEST(seen.insert(value).second);  // one row per value
    BOOST_TEST(to_string(e) == name);
    BOOST_TEST(http_status(e) == status);
    Errc back = Errc::unavailable;
    BOOST_TEST(from_string(name, &back));
    BOOST_TEST(static_cast<int>(back) == value);
    std::ostringstream os;
    os << e;
    BOOST_TEST(os.str() == name);
  }
  // Every value from 1 up to the last one the code knows has its row.
  int last = 0;
  while (to_string(static_cast<Errc>(last + 1)) != "unknown") ++last;
  BOOST_TEST(last >= 19);
  for (int v = 1; v <= last; ++v) BOOST_TEST(seen.count(v) == 1u, "no contract row for Errc " << v);
  BOOST_TEST(seen.size() == static_cast<size_t>(last));
  BOOST_TEST(to_string(Errc::ok) == "ok");
  BOOST_TEST(http_status(Errc::ok) == 200);
}

BOOST_AUTO_TEST_CASE(errc_unknown_values) {
  for (int raw : {20, 100, 255}) {  // past the last value (rate_limited = 19)
    const auto e = static_cast<Errc>(raw);
    BOOST_TEST(to_string(e) == "unknown");
    BOOST_TEST(http_status(e) == 500);
  }
  Errc out = Errc::card_exists;
  BOOST_TEST(!from_string("unknown", &out));
  BOOST_TEST(!from_string("", &out));
  BOOST_TEST(!from_string("Card_Not_Found", &out));
  BOOST_TEST(!from_string("card_not_found ", &out));
  BOOST_TEST(static_cast<int>(out) == static_cast<int>(Errc::card_exists));
}

BOOST_AUTO_TEST_CASE(card_name_rejects_c1_controls) {
  BOOST_TEST(!check_card_name("Gift\xC2\x85"
                              "card")
                  .empty());  // NEL
  BOOST_TEST(!check_card_name("\xC2\x80").empty());
  BOOST_TEST(!check_card_name("\xC2\x9F").empty());
  BOOST_TEST(check_card_name("Caf\xC3\xA9 \xC2\xA0 \xE2\x82\xAC").empty());  // é, NBSP, €
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace giftcard
