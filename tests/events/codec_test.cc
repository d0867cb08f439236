// Tests of the event payload codec (events/codec.h): round trips for every
// event type, rejection of corrupt or hostile payloads, and the pinned v1 and
// v2 (CodeSpec) on-disk formats.
#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "events/codec.h"
#include "events/events.h"

namespace giftcard {
namespace {

std::string from_hex(std::string_view hex) {
  BOOST_REQUIRE(hex.size() % 2 == 0);
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    BOOST_FAIL("bad hex digit");
    return 0;
  };
  std::string out;
  for (size_t i = 0; i < hex.size(); i += 2)
    out.push_back(static_cast<char>(nibble(hex[i]) * 16 + nibble(hex[i + 1])));
  return out;
}

std::string to_hex(std::string_view bytes) {
  static const char* kHex = "0123456789abcdef";
  std::string s;
  for (unsigned char b : bytes) {
    s.push_back(kHex[b >> 4]);
    s.push_back(kHex[b & 15]);
  }
  return s;
}

// Little-endian u64 as cereal's binary format writes size tags.
void put_le64(std::string& s, size_t off, uint64_t v) {
  BOOST_REQUIRE(off + 8 <= s.size());
  for (int i = 0; i < 8; ++i) s[off + i] = static_cast<char>((v >> (8 * i)) & 0xff);
}
uint64_t get_le64(const std::string& s, size_t off) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(s[off + i]);
  return v;
}

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
constexpr int64_t kMin = std::numeric_limits<int64_t>::min();

// Small, non-trivial samples: at least one of every alternative of Event.
std::vector<Event> small_samples() {
  return {
      CardCreated{"card-1", "Steam \xE2\x82\xAC 50 gift card", 4999, 5000},
      CardCreated{"", "", 0, 0},
      CardCreated{"x", std::string("nul\0inside", 10), kMax, kMin},
      CodesAdded{"card-1", {{"AAAA-0001", 0}, {"BBBB-0002", 1767225600000000}, {"", -1}}},
      CodesAdded{
          "card-3",
          {CodeSpec::expiring("EPOCH", 0), CodeSpec{"NEVER"}, CodeSpec::expiring("MIN", kMin)}},
      CodesAdded{"card-2", {}},
      CodesAdded{"", {{"CCCC", kMax}}},
      CodeAssigned{"card-1", "ABCD-1234", "p-0001", "alice@example.com", 1500, "key-1"},
      CodeAssigned{"", "", "", "", 0, ""},
      CodeAssigned{"c", "CODE", "p", "u", -7, std::string(128, '~')},
      CodeRevoked{"card-1", "ABCD-1234"},
      CodeRevoked{"", ""},
      CodesExpired{"card-1", {"AAAA-0001", "", "BBBB-0002"}},
      CodesExpired{"card-1", {}},
      WalletCredited{"alice@example.com", 10000, 10000, "credit-1"},
      WalletCredited{"", 0, 0, ""},
      WalletCredited{"bob", kMax, kMax, "k"},
      WalletDebited{"alice@example.com", 1500, 8500, "p-0001", "card-1"},
      WalletDebited{"", 0, 0, "", ""},
      WalletDebited{"bob", kMin, -1, "p", "c"},
  };
}

std::vector<Event> big_samples() {
  CodesAdded added{"big-card", {}};
  CodesExpired expired{"big-card", {}};
  for (int i = 0; i < 100000; ++i) {
    std::string code = "CODE-" + std::to_string(i);
    added.codes.push_back({code, i % 3 == 0 ? 0 : 1700000000000000 + i});
    expired.codes.push_back(code);
  }
  return {added, expired, CardCreated{"big", std::string(1 << 20, 'n'), 1, 2},
          CodeRevoked{std::string(70000, 'c'), std::string(3, '\xff')}};
}

// An Event holding a value that no sample equals, to detect overwrites.
Event sentinel() { return CodeRevoked{"sentinel", "sentinel"}; }

}  // namespace

BOOST_AUTO_TEST_SUITE(codec)

