// Writer: the single writer thread of an event store (internal to store/).
//
// One dedicated thread drains queued AppendRequests, a group at a time, and
// drives the WriterCore (store/writer_core.h): admit the group, hand its
// batch to the backend as ONE atomic, synced commit, finish, then answer
// every request and feed subscribers. This is leveldb's writer queue with the
// grouping made explicit, because CAF's few scheduler threads would never form
// large groups inside RocksDB itself (docs/BENCHMARKS.md, "Measured on this
// machine").
//
// Sticky failure: once a commit fails, every request (queued or new) fails
// with IOError until the store is reopened.
//
// Thread-safe: Append/Subscribe may be called from any thread.
#pragma once

#include <atomic>
#include <deque>
#include <map>
#include <thread>
#include <unordered_map>

#include "events/mutex.h"
#include "store/event_store.h"
#include "store/writer_core.h"

namespace giftcard {

class Writer {
 public:
  // REQUIRES: `backend` outlives the Writer. `last_position`/`last_hash`
  // describe the committed tail (0 / zero hash for an empty log).
  Writer(WriterBackend* backend, int64_t last_position, const Hash& last_hash,
         Micros last_recorded_at);
  ~Writer();  // Close()s

  void Append(AppendRequest req, AppendCallback done) EXCLUDES(mu_);
  // Queues a snapshot for the next batch, so that no caller (a CAF scheduler
  // thread) ever waits inside RocksDB's write path behind a synced commit.
  void SaveSnapshot(std::string stream, Snapshot snap) EXCLUDES(mu_);
  // A snapshot queued but not yet committed (false if none).
  bool PendingSnapshot(const std::string& stream, Snapshot* snap) const EXCLUDES(mu_);
  uint64_t Subscribe(Subscriber fn) EXCLUDES(sub_mu_);
  void Unsubscribe(uint64_t id) EXCLUDES(sub_mu_);
  int64_t LastPosition() const { return last_position_.load(std::memory_order_acquire); }
  Status Health() const EXCLUDES(mu_);
  StoreStats Stats() const;
  void Close() EXCLUDES(mu_);

  // Test hook: make the next `n` commits fail as if the disk did.
  void TEST_FailNextCommits(int n) { fail_next_ = n; }

 private:
  void Run() EXCLUDES(mu_);
  // Takes the next group and the queued snapshots; false when closing and drained.
  bool NextGroup(std::vector<WriteRequest>* group,
                 std::vector<std::pair<std::string, Snapshot>>* snapshots) EXCLUDES(mu_);
  void ProcessGroup(std::vector<WriteRequest>& group,
                    std::vector<std::pair<std::string, Snapshot>> snapshots) EXCLUDES(mu_);
  Status CommitBatch(const WriteBatch& batch);
  void Announce(const std::vector<StoredEvent>& events) EXCLUDES(sub_mu_);

  WriterBackend* const backend_;
  WriterCore core_;  // writer thread only

  mutable Mutex mu_;
  CondVar cv_{&mu_};
  std::deque<WriteRequest> queue_ GUARDED_BY(mu_);
  std::unordered_map<std::string, Snapshot> snapshots_ GUARDED_BY(mu_);  // not yet committed
  bool closing_ GUARDED_BY(mu_) = false;
  bool joined_ GUARDED_BY(mu_) = false;
  Status sticky_ GUARDED_BY(mu_);

  Mutex close_mu_;  // one Close() joins the thread

  Mutex sub_mu_;
  std::map<uint64_t, Subscriber> subscribers_ GUARDED_BY(sub_mu_);
  uint64_t next_sub_ GUARDED_BY(sub_mu_) = 1;

  std::atomic<int> fail_next_{0};
  std::atomic<int64_t> last_position_;
  std::atomic<uint64_t> batches_{0}, requests_{0}, events_{0}, rejected_{0}, sync_micros_{0},
      max_batch_{0};
  std::thread thread_;
};

}  // namespace giftcard
