// WriterCore: the single writer's admission and group commit, without a
// thread (internal to store/).
//
// One group commit is three steps, each a call here, driven by the writer
// thread in production (store/writer.h) and by the seeded scheduler in the
// deterministic simulation (tests/reliability/sim_store.h), so both run this
// code and no other:
//   1. GroupSize(): how many queued requests form the next group — at most
//      kMaxGroupRequests, and at most kMaxGroupBytes beyond the first (a
//      64 MiB CodesAdded goes alone, as leveldb's BuildBatchGroup caps a
//      group by bytes).
//   2. Admit(): checks each request's expected versions and claims against
//      the committed heads plus the group so far; assigns gap-free positions
//      and stream versions and extends the hash chain; returns the batch.
//   3. the driver commits the batch (one atomic, synced write), then
//      Finish(): on success the heads advance; on failure positions and hash
//      roll back and every admitted request fails with the sticky error.
// Admission is checked against itself (paired assertions): positions rise by
// one, each event chains to the one before, the batch starts where the
// committed log ends.
//
// Thread-compatible: owned by one driver at a time.
#pragma once

#include <deque>
#include <functional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "store/event_store.h"

namespace giftcard {

class WriterBackend {
 public:
  virtual ~WriterBackend() = default;
  // Head version of `stream` as committed (0 if none).
  virtual Status LoadHead(const std::string& stream, int64_t* version) = 0;
  virtual Status ClaimExists(const std::string& key, bool* exists) = 0;
  // Atomically commits the events (with stream index entries), claims and
  // snapshots; durably (synced) when there are events. Called by the driver
  // of a WriterCore, one batch at a time.
  virtual Status Commit(const std::vector<StoredEvent>& events,
                        const std::vector<std::pair<std::string, std::string>>& claims,
                        const std::vector<std::pair<std::string, Snapshot>>& snapshots) = 0;
};

// One queued append.
struct WriteRequest {
  AppendRequest req;
  AppendCallback done;
  Status status;
  AppendResult result;
  size_t bytes = 0;  // payloads, stream names and claims: what the group cap counts

  WriteRequest(AppendRequest r, AppendCallback d);
};

// What one group commit writes.
struct WriteBatch {
  std::vector<StoredEvent> events;
  std::vector<std::pair<std::string, std::string>> claims;
  std::vector<std::pair<std::string, Snapshot>> snapshots;
  size_t admitted = 0;  // requests admitted (their status is OK)
  size_t rejected = 0;  // version or claim conflicts, bad requests
};

constexpr size_t kMaxGroupRequests = 8192;
constexpr size_t kMaxGroupBytes = 4u << 20;

class WriterCore {
 public:
  using Clock = std::function<Micros()>;  // stamps recorded_at (never goes backwards)

  // REQUIRES: `backend` outlives the core. `last_position`/`last_hash`/
  // `last_recorded_at` describe the committed tail (0 / zero hash when empty).
  WriterCore(WriterBackend* backend, int64_t last_position, const Hash& last_hash,
             Micros last_recorded_at, Clock clock);

  // The number of requests from the front of `queue` that form the next
  // group: >= 1 when the queue is not empty.
  static size_t GroupSize(const std::deque<WriteRequest>& queue);

  // Admits `group` in order; sets every request's status and result. While
  // *sticky is not OK every request fails with it; a failed read (not a
  // conflict) becomes the sticky error for the rest of the group. `snapshots`
  // ride along in the batch.
  WriteBatch Admit(std::vector<WriteRequest>& group, Status* sticky,
                   std::vector<std::pair<std::string, Snapshot>> snapshots);

  // The batch's commit returned `commit`. REQUIRES: called once per Admit.
  // On failure every admitted request's status becomes `failure`.
  void Finish(std::vector<WriteRequest>& group, const WriteBatch& batch, const Status& commit,
              const Status& failure);

  int64_t position() const { return position_; }
  const Hash& hash() const { return hash_; }

  // --- Negative controls: deliberately broken admission, for the simulation
  // to prove it catches them. Never set outside tests.
  enum class Bug {
    none,
    // The first purchase admitted is written to the log twice.
    double_commit,
    // The first purchase admitted is answered OK but never written.
    drop_acked,
  };
  void TEST_SetBug(Bug b) { bug_ = b; }
  int TEST_BugFired() const { return bug_fired_; }
  // Whether the bug fired in the last group admitted; a driver whose group
  // never reached a client or the log takes it back with TEST_UnfireBug().
  bool TEST_BugFiredInGroup() const { return group_fired_; }
  void TEST_UnfireBug() { bug_fired_ -= group_fired_ ? 1 : 0; }
  void TEST_SetBugFired(int n) { bug_fired_ = n; }

 private:
  Status AdmitOne(WriteRequest& p, WriteBatch& batch);
  Status Validate(WriteRequest& p, std::unordered_map<std::string_view, int64_t>* heads);
  Status CheckClaims(WriteRequest& p);
  void Assign(WriteRequest& p, const std::unordered_map<std::string_view, int64_t>& heads,
              WriteBatch& batch);
  bool Sabotage(WriteBatch& batch, size_t first);
  Status Head(const std::string& stream, int64_t* version);
  void CheckBatch(const WriteBatch& batch) const;

  WriterBackend* const backend_;
  Clock clock_;
  int64_t position_;  // tentative while a group is admitted
  Hash hash_;
  Micros recorded_at_;
  int64_t start_position_;  // the committed tail before the current group
  Hash start_hash_;
  std::unordered_map<std::string, int64_t> heads_;  // cache of committed heads
  std::unordered_map<std::string, int64_t> tentative_heads_;
  std::unordered_map<std::string, bool> tentative_claims_;
  Bug bug_ = Bug::none;
  int bug_fired_ = 0;
  bool group_fired_ = false;
};

}  // namespace giftcard
