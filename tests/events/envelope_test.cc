// Tests of the on-disk event record (events/envelope.h): round trip, the
// chained hash, CRC-32C and rejection of damaged or lying records.
#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "events/codec.h"
#include "events/envelope.h"

namespace giftcard {
namespace {

// Offsets in a record (see envelope.h).
constexpr size_t kTypeOff = 1;
constexpr size_t kStreamLenOff = 1 + 1 + 8 + 8 + 8;  // 26
constexpr size_t kFixedSize = 102;                   // record size with empty stream/payload

uint32_t get_be32(const std::string& s, size_t off) {
  uint32_t v = 0;
  for (size_t i = 0; i < 4; ++i) v = (v << 8) | static_cast<uint8_t>(s[off + i]);
  return v;
}
void put_be32(std::string& s, size_t off, uint32_t v) {
  for (size_t i = 0; i < 4; ++i) s[off + i] = static_cast<char>((v >> (24 - 8 * i)) & 0xff);
}
// Rewrites the trailing CRC so that it matches the (modified) body.
void reseal(std::string& rec) {
  std::string_view body(rec.data(), rec.size() - 4);
  put_be32(rec, rec.size() - 4, crc32c(body));
}
// Drops the CRC, appends a fresh one over everything before it.
std::string reseal_body(std::string body) {
  uint32_t c = crc32c(body);
  body.resize(body.size() + 4);
  put_be32(body, body.size() - 4, c);
  return body;
}

Hash filled(uint8_t b) {
  Hash h;
  h.fill(b);
  return h;
}

StoredEvent sample_event() {
  StoredEvent e;
  e.position = 42;
  e.stream = card_stream("steam-50");
  e.version = 7;
  e.type = EventType::CodeAssigned;
  e.recorded_at = 1767225600123456;
  e.payload = encode_payload(CodeAssigned{"steam-50", "ABCD-1234", "p-1", "alice", 5000, "key-1"});
  e.prev_hash = filled(0xab);
  e.hash = compute_hash(e);
  return e;
}

StoredEvent small_event() {
  StoredEvent e;
  e.position = 1;
  e.stream = "card-c";
  e.version = 1;
  e.type = EventType::CodeRevoked;
  e.recorded_at = 5;
  e.payload = "xy";
  e.hash = compute_hash(e);
  return e;
}

void check_same(const StoredEvent& a, const StoredEvent& b) {
  BOOST_TEST(a.position == b.position);
  BOOST_TEST(a.stream == b.stream);
  BOOST_TEST(a.version == b.version);
  BOOST_TEST(static_cast<int>(a.type) == static_cast<int>(b.type));
  BOOST_TEST(a.recorded_at == b.recorded_at);
  BOOST_TEST(a.payload == b.payload);
  BOOST_TEST(hash_hex(a.prev_hash) == hash_hex(b.prev_hash));
  BOOST_TEST(hash_hex(a.hash) == hash_hex(b.hash));
}

}  // namespace

BOOST_AUTO_TEST_SUITE(envelope)

BOOST_AUTO_TEST_CASE(crc32c_check_value) {
  BOOST_TEST(crc32c("123456789") == 0xE3069283u);
  BOOST_TEST(crc32c("") == 0u);
  // RFC 3720 B.4 test vectors: 32 bytes of zeros / of 0xff.
  BOOST_TEST(crc32c(std::string(32, '\0')) == 0x8A9136AAu);
  BOOST_TEST(crc32c(std::string(32, '\xff')) == 0x62A8AB43u);
  // The seed continues a running CRC.
  BOOST_TEST(crc32c("6789", crc32c("12345")) == 0xE3069283u);
}

BOOST_AUTO_TEST_CASE(crc32c_hardware_equals_table) {
  // crc32c() uses SSE4.2 where the CPU has it: it must agree with the table
  // for every length (8-byte words plus a tail), alignment and seed.
  BOOST_TEST(crc32c_portable("123456789") == 0xE3069283u);
  std::string data;
  uint32_t x = 12345;
  for (int i = 0; i < 300; ++i)
    data.push_back(static_cast<char>((x = x * 1103515245u + 12345u) >> 16));
  for (size_t off = 0; off < 9; ++off)
    for (size_t len = 0; off + len <= data.size(); len += 7) {
      std::string_view v = std::string_view(data).substr(off, len);
      uint32_t seed = static_cast<uint32_t>(len * 2654435761u);
      BOOST_TEST(crc32c(v, seed) == crc32c_portable(v, seed),
                 "offset " << off << " length " << len);
    }
}

BOOST_AUTO_TEST_CASE(record_round_trip) {
  const StoredEvent e = sample_event();
  const std::string rec = encode_record(e);
  BOOST_TEST(rec.size() == kFixedSize + e.stream.size() + e.payload.size());
  BOOST_TEST(static_cast<uint8_t>(rec[0]) == 1);  // format
  BOOST_TEST(static_cast<uint8_t>(rec[kTypeOff]) == 3);
  StoredEvent back;
  Status st = decode_record(rec, &back);
  BOOST_TEST(st.ok(), st.ToString());
  check_same(back, e);
  BOOST_TEST(encode_record(back) == rec);

  Event ev;
  BOOST_TEST(back.decode(&ev).ok());
  BOOST_TEST((ev == Event(CodeAssigned{"steam-50", "ABCD-1234", "p-1", "alice", 5000, "key-1"})));
}

BOOST_AUTO_TEST_CASE(record_round_trip_edge_values) {
  StoredEvent e;
  e.position = std::numeric_limits<int64_t>::max();
  e.version = std::numeric_limits<int64_t>::max();
  e.recorded_at = -1;  // before the epoch
  e.type = EventType::WalletDebited;
  e.stream = "";
  e.payload = "";
  e.prev_hash = filled(0xff);
  e.hash = filled(0x00);
  StoredEvent back;
  BOOST_REQUIRE(decode_record(encode_record(e), &back).ok());
  check_same(back, e);

  e.stream = std::string(kMaxStreamName, 's');
  e.payload = std::string(1 << 20, '\0');
  BOOST_REQUIRE(decode_record(encode_record(e), &back).ok());
  check_same(back, e);
}

BOOST_AUTO_TEST_CASE(hash_changes_with_every_field) {
  const StoredEvent base = sample_event();
  const Hash h0 = compute_hash(base);
  BOOST_TEST(hash_hex(h0) == hash_hex(base.hash));
  BOOST_TEST(hash_hex(compute_hash(base)) == hash_hex(h0));  // deterministic

  std::vector<std::pair<const char*, StoredEvent>> variants;
  auto add = [&](const char* what, auto mutate) {
    StoredEvent e = base;
    mutate(e);
    variants.emplace_back(what, e);
  };
  add("position", [](StoredEvent& e) { e.position += 1; });
  add("version", [](StoredEvent& e) { e.version += 1; });
  add("recorded_at", [](StoredEvent& e) { e.recorded_at += 1; });
  add("type", [](StoredEvent& e) { e.type = EventType::CodeRevoked; });
  add("stream", [](StoredEvent& e) { e.stream = card_stream("steam-51"); });
  add("stream empty", [](StoredEvent& e) { e.stream.clear(); });
  add("payload", [](StoredEvent& e) { e.payload.back() ^= 1; });
  add("payload longer", [](StoredEvent& e) { e.payload.push_back('\0'); });
  add("prev_hash", [](StoredEvent& e) { e.prev_hash[31] ^= 0x80; });
  add("prev_hash zero", [](StoredEvent& e) { e.prev_hash = Hash{}; });
  // Moving a byte across the stream/payload boundary must change the hash.
  add("boundary", [](StoredEvent& e) {
    e.payload = e.stream.back() + e.payload;
    e.stream.pop_back();
  });
  for (const auto& [what, e] : variants) {
    BOOST_TEST_INFO("changed " << what);
    BOOST_TEST(hash_hex(compute_hash(e)) != hash_hex(h0));
  }
  // All variants differ from each other, too.
  for (size_t i = 0; i < variants.size(); ++i)
    for (size_t j = i + 1; j < variants.size(); ++j)
      BOOST_TEST(hash_hex(compute_hash(variants[i].second)) !=
                 hash_hex(compute_hash(variants[j].second)));

  // The stored hash itself is not an input.
  StoredEvent e = base;
  e.hash = filled(0x11);
  BOOST_TEST(hash_hex(compute_hash(e)) == hash_hex(h0));
}

BOOST_AUTO_TEST_CASE(hash_hex_format) {
  Hash h{};
  h[0] = 0x01;
  h[1] = 0xab;
  h[31] = 0xff;
  std::string s = hash_hex(h);
  BOOST_TEST(s.size() == 64u);
  BOOST_TEST(s.substr(0, 4) == "01ab");
  BOOST_TEST(s.substr(60) == "00ff");
  // SHA-256 output, not a constant.
  BOOST_TEST(hash_hex(compute_hash(small_event())) != hash_hex(Hash{}));
}

BOOST_AUTO_TEST_CASE(chain_of_three_links) {
  std::vector<StoredEvent> chain;
  Hash prev{};
  const Event events[] = {
      CardCreated{"c1", "Card", 100, 100},
      CodesAdded{"c1", {{"AAAA", 0}, {"BBBB", 0}}},
      CodeAssigned{"c1", "AAAA", "p-1", "alice", 100, "k"},
  };
  int64_t pos = 1;
  for (const auto& ev : events) {
    StoredEvent e;
    e.position = pos;
    e.version = pos;
    ++pos;
    e.stream = card_stream("c1");
    e.type = type_of(ev);
    e.recorded_at = 1000 * pos;
    e.payload = encode_payload(ev);
    e.prev_hash = prev;
    e.hash = compute_hash(e);
    prev = e.hash;
    chain.push_back(e);
  }
  BOOST_TEST(hash_hex(chain[0].prev_hash) == hash_hex(Hash{}));
  for (size_t i = 1; i < chain.size(); ++i)
    BOOST_TEST(hash_hex(chain[i].prev_hash) == hash_hex(chain[i - 1].hash));
  // Survives the record format, and a verifier recomputes the same chain.
  Hash running{};
  for (size_t i = 0; i < chain.size(); ++i) {
    StoredEvent back;
    BOOST_REQUIRE(decode_record(encode_record(chain[i]), &back).ok());
    BOOST_TEST(hash_hex(back.prev_hash) == hash_hex(running));
    BOOST_TEST(hash_hex(compute_hash(back)) == hash_hex(back.hash));
    running = back.hash;
  }
  // Tampering with the middle event breaks its own hash and the link after it.
  StoredEvent tampered = chain[1];
  tampered.payload = encode_payload(CodesAdded{"c1", {{"AAAA", 0}, {"CCCC", 0}}});
  BOOST_TEST(hash_hex(compute_hash(tampered)) != hash_hex(chain[1].hash));
  StoredEvent relinked = chain[2];
  relinked.prev_hash = compute_hash(tampered);
  BOOST_TEST(hash_hex(compute_hash(relinked)) != hash_hex(chain[2].hash));
}

BOOST_AUTO_TEST_CASE(rejects_every_single_bit_flip) {
  const StoredEvent e = small_event();
  const std::string rec = encode_record(e);
  StoredEvent good;
  BOOST_REQUIRE(decode_record(rec, &good).ok());
  for (size_t bit = 0; bit < rec.size() * 8; ++bit) {
    std::string bad = rec;
    bad[bit / 8] = static_cast<char>(bad[bit / 8] ^ (1 << (bit % 8)));
    StoredEvent out;
    Status st;
    BOOST_CHECK_NO_THROW(st = decode_record(bad, &out));
    BOOST_TEST_INFO("bit " << bit);
    BOOST_TEST(st.IsCorruption());
  }
}

BOOST_AUTO_TEST_CASE(rejects_every_truncation) {
  const std::string rec = encode_record(sample_event());
  for (size_t len = 0; len < rec.size(); ++len) {
    StoredEvent out;
    Status st;
    BOOST_CHECK_NO_THROW(st = decode_record(std::string_view(rec).substr(0, len), &out));
    BOOST_TEST_INFO("prefix " << len);
    BOOST_TEST(st.IsCorruption());
  }
  // Truncation with a recomputed CRC (a torn write that happens to checksum).
  for (size_t len = kFixedSize; len < rec.size(); ++len) {
    std::string bad = reseal_body(rec.substr(0, len - 4));
    StoredEvent out;
    BOOST_TEST_INFO("resealed prefix " << len);
    BOOST_TEST(decode_record(bad, &out).IsCorruption());
  }
}

BOOST_AUTO_TEST_CASE(rejects_appended_bytes) {
  const std::string rec = encode_record(sample_event());
  for (size_t n : {1, 4, 32, 1000}) {
    StoredEvent out;
    BOOST_TEST(decode_record(rec + std::string(n, '\0'), &out).IsCorruption());
    // Even when the CRC is recomputed over the longer record.
    std::string bad = reseal_body(rec.substr(0, rec.size() - 4) + std::string(n, 'z'));
    BOOST_TEST_INFO("appended " << n);
    BOOST_TEST(decode_record(bad, &out).IsCorruption());
  }
}

BOOST_AUTO_TEST_CASE(rejects_lying_lengths_with_valid_crc) {
  const StoredEvent e = sample_event();
  const std::string rec = encode_record(e);
  const size_t slen = e.stream.size();
  const size_t plen_off = kStreamLenOff + 4 + slen;
  BOOST_REQUIRE(get_be32(rec, kStreamLenOff) == slen);
  BOOST_REQUIRE(get_be32(rec, plen_off) == e.payload.size());
  {
    StoredEvent out;
    std::string same = rec;
    reseal(same);
    BOOST_REQUIRE(decode_record(same, &out).ok());  // reseal alone is harmless
  }
  const uint32_t big = std::numeric_limits<uint32_t>::max();
  for (uint32_t claim : {uint32_t(slen + 1), uint32_t(slen - 1), uint32_t(0), uint32_t(257),
                         uint32_t(rec.size()), big, big - 3}) {
    std::string bad = rec;
    put_be32(bad, kStreamLenOff, claim);
    reseal(bad);
    StoredEvent out;
    Status st;
    BOOST_CHECK_NO_THROW(st = decode_record(bad, &out));
    BOOST_TEST_INFO("stream_len " << claim);
    BOOST_TEST(st.IsCorruption());
  }
  for (uint32_t claim : {uint32_t(e.payload.size() + 1), uint32_t(e.payload.size() - 1),
                         uint32_t(0), uint32_t(kMaxPayload + 1), big, big - 67}) {
    std::string bad = rec;
    put_be32(bad, plen_off, claim);
    reseal(bad);
    StoredEvent out;
    Status st;
    BOOST_CHECK_NO_THROW(st = decode_record(bad, &out));
    BOOST_TEST_INFO("payload_len " << claim);
    BOOST_TEST(st.IsCorruption());
  }
  // Both lengths changed so that their sum still matches the record size: the
  // stream then swallows a byte of the payload length field, which is read
  // from the wrong offset.
  {
    std::string bad = rec;
    put_be32(bad, kStreamLenOff, uint32_t(slen + 1));
    put_be32(bad, plen_off, uint32_t(e.payload.size() - 1));
    reseal(bad);
    StoredEvent out;
    BOOST_TEST(decode_record(bad, &out).IsCorruption());
  }
}

BOOST_AUTO_TEST_CASE(rejects_bad_format_and_type_with_valid_crc) {
  const std::string rec = encode_record(small_event());
  for (int format : {0, 2, 255}) {
    std::string bad = rec;
    bad[0] = static_cast<char>(format);
    reseal(bad);
    StoredEvent out;
    BOOST_TEST_INFO("format " << format);
    BOOST_TEST(decode_record(bad, &out).IsCorruption());
  }
  for (int type : {0, 8, 255}) {
    std::string bad = rec;
    bad[kTypeOff] = static_cast<char>(type);
    reseal(bad);
    StoredEvent out;
    BOOST_TEST_INFO("type " << type);
    BOOST_TEST(decode_record(bad, &out).IsCorruption());
  }
  for (int type = 1; type <= 7; ++type) {
    std::string ok = rec;
    ok[kTypeOff] = static_cast<char>(type);
    reseal(ok);
    StoredEvent out;
    BOOST_TEST(decode_record(ok, &out).ok());
    BOOST_TEST(static_cast<int>(out.type) == type);
  }
}

BOOST_AUTO_TEST_CASE(rejects_oversized_stream_name) {
  StoredEvent e = small_event();
  e.stream = std::string(kMaxStreamName + 1, 's');
  StoredEvent out;
  BOOST_TEST(decode_record(encode_record(e), &out).IsCorruption());
}

BOOST_AUTO_TEST_CASE(rejects_garbage) {
  for (size_t n : {size_t(0), size_t(1), kFixedSize - 1, kFixedSize, kFixedSize + 50}) {
    StoredEvent out;
    BOOST_TEST(decode_record(std::string(n, '\0'), &out).IsCorruption());
    BOOST_TEST(decode_record(reseal_body(std::string(n, '\0')), &out).IsCorruption());
  }
}

BOOST_AUTO_TEST_CASE(stored_event_decode_rejects_bad_payload) {
  StoredEvent e = small_event();
  Event ev;
  BOOST_TEST(e.decode(&ev).IsCorruption());  // "xy" is no CodeRevoked payload
  e.payload = encode_payload(CodeRevoked{"c", "CODE"});
  BOOST_TEST(e.decode(&ev).ok());
  BOOST_TEST((ev == Event(CodeRevoked{"c", "CODE"})));
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace giftcard