BOOST_AUTO_TEST_CASE(samples_cover_every_event_type) {
  std::set<size_t> seen;
  for (const auto& e : small_samples()) seen.insert(e.index());
  BOOST_TEST(seen.size() == std::variant_size_v<Event>);
}

BOOST_AUTO_TEST_CASE(round_trip_every_event_type) {
  for (const auto& e : small_samples()) {
    std::string bytes = encode_payload(e);
    Event back = sentinel();
    Status st = decode_payload(type_of(e), bytes, &back);
    BOOST_TEST_INFO("type " << type_name(type_of(e)) << " bytes " << to_hex(bytes));
    BOOST_TEST(st.ok(), st.ToString());
    BOOST_TEST((back == e));
    BOOST_TEST(back.index() == e.index());
    // Encoding is deterministic.
    BOOST_TEST(encode_payload(back) == bytes);
  }
}

BOOST_AUTO_TEST_CASE(round_trip_big_payloads) {
  for (const auto& e : big_samples()) {
    std::string bytes = encode_payload(e);
    Event back = sentinel();
    Status st = decode_payload(type_of(e), bytes, &back);
    BOOST_TEST(st.ok(), st.ToString());
    BOOST_TEST((back == e));
  }
}

BOOST_AUTO_TEST_CASE(round_trip_through_stored_type_tag) {
  // A decoded event reports the same type tag that it was decoded with.
  for (const auto& e : small_samples()) {
    Event back = sentinel();
    BOOST_REQUIRE(decode_payload(type_of(e), encode_payload(e), &back).ok());
    BOOST_TEST(static_cast<int>(type_of(back)) == static_cast<int>(type_of(e)));
  }
}

BOOST_AUTO_TEST_CASE(rejects_every_truncation) {
  for (const auto& e : small_samples()) {
    const std::string bytes = encode_payload(e);
    for (size_t len = 0; len < bytes.size(); ++len) {
      Event out = sentinel();
      Status st;
      BOOST_CHECK_NO_THROW(
          st = decode_payload(type_of(e), std::string_view(bytes).substr(0, len), &out));
      BOOST_TEST_INFO(type_name(type_of(e)) << " prefix " << len << " of " << bytes.size());
      BOOST_TEST(st.IsCorruption());
    }
  }
}

BOOST_AUTO_TEST_CASE(rejects_truncation_of_big_payload) {
  const Event e = big_samples()[0];
  const std::string bytes = encode_payload(e);
  // Every prefix would take minutes; sample them densely at both ends.
  std::vector<size_t> lens;
  for (size_t i = 0; i < 256; ++i) lens.push_back(i);
  for (size_t i = 1; i <= 256; ++i) lens.push_back(bytes.size() - i);
  for (size_t i = 256; i < bytes.size(); i += 9973) lens.push_back(i);
  for (size_t len : lens) {
    Event out = sentinel();
    Status st = decode_payload(type_of(e), std::string_view(bytes).substr(0, len), &out);
    BOOST_TEST_INFO("prefix " << len);
    BOOST_TEST(st.IsCorruption());
  }
}

BOOST_AUTO_TEST_CASE(rejects_trailing_bytes) {
  for (const auto& e : small_samples()) {
    for (std::string extra : {std::string(1, '\0'), std::string(1, 'x'), std::string(8, '\0'),
                              std::string(100, '\x01')}) {
      std::string bytes = encode_payload(e) + extra;
      Event out = sentinel();
      Status st = decode_payload(type_of(e), bytes, &out);
      BOOST_TEST_INFO(type_name(type_of(e)) << " + " << extra.size() << " bytes");
      BOOST_TEST(st.IsCorruption());
    }
  }
}

