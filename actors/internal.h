// Internal protocol between the shop, card and wallet actors (not part of the
// public API). Every internal message is a struct that is deliberately NOT
// registered with CAF (CAF_ALLOW_UNSAFE_MESSAGE_TYPE): it can be sent inside
// this process but can never be deserialized from the wire, so a remote peer
// that learns a card or wallet actor's address (it is the sender of replies)
// still cannot reserve, release or commit anything.
#pragma once

#include <caf/all.hpp>
#include <chrono>
#include <functional>
#include <string>

#include "actors/messages.h"
#include "actors/query_pool.h"
#include "projections/history.h"
#include "projections/projection_db.h"
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
    caf::replies_to<ReserveMsg>::with<Reserved>,
    caf::replies_to<DrainMsg>::with<bool>,
    caf::reacts_to<ReleaseMsg>, caf::reacts_to<AssignedMsg>, caf::reacts_to<LeaseDoneMsg>,
    caf::reacts_to<CommitMsg>, caf::reacts_to<TickMsg>, caf::reacts_to<PassivateReply>>;

struct PurchaseCmd {
  std::string card_id;
  std::string key;
  card_actor card;  // leased by the shop for this one purchase
};

using wallet_actor = caf::typed_actor<
    caf::replies_to<PurchaseCmd>::with<Purchase>,
    caf::replies_to<CreditCmd>::with<CreditReply>,
    caf::replies_to<DrainMsg>::with<bool>,
    caf::reacts_to<CommitMsg>, caf::reacts_to<TickMsg>, caf::reacts_to<PassivateReply>>;

using projection_driver_actor = caf::typed_actor<
    caf::reacts_to<LogAdvanced>, caf::replies_to<AwaitMsg>::with<int64_t>,
    caf::reacts_to<AwaitExpired>, caf::replies_to<DrainMsg>::with<bool>>;

// The shop as this process sees it: the public interface plus passivation and
// drain. It is published as `shop_actor` (remote_actor checks a subset).
using shop_internal_actor = shop_actor::extend<caf::reacts_to<PassivateReq>,
                                               caf::replies_to<DrainMsg>::with<bool>,
                                               caf::reacts_to<QueryDone>>;

// Shared by all actors of one shop. Outlives them.
struct ShopConfig {
  // An actor idle this long asks to be passivated. Default: 30 s.
  std::chrono::milliseconds passivate_after{30000};
  // Idle check period (capped at passivate_after / 2). Default: 5 s.
  std::chrono::milliseconds tick{5000};
  // Expiry sweep period of a card actor. Default: 60 s.
  std::chrono::milliseconds expiry_sweep{60000};
  // A live card or wallet actor snapshots its state after this many events
  // (a card: at least a quarter of its code pool, so that snapshot cost stays
  // proportional to the events it saves), so recovery after a crash replays a
  // short tail. Passivation and drain snapshot as well. Default: 1024.
  int64_t snapshot_every = 1024;
  // How long a query waits for the projections to reach its `after`
  // position before it fails with projection_lagging. Default: 5 s.
  std::chrono::milliseconds projection_wait{5000};
  // The query pool the shop makes for itself when ShopContext::queries is
  // null: its threads, and how many queries may wait for one (beyond: busy).
  size_t query_threads = 2;
  size_t max_queued_queries = 1024;
  // Wall clock (micros). Default: now_micros. Tests inject their own.
  std::function<Micros()> clock;
};

struct ShopMetrics {
  std::atomic<int64_t> live_cards{0};
  std::atomic<int64_t> live_wallets{0};
  std::atomic<uint64_t> purchases_ok{0};
  std::atomic<uint64_t> purchases_replayed{0};
  std::atomic<uint64_t> purchases_rejected{0};
  std::atomic<uint64_t> passivations{0};
  std::atomic<uint64_t> projection_batches{0};  // driver catch-ups that applied events
  std::atomic<int64_t> projection_lag_micros{0}; // of the last catch-up: apply time - commit time
  // If set, every catch-up's lag (micros) is also appended here (benchmarks).
  std::function<void(int64_t)> on_projection_lag;
};

struct ShopContext {
  EventStore* store = nullptr;  // REQUIRES: outlives every actor of the shop
  ProjectionDb* projections = nullptr;  // REQUIRES: on `store`; outlives the shop
  ProjectionHistory* history = nullptr;  // optional (time travel); kept up by the driver
  // Where the shop's queries (card, cards, wallet, lookup, history) run. Null:
  // the shop makes its own from config (query_threads, max_queued_queries) at
  // its first query and stops it when it exits. If set, the caller owns it
  // and must stop() it after the shop has exited and before `projections` or
  // the actor system go away (its jobs read the projections and message the
  // shop).
  QueryPool* queries = nullptr;
  ShopConfig config;
  ShopMetrics metrics;
  Micros now() const;
  // The idle-check period: config.tick, but at most half of passivate_after,
  // so that a short passivation timeout is honoured.
  std::chrono::milliseconds tick() const;
};

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
