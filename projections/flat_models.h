// The read models of projections/read_models.h folded into flat hash maps
// (absl::flat_hash_map), for the long scans of the audit: `giftcard replay`
// and `giftcard verify`. The fold is apply()'s: both are fold_event()
// (projections/read_models_fold.h), instantiated here on these containers
// (a test folds the same logs both ways and compares them event by event:
// tests/projections/audit_pipeline_test.cc); only the containers differ.
// The std::map of ReadModels costs a tree descent with a cache miss per level
// for every purchase; here a purchase costs one probe, its strings are copied
// into an arena (no allocation each), and the maps' keys sit in their slots
// with their hashes (StoredKey).
//
// to_read_models() gives the ReadModels a fold with apply() would have built
// (sorted maps: what `giftcard replay` prints and what first_difference()
// compares). Thread-compatible.
#pragma once

#include <absl/container/flat_hash_map.h>
#include <absl/hash/hash.h>

#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "projections/read_models.h"

namespace giftcard {

// Append-only storage for many small strings, in 1 MiB blocks: a string
// added costs a copy, no allocation of its own, and all of them are freed
// at once (freeing millions of small strings one by one cost the audit a
// tenth of its time). The views stay valid as long as the arena.
class StringArena {
 public:
  absl::string_view add(std::string_view s);

 private:
  std::vector<std::unique_ptr<char[]>> blocks_;
  size_t used_ = 0, capacity_ = 0;
};

// A string key with its hash, computed once: `giftcard verify` hashes an
// event's keys on its reading thread (projections/audit_pipeline.h), and the
// checking thread probes every map that event touches (and prefetches their
// slots first) without hashing again. The hash is absl's of the string,
// as a map keyed by string_view would compute it.
struct HashedKey {
  std::string_view s;
  size_t hash = 0;
  HashedKey(std::string_view key, size_t h) : s(key), hash(h) {}
  HashedKey(const std::string& key, size_t h) : s(key), hash(h) {}
  HashedKey(absl::string_view key, size_t h) : s(key.data(), key.size()), hash(h) {}
};
inline size_t key_hash(std::string_view s) {
  return absl::Hash<absl::string_view>{}(absl::string_view(s.data(), s.size()));
}
inline HashedKey hashed(std::string_view s) { return {s, key_hash(s)}; }
// A map's own copy of a key: its hash, and its bytes inline when it is short
// (stream names, codes, purchase and user ids all are), so the comparison
// that confirms a hit reads the slot the probe (and the prefetch) loaded
// anyway; a key kept in an arena cost a cache miss per hit. Longer keys are
// copied into the arena. Trivially copyable: the map moves slots by memcpy.
class StoredKey {
 public:
  static constexpr size_t kInline = 28;
  StoredKey(const HashedKey& k, StringArena& arena);
  std::string_view view() const { return {data(), len_}; }
  size_t hash() const { return hash_; }

 private:
  const char* data() const {
    if (len_ <= kInline) return bytes_;
    const char* p;
    std::memcpy(&p, bytes_, sizeof p);
    return p;
  }
  uint64_t hash_;
  uint32_t len_;
  char bytes_[kInline];  // the key, or a pointer to it in the arena
};
struct HashedKeyHash {
  using is_transparent = void;
  size_t operator()(const HashedKey& k) const { return k.hash; }
  size_t operator()(const StoredKey& k) const { return k.hash(); }
};
struct HashedKeyEq {
  using is_transparent = void;
  // The hashes first: a mismatch reads no key bytes.
  template <class A, class B>
  bool operator()(const A& a, const B& b) const {
    return hash_of(a) == hash_of(b) && view_of(a) == view_of(b);
  }

 private:
  static size_t hash_of(const HashedKey& k) { return k.hash; }
  static size_t hash_of(const StoredKey& k) { return k.hash(); }
  static std::string_view view_of(const HashedKey& k) { return k.s; }
  static std::string_view view_of(const StoredKey& k) { return k.view(); }
};
// A map keyed by strings whose hashes are computed before the lookup.
template <class V>
using HashedMap = absl::flat_hash_map<StoredKey, V, HashedKeyHash, HashedKeyEq>;

// The hashes of the keys an event's checks and fold look up (0 where the
// event has no such key). `codes`: CodesAdded's and CodesExpired's codes.
struct EventKeys {
  size_t stream = 0, card = 0, code = 0, purchase = 0, user = 0;
  std::vector<size_t> codes;
  // Hashes e's and ev's keys (ev: e's payload, decoded; null: it did not).
  void compute(const StoredEvent& e, const Event* ev);
};

class FlatModels {
 public:
  // Folds one committed event (positions at or before position() are
  // skipped, as apply() does). `ev` is e's decoded payload; its strings are
  // moved into the models. With `keys` (keys.compute(e, &ev)), no key is
  // hashed here.
  void fold(const StoredEvent& e, Event&& ev);
  void fold(const StoredEvent& e, Event&& ev, const EventKeys& keys);

  // Starts loading the hash-map slots fold(e, ev) will touch (a hint only).
  void prefetch(const Event& ev) const;
  void prefetch(const Event& ev, const EventKeys& keys) const;

  int64_t position() const { return position_; }
  Micros recorded_at() const { return recorded_at_; }
  size_t purchase_count() const { return by_id_.size(); }
  // A wallet's balance (nullopt: the wallet has no event folded).
  std::optional<int64_t> balance(std::string_view user) const;
  size_t wallet_count() const { return balances_.size(); }
  // Calls fn(card) for every card, in no particular order.
  void for_each_card(const std::function<void(const CardView&)>& fn) const;

  // The same models in ReadModels' containers.
  ReadModels to_read_models() const;

 private:
  int64_t position_ = 0;
  Micros recorded_at_ = 0;
  HashedMap<int64_t> balances_;
  HashedMap<CardView> cards_;
  struct Fold;  // the containers as fold_event() sees them (flat_models.cc)
  // A PurchaseView whose strings live in strings_.
  struct Purchase {
    absl::string_view purchase_id, card_id, user_id, code;
    int64_t price = 0;
    Micros purchased_at = 0;
    int64_t position = 0;
    PurchaseView view() const;
  };
  // Every CodeAssigned in log order. A repeated purchase id (a damaged log)
  // gets an element of its own; the index then names the latest, as
  // ReadModels::purchases keeps the latest.
  std::vector<Purchase> purchases_;
  HashedMap<size_t> by_id_;
  StringArena strings_;  // every key and Purchase string
  EventKeys scratch_;    // fold() without keys hashes into this
};

// `giftcard replay` on FlatModels: folds the log from position 1 up to `to`
// (0: the end) and, if `at` is set, only events recorded at or before it,
// then converts into *m. Same result as replay_log(); pages are read and
// decoded one ahead on a second thread (LogScanner) while this one folds.
Status replay_log_flat(EventStore* store, int64_t to, std::optional<Micros> at, ReadModels* m,
                       const std::function<void(int64_t)>& progress = {});

}  // namespace giftcard