BOOST_AUTO_TEST_CASE(rejects_lying_string_length) {
  // Layout: u32 class version, u64 card_id length, card_id bytes, ...
  const Event e = CardCreated{"card-1", "Some name", 100, 200};
  const std::string good = encode_payload(e);
  BOOST_REQUIRE(get_le64(good, 4) == 6);
  const uint64_t remaining = good.size() - 12;
  for (uint64_t claim : {uint64_t{1} << 40, std::numeric_limits<uint64_t>::max(), uint64_t{1} << 63,
                         remaining + 1, remaining, uint64_t{7}, uint64_t{5}}) {
    std::string bad = good;
    put_le64(bad, 4, claim);
    Event out = sentinel();
    Status st;
    BOOST_CHECK_NO_THROW(st = decode_payload(EventType::CardCreated, bad, &out));
    BOOST_TEST_INFO("claimed length " << claim);
    BOOST_TEST(st.IsCorruption());
    BOOST_TEST((out == sentinel()));
  }
}

BOOST_AUTO_TEST_CASE(rejects_lying_vector_length) {
  // CodesAdded: u32 version, u64 len, card_id, u64 count, u32 CodeSpec version, specs...
  const Event e = CodesAdded{"c1", {{"AAAA", 0}, {"BBBB", 5}}};
  const std::string good = encode_payload(e);
  const size_t count_off = 4 + 8 + 2;
  BOOST_REQUIRE(get_le64(good, count_off) == 2);
  const uint64_t remaining = good.size() - count_off - 8;
  for (uint64_t claim : {uint64_t{1} << 40, std::numeric_limits<uint64_t>::max(), uint64_t{1} << 32,
                         remaining + 1, remaining, uint64_t{3}, uint64_t{1}}) {
    std::string bad = good;
    put_le64(bad, count_off, claim);
    Event out = sentinel();
    Status st;
    BOOST_CHECK_NO_THROW(st = decode_payload(EventType::CodesAdded, bad, &out));
    BOOST_TEST_INFO("claimed count " << claim);
    BOOST_TEST(st.IsCorruption());
  }
}

BOOST_AUTO_TEST_CASE(rejects_lying_vector_of_strings_length) {
  const Event e = CodesExpired{"c1", {"AAAA", "BBBB"}};
  const std::string good = encode_payload(e);
  const size_t count_off = 4 + 8 + 2;
  BOOST_REQUIRE(get_le64(good, count_off) == 2);
  const uint64_t remaining = good.size() - count_off - 8;
  for (uint64_t claim : {uint64_t{1} << 40, std::numeric_limits<uint64_t>::max(), remaining + 1,
                         remaining, uint64_t{3}}) {
    std::string bad = good;
    put_le64(bad, count_off, claim);
    Event out = sentinel();
    BOOST_TEST_INFO("claimed count " << claim);
    BOOST_TEST(decode_payload(EventType::CodesExpired, bad, &out).IsCorruption());
  }
  // The length of the first inner string lies.
  const size_t inner_off = count_off + 8;
  BOOST_REQUIRE(get_le64(good, inner_off) == 4);
  for (uint64_t claim : {uint64_t{1} << 40, good.size() - inner_off - 8 + 1}) {
    std::string bad = good;
    put_le64(bad, inner_off, claim);
    Event out = sentinel();
    BOOST_TEST(decode_payload(EventType::CodesExpired, bad, &out).IsCorruption());
  }
}

BOOST_AUTO_TEST_CASE(rejects_wrong_event_type) {
  for (const auto& e : small_samples()) {
    const std::string bytes = encode_payload(e);
    for (uint8_t raw = 1; raw <= 7; ++raw) {
      const auto t = static_cast<EventType>(raw);
      if (t == type_of(e)) continue;
      Event out = sentinel();
      Status st;
      BOOST_CHECK_NO_THROW(st = decode_payload(t, bytes, &out));
      // A payload may by coincidence have the exact shape of another type
      // (e.g. an empty CodesExpired list and two strings); a successful
      // decode must then re-encode to the same bytes, never invent data.
      if (st.ok()) {
        BOOST_TEST(static_cast<int>(type_of(out)) == static_cast<int>(t));
        BOOST_TEST(encode_payload(out) == bytes);
      } else {
        BOOST_TEST(st.IsCorruption());
      }
    }
  }
  // Representative pairs that must fail.
  Event out = sentinel();
  BOOST_TEST(decode_payload(EventType::CardCreated,
                            encode_payload(CodeRevoked{"card-1", "ABCD-1234"}), &out)
                 .IsCorruption());
  BOOST_TEST(decode_payload(EventType::CodeRevoked,
                            encode_payload(CardCreated{"card-1", "name", 1, 2}), &out)
                 .IsCorruption());
  BOOST_TEST(
      decode_payload(EventType::WalletDebited, encode_payload(WalletCredited{"u", 1, 1, "k"}), &out)
          .IsCorruption());
  BOOST_TEST(decode_payload(EventType::CodeAssigned,
                            encode_payload(WalletDebited{"u", 1, 1, "p", "c"}), &out)
                 .IsCorruption());
  BOOST_TEST((out == sentinel()));
}

