// The shop's public message vocabulary (docs/CONTRACT.md, "CAF remote API"): atoms and the structs
// that cross the CAF wire, each with an inspect() and registered by register_message_types().
// Shared by the server and by remote clients (api/shop_client.h). The persisted encoding (cereal,
// events/) is separate.
#pragma once

#include <caf/all.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "events/events.h"

namespace giftcard {

// Atoms: verb_atom, text of 10 characters or fewer.
using create_atom = caf::atom_constant<caf::atom("create")>;
using add_codes_atom = caf::atom_constant<caf::atom("addcodes")>;
using revoke_atom = caf::atom_constant<caf::atom("revoke")>;
using card_atom = caf::atom_constant<caf::atom("card")>;
using credit_atom = caf::atom_constant<caf::atom("credit")>;
using purchase_atom = caf::atom_constant<caf::atom("purchase")>;
using wallet_atom = caf::atom_constant<caf::atom("wallet")>;
using cards_atom = caf::atom_constant<caf::atom("cards")>;
using lookup_atom = caf::atom_constant<caf::atom("lookup")>;
using history_atom = caf::atom_constant<caf::atom("history")>;
using status_atom = caf::atom_constant<caf::atom("status")>;
using rebuild_atom = caf::atom_constant<caf::atom("rebuild")>;
using login_atom = caf::atom_constant<caf::atom("login")>;
using api_atom = caf::atom_constant<caf::atom("api")>;
using admin_atom = caf::atom_constant<caf::atom("admin")>;

// Lists are paged: at most `limit` items (1..kMaxPageLimit) a call, and a
// cursor to continue from.
constexpr int64_t kMaxPageLimit = 1000;
constexpr int64_t kDefaultPageLimit = 100;

struct CardSpec {
  std::string id;
  std::string name;
  int64_t price = 0;
  int64_t value = 0;
};

// The card view of docs/CONTRACT.md, "HTTP API".
struct CardInfo {
  std::string id;
  std::string name;
  int64_t price = 0;
  int64_t value = 0;
  int64_t available = 0;
  int64_t assigned = 0;
  int64_t expired = 0;
  int64_t revoked = 0;
  // For a change: the log position of its event. For a query: the position
  // the projections had reached when they answered.
  int64_t position = 0;
};

struct AddCodesReply {
  int64_t added = 0;
  int64_t position = 0;
};

struct CreditReply {
  std::string user_id;
  int64_t balance = 0;
  int64_t position = 0;
  bool replayed = false;  // true: an idempotent repeat, nothing changed
};

struct Purchase {
  std::string purchase_id;
  std::string card_id;
  std::string user_id;
  std::string code;
  int64_t price = 0;
  Micros purchased_at = 0;
  int64_t position = 0;  // position of its CodeAssigned; WalletDebited is position + 1
  bool replayed = false;
};

struct WalletView {
  std::string user_id;
  int64_t balance = 0;
  int64_t position = 0;  // the projections' position when they answered
};

// One page of the card list, in id order. `next`: the id to pass as `from`
// for the next page; empty when this is the last page.
struct CardPage {
  std::vector<CardInfo> cards;
  std::string next;
  int64_t position = 0;  // the projections' position when they answered
};

// One page of a user's purchases, in log order. `next`: the log position to
// pass as `from` for the next page; 0 when this is the last page.
struct PurchasePage {
  std::vector<Purchase> purchases;
  int64_t next = 0;
  int64_t position = 0;  // the projections' position when they answered
};

// Where the log and its projections are (the `status` query).
struct ShopStatus {
  int64_t log_position = 0;         // last committed event
  int64_t projection_position = 0;  // last event folded into the read models
  int64_t generation = 0;           // read-model generation (bumped by rebuild)
};

// The outcome of a projection rebuild.
struct RebuildInfo {
  int64_t events = 0;      // events folded into the new generation
  int64_t position = 0;    // the live position it was swapped in at
  int64_t generation = 0;  // the new generation
  int64_t millis = 0;      // wall time of the rebuild
};

// CAF 0.17 cannot inspect a std::optional: on the wire a CodeSpec is code, a
// presence flag and the expiry (0 when absent); loading sets the optional back.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, CodeSpec& x) {
  bool has_expiry = x.expires_at.has_value();
  Micros expires_at = x.expires_at.value_or(0);
  auto load = [&]() -> caf::error {
    if (has_expiry) x.expires_at = expires_at;
    else x.expires_at.reset();
    return caf::none;
  };
  return f(caf::meta::type_name("giftcard::CodeSpec"), x.code, has_expiry, expires_at,
           caf::meta::load_callback(load));
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, CardSpec& x) {
  return f(caf::meta::type_name("giftcard::CardSpec"), x.id, x.name, x.price, x.value);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, CardInfo& x) {
  return f(caf::meta::type_name("giftcard::CardInfo"), x.id, x.name, x.price, x.value, x.available,
           x.assigned, x.expired, x.revoked, x.position);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, AddCodesReply& x) {
  return f(caf::meta::type_name("giftcard::AddCodesReply"), x.added, x.position);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, CreditReply& x) {
  return f(caf::meta::type_name("giftcard::CreditReply"), x.user_id, x.balance, x.position,
           x.replayed);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, Purchase& x) {
  return f(caf::meta::type_name("giftcard::Purchase"), x.purchase_id, x.card_id, x.user_id, x.code,
           x.price, x.purchased_at, x.position, x.replayed);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, WalletView& x) {
  return f(caf::meta::type_name("giftcard::WalletView"), x.user_id, x.balance, x.position);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, CardPage& x) {
  return f(caf::meta::type_name("giftcard::CardPage"), x.cards, x.next, x.position);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, PurchasePage& x) {
  return f(caf::meta::type_name("giftcard::PurchasePage"), x.purchases, x.next, x.position);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, ShopStatus& x) {
  return f(caf::meta::type_name("giftcard::ShopStatus"), x.log_position, x.projection_position,
           x.generation);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, RebuildInfo& x) {
  return f(caf::meta::type_name("giftcard::RebuildInfo"), x.events, x.position, x.generation,
           x.millis);
}

