// Snapshot encodings of aggregate state (cereal, bounded decode). Snapshots
// are caches: the store checksums them and a damaged one is rebuilt from the
// stream. Holds are never part of a snapshot. Pure; thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "events/gift_card.h"
#include "events/status.h"
#include "events/wallet.h"

namespace giftcard {

std::string encode_snapshot(const CardState& s);
Status decode_snapshot(std::string_view bytes, CardState* out);

// Card snapshots in parts (format 3), so that saving a snapshot of a big pool
// writes what changed, not millions of codes: a *head* (the card's terms, the
// slot count, and for every part the snapshot version it was written at and
// its CRC-32C) and one *part* per kCardPartSlots slots (the format-2 slot
// encoding). A part is rewritten when one of its slots changed; a part that
// is not the one its head names (another version, or damaged) makes the whole
// snapshot unusable, and the actor refolds its stream.
constexpr uint32_t kCardPartSlots = 4096;
struct CardPartRef {
  int64_t version = 0;  // snapshot version the part was written at
  uint32_t crc = 0;     // CRC-32C of its bytes
  bool operator==(const CardPartRef&) const = default;
};
uint32_t card_parts(const CardState& s);  // ceil(slots / kCardPartSlots)
std::string encode_card_part(const CardState& s, uint32_t part);
std::string encode_card_head(const CardState& s, const std::vector<CardPartRef>& parts);
// Reads part `part`: its bytes and the snapshot version it was saved with.
using CardPartReader = std::function<Status(uint32_t part, std::string* bytes, int64_t* version)>;
// Decodes a head and its parts into *out; *parts gets the head's part list.
// A format-2 snapshot (one piece, written before parts) decodes too, with no
// parts (the next save writes them all).
Status decode_card_snapshot(std::string_view head, const CardPartReader& read, CardState* out,
                            std::vector<CardPartRef>* parts);

// Marks in *dirty the parts that event `e`, just folded into `s`, changed
// (`slots_before`: the slot count before it).
void card_parts_changed(const CardState& s, size_t slots_before, const CardEvent& e,
                        std::set<uint32_t>* dirty);

std::string encode_snapshot(const WalletState& s);
Status decode_snapshot(std::string_view bytes, WalletState* out);

}  // namespace giftcard