BOOST_AUTO_TEST_CASE(rejects_unknown_type) {
  const std::string bytes = encode_payload(CardCreated{"card-1", "n", 1, 1});
  for (int raw : {0, 8, 9, 100, 255}) {
    Event out = sentinel();
    Status st;
    BOOST_CHECK_NO_THROW(st = decode_payload(static_cast<EventType>(raw), bytes, &out));
    BOOST_TEST_INFO("raw type " << raw);
    BOOST_TEST(st.IsCorruption());
    BOOST_TEST((out == sentinel()));
  }
  Event out = sentinel();
  BOOST_TEST(decode_payload(static_cast<EventType>(0), "", &out).IsCorruption());
}

BOOST_AUTO_TEST_CASE(rejects_empty_payload_for_every_type) {
  for (uint8_t raw = 1; raw <= 7; ++raw) {
    Event out = sentinel();
    BOOST_TEST(decode_payload(static_cast<EventType>(raw), "", &out).IsCorruption());
  }
}

BOOST_AUTO_TEST_CASE(random_mutations_never_crash) {
  std::mt19937 rng(20261122);
  const auto samples = small_samples();
  int decoded_ok = 0, rejected = 0;
  for (int iter = 0; iter < 20000; ++iter) {
    const Event& e = samples[rng() % samples.size()];
    std::string bytes = encode_payload(e);
    const int kind = static_cast<int>(rng() % 3);
    if (kind == 0 && !bytes.empty()) {
      bytes[rng() % bytes.size()] ^= static_cast<char>(1 + rng() % 255);
    } else if (kind == 1 && !bytes.empty()) {
      // Overwrite 8 bytes with a random, possibly huge, little-endian value.
      size_t off = rng() % bytes.size();
      for (size_t i = off; i < bytes.size() && i < off + 8; ++i)
        bytes[i] = static_cast<char>(rng());
    } else {
      bytes.resize(rng() % 64);
      for (auto& c : bytes) c = static_cast<char>(rng());
    }
    const auto t = static_cast<EventType>(rng() % 9);
    Event out = sentinel();
    Status st;
    BOOST_REQUIRE_NO_THROW(st = decode_payload(t, bytes, &out));
    if (st.ok()) {
      ++decoded_ok;
      // Whatever decoded re-encodes to the same size (the class version
      // fields are not checked, so bytes may differ there) and is stable.
      // Except a CodesAdded whose CodeSpec version was mutated to 0 or 1: it
      // decodes with the v1 layout and re-encodes as v2.
      const std::string again = encode_payload(out);
      if (type_of(out) != EventType::CodesAdded) BOOST_REQUIRE(again.size() == bytes.size());
      Event twice = sentinel();
      BOOST_REQUIRE(decode_payload(type_of(out), again, &twice).ok());
      BOOST_REQUIRE((twice == out));
    } else {
      ++rejected;
      BOOST_REQUIRE(st.IsCorruption());
    }
  }
  BOOST_TEST(rejected > 0);
  BOOST_TEST(decoded_ok + rejected == 20000);
}

