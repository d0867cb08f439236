// ProjectionDb: the read models of read_models.h, persisted in the store's
// projection space (ProjectionKv) so that a restart resumes from a
// checkpoint instead of position 1. The models and their checkpoint are read
// and written through the ProjectionKv alone; the EventLog is only read, by
// Open (the log's head), CatchUp and Rebuild (the events to fold).
//
// Exactly once: every Apply() writes the models it changed *and* the new
// checkpoint in one KvBatch, so after a crash the models are exactly those of
// the checkpoint; events after it are applied again from the log, and events
// at or before it are skipped. Nothing is lost and nothing counts twice.
//
// Generations: models live under a generation prefix. Rebuild() folds the
// whole log in memory and writes it as generation g+1 beside the live
// generation g in one ingest of sorted table files (ProjectionKv::KvIngest;
// purchases go on), catches it up to the live position, and then swaps it in
// with one batch that also drops generation g. Readers see either the old or
// the new generation, never a mixture.
//
// Thread-safety: Apply/CatchUp/Rebuild serialise among themselves; queries and
// WaitFor may be called from any thread at any time.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "projections/read_models.h"
#include "store/event_store.h"

namespace giftcard {

struct RebuildReport {
  int64_t events = 0;       // events folded into the new generation
  int64_t position = 0;     // the position it was swapped in at
  uint32_t generation = 0;  // the new generation
  double seconds = 0;
  double fold_seconds = 0;    // of which: the log folded in memory from position 1
  double ingest_seconds = 0;  // and the generation written and ingested (KvIngest)
};

class ProjectionDb {
 public:
  // Opens the active generation (creating generation 1 on an empty store) and
  // reads its checkpoint. Does not catch up: call CatchUp(). A damaged marker
  // or checkpoint (bad size or checksum) drops every projection and opens
  // empty, so that CatchUp() refolds the whole log; reset_reason() then says
  // why. A checkpoint ahead of the log is refused (Corruption): the log lost
  // events and no rebuild may hide it.
  static Status Open(EventLog* log, ProjectionKv* kv, std::unique_ptr<ProjectionDb>* out);
  // The same over one store that serves both sides (the usual case).
  static Status Open(EventStore* store, std::unique_ptr<ProjectionDb>* out);
  const std::string& reset_reason() const { return reset_reason_; }

  // Folds committed events into the models. Events at or before position()
  // are skipped; a gap (an event after position() + 1) is InvalidArgument.
  Status Apply(const std::vector<StoredEvent>& events);

  // Reads the log from position() + 1 and applies it, `chunk` events per
  // batch, until the store's LastPosition() (or `up_to`). `progress`, if set,
  // gets the position after every batch.
  Status CatchUp(size_t chunk = 16384, int64_t up_to = INT64_MAX,
                 const std::function<void(int64_t)>& progress = {});

  // Folds the whole log into a fresh generation and swaps it in (see above).
  // Busy if another rebuild is running.
  Status Rebuild(RebuildReport* report, const std::function<void(int64_t)>& progress = {});

  // The last applied position (the checkpoint) and its commit time.
  int64_t position() const { return position_.load(std::memory_order_acquire); }
  Micros recorded_at() const { return recorded_at_.load(std::memory_order_acquire); }
  uint32_t generation() const;

  // Blocks until position() >= p or `timeout` passes; true if reached.
  bool WaitFor(int64_t p, std::chrono::milliseconds timeout) const;
  // Wakes every WaitFor (used at shutdown).
  void NotifyAll() const;

  // --- Queries (always one generation, consistent as of some checkpoint) ---
  Status Card(const std::string& id, CardView* out) const;  // NotFound
  Status Cards(std::vector<CardView>* out) const;           // all, by id
  // One page of cards in id order: the first id >= `from` ("" = the first
  // card) on, at most `limit`. Seeks to `from`; reads only what it returns.
  // (Ask for limit + 1 to learn the next page's `from`.)
  Status Cards(const std::string& from, size_t limit, std::vector<CardView>* out) const;
  // Balance of a user; 0 for a user with no wallet events (docs/CONTRACT.md, "Domain").
  Status Balance(const std::string& user, int64_t* out) const;
  // Wallets in user-id order, starting at the first id >= `from` that starts
  // with `prefix`; at most `limit`.
  Status Wallets(const std::string& prefix, const std::string& from, size_t limit,
                 std::vector<std::pair<std::string, int64_t>>* out) const;
  Status Purchase(const std::string& purchase_id, PurchaseView* out) const;  // NotFound
  // A user's purchases in log order; at most `limit`.
  Status UserPurchases(const std::string& user, size_t limit, std::vector<PurchaseView>* out) const;
  // One page of them: those at log position >= `from` (a purchase's position
  // is its CodeAssigned's), at most `limit`. Seeks in the user's index to
  // `from`, so a page deep into a long history costs what a first page does.
  // (Ask for limit + 1 to learn the next page's `from`.)
  Status UserPurchases(const std::string& user, int64_t from, size_t limit,
                       std::vector<PurchaseView>* out) const;
  // The newest purchases at or before position `at_or_before` first, at most
  // `limit` (the admin viewer's recent purchases, also as of a past position).
  Status RecentPurchases(size_t limit, std::vector<PurchaseView>* out,
                         int64_t at_or_before = INT64_MAX) const;

  // The whole active generation as in-memory models (tests, verify).
  Status LoadAll(ReadModels* out) const;

  // Test hook: Rebuild calls `hook(stage)` after it ingested the new
  // generation ("ingested") and just before the swap ("before_swap"); a
  // status that is not OK ends the rebuild there, as a crash would (nothing
  // is cleaned up). Set before Rebuild runs.
  void TEST_SetRebuildHook(std::function<Status(std::string_view stage)> hook) {
    test_hook_ = std::move(hook);
  }

 private:
  ProjectionDb(EventLog* log, ProjectionKv* kv) : log_(log), kv_(kv) {}
  static Status OpenOnce(EventLog* log, ProjectionKv* kv, std::unique_ptr<ProjectionDb>* out,
                         bool* damaged);
  std::string reset_reason_;
  Status ApplyTo(uint32_t gen, const std::vector<StoredEvent>& events, int64_t* pos, Micros* at);
  Status CatchUpGen(uint32_t gen, int64_t up_to, size_t chunk, int64_t* pos, Micros* at,
                    const std::function<void(int64_t)>& progress);
  void Publish(int64_t pos, Micros at);

  EventLog* log_;                     // read only
  ProjectionKv* kv_;                  // the models and the checkpoint
  std::mutex apply_mu_;               // Apply / CatchUp / Rebuild's swap
  std::mutex rebuild_mu_;             // one Rebuild at a time
  mutable std::shared_mutex gen_mu_;  // gen_ vs queries
  uint32_t gen_ = 1;                  // GUARDED_BY(gen_mu_)
  std::atomic<int64_t> position_{0};
  std::atomic<Micros> recorded_at_{0};
  std::function<Status(std::string_view)> test_hook_;
  mutable std::mutex wait_mu_;
  mutable std::condition_variable wait_cv_;
};

}  // namespace giftcard
