// StoredEvent: one committed event with its envelope, and its on-disk record.
//
// Record layout (all integers big-endian; see docs/STORAGE_FORMAT.md):
//   u8  format (=1)      u8  type          u64 position     u64 version
//   i64 recorded_at      u32 stream_len    stream bytes
//   u32 payload_len      payload bytes     32  prev_hash    32  hash
//   u32 crc32c of everything before it
//
// hash = SHA-256("giftcard/v1" | prev_hash | position | version | recorded_at |
//                type | stream_len | stream | payload_len | payload), so each
// event commits to the whole log before it (tamper evidence, invariant 7, docs/CONTRACT.md).
// Plain struct: thread-compatible.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "events/events.h"
#include "events/status.h"

namespace giftcard {

using Hash = std::array<uint8_t, 32>;

constexpr size_t kMaxStreamName = 256;
constexpr size_t kMaxPayload = 64u << 20;  // 64 MiB: a 100,000-code batch is ~5 MiB

struct StoredEvent {
  int64_t position = 0;  // global, 1-based, gap-free
  std::string stream;
  int64_t version = 0;  // per stream, 1-based
  EventType type = EventType::CardCreated;
  Micros recorded_at = 0;
  std::string payload;  // cereal bytes, see codec.h
  Hash prev_hash{};
  Hash hash{};

  // Decodes the payload.
  Status decode(Event* out) const;
};

// Computes the chained hash of `e` from its fields and e.prev_hash.
Hash compute_hash(const StoredEvent& e);

std::string encode_record(const StoredEvent& e);

// Parses a record. Checks sizes and the CRC before anything else; never
// throws and never allocates more than the input's size.
Status decode_record(std::string_view bytes, StoredEvent* out);

std::string hash_hex(const Hash& h);

// CRC-32C (Castagnoli), software. Exposed for the store's other records.
uint32_t crc32c(std::string_view data, uint32_t seed = 0);
// The table-driven form crc32c() falls back to without SSE4.2 (tests compare both).
uint32_t crc32c_portable(std::string_view data, uint32_t seed = 0);

}  // namespace giftcard