// Pins the v1 on-disk format: these bytes are in every existing log and must
// decode forever. Never edit them; add a new version instead.
BOOST_AUTO_TEST_CASE(golden_v1) {
  const Event assigned = CodeAssigned{"card-1", "ABCD-1234", "p-0001", "alice@example.com",
                                      1500,     "key-1"};
  // clang-format off
  const std::string assigned_hex =
      "01000000"                                      // class version 1
      "0600000000000000" "636172642d31"               // "card-1"
      "0900000000000000" "414243442d31323334"         // "ABCD-1234"
      "0600000000000000" "702d30303031"               // "p-0001"
      "1100000000000000" "616c696365406578616d706c652e636f6d"  // "alice@example.com"
      "dc05000000000000"                              // price 1500
      "0500000000000000" "6b65792d31";                // "key-1"

  const Event added = CodesAdded{"card-1", {{"AAAA-0001", 0}, {"BBBB-0002", 1767225600000000}}};
  const std::string added_hex =
      "01000000"                                      // class version 1
      "0600000000000000" "636172642d31"               // "card-1"
      "0200000000000000"                              // 2 codes
      "01000000"                                      // CodeSpec class version 1
      "0900000000000000" "414141412d30303031"         // "AAAA-0001"
      "0000000000000000"                              // never expires
      "0900000000000000" "424242422d30303032"         // "BBBB-0002"
      "0040204648470600";                             // 2026-01-01T00:00:00Z
  // clang-format on

  for (const auto& [event, hex] :
       {std::pair{assigned, assigned_hex}, std::pair{added, added_hex}}) {
    Event out = sentinel();
    Status st = decode_payload(type_of(event), from_hex(hex), &out);
    BOOST_TEST(st.ok(), st.ToString());
    BOOST_TEST((out == event));
  }
  // CodeAssigned is still written as v1; CodesAdded is written with CodeSpec
  // v2 now (golden_v2_code_spec), its v1 bytes only decode.
  BOOST_TEST(to_hex(encode_payload(assigned)) == assigned_hex);
  Event out = sentinel();
  BOOST_REQUIRE(decode_payload(EventType::CodesAdded, from_hex(added_hex), &out).ok());
  const auto& codes = std::get<CodesAdded>(out).codes;
  BOOST_REQUIRE(codes.size() == 2u);
  BOOST_TEST(!codes[0].expires_at.has_value());  // v1's 0: never, as it meant
  BOOST_TEST((codes[1].expires_at == Expiry{1767225600000000}));
}

// A v1 CodeSpec's i64 is "never" when 0 and an expiry otherwise — also a
// negative one, which no writer produced (decide refused it). Version 0 reads
// as version 1.
BOOST_AUTO_TEST_CASE(v1_code_spec_zero_means_never) {
  // clang-format off
  const std::string v1_hex =
      "01000000"                                      // CodesAdded class version 1
      "0100000000000000" "63"                         // "c"
      "0300000000000000"                              // 3 codes
      "01000000"                                      // CodeSpec class version 1
      "0100000000000000" "41" "0000000000000000"      // "A", 0: never
      "0100000000000000" "42" "c0bdf0ffffffffff"      // "B", -1000000: 1969-12-31T23:59:59Z
      "0100000000000000" "43" "0100000000000000";     // "C", 1 µs after the epoch
  // clang-format on
  for (const char* version : {"01000000", "00000000"}) {
    std::string hex = v1_hex;
    hex.replace(hex.find("0300000000000000") + 16, 8, version);
    BOOST_TEST_INFO("CodeSpec class version " << version);
    Event out = sentinel();
    Status st = decode_payload(EventType::CodesAdded, from_hex(hex), &out);
    BOOST_REQUIRE_MESSAGE(st.ok(), st.ToString());
    const auto& codes = std::get<CodesAdded>(out).codes;
    BOOST_REQUIRE(codes.size() == 3u);
    BOOST_TEST(!codes[0].expires_at.has_value());
    BOOST_TEST((codes[1].expires_at == Expiry{-1'000'000}));
    BOOST_TEST((codes[2].expires_at == Expiry{1}));
    // Written back as v2, the meaning is kept: absent, -1000000, 1.
    Event again = sentinel();
    BOOST_REQUIRE(decode_payload(EventType::CodesAdded, encode_payload(out), &again).ok());
    BOOST_TEST((again == out));
  }
}

