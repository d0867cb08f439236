// SimStore: the EventStore of the deterministic simulation
// (docs/RELIABILITY.md, "Deterministic simulation"; simulation_test.cc).
//
// Append() only queues. Nothing commits until the simulation loop calls
// CommitGroup(n, fault) on its own thread: the first n queued requests (fewer
// if the production group cap says so) are then admitted by the production
// WriterCore (store/writer_core.h — the very code the writer thread drives:
// expected versions and claims against the committed heads plus the group so
// far; gap-free positions, stream versions and the hash chain), written as one
// atomic group, answered (callbacks run on the calling, i.e. simulation,
// thread) and fed to the subscribers — the projection driver — after the
// callbacks, as the writer does. Which requests commit, in what groups, how late and
// whether the commit fails is therefore decided by the loop from its seed.
//
// Failures keep the real store's semantics (store/event_store.h, writer.h),
// which is what the actors are written for: a failed group commit makes the
// store sticky-failed, every later or still queued request fails with IOError
// until Reopen() (a restart). A failure can leave the group out of the log
// (CommitFault::lost) or in it (CommitFault::persisted: the synced write
// reached the disk but reported an error, which RocksDB allows).
//
// Snapshots are queued like RocksEventStore's (LoadSnapshot serves a queued
// one first) and leave the queue with the next group commit, committed or not.
//
// Bug switches break the WriterCore's admission for the negative control.
//
// Reads, Kv*, Subscribe and Health are thread-safe (the projection driver is
// a detached actor on its own thread); the simulation controls are not.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "store/event_store.h"
#include "store/memory_log.h"
#include "store/writer_core.h"

namespace giftcard::reliability {

enum class CommitFault {
  none,
  lost,       // the write failed and nothing of the group reached the log
  persisted,  // the write reported failure but the group is in the log
};

class SimStore final : public EventStore {
 public:
  using Bug = WriterCore::Bug;

  // `clock` stamps recorded_at (the simulation's time, micros).
  explicit SimStore(std::function<Micros()> clock);
  ~SimStore() override;

  // --- EventStore -----------------------------------------------------------
  void Append(AppendRequest req, AppendCallback done) override;
  Status ReadStream(const std::string& stream, int64_t from_version, size_t max,
                    std::vector<StoredEvent>* out) override;
  Status ReadAll(int64_t from_position, size_t max, std::vector<StoredEvent>* out) override;
  Status StreamVersion(const std::string& stream, int64_t* version) override;
  Status GetClaim(const std::string& key, std::string* value) override;
  Status SaveSnapshot(const std::string& stream, const Snapshot& snap) override;
  Status LoadSnapshot(const std::string& stream, Snapshot* snap) override;
  int64_t LastPosition() const override;
  uint64_t Subscribe(Subscriber fn) override;
  void Unsubscribe(uint64_t id) override;
  Status Health() const override;
  StoreStats Stats() const override;
  Status KvWrite(const KvBatch& batch) override;
  Status KvGet(const std::string& key, std::string* value) override;
  Status KvMultiGet(const std::vector<std::string>& keys,
                    std::vector<std::optional<std::string>>* values) override;
  Status KvScan(const std::string& prefix, const std::string& start, const KvVisitor& fn) override;
  void Close() override;

  // --- Simulation controls (simulation thread only) -------------------------
  size_t queued() const;
  // Requests or snapshots wait for a group commit.
  bool has_work() const;
  // Processes the first min(n, queued(), WriterCore::GroupSize) requests
  // (n >= 1) and every queued snapshot as one group commit. Returns the
  // number of requests answered.
  size_t CommitGroup(size_t n, CommitFault fault);
  // The store is reopened (a restart): the sticky error is cleared and queued
  // snapshots are dropped (a cache). REQUIRES: queued() == 0.
  void Reopen();
  void set_bug(Bug b) {
    bug_ = b;
    core_->TEST_SetBug(b);
  }
  // How many times the bug switch changed an acknowledged purchase.
  int bug_fired() const { return core_->TEST_BugFired(); }

  struct Counters {
    uint64_t groups = 0;              // group commits that wrote events
    uint64_t requests = 0;            // requests committed
    uint64_t rejected = 0;            // version or claim conflicts
    uint64_t failed_groups = 0;       // injected failures
    uint64_t persisted_failures = 0;  // ... of which the group reached the log
    uint64_t sticky_refusals = 0;     // requests refused because the store had failed
    uint64_t snapshots = 0;           // snapshots committed
    uint64_t max_group = 0;
  };
  const Counters& counters() const { return counters_; }

 private:
  // The WriterCore's view of the committed state: the MemoryLog, with the
  // group's fault applied to the commit.
  class Backend final : public WriterBackend {
   public:
    explicit Backend(SimStore* store) : store_(store) {}
    Status LoadHead(const std::string& stream, int64_t* version) override {
      return store_->log_.LoadHead(stream, version);
    }
    Status ClaimExists(const std::string& key, bool* exists) override {
      return store_->log_.ClaimExists(key, exists);
    }
    // Writes the batch unless the fault in store_->fault_ says it is lost;
    // reports failure for any fault.
    Status Commit(const std::vector<StoredEvent>& events,
                  const std::vector<std::pair<std::string, std::string>>& claims,
                  const std::vector<std::pair<std::string, Snapshot>>& snapshots) override;

   private:
    SimStore* const store_;
  };

  // A fresh core from the committed tail, as a reopened store builds its writer.
  void NewCore();

  std::function<Micros()> clock_;

  // Committed state (thread-safe: the driver's thread reads it).
  MemoryLog log_;

  // The queue in front of the core, shared with the actors' threads.
  mutable std::shared_mutex mu_;
  std::unordered_map<std::string, Snapshot> queued_snapshots_;  // GUARDED_BY(mu_)
  Status sticky_;                                               // GUARDED_BY(mu_)
  bool closed_ = false;                                         // GUARDED_BY(mu_)

  std::mutex sub_mu_;
  std::map<uint64_t, Subscriber> subscribers_;  // GUARDED_BY(sub_mu_)
  uint64_t next_sub_ = 1;                       // GUARDED_BY(sub_mu_)

  std::deque<WriteRequest> queue_;  // GUARDED_BY(mu_): appended by actors, drained by the loop

  // Simulation thread only.
  Backend backend_{this};
  std::unique_ptr<WriterCore> core_;
  CommitFault fault_ = CommitFault::none;  // of the group being committed
  Bug bug_ = Bug::none;
  Counters counters_;
};

}  // namespace giftcard::reliability
