// The log's vocabulary (docs/CONTRACT.md, "Domain"): every state change of the shop is one of
// these events. An event's meaning never changes once written; evolve the
// format by bumping CEREAL_CLASS_VERSION and handling old versions in
// serialize(), or by adding a new event type with a new EventType value.
//
// Money is int64 minor units (cents). Times are micros since the epoch (UTC).
// Plain structs: thread-compatible.
#pragma once

#include <cereal/cereal.hpp>
#include <cereal/types/string.hpp>
#include <cereal/types/vector.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "events/bounded_archive.h"
#include "events/time_util.h"

namespace giftcard {

// Every event struct is at class version 1; CodeSpec (nested in CodesAdded) is
// at 2. A payload from a newer writer is refused rather than misread.
constexpr std::uint32_t kEventClassVersion = 1;
constexpr std::uint32_t kCodeSpecClassVersion = 2;
inline void check_class_version(std::uint32_t version, std::uint32_t newest = kEventClassVersion) {
  if (version > newest) throw cereal::Exception("unknown class version " + std::to_string(version));
}

// A vector whose decoded length is bounded by the bytes left divided by the
// smallest encoding of one element, so a lying length cannot make the decoder
// allocate more than a small multiple of the input. Same bytes as cereal's.
template <class A, class T>
void bounded_vector(A& ar, std::vector<T>& v, std::size_t min_element_bytes) {
  if constexpr (std::is_same_v<A, BoundedInputArchive>) {
    cereal::size_type n = 0;
    ar(cereal::make_size_tag(n));
    if (n > ar.remaining() / min_element_bytes)
      throw cereal::Exception("vector length exceeds payload");
    v.clear();
    v.resize(static_cast<std::size_t>(n));
    for (auto& x : v) ar(x);
  } else {
    ar(v);
  }
}

// When a code stops being sellable: absent = never; any instant, the epoch and
// earlier included, is an expiry. A code is expired at `now` iff
// expires_at <= now (see is_expired).
using Expiry = std::optional<Micros>;

inline bool is_expired(const Expiry& expires_at, Micros now) {
  return expires_at.has_value() && *expires_at <= now;
}

// One activation code as imported.
//
// Encoding (docs/STORAGE_FORMAT.md): class version 2 writes code, a u8
// presence flag and the i64 expiry only when present. Version 1 (logs written
// before) wrote code and an i64 that is always there, 0 meaning "never"; it
// still decodes to exactly that. Version 0 (never written by giftcard) reads
// as version 1.
struct CodeSpec {
  std::string code;
  Expiry expires_at;  // std::nullopt: never expires

  CodeSpec() = default;
  explicit CodeSpec(std::string c) : code(std::move(c)) {}
  // The positional form of in-process callers written before the presence
  // flag (tests, benches, the demo catalog): as then, 0 there means "never".
  // It is NOT a way to express an expiry at the epoch; set expires_at for that.
  CodeSpec(std::string c, Micros expires_at_or_0_for_never) : code(std::move(c)) {
    if (expires_at_or_0_for_never != 0) expires_at = expires_at_or_0_for_never;
  }
  static CodeSpec expiring(std::string c, Micros at) {
    CodeSpec s{std::move(c)};
    s.expires_at = at;
    return s;
  }

  bool operator==(const CodeSpec&) const = default;

