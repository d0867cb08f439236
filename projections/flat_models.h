// The read models of projections/read_models.h folded into flat hash maps
// (absl::flat_hash_map), for the long scans of the audit: `giftcard replay`
// and `giftcard verify`. The fold is apply()'s: both are fold_event()
// (projections/read_models_fold.h), instantiated here on these containers
// (a test folds the same logs both ways and compares them event by event:
// tests/projections/audit_pipeline_test.cc); only the containers differ. The std::map of ReadModels costs a tree descent
// with a cache miss per level for every purchase; here a purchase costs one
// probe, and its strings are copied into an arena (no allocation each).
//
// to_read_models() gives the ReadModels a fold with apply() would have built
// (sorted maps: what `giftcard replay` prints and what first_difference()
// compares). Thread-compatible.
#pragma once

#include <absl/container/flat_hash_map.h>

#include <cstdint>
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

class FlatModels {
 public:
  // Folds one committed event (positions at or before position() are
  // skipped, as apply() does). `ev` is e's decoded payload; its strings are
  // moved into the models.
  void fold(const StoredEvent& e, Event&& ev);

  // Starts loading the hash-map slots fold(e, ev) will touch (a hint only).
  void prefetch(const Event& ev) const;

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
  absl::flat_hash_map<std::string, int64_t> balances_;
  absl::flat_hash_map<std::string, CardView> cards_;
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
  absl::flat_hash_map<absl::string_view, size_t> by_id_;
  StringArena strings_;
};

// `giftcard replay` on FlatModels: folds the log from position 1 up to `to`
// (0: the end) and, if `at` is set, only events recorded at or before it,
// then converts into *m. Same result as replay_log(); pages are read and
// decoded one ahead on a second thread (LogScanner) while this one folds.
Status replay_log_flat(EventStore* store, int64_t to, std::optional<Micros> at, ReadModels* m,
                       const std::function<void(int64_t)>& progress = {});

}  // namespace giftcard
