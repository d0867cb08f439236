// Writer: the single writer of an event store (internal to store/).
//
// One dedicated thread drains every queued AppendRequest into one batch:
// checks expected versions and claims against the committed heads plus the
// batch so far, assigns gap-free positions and stream versions, extends the
// hash chain, hands the batch to the backend as ONE atomic, synced commit,
// then answers every request and feeds subscribers. This is leveldb's writer
// queue with the grouping made explicit, because CAF's few scheduler threads
// would never form large groups inside RocksDB itself (shared/MEASURED.md).
//
// Sticky failure: once a commit fails, every request (queued or new) fails
// with IOError until the store is reopened.
//
// Thread-safe: Append/Subscribe may be called from any thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "store/event_store.h"

namespace giftcard {

class WriterBackend {
 public:
  virtual ~WriterBackend() = default;
  // Head version of `stream` as committed (0 if none).
  virtual Status LoadHead(const std::string& stream, int64_t* version) = 0;
  virtual Status ClaimExists(const std::string& key, bool* exists) = 0;
  // Atomically commits the events (with stream index entries), claims and
  // snapshots; durably (synced) when there are events. Called only from the
  // writer thread.
  virtual Status Commit(const std::vector<StoredEvent>& events,
                        const std::vector<std::pair<std::string, std::string>>& claims,
                        const std::vector<std::pair<std::string, Snapshot>>& snapshots) = 0;
};

class Writer {
 public:
  // REQUIRES: `backend` outlives the Writer. `last_position`/`last_hash`
  // describe the committed tail (0 / zero hash for an empty log).
  Writer(WriterBackend* backend, int64_t last_position, const Hash& last_hash,
         Micros last_recorded_at);
  ~Writer();  // Close()s

  void Append(AppendRequest req, AppendCallback done);
  // Queues a snapshot for the next batch, so that no caller (a CAF scheduler
  // thread) ever waits inside RocksDB's write path behind a synced commit.
  void SaveSnapshot(std::string stream, Snapshot snap);
  // A snapshot queued but not yet committed (false if none).
  bool PendingSnapshot(const std::string& stream, Snapshot* snap) const;
  uint64_t Subscribe(Subscriber fn);
  void Unsubscribe(uint64_t id);
  int64_t LastPosition() const { return last_position_.load(std::memory_order_acquire); }
  Status Health() const;
  StoreStats Stats() const;
  void Close();

  // Test hook: make the next `n` commits fail as if the disk did.
  void TEST_FailNextCommits(int n) { fail_next_ = n; }

 private:
  struct Pending {
    AppendRequest req;
    AppendCallback done;
    Status status;
    AppendResult result;
  };

  void Run();
  void ProcessGroup(std::vector<Pending>& group,
                    std::vector<std::pair<std::string, Snapshot>>& snapshots);
  // Validates `p` against the tentative heads/claims; on success assigns
  // positions and appends its events to `events`.
  Status Admit(Pending& p, std::vector<StoredEvent>& events,
               std::vector<std::pair<std::string, std::string>>& claims);
  Status Head(const std::string& stream, int64_t* version);

  WriterBackend* const backend_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Pending> queue_;  // GUARDED_BY(mu_)
  std::unordered_map<std::string, Snapshot> snapshots_;  // GUARDED_BY(mu_): not yet committed
  bool closing_ = false;       // GUARDED_BY(mu_)
  Status sticky_;              // GUARDED_BY(mu_)

  std::mutex sub_mu_;
  std::map<uint64_t, Subscriber> subscribers_;  // GUARDED_BY(sub_mu_)
  uint64_t next_sub_ = 1;                       // GUARDED_BY(sub_mu_)

  // Writer-thread state.
  int64_t position_;
  Hash hash_;
  Micros recorded_at_;
  std::unordered_map<std::string, int64_t> heads_;  // cache of committed heads
  std::unordered_map<std::string, int64_t> tentative_heads_;
  std::unordered_map<std::string, bool> tentative_claims_;
  std::atomic<int> fail_next_{0};

  std::atomic<int64_t> last_position_;
  std::atomic<uint64_t> batches_{0}, requests_{0}, events_{0}, rejected_{0}, sync_micros_{0},
      max_batch_{0};
  std::thread thread_;
};

}  // namespace giftcard