// Pins the v2 CodeSpec format (CodesAdded class version 1 around it): a u8
// presence flag, and the i64 expiry only when present. "Never" is absent; an
// expiry at or before the epoch is an expiry. Never edit these bytes.
BOOST_AUTO_TEST_CASE(golden_v2_code_spec) {
  const Event added = CodesAdded{
      "card-1",
      {CodeSpec{"AAAA-0001"}, CodeSpec::expiring("BBBB-0002", 1767225600000000),
       CodeSpec::expiring("EPOCH-001", 0), CodeSpec::expiring("PRE-EPOCH", -1'000'000)}};
  // clang-format off
  const std::string added_hex =
      "01000000"                                      // CodesAdded class version 1
      "0600000000000000" "636172642d31"               // "card-1"
      "0400000000000000"                              // 4 codes
      "02000000"                                      // CodeSpec class version 2
      "0900000000000000" "414141412d30303031"         // "AAAA-0001"
      "00"                                            // never expires
      "0900000000000000" "424242422d30303032"         // "BBBB-0002"
      "01" "0040204648470600"                         // 2026-01-01T00:00:00Z
      "0900000000000000" "45504f43482d303031"         // "EPOCH-001"
      "01" "0000000000000000"                         // 1970-01-01T00:00:00Z
      "0900000000000000" "5052452d45504f4348"         // "PRE-EPOCH"
      "01" "c0bdf0ffffffffff";                        // 1969-12-31T23:59:59Z
  // clang-format on
  BOOST_TEST(to_hex(encode_payload(added)) == added_hex);
  Event out = sentinel();
  Status st = decode_payload(EventType::CodesAdded, from_hex(added_hex), &out);
  BOOST_TEST(st.ok(), st.ToString());
  BOOST_TEST((out == added));
  const auto& codes = std::get<CodesAdded>(out).codes;
  BOOST_REQUIRE(codes.size() == 4u);
  BOOST_TEST(!codes[0].expires_at.has_value());
  BOOST_TEST((codes[2].expires_at == Expiry{0}));
  BOOST_TEST((codes[3].expires_at == Expiry{-1'000'000}));
}

// Absent and 0 are different values and stay different through the codec.
BOOST_AUTO_TEST_CASE(absent_and_zero_expiry_round_trip_apart) {
  const Event never = CodesAdded{"c", {CodeSpec{"AAAA"}}};
  const Event epoch = CodesAdded{"c", {CodeSpec::expiring("AAAA", 0)}};
  BOOST_TEST(!(never == epoch));
  BOOST_TEST(encode_payload(never) != encode_payload(epoch));
  for (const Event& e : {never, epoch}) {
    Event out = sentinel();
    BOOST_REQUIRE(decode_payload(EventType::CodesAdded, encode_payload(e), &out).ok());
    BOOST_TEST((out == e));
  }
}

BOOST_AUTO_TEST_CASE(bad_code_spec_flag_or_version_is_refused) {
  const std::string good = encode_payload(CodesAdded{"c", {CodeSpec{"AAAA"}}});
  // u32 version, u64 1, "c", u64 1, u32 CodeSpec version, u64 4, "AAAA", u8 flag
  const size_t version_at = 4 + 8 + 1 + 8;
  const size_t flag_at = version_at + 4 + 8 + 4;
  BOOST_REQUIRE(good.size() == flag_at + 1);
  BOOST_REQUIRE(good[version_at] == 2);
  BOOST_REQUIRE(good[flag_at] == 0);
  for (char flag : {'\x02', '\x7f', '\xff'}) {
    std::string bad = good;
    bad[flag_at] = flag;
    Event out = sentinel();
    BOOST_TEST(decode_payload(EventType::CodesAdded, bad, &out).IsCorruption());
    BOOST_TEST((out == sentinel()));
  }
  std::string newer = good;
  newer[version_at] = 3;
  Event out = sentinel();
  BOOST_TEST(decode_payload(EventType::CodesAdded, newer, &out).IsCorruption());
  // Flag 1 with its expiry missing: truncated.
  std::string truncated = good;
  truncated[flag_at] = 1;
  BOOST_TEST(decode_payload(EventType::CodesAdded, truncated, &out).IsCorruption());
}

