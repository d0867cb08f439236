// THE fold of the read models: what every committed event does to them. It is
// written once, here, over the models' containers, and instantiated twice:
//   - ReadModels (std::map; projections/read_models.cc): apply(), used by the
//     live projections, rebuild, history and the tests;
//   - FlatModels (absl::flat_hash_map + arena strings;
//     projections/flat_models.cc): `giftcard replay` and `giftcard verify`.
// So "replay equals live" (invariant 6) stays a property of one function; the
// two instantiations differ only in where they keep an entry
// (tests/projections/audit_pipeline_test.cc folds the same logs both ways and
// compares them event by event).
//
// The Models policy gives access to its containers:
//   int64_t position() const;                 last applied position
//   void advance(const StoredEvent& e);       position and recorded_at := e's
//   CardView& card(const std::string& id);    the card's view (created if new)
//   CardView* find_card(const std::string& id);  nullptr: no such card
//   int64_t& balance(const std::string& user);   the wallet's (0 if new)
//   Str keep(std::string&& s) / keep(const std::string& s);
//                                             a string as the models store it
//   using Purchase = ...;                     a PurchaseView with Str strings
//   void add_purchase(Purchase&& p);          by id the latest wins; appended
//                                             to its user's list, in log order
#pragma once

#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>

#include "events/events.h"
#include "projections/read_models.h"
#include "store/event_store.h"

namespace giftcard {

// The value of `key` in `map` (std::map or a hash map); nullptr if absent.
template <class Map, class Key>
inline auto* find_value(Map& map, const Key& key) {
  auto it = map.find(key);
  return it == map.end() ? nullptr : &it->second;
}

// Folds one committed event into the models; positions at or before
// m.position() are skipped. Ev is Event (its strings are moved into the
// models) or const Event (they are copied).
template <class Models, class Ev>
  requires std::is_same_v<std::remove_const_t<Ev>, Event>
inline void fold_event(Models& m, const StoredEvent& e, Ev& ev) {
  if (e.position <= m.position()) return;  // already applied
  std::visit(
      [&](auto& x) {
        // On a const event std::move is a copy.
        using T = std::remove_cvref_t<decltype(x)>;
        if constexpr (std::is_same_v<T, CardCreated>) {
          CardView& c = m.card(x.card_id);
          c.id = x.card_id;
          c.name = std::move(x.name);
          c.price = x.price;
          c.value = x.value;
        } else if constexpr (std::is_same_v<T, CodesAdded>) {
          if (CardView* c = m.find_card(x.card_id))
            c->available += static_cast<int64_t>(x.codes.size());
        } else if constexpr (std::is_same_v<T, CodeAssigned>) {
          if (CardView* c = m.find_card(x.card_id)) {
            --c->available;
            ++c->assigned;
            ++c->sold;
            c->revenue += x.price;
          }
          m.add_purchase(typename Models::Purchase{
              .purchase_id = m.keep(std::move(x.purchase_id)),
              .card_id = m.keep(std::move(x.card_id)),
              .user_id = m.keep(std::move(x.user_id)),
              .code = m.keep(std::move(x.code)),
              .price = x.price,
              .purchased_at = e.recorded_at,
              .position = e.position,
          });
        } else if constexpr (std::is_same_v<T, CodeRevoked>) {
          if (CardView* c = m.find_card(x.card_id)) {
            --c->available;
            ++c->revoked;
          }
        } else if constexpr (std::is_same_v<T, CodesExpired>) {
          if (CardView* c = m.find_card(x.card_id)) {
            auto n = static_cast<int64_t>(x.codes.size());
            c->available -= n;
            c->expired += n;
          }
        } else if constexpr (std::is_same_v<T, WalletCredited>) {
          m.balance(x.user_id) += x.amount;
        } else {
          static_assert(std::is_same_v<T, WalletDebited>);
          m.balance(x.user_id) -= x.amount;
        }
      },
      ev);
  m.advance(e);
}

}  // namespace giftcard