// The shop's interface (docs/CONTRACT.md, "CAF remote API"). Replies carry the results; failures
// are caf::error of category "giftcard" (actors/errors.h).
//
// Commands go to the card and wallet actors. Queries are answered from the
// projections on the query pool, never on the shop actor; their last argument
// is a minimum log position (`after`): the answer waits (bounded, then
// projection_lagging) until the projections include it. Pass the position of
// your own last write for read-your-writes, or 0 for "whatever is there now".
//
// What the API role may do (api token): money and purchases, and reads.
using api_session_actor = caf::typed_actor<
    caf::replies_to<credit_atom, std::string, int64_t, std::string>::with<CreditReply>,
    caf::replies_to<purchase_atom, std::string, std::string, std::string>::with<Purchase>,
    // queries: ..., after
    caf::replies_to<card_atom, std::string, int64_t>::with<CardInfo>,
    // cards: from (card id, "" = the start), limit, after
    caf::replies_to<cards_atom, std::string, int64_t, int64_t>::with<CardPage>,
    caf::replies_to<wallet_atom, std::string, int64_t>::with<WalletView>,
    caf::replies_to<lookup_atom, std::string, int64_t>::with<Purchase>,
    // history: user, from (log position, 0 = the start), limit, after
    caf::replies_to<history_atom, std::string, int64_t, int64_t, int64_t>::with<PurchasePage>,
    caf::replies_to<status_atom>::with<ShopStatus>>;

// Everything (admin token): the API role plus the catalog and operations.
using shop_actor = api_session_actor::extend<
    caf::replies_to<create_atom, CardSpec>::with<CardInfo>,
    caf::replies_to<add_codes_atom, std::string, std::vector<CodeSpec>>::with<AddCodesReply>,
    caf::replies_to<revoke_atom, std::string, std::string>::with<int64_t>,
    caf::replies_to<rebuild_atom>::with<RebuildInfo>>;
using admin_session_actor = shop_actor;

// The only actor a node publishes (api/caf_gate.h): it answers nothing but
// login. A token that grants the role returns a session actor for this client
// exposing exactly that role's interface; a wrong token is `unauthorized`.
// With no token configured for a role, any token (even "") logs in to it.
using gate_actor = caf::typed_actor<
    caf::replies_to<login_atom, api_atom, std::string>::with<api_session_actor>,
    caf::replies_to<login_atom, admin_atom, std::string>::with<admin_session_actor>>;

// Registers every public message type and the "giftcard" error category.
// Every node (server and client) calls it on its actor_system_config.
void register_message_types(caf::actor_system_config& cfg);

}  // namespace giftcard
