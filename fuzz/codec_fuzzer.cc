// Fuzz target `codec`: the persisted encodings of events/ — the event record
// envelope (events/envelope.h), the cereal payload codec (events/codec.h) for
// every EventType, and the card and wallet snapshots (events/snapshot.h) —
// plus the JSON view of a record that GET /api/events serves (api/json_views.h).
//
// Input: one mode byte, then the bytes for that mode.
//   0  a whole record as stored (envelope, CRC-32C and all)
//   1  a record without its trailing CRC; the harness appends the right one,
//      so that mutations get past the checksum to the length checks
//   2  a payload: one EventType byte (any value, unknown ones too), then payload
//   3  a card snapshot        4  a wallet snapshot
//
// Oracles: decoders never throw, crash or over-allocate; whatever decodes
// re-encodes to exactly the same bytes (payloads: up to cereal class version
// 0, which is read as 1, and a CodesAdded with CodeSpec v0/v1, which is
// written back as v2) and decodes again to an equal value;
// a decoded record's payload type matches its envelope; the SSE4.2 and table
// CRC-32C agree on every input.
#include <cstdint>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "api/json_views.h"
#include "events/codec.h"
#include "events/envelope.h"
#include "events/snapshot.h"
#include "fuzz/fuzz_util.h"

using namespace giftcard;
using giftcard::fuzz::printable;

namespace {

void put_u32(std::string& out, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<char>((v >> s) & 0xff));
}

// A CodesAdded whose CodeSpecs are at class version 0 or 1 (written before
// the expiry presence flag, events/events.h): it re-encodes as version 2, so
// its bytes differ; the v2 bytes must still decode to the same event.
bool legacy_code_specs(EventType type, std::string_view bytes, const Event& ev) {
  if (type != EventType::CodesAdded) return false;
  const auto& x = std::get<CodesAdded>(ev);
  if (x.codes.empty()) return false;
  const size_t at = 4 + 8 + x.card_id.size() + 8;  // class version, card_id, count
  if (bytes.size() < at + 4) return false;
  uint32_t version = 0;
  std::memcpy(&version, bytes.data() + at, 4);  // little endian, as cereal writes it
  return version < kCodeSpecClassVersion;
}

// A payload that decoded as `type`: it must re-encode byte for byte and
// decode again to the same event.
void check_event(EventType type, std::string_view bytes, const Event& ev) {
  FUZZ_CHECK(type_of(ev) == type, "decoded event has type " + std::string(type_name(type_of(ev))) +
                                      ", asked for " + std::string(type_name(type)));
  std::string again = encode_payload(ev);
  // Byte for byte, except that cereal class version 0 reads as version 1 and
  // is written back as 1 (check_class_version refuses only newer versions):
  // a u32 0 -> 1, i.e. one byte 0x00 -> 0x01 (little endian) per version field.
  bool same = again.size() == bytes.size();
  for (size_t i = 0; same && i < again.size(); ++i)
    same = again[i] == bytes[i] || (bytes[i] == '\x00' && again[i] == '\x01');
  FUZZ_CHECK(same || legacy_code_specs(type, bytes, ev), "payload round trip: in " + printable(bytes) + "\nout " + printable(again));
  FUZZ_CHECK(encode_payload(ev) == again, "encode_payload is not deterministic");
  Event ev2;
  Status s = decode_payload(type, again, &ev2);
  FUZZ_CHECK(s.ok(), "re-encoded payload does not decode: " + s.ToString());
  FUZZ_CHECK(ev2 == ev, "payload decodes to a different event the second time");
}

void check_record(std::string_view in) {
  StoredEvent e;
  Status s = decode_record(in, &e);
  if (!s.ok()) {
    FUZZ_CHECK(s.IsCorruption(), "decode_record failed without Corruption: " + s.ToString());
    return;
  }
  FUZZ_CHECK(e.stream.size() <= kMaxStreamName, "stream name longer than kMaxStreamName");
  FUZZ_CHECK(e.payload.size() <= kMaxPayload, "payload longer than kMaxPayload");
  FUZZ_CHECK(is_known_type(static_cast<uint8_t>(e.type)), "record of unknown type decoded");
  std::string again = encode_record(e);
  FUZZ_CHECK(again == in, "record round trip: in " + printable(in) + "\nout " + printable(again));

  Event ev;
  Status ps = e.decode(&ev);
  if (ps.ok())
    check_event(e.type, e.payload, ev);
  else
    FUZZ_CHECK(ps.IsCorruption(), "payload decode failed without Corruption: " + ps.ToString());

  // The chain hash is recomputed by audits over any record read back.
  (void)compute_hash(e);
  // What GET /api/events and the event stream render for this record.
  nlohmann::json j = event_json(e);
  FUZZ_CHECK(j.is_object() && j["position"] == e.position && j["version"] == e.version,
             "event_json lost the envelope");
  FUZZ_CHECK(j.contains(ps.ok() ? "data" : "error"), "event_json has neither data nor error");
  std::string text = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  FUZZ_CHECK(nlohmann::json::accept(text), "event_json renders invalid JSON: " + printable(text));
}