  template <class A>
  void save(A& ar, std::uint32_t /*version: always kCodeSpecClassVersion*/) const {
    const std::uint8_t has_expiry = expires_at.has_value() ? 1 : 0;
    ar(code, has_expiry);
    if (has_expiry) ar(*expires_at);
  }
  template <class A>
  void load(A& ar, std::uint32_t version) {
    check_class_version(version, kCodeSpecClassVersion);
    ar(code);
    expires_at.reset();
    if (version < 2) {  // v1: an i64 always present, 0 = never
      Micros at = 0;
      ar(at);
      if (at != 0) expires_at = at;
      return;
    }
    // Read as a byte: a bool holding anything but 0 or 1 is undefined behaviour.
    std::uint8_t has_expiry = 0;
    ar(has_expiry);
    if (has_expiry > 1) throw cereal::Exception("bad expiry flag in CodeSpec");
    if (has_expiry) {
      Micros at = 0;
      ar(at);
      expires_at = at;
    }
  }
};

struct CardCreated {
  std::string card_id;
  std::string name;
  int64_t price = 0;
  int64_t value = 0;
  bool operator==(const CardCreated&) const = default;
  template <class A>
  void serialize(A& ar, std::uint32_t version) {
    check_class_version(version);
    ar(card_id, name, price, value);
  }
};

struct CodesAdded {
  std::string card_id;
  std::vector<CodeSpec> codes;
  bool operator==(const CodesAdded&) const = default;
  template <class A>
  void serialize(A& ar, std::uint32_t version) {
    check_class_version(version);
    ar(card_id);
    // v2 CodeSpec: u64 code length + u8 expiry flag at least (v1: 16 bytes).
    bounded_vector(ar, codes, 9);
  }
};

// A code handed to a buyer. Committed in one batch with its WalletDebited.
struct CodeAssigned {
  std::string card_id;
  std::string code;
  std::string purchase_id;
  std::string user_id;
  int64_t price = 0;
  std::string idempotency_key;
  bool operator==(const CodeAssigned&) const = default;
  template <class A>
  void serialize(A& ar, std::uint32_t version) {
    check_class_version(version);
    ar(card_id, code, purchase_id, user_id, price, idempotency_key);
  }
};

struct CodeRevoked {
  std::string card_id;
  std::string code;
  bool operator==(const CodeRevoked&) const = default;
  template <class A>
  void serialize(A& ar, std::uint32_t version) {
    check_class_version(version);
    ar(card_id, code);
  }
};

// Codes found past their expires_at while still available. Recorded, so that
// replay never depends on the wall clock.
struct CodesExpired {
  std::string card_id;
  std::vector<std::string> codes;
  bool operator==(const CodesExpired&) const = default;
  template <class A>
  void serialize(A& ar, std::uint32_t version) {
    check_class_version(version);
    ar(card_id);
    bounded_vector(ar, codes, 8);  // u64 length at least
  }
};

struct WalletCredited {
  std::string user_id;
  int64_t amount = 0;
  int64_t balance_after = 0;
  std::string idempotency_key;
  bool operator==(const WalletCredited&) const = default;
  template <class A>
  void serialize(A& ar, std::uint32_t version) {
    check_class_version(version);
    ar(user_id, amount, balance_after, idempotency_key);
  }
};

struct WalletDebited {
  std::string user_id;
  int64_t amount = 0;
  int64_t balance_after = 0;
  std::string purchase_id;
  std::string card_id;
  bool operator==(const WalletDebited&) const = default;
  template <class A>
  void serialize(A& ar, std::uint32_t version) {
    check_class_version(version);
    ar(user_id, amount, balance_after, purchase_id, card_id);
  }
};

// Stable on-disk type tags. Never renumber; append new types at the end.
enum class EventType : uint8_t {
  CardCreated = 1,
  CodesAdded = 2,
  CodeAssigned = 3,
  CodeRevoked = 4,
  CodesExpired = 5,
  WalletCredited = 6,
  WalletDebited = 7,
};

// The events each aggregate decides and folds: a card's stream holds only
// CardEvents, a wallet's only WalletEvents (a purchase's CodeAssigned is a
// card event, decided by the card; see docs/ARCHITECTURE.md, "One decider
// per stream"). Adding an alternative makes every decide/evolve visit that misses
// it fail to compile.
using CardEvent = std::variant<CardCreated, CodesAdded, CodeAssigned, CodeRevoked, CodesExpired>;
using WalletEvent = std::variant<WalletCredited, WalletDebited>;

// The log's vocabulary: the union of both, what a record's payload decodes to.
using Event = std::variant<CardCreated, CodesAdded, CodeAssigned, CodeRevoked, CodesExpired,
                           WalletCredited, WalletDebited>;

// Widening (always succeeds) and narrowing (nullopt if `e` belongs to the
// other aggregate). Move overloads: a CodesAdded may hold megabytes.
Event to_event(CardEvent e);
Event to_event(WalletEvent e);
std::optional<CardEvent> to_card_event(Event e);
std::optional<WalletEvent> to_wallet_event(Event e);

// std::visit over a set of lambdas: overloaded{[](const A&) {...}, ...}.
template <class... F>
struct overloaded : F... {
  using F::operator()...;
};
template <class... F>
overloaded(F...) -> overloaded<F...>;

EventType type_of(const Event& e);
EventType type_of_card_event(const CardEvent& e);
EventType type_of_wallet_event(const WalletEvent& e);
template <class V>
requires(std::is_same_v<V, CardEvent> || std::is_same_v<V, WalletEvent>) EventType
    type_of(const V& e) {
  if constexpr (std::is_same_v<V, CardEvent>) return type_of_card_event(e);
  else return type_of_wallet_event(e);
}
std::string_view type_name(EventType t);  // "CodeAssigned", ...; "Unknown" otherwise
bool type_from_name(std::string_view name, EventType* out);
bool is_known_type(uint8_t raw);

// Stream names: "card-<id>" and "wallet-<user>".
std::string card_stream(std::string_view card_id);
std::string wallet_stream(std::string_view user_id);

}  // namespace giftcard

CEREAL_CLASS_VERSION(giftcard::CodeSpec, giftcard::kCodeSpecClassVersion)
CEREAL_CLASS_VERSION(giftcard::CardCreated, 1)
CEREAL_CLASS_VERSION(giftcard::CodesAdded, 1)
CEREAL_CLASS_VERSION(giftcard::CodeAssigned, 1)
CEREAL_CLASS_VERSION(giftcard::CodeRevoked, 1)
CEREAL_CLASS_VERSION(giftcard::CodesExpired, 1)
CEREAL_CLASS_VERSION(giftcard::WalletCredited, 1)
CEREAL_CLASS_VERSION(giftcard::WalletDebited, 1)
