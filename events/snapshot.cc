#include "events/snapshot.h"

#include "events/bounded_archive.h"

namespace giftcard {
namespace {

// Card snapshot v2: a slot's expiry is a u8 presence flag and, only when
// present, the i64 instant. v1 (an i64 always there, 0 = never) is refused like
// any damaged snapshot: the actor refolds its stream once and saves a v2.
constexpr uint32_t kCardSnapshotVersion = 2;
constexpr uint32_t kWalletSnapshotVersion = 1;

template <class F>
Status guarded(F&& f) {
  try {
    return f();
  } catch (const std::exception& ex) {
    return Status::Corruption(std::string("undecodable snapshot: ") + ex.what());
  }
}

}  // namespace

std::string encode_snapshot(const CardState& s) {
  std::string out;
  StringOutputArchive ar(out);
  ar(kCardSnapshotVersion, s.exists, s.id, s.name, s.price, s.value);
  ar(cereal::make_size_tag(static_cast<cereal::size_type>(s.slots.size())));
  for (const auto& slot : s.slots) {
    ar(slot.code, static_cast<uint8_t>(slot.expires_at.has_value() ? 1 : 0));
    if (slot.expires_at) ar(*slot.expires_at);
    ar(static_cast<uint8_t>(slot.status));
  }
  return out;
}

Status decode_snapshot(std::string_view bytes, CardState* out) {
  return guarded([&] {
    BoundedInputArchive ar(bytes);
    uint32_t version = 0;
    CardState s;
    ar(version);
    if (version != kCardSnapshotVersion) return Status::Corruption("unknown card snapshot version");
    // Read as a byte: a bool holding anything but 0 or 1 is undefined behaviour.
    uint8_t exists = 0;
    ar(exists, s.id, s.name, s.price, s.value);
    if (exists > 1) return Status::Corruption("bad exists flag in card snapshot");
    s.exists = exists == 1;
    cereal::size_type n = 0;
    ar(cereal::make_size_tag(n));
    // A slot takes 10 bytes at least (code length, expiry flag, status): a
    // lying count cannot make the decoder reserve more than the input allows.
    if (n > ar.remaining() / 10) return Status::Corruption("slot count exceeds snapshot");
    s.slots.reserve(n);
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
      s.slots.push_back(std::move(slot));
    }
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