void check_payload(std::string_view in) {
  if (in.empty()) return;
  uint8_t raw = static_cast<uint8_t>(in[0]);
  std::string_view bytes = in.substr(1);
  Event ev;
  Status s = decode_payload(static_cast<EventType>(raw), bytes, &ev);
  if (!s.ok()) {
    FUZZ_CHECK(s.IsCorruption(), "decode_payload failed without Corruption: " + s.ToString());
    return;
  }
  FUZZ_CHECK(is_known_type(raw), "a payload of unknown type " + std::to_string(raw) + " decoded");
  check_event(static_cast<EventType>(raw), bytes, ev);
}

void check_card_snapshot(std::string_view in) {
  CardState c;
  Status s = decode_snapshot(in, &c);
  if (!s.ok()) {
    FUZZ_CHECK(s.IsCorruption(), "card snapshot failed without Corruption: " + s.ToString());
    return;
  }
  FUZZ_CHECK(c.index.size() == c.slots.size(), "snapshot index does not cover the slots");
  FUZZ_CHECK(c.available + c.assigned + c.revoked + c.expired == static_cast<int64_t>(c.slots.size()),
             "snapshot status counts do not add up to the slots");
  FUZZ_CHECK(static_cast<int64_t>(c.queue.size()) == c.available, "snapshot queue != available");
  FUZZ_CHECK(c.held == 0, "a snapshot restored a hold");
  // A bool must hold 0 or 1; any other byte makes every read of it undefined
  // behaviour (UBSan: "load of value 2, which is not a valid value for type
  // 'bool'"). Checked on the byte, as clang -O2 may never load it as a bool.
  unsigned char exists_byte = 0;
  std::memcpy(&exists_byte, &c.exists, 1);
  FUZZ_CHECK(exists_byte <= 1, "decode_snapshot stored " + std::to_string(exists_byte) +
                                     " in bool CardState::exists");
  std::string again = encode_snapshot(c);
  FUZZ_CHECK(again == in, "card snapshot round trip: in " + printable(in) + "\nout " + printable(again));
  CardState c2;
  Status s2 = decode_snapshot(again, &c2);
  FUZZ_CHECK(s2.ok(), "re-encoded card snapshot does not decode: " + s2.ToString());
  FUZZ_CHECK(encode_snapshot(c2) == again, "card snapshot differs the second time");
}

void check_wallet_snapshot(std::string_view in) {
  WalletState w;
  Status s = decode_snapshot(in, &w);
  if (!s.ok()) {
    FUZZ_CHECK(s.IsCorruption(), "wallet snapshot failed without Corruption: " + s.ToString());
    return;
  }
  std::string again = encode_snapshot(w);
  FUZZ_CHECK(again == in, "wallet snapshot round trip: in " + printable(in) + "\nout " + printable(again));
  WalletState w2;
  FUZZ_CHECK(decode_snapshot(again, &w2).ok(), "re-encoded wallet snapshot does not decode");
  FUZZ_CHECK(w2.user_id == w.user_id && w2.balance == w.balance && w2.version == w.version,
             "wallet snapshot differs the second time");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  FUZZ_CHECK(crc32c(in) == crc32c_portable(in), "crc32c (SSE4.2) and crc32c_portable disagree");
  switch (data[0] % 5) {
    case 0:
      check_record(in);
      break;
    case 1: {
      std::string rec(in);
      put_u32(rec, crc32c(rec));
      check_record(rec);
      break;
    }
    case 2:
      check_payload(in);
      break;
    case 3:
      check_card_snapshot(in);
      break;
    case 4:
      check_wallet_snapshot(in);
      break;
  }
  return 0;
}