BOOST_AUTO_TEST_CASE(type_tags_are_stable) {
  BOOST_TEST(static_cast<int>(type_of(CardCreated{})) == 1);
  BOOST_TEST(static_cast<int>(type_of(CodesAdded{})) == 2);
  BOOST_TEST(static_cast<int>(type_of(CodeAssigned{})) == 3);
  BOOST_TEST(static_cast<int>(type_of(CodeRevoked{})) == 4);
  BOOST_TEST(static_cast<int>(type_of(CodesExpired{})) == 5);
  BOOST_TEST(static_cast<int>(type_of(WalletCredited{})) == 6);
  BOOST_TEST(static_cast<int>(type_of(WalletDebited{})) == 7);

  const char* names[] = {"CardCreated",  "CodesAdded",     "CodeAssigned", "CodeRevoked",
                         "CodesExpired", "WalletCredited", "WalletDebited"};
  for (uint8_t raw = 1; raw <= 7; ++raw) {
    BOOST_TEST(is_known_type(raw));
    BOOST_TEST(type_name(static_cast<EventType>(raw)) == names[raw - 1]);
    EventType t{};
    BOOST_TEST(type_from_name(names[raw - 1], &t));
    BOOST_TEST(static_cast<int>(t) == raw);
  }
  for (int raw : {0, 8, 255}) {
    BOOST_TEST(!is_known_type(static_cast<uint8_t>(raw)));
    BOOST_TEST(type_name(static_cast<EventType>(raw)) == "Unknown");
  }
  EventType t = EventType::CodesAdded;
  BOOST_TEST(!type_from_name("Unknown", &t));
  BOOST_TEST(!type_from_name("cardcreated", &t));
  BOOST_TEST(!type_from_name("", &t));
  BOOST_TEST(static_cast<int>(t) == 2);
}

BOOST_AUTO_TEST_CASE(stream_names) {
  BOOST_TEST(card_stream("steam-50") == "card-steam-50");
  BOOST_TEST(wallet_stream("alice@example.com") == "wallet-alice@example.com");
  BOOST_TEST(card_stream("") == "card-");
}

// A payload written by a newer class version is refused, not misread.
BOOST_AUTO_TEST_CASE(newer_class_version_is_refused) {
  std::string bytes = encode_payload(CodeRevoked{"card", "CODE-1"});
  // The class version is the first u32 of the payload (little endian).
  BOOST_REQUIRE(bytes.size() > 4);
  BOOST_REQUIRE(bytes[0] == 1);
  Event out;
  BOOST_TEST(decode_payload(EventType::CodeRevoked, bytes, &out).ok());
  bytes[0] = 2;
  BOOST_TEST(decode_payload(EventType::CodeRevoked, bytes, &out).IsCorruption());
}

// A vector length that fits the bytes left (1 byte per element) but not the
// smallest element encoding is refused before anything is allocated.
BOOST_AUTO_TEST_CASE(vector_length_bounded_by_element_size) {
  std::string bytes = encode_payload(CodesExpired{"card", {"CODE-1"}});
  // Layout: u32 version, u64 len("card"), "card", u64 n, ... Patch n.
  size_t n_at = 4 + 8 + 4;
  uint64_t remaining = bytes.size() - (n_at + 8);
  uint64_t lie = remaining;  // passes a 1-byte-per-element check, fails 8 bytes per string
  std::memcpy(&bytes[n_at], &lie, 8);
  Event out;
  Status s = decode_payload(EventType::CodesExpired, bytes, &out);
  BOOST_TEST(s.IsCorruption());
  BOOST_TEST(s.message().find("vector length") != std::string::npos, s.message());
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace giftcard
