#include "events/snapshot.h"

#include <algorithm>
#include <optional>

#include "events/bounded_archive.h"
#include "events/envelope.h"

namespace giftcard {
namespace {

// Card snapshot v2: a slot's expiry is a u8 presence flag and, only when
// present, the i64 instant. v1 (an i64 always there, 0 = never) is refused like
// any damaged snapshot: the actor refolds its stream once and saves a v2.
constexpr uint32_t kCardSnapshotVersion = 2;
constexpr uint32_t kCardHeadVersion = 3;
constexpr uint32_t kWalletSnapshotVersion = 1;

template <class F>
Status guarded(F&& f) {
  try {
    return f();
  } catch (const std::exception& ex) {
    return Status::Corruption(std::string("undecodable snapshot: ") + ex.what());
  }
}

// Slots [begin, end): a size tag, then code, expiry flag, [expiry], status.
void encode_slots(StringOutputArchive& ar, const CardState& s, size_t begin, size_t end) {
  ar(cereal::make_size_tag(static_cast<cereal::size_type>(end - begin)));
  for (size_t i = begin; i < end; ++i) {
    const CodeSlot& slot = s.slots[i];
    ar(slot.code, static_cast<uint8_t>(slot.expires_at.has_value() ? 1 : 0));
    if (slot.expires_at) ar(*slot.expires_at);
    ar(static_cast<uint8_t>(slot.status));
  }
}

// Appends the slots encode_slots wrote; `want` (if set) is the count required.
Status decode_slots(BoundedInputArchive& ar, std::vector<CodeSlot>* slots,
                    std::optional<uint64_t> want = std::nullopt) {
  cereal::size_type n = 0;
  ar(cereal::make_size_tag(n));
  if (want && n != *want) return Status::Corruption("snapshot part has the wrong slot count");
  // A slot takes 10 bytes at least (code length, expiry flag, status): a
  // lying count cannot make the decoder reserve more than the input allows.
  if (n > ar.remaining() / 10) return Status::Corruption("slot count exceeds snapshot");
  slots->reserve(slots->size() + n);
  for (cereal::size_type i = 0; i < n; ++i) {
    CodeSlot slot;
    uint8_t has_expiry = 0, status = 0;
    ar(slot.code, has_expiry);
    if (has_expiry > 1) return Status::Corruption("bad expiry flag in card snapshot");
    if (has_expiry) {
      Micros at = 0;
      ar(at);
      slot.expires_at = at;
    }
    ar(status);
    if (status > static_cast<uint8_t>(CodeStatus::expired))
      return Status::Corruption("bad code status in snapshot");
    slot.status = static_cast<CodeStatus>(status);
    slots->push_back(std::move(slot));
  }
  return Status::OK();
}

// The card's terms after the format number. Read as a byte: a bool holding
// anything but 0 or 1 is undefined behaviour.
Status decode_terms(BoundedInputArchive& ar, CardState* s) {
  uint8_t exists = 0;
  ar(exists, s->id, s->name, s->price, s->value);
  if (exists > 1) return Status::Corruption("bad exists flag in card snapshot");
  s->exists = exists == 1;
  return Status::OK();
}

}  // namespace

std::string encode_snapshot(const CardState& s) {
  std::string out;
  StringOutputArchive ar(out);
  ar(kCardSnapshotVersion, s.exists, s.id, s.name, s.price, s.value);
  encode_slots(ar, s, 0, s.slots.size());
  return out;
}

uint32_t card_parts(const CardState& s) {
  return static_cast<uint32_t>((s.slots.size() + kCardPartSlots - 1) / kCardPartSlots);
}

std::string encode_card_part(const CardState& s, uint32_t part) {
  std::string out;
  StringOutputArchive ar(out);
  const size_t begin = static_cast<size_t>(part) * kCardPartSlots;
  encode_slots(ar, s, begin, std::min(s.slots.size(), begin + kCardPartSlots));
  return out;
}

std::string encode_card_head(const CardState& s, const std::vector<CardPartRef>& parts) {
  std::string out;
  StringOutputArchive ar(out);
  ar(kCardHeadVersion, s.exists, s.id, s.name, s.price, s.value,
     static_cast<uint64_t>(s.slots.size()));
  ar(cereal::make_size_tag(static_cast<cereal::size_type>(parts.size())));
  for (const auto& p : parts) ar(p.version, p.crc);
  return out;
}

void card_parts_changed(const CardState& s, size_t slots_before, const CardEvent& e,
                        std::set<uint32_t>* dirty) {
  auto mark = [&](const std::string& code) {
    if (auto it = s.index.find(code); it != s.index.end())
      dirty->insert(it->second / kCardPartSlots);
  };
  std::visit(overloaded{[&](const CodesAdded&) {
                          for (size_t i = slots_before; i < s.slots.size(); ++i)
                            if (i == slots_before || i % kCardPartSlots == 0)
                              dirty->insert(static_cast<uint32_t>(i / kCardPartSlots));
                        },
                        [&](const CodeAssigned& a) { mark(a.code); },
                        [&](const CodeRevoked& r) { mark(r.code); },
                        [&](const CodesExpired& x) {
                          for (const auto& c : x.codes) mark(c);
                        },
                        [](const CardCreated&) {}},
             e);
}

Status decode_card_snapshot(std::string_view head, const CardPartReader& read, CardState* out,
                            std::vector<CardPartRef>* parts_out) {
  {
    BoundedInputArchive peek(head);
    uint32_t version = 0;
    Status st = guarded([&] {
      peek(version);
      return Status::OK();
    });
    if (!st.ok()) return st;
    if (version == kCardSnapshotVersion) {  // one piece, before parts existed
      parts_out->clear();
      return decode_snapshot(head, out);
    }
  }
  return guarded([&] {
    BoundedInputArchive ar(head);
    uint32_t version = 0;
    CardState s;
    ar(version);
    if (version != kCardHeadVersion) return Status::Corruption("unknown card snapshot version");
    if (Status t = decode_terms(ar, &s); !t.ok()) return t;
    uint64_t slots = 0;
    cereal::size_type n = 0;
    ar(slots, cereal::make_size_tag(n));
    // 12 bytes per part entry; and exactly as many parts as the slots need.
    if (n > ar.remaining() / 12 || n != (slots + kCardPartSlots - 1) / kCardPartSlots)
      return Status::Corruption("card snapshot head names the wrong number of parts");
    std::vector<CardPartRef> parts(n);
    for (auto& p : parts) ar(p.version, p.crc);
    if (ar.remaining() != 0) return Status::Corruption("trailing bytes in snapshot");
    std::string bytes;
    for (uint32_t i = 0; i < parts.size(); ++i) {
      int64_t at = 0;
      if (Status r = read(i, &bytes, &at); !r.ok())
        return Status::Corruption("card snapshot part " + std::to_string(i) + ": " + r.message());
      if (at != parts[i].version || crc32c(bytes) != parts[i].crc)
        return Status::Corruption("card snapshot part " + std::to_string(i) +
                                  " is not the one its head names");
      BoundedInputArchive pa(bytes);
      const uint64_t first = static_cast<uint64_t>(i) * kCardPartSlots;
      if (Status d = decode_slots(pa, &s.slots, std::min<uint64_t>(kCardPartSlots, slots - first));
          !d.ok())
        return d;
      if (pa.remaining() != 0) return Status::Corruption("trailing bytes in snapshot part");
    }
    // Index, queue and counters are derived, exactly as evolve keeps them, and
    // the pool's invariants checked: a snapshot that breaks them is damaged.
    if (Status st = rebuild_pool(s); !st.ok()) return st;
    *out = std::move(s);
    *parts_out = std::move(parts);
    return Status::OK();
  });
}

Status decode_snapshot(std::string_view bytes, CardState* out) {
  return guarded([&] {
    BoundedInputArchive ar(bytes);
    uint32_t version = 0;
    CardState s;
    ar(version);
    if (version != kCardSnapshotVersion) return Status::Corruption("unknown card snapshot version");
    if (Status t = decode_terms(ar, &s); !t.ok()) return t;
    if (Status d = decode_slots(ar, &s.slots); !d.ok()) return d;
    // Index, queue and counters are derived, exactly as evolve keeps them, and
    // the pool's invariants checked: a snapshot that breaks them is damaged.
    if (Status st = rebuild_pool(s); !st.ok()) return st;
    if (ar.remaining() != 0) return Status::Corruption("trailing bytes in snapshot");
    *out = std::move(s);
    return Status::OK();
  });
}

std::string encode_snapshot(const WalletState& s) {
  std::string out;
  StringOutputArchive ar(out);
  ar(kWalletSnapshotVersion, s.user_id, s.balance, s.version);
  return out;
}

Status decode_snapshot(std::string_view bytes, WalletState* out) {
  return guarded([&] {
    BoundedInputArchive ar(bytes);
    uint32_t version = 0;
    WalletState s;
    ar(version);
    if (version != kWalletSnapshotVersion)
      return Status::Corruption("unknown wallet snapshot version");
    ar(s.user_id, s.balance, s.version);
    if (ar.remaining() != 0) return Status::Corruption("trailing bytes in snapshot");
    *out = std::move(s);
    return Status::OK();
  });
}

}  // namespace giftcard
