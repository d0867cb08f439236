// Fuzz target `keys`: the RocksDB key layout (store/keys.h) — event and stream
// keys, their parsers, the big-endian helpers and prefix_successor.
//
// Input: a length byte n, a stream name of n bytes (fewer if the input ends),
// then a key. Two versions for the ordering checks are read from the key's
// first and last 8 bytes.
//
// Oracles: a key that parses re-encodes to itself; every encoded key parses
// back to its value; keys of one stream sort by version and of the log by
// position; a stream's prefix matches its own keys and no other stream's;
// prefix_successor(p) sorts after every key starting with p.
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz/fuzz_util.h"
#include "store/keys.h"

using namespace giftcard;
using giftcard::fuzz::printable;

namespace {

uint64_t be64(std::string_view s) {  // the reference decoder, byte by byte
  uint64_t v = 0;
  for (size_t i = 0; i < 8; ++i) v = v * 256 + static_cast<unsigned char>(s[i]);
  return v;
}

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

void check_versions(std::string_view stream, int64_t a, int64_t b) {
  for (int64_t v : {a, b}) {
    std::string k = keys::stream_key(stream, v);
    int64_t back = 0;
    FUZZ_CHECK(keys::parse_stream_key(k, stream, &back) && back == v,
               "stream_key does not parse back: " + printable(k));
    FUZZ_CHECK(starts_with(k, keys::stream_prefix(stream)), "stream_key lacks its stream_prefix");
    std::string e = keys::event_key(v);
    FUZZ_CHECK(keys::parse_event_key(e, &back) && back == v, "event_key does not parse back");
  }
  // Positions and versions are >= 1; byte order must be numeric order.
  if (a >= 0 && b >= 0 && a != b) {
    int64_t lo = a < b ? a : b, hi = a < b ? b : a;
    FUZZ_CHECK(keys::stream_key(stream, lo) < keys::stream_key(stream, hi),
               "stream keys do not sort by version");
    FUZZ_CHECK(keys::event_key(lo) < keys::event_key(hi), "event keys do not sort by position");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  giftcard::fuzz::Bytes in(data, size);
  std::string_view stream = in.take(in.u8());
  std::string_view key = in.rest();

  // The big-endian helpers against the reference.
  if (key.size() >= 8) {
    uint64_t v = keys::get_be64(key);
    FUZZ_CHECK(v == be64(key), "get_be64 disagrees with the reference");
    FUZZ_CHECK(keys::get_be32(key) == static_cast<uint32_t>(v >> 32), "get_be32 != high half of get_be64");
    std::string out;
    keys::put_be64(out, v);
    FUZZ_CHECK(out == key.substr(0, 8), "put_be64(get_be64(x)) != x");
  }

  // Whatever parses must be exactly the key its value encodes to.
  int64_t pos = 0;
  if (keys::parse_event_key(key, &pos))
    FUZZ_CHECK(keys::event_key(pos) == key, "event key round trip: " + printable(key));
  int64_t version = 0;
  if (keys::parse_stream_key(key, stream, &version)) {
    FUZZ_CHECK(keys::stream_key(stream, version) == key, "stream key round trip: " + printable(key));
    FUZZ_CHECK(starts_with(key, keys::stream_prefix(stream)), "a parsed stream key lacks its prefix");
  }

  int64_t a = key.size() >= 8 ? static_cast<int64_t>(be64(key)) : static_cast<int64_t>(key.size());
  int64_t b = key.size() >= 8 ? static_cast<int64_t>(be64(key.substr(key.size() - 8))) : 1;
  check_versions(stream, a, b);

  // Stream names never contain NUL (ids are validated). Then a stream's
  // prefix selects its own keys only: ReadStream scans by prefix.
  std::string_view other = key.substr(0, key.find('\0'));
  if (stream.find('\0') == std::string_view::npos) {
    std::string k = keys::stream_key(other, a);
    int64_t v = 0;
    bool same = other == stream;
    FUZZ_CHECK(keys::parse_stream_key(k, stream, &v) == same,
               "a key of stream '" + printable(other) + "' parses as stream '" + printable(stream) + "'");
    FUZZ_CHECK(starts_with(k, keys::stream_prefix(stream)) == same,
               "stream prefix '" + printable(stream) + "' matches keys of '" + printable(other) + "'");
  }

  // The other key families are the tag byte and the name.
  FUZZ_CHECK(keys::claim_key(stream) == std::string(1, keys::kClaim) + std::string(stream), "claim_key");
  FUZZ_CHECK(keys::snapshot_key(stream).substr(1) == stream, "snapshot_key");
  FUZZ_CHECK(keys::meta_key(stream)[0] == keys::kMeta, "meta_key");
  FUZZ_CHECK(keys::projection_key(stream)[0] == keys::kProjection, "projection_key");

  // prefix_successor(p): greater than p and than every key that starts with p
  // (REQUIRES: p is not all 0xff bytes; the empty prefix is all 0xff).
  bool all_ff = key.find_first_not_of('\xff') == std::string_view::npos;
  if (!all_ff) {
    std::string succ = keys::prefix_successor(std::string(key));
    FUZZ_CHECK(succ > key, "prefix_successor(p) <= p for p=" + printable(key));
    FUZZ_CHECK(!starts_with(succ, key), "prefix_successor(p) starts with p");
    FUZZ_CHECK(std::string(key) + std::string(stream) < succ,
               "a key starting with p sorts after prefix_successor(p)");
    FUZZ_CHECK(std::string(key) + std::string(8, '\xff') < succ,
               "p + 0xff... sorts after prefix_successor(p)");
    FUZZ_CHECK(succ.size() <= key.size(), "prefix_successor grew the prefix");
  }
  return 0;
}
