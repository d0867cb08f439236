// Key layout of the RocksDB event store (internal to store/; documented in
// docs/STORAGE_FORMAT.md). Integers are big-endian so that byte order is
// numeric order. Stream names never contain '\0' (ids are validated).
//
//   'e' pos:u64                      -> event record (events/envelope.h)
//   's' stream '\0' version:u64      -> pos:u64          (stream index)
//   'c' claim-key                    -> claim value      (unique keys)
//   'n' stream                       -> version:u64 data crc32c:u32 (snapshot)
//   'm' name                         -> meta (format version)
//   'p' key                          -> projection space (ProjectionKv), each
//                                       value followed by crc32c:u32 (RocksDB)
// Integers are encoded by events/coding.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "events/coding.h"

namespace giftcard::keys {

constexpr char kEvent = 'e';
constexpr char kStream = 's';
constexpr char kClaim = 'c';
constexpr char kSnapshot = 'n';
constexpr char kMeta = 'm';
constexpr char kProjection = 'p';

// The big-endian codec, under the names store/ has always used.
using giftcard::get_be32;
using giftcard::get_be64;  // REQUIRES: in.size() >= 8
using giftcard::put_be64;

// Sizes of the fixed parts (bytes).
constexpr size_t kEventKeyBytes = 1 + kFixed64Bytes;      // 'e' position
constexpr size_t kStreamIndexValueBytes = kFixed64Bytes;  // position
constexpr size_t kSnapshotHeaderBytes = kFixed64Bytes;    // version, before the data
constexpr size_t kSnapshotOverheadBytes = kSnapshotHeaderBytes + kCrc32cBytes;  // version + crc
constexpr size_t kProjectionTrailerBytes = kCrc32cBytes;  // crc32c after each 'p' value

std::string event_key(int64_t position);
// False if `key` is not a well-formed event key.
bool parse_event_key(std::string_view key, int64_t* position);

std::string stream_key(std::string_view stream, int64_t version);
std::string stream_prefix(std::string_view stream);  // 's' stream '\0'
bool parse_stream_key(std::string_view key, std::string_view stream, int64_t* version);

std::string claim_key(std::string_view claim);
std::string snapshot_key(std::string_view stream);
std::string meta_key(std::string_view name);
std::string projection_key(std::string_view key);
// The smallest key greater than every key starting with `prefix` (for range
// deletes); REQUIRES: prefix is not all 0xff bytes.
std::string prefix_successor(std::string prefix);

}  // namespace giftcard::keys
