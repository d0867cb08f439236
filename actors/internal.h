// Internal protocol between the shop, card and wallet actors (not part of the
// public API). Every internal message is a struct that is deliberately NOT
// registered with CAF (CAF_ALLOW_UNSAFE_MESSAGE_TYPE): it can be sent inside
// this process but can never be deserialized from the wire, so a remote peer
// that learns a card or wallet actor's address (it is the sender of replies)
// still cannot reserve, release or commit anything. The shop's public wiring
// (ShopConfig, ShopMetrics, ShopContext) is in actors/shop_context.h.
#pragma once

#include <caf/all.hpp>
#include <chrono>
#include <functional>
#include <string>

#include "actors/messages.h"
#include "actors/shop_context.h"
#include "store/event_store.h"

namespace giftcard {

struct ReserveMsg {  // card: hold the next code for a purchase
  // The buyer's projected balance. A card priced above it answers
  // insufficient_funds without holding a code, so a buyer who cannot pay
  // never makes another buyer see a spurious out_of_stock.
  int64_t budget = 0;
};
struct Reserved {
  std::string code;
  int64_t price = 0;
};
struct ReleaseMsg {  // card: drop a hold (purchase rejected or commit failed)
  std::string code;
};
struct AssignedMsg {  // card: the CodeAssigned of a hold committed
  std::string code;
  int64_t version = 0;  // its card-stream version
};
struct LeaseDoneMsg {};  // card: a purchase routed here needed no reservation
struct CommitMsg {       // writer -> actor: outcome of an append
  uint64_t token = 0;
  Status status;
  AppendResult result;
};
struct TickMsg {};
struct PassivateReq {  // actor -> shop: may I stop? (see shop_actor.h)
  bool card = false;
  std::string id;
  uint64_t received = 0;
};
struct PassivateReply {
  bool approved = false;
};
struct DrainMsg {};  // finish in-flight work, snapshot, reply, quit

struct PurchaseCmd;
struct CreditCmd {
  int64_t amount = 0;
  std::string key;
};

// Projection driver protocol (projection_driver.h).
struct LogAdvanced {  // subscription -> driver: the log reached `position`
  int64_t position = 0;
};
struct AwaitMsg {  // reply (the projections' position) once they include `position`
  int64_t position = 0;
};
struct AwaitExpired {
  uint64_t id = 0;
};
struct QueryDone {  // query pool -> shop: query `id` has its answer (shop_actor.cc)
  uint64_t id = 0;
};

using card_actor = caf::typed_actor<
    caf::replies_to<create_atom, CardSpec>::with<CardInfo>,
    caf::replies_to<add_codes_atom, std::string, std::vector<CodeSpec>>::with<AddCodesReply>,
    caf::replies_to<revoke_atom, std::string, std::string>::with<int64_t>,
    caf::replies_to<ReserveMsg>::with<Reserved>, caf::replies_to<DrainMsg>::with<bool>,
    caf::reacts_to<ReleaseMsg>, caf::reacts_to<AssignedMsg>, caf::reacts_to<LeaseDoneMsg>,
    caf::reacts_to<CommitMsg>, caf::reacts_to<TickMsg>, caf::reacts_to<PassivateReply>>;

struct PurchaseCmd {
  std::string card_id;
  std::string key;
  card_actor card;  // leased by the shop for this one purchase
};

using wallet_actor = caf::typed_actor<
    caf::replies_to<PurchaseCmd>::with<Purchase>, caf::replies_to<CreditCmd>::with<CreditReply>,
    caf::replies_to<DrainMsg>::with<bool>, caf::reacts_to<CommitMsg>, caf::reacts_to<TickMsg>,
    caf::reacts_to<PassivateReply>>;

using projection_driver_actor =
    caf::typed_actor<caf::reacts_to<LogAdvanced>, caf::replies_to<AwaitMsg>::with<int64_t>,
                     caf::reacts_to<AwaitExpired>, caf::replies_to<DrainMsg>::with<bool>>;

// The shop as this process sees it: the public interface plus passivation and
// drain. It is published as `shop_actor` (remote_actor checks a subset).
using shop_internal_actor = shop_actor::extend<
    caf::reacts_to<PassivateReq>, caf::replies_to<DrainMsg>::with<bool>, caf::reacts_to<QueryDone>>;

// Posts the outcome of an append to `hdl` as a CommitMsg (runs on the writer thread).
template <class Handle>
AppendCallback commit_to(Handle hdl, uint64_t token) {
  return [hdl = std::move(hdl), token](const Status& s, const AppendResult& r) {
    caf::anon_send(hdl, CommitMsg{token, s, r});
  };
}

// Server-generated purchase ids: "p_" + 16 random hex + "_" + counter.
std::string new_purchase_id();

}  // namespace giftcard

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(giftcard::ReserveMsg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(giftcard::Reserved)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(giftcard::ReleaseMsg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(giftcard::AssignedMsg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(giftcard::LeaseDoneMsg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(giftcard::CommitMsg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(giftcard::TickMsg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(giftcard::PassivateReq)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(giftcard::PassivateReply)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(giftcard::DrainMsg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(giftcard::PurchaseCmd)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(giftcard::CreditCmd)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(giftcard::LogAdvanced)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(giftcard::AwaitMsg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(giftcard::AwaitExpired)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(giftcard::QueryDone)
