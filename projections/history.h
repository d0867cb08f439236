// ProjectionHistory: the shop as of any earlier log position, answered from a
// checkpoint plus a short replay — never from position 1 (the admin viewer's
// time travel, docs/CONTRACT.md "Admin viewer").
//
// Every kEvery positions it stores a *history checkpoint*: every card view
// and the wallet float (the sum of all balances) exactly as of that position.
// The shop as of P is the checkpoint at or before P plus the fold of at most
// kEvery - 1 events. A wallet's balance as of P needs no checkpoint at all:
// it is the balance_after of the wallet's last event at or before P, found by
// binary search over the wallet's stream.
//
// Checkpoints are a function of the log alone, so they live outside the
// read-model generations (a rebuild does not touch them). Keys (projection
// space): 'H' ~position:u64 -> checkpoint (newest first).
//
// Thread-safety: CatchUp from one thread (the projection driver); At and
// BalanceAt from any thread.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "projections/read_models.h"
#include "store/event_store.h"

namespace giftcard {

class ProjectionHistory {
 public:
  static constexpr int64_t kEvery = 65536;

  struct AsOf {
    int64_t position = 0;
    Micros recorded_at = 0;
    std::vector<CardView> cards;  // by id
    int64_t wallet_float = 0;     // sum of all balances (saturates at the int64 limits)
    int64_t replayed = 0;         // events folded after the checkpoint (cost of the answer)
  };

  // Resumes from the newest checkpoint. Checkpoints go through `kv`; the log
  // is only read.
  static Status Open(EventLog* log, ProjectionKv* kv, std::unique_ptr<ProjectionHistory>* out);
  static Status Open(EventStore* store, std::unique_ptr<ProjectionHistory>* out);

  // Folds the log up to its head into the running state and stores a
  // checkpoint at each multiple of kEvery passed on the way. Incremental: a
  // call folds only what was appended since the last one, so calling it after
  // every projection step costs that step's events, with no spike at the
  // checkpoints.
  Status CatchUp();

  // The shop's cards and float as of position p (0 <= p <= the log's head).
  Status At(int64_t p, AsOf* out) const;

  // A user's balance as of position p; *existed is false if the wallet had
  // no event yet (balance 0).
  Status BalanceAt(const std::string& user, int64_t p, int64_t* balance, bool* existed) const;

 private:
  ProjectionHistory(EventLog* log, ProjectionKv* kv) : log_(log), kv_(kv) {}
  Status LoadCheckpointAtOrBefore(int64_t p, AsOf* out) const;

  EventLog* log_;     // read only
  ProjectionKv* kv_;  // the checkpoints
  std::mutex mu_;
  // GUARDED_BY(mu_): the running state, folded up to live_.position; its
  // balances, purchases and user_purchases are emptied after every call (the
  // balance changes go into live_float_).
  ReadModels live_;
  int64_t live_float_ = 0;  // GUARDED_BY(mu_)
};

}  // namespace giftcard
