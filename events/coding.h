// Fixed-width big-endian integers: the one encoding of every integer in the
// log's records, keys and trailers (leveldb's util/coding.h, but big-endian,
// so that byte order is numeric order in RocksDB keys). Header-only, in
// events/ because the lowest layer (events/envelope.cc) needs it too; store/
// and projections/ use it from here (store/keys.h re-exports the names).
//
// Signed values are stored as their two's-complement bit pattern:
// put_be64(out, static_cast<uint64_t>(v)) and
// static_cast<int64_t>(get_be64(in)) round-trip every int64_t.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace giftcard {

// Encoded sizes, in bytes.
inline constexpr size_t kFixed32Bytes = 4;
inline constexpr size_t kFixed64Bytes = 8;
// A CRC-32C (events/envelope.h crc32c()) stored as a big-endian u32 trailer.
inline constexpr size_t kCrc32cBytes = kFixed32Bytes;

namespace coding_internal {

template <size_t N>
inline void put_be(std::string& out, uint64_t v) {
  char buf[N];
  for (size_t i = 0; i < N; ++i) buf[i] = static_cast<char>(v >> (8 * (N - 1 - i)));
  out.append(buf, N);
}

template <size_t N>
inline uint64_t get_be(std::string_view in) {
  uint64_t v = 0;
  for (size_t i = 0; i < N; ++i) v = (v << 8) | static_cast<uint8_t>(in[i]);
  return v;
}

}  // namespace coding_internal

// Appends v, most significant byte first.
inline void put_be32(std::string& out, uint32_t v) {
  coding_internal::put_be<kFixed32Bytes>(out, v);
}
inline void put_be64(std::string& out, uint64_t v) {
  coding_internal::put_be<kFixed64Bytes>(out, v);
}

// The encoding as a string of its own.
inline std::string encode_be32(uint32_t v) {
  std::string s;
  put_be32(s, v);
  return s;
}
inline std::string encode_be64(uint64_t v) {
  std::string s;
  put_be64(s, v);
  return s;
}

// Reads the first bytes of `in`. REQUIRES: in.size() >= 4 (resp. 8).
inline uint32_t get_be32(std::string_view in) {
  return static_cast<uint32_t>(coding_internal::get_be<kFixed32Bytes>(in));
}
inline uint64_t get_be64(std::string_view in) { return coding_internal::get_be<kFixed64Bytes>(in); }

}  // namespace giftcard
