// Read models folded from the log (the views of docs/CONTRACT.md, "HTTP
// API"): wallet balances, code availability per card, purchases by id and by
// user, sales per card.
//
// apply() is a pure fold over committed events in position order (the fold
// itself is fold_event(), projections/read_models_fold.h); it skips
// positions already applied, so replaying an overlapping range is harmless.
// Rebuilding from position 1 must give exactly the live models (invariant 6,
// docs/CONTRACT.md "Invariants"). Thread-compatible.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "events/envelope.h"
#include "events/events.h"
#include "events/status.h"
#include "store/event_store.h"

namespace giftcard {

struct CardView {
  std::string id, name;
  int64_t price = 0, value = 0;
  int64_t available = 0, assigned = 0, expired = 0, revoked = 0;
  int64_t sold = 0;     // purchases
  int64_t revenue = 0;  // sum of prices paid
  bool operator==(const CardView&) const = default;
};

// Persisted encodings (cereal; projection_db.cc, history.cc).
template <class Archive>
void serialize(Archive& ar, CardView& c) {
  ar(c.id, c.name, c.price, c.value, c.available, c.assigned, c.expired, c.revoked, c.sold,
     c.revenue);
}

struct PurchaseView {
  std::string purchase_id, card_id, user_id, code;
  int64_t price = 0;
  Micros purchased_at = 0;
  int64_t position = 0;
  bool operator==(const PurchaseView&) const = default;
};

template <class Archive>
void serialize(Archive& ar, PurchaseView& p) {
  ar(p.purchase_id, p.card_id, p.user_id, p.code, p.price, p.purchased_at, p.position);
}

struct ReadModels {
  int64_t position = 0;                     // last applied
  Micros recorded_at = 0;                   // of the last applied event
  std::map<std::string, int64_t> balances;  // user -> balance
  std::map<std::string, CardView> cards;
  std::map<std::string, PurchaseView> purchases;                   // by purchase id
  std::map<std::string, std::vector<std::string>> user_purchases;  // user -> purchase ids, in order
  bool operator==(const ReadModels&) const = default;
};

// "" if a == b; else a sentence naming the first difference found (position,
// a wallet, a card, a purchase, a user's purchase list).
std::string first_difference(const ReadModels& a, const ReadModels& b);

// Folds one committed event. Corruption if its payload does not decode.
// All three are fold_event() (projections/read_models_fold.h), the one
// definition of the fold, on ReadModels' containers.
Status apply(ReadModels& m, const StoredEvent& e);
// The same with the payload already decoded (`ev` is e's payload).
void apply(ReadModels& m, const StoredEvent& e, const Event& ev);
// The same, taking the decoded event's strings (ev is left moved from).
void apply(ReadModels& m, const StoredEvent& e, Event&& ev);

// Folds the log from position 1 into a fresh *m: up to position `to` (0: the
// end) and, if `at` is set, only events recorded at or before it. Pages are
// read and decoded one ahead on a second thread (LogScanner) while this one
// folds. `progress` (optional) is called with the position every 1,000,000
// events. This is `giftcard replay`.
Status replay_log(EventStore* store, int64_t to, std::optional<Micros> at, ReadModels* m,
                  const std::function<void(int64_t)>& progress = {});

}  // namespace giftcard
