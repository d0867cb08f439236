// The wiring of one shop: its configuration, its metrics and the context
// every card, wallet and driver actor of it shares (the store, the
// projections, the query pool). What a program that runs a shop sets up;
// the actors' internal protocol is in actors/internal.h.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <string>

#include "actors/query_pool.h"
#include "projections/history.h"
#include "projections/projection_db.h"
#include "store/event_store.h"

namespace giftcard {

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
  // Negative control for the simulation, never set elsewhere: a card actor
  // counts as idle (and asks to passivate at its next tick) while it still
  // holds codes, so a second
  // activation of the card can decide without knowing them — the race "one
  // decider per stream" rules out (docs/ARCHITECTURE.md).
  bool TEST_passivate_with_holds = false;
};

struct ShopMetrics {
  std::atomic<int64_t> live_cards{0};
  std::atomic<int64_t> live_wallets{0};
  std::atomic<uint64_t> purchases_ok{0};
  std::atomic<uint64_t> purchases_replayed{0};
  std::atomic<uint64_t> purchases_rejected{0};
  std::atomic<uint64_t> passivations{0};
  std::atomic<uint64_t> projection_batches{0};    // driver catch-ups that applied events
  std::atomic<int64_t> projection_lag_micros{0};  // of the last catch-up: apply time - commit time
  // If set, every catch-up's lag (micros) is also appended here (benchmarks).
  std::function<void(int64_t)> on_projection_lag;
};

struct ShopContext {
  EventStore* store = nullptr;           // REQUIRES: outlives every actor of the shop
  ProjectionDb* projections = nullptr;   // REQUIRES: on `store`; outlives the shop
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

}  // namespace giftcard
