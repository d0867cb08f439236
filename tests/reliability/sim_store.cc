#include "tests/reliability/sim_store.h"

#include <algorithm>
#include <unordered_set>

#include "store/keys.h"

namespace giftcard::reliability {

SimStore::SimStore(std::function<Micros()> clock) : clock_(std::move(clock)) { NewCore(); }

SimStore::~SimStore() { Close(); }

void SimStore::Append(AppendRequest req, AppendCallback done) {
  std::unique_lock lock(mu_);
  if (closed_) {
    lock.unlock();
    done(Status::Busy("store is closing"), AppendResult{});
    return;
  }
  // A sticky-failed store still queues: the loop answers with the sticky
  // error when it processes the request, as the writer does.
  queue_.emplace_back(std::move(req), std::move(done));
}

size_t SimStore::queued() const {
  std::shared_lock lock(mu_);
  return queue_.size();
}

bool SimStore::has_work() const {
  std::shared_lock lock(mu_);
  return !queue_.empty() || !queued_snapshots_.empty();
}

Status SimStore::ReadStream(const std::string& stream, int64_t from_version, size_t max,
                            std::vector<StoredEvent>* out) {
  return log_.ReadStream(stream, from_version, max, out);
}

Status SimStore::ReadAll(int64_t from_position, size_t max, std::vector<StoredEvent>* out) {
  return log_.ReadAll(from_position, max, out);
}

Status SimStore::StreamVersion(const std::string& stream, int64_t* version) {
  return log_.LoadHead(stream, version);
}

Status SimStore::GetClaim(const std::string& key, std::string* value) {
  return log_.GetClaim(key, value);
}

Status SimStore::SaveSnapshot(const std::string& stream, const Snapshot& snap) {
  std::unique_lock lock(mu_);
  if (closed_) return Status::OK();  // a cache
  queued_snapshots_[stream] = snap;
  return Status::OK();
}

Status SimStore::LoadSnapshot(const std::string& stream, Snapshot* snap) {
  {
    std::shared_lock lock(mu_);
    if (auto q = queued_snapshots_.find(stream); q != queued_snapshots_.end()) {
      *snap = q->second;
      return Status::OK();
    }
  }
  return log_.LoadSnapshot(stream, snap);
}

int64_t SimStore::LastPosition() const { return log_.LastPosition(); }

uint64_t SimStore::Subscribe(Subscriber fn) {
  std::lock_guard<std::mutex> lock(sub_mu_);
  uint64_t id = next_sub_++;
  subscribers_.emplace(id, std::move(fn));
  return id;
}

void SimStore::Unsubscribe(uint64_t id) {
  std::lock_guard<std::mutex> lock(sub_mu_);
  subscribers_.erase(id);
}

Status SimStore::Health() const {
  std::shared_lock lock(mu_);
  return sticky_;
}

StoreStats SimStore::Stats() const {
  StoreStats s;
  s.batches = counters_.groups;
  s.requests = counters_.requests;
  s.events = static_cast<uint64_t>(LastPosition());
  s.rejected = counters_.rejected;
  s.max_batch_requests = counters_.max_group;
  return s;
}

Status SimStore::KvWrite(const KvBatch& kv) { return log_.KvWrite(kv); }

Status SimStore::KvGet(const std::string& key, std::string* value) {
  return log_.KvGet(key, value);
}

Status SimStore::KvMultiGet(const std::vector<std::string>& ks,
                            std::vector<std::optional<std::string>>* values) {
  return log_.KvMultiGet(ks, values);
}

Status SimStore::KvScan(const std::string& prefix, const std::string& start, const KvVisitor& fn) {
  return log_.KvScan(prefix, start, fn);
}

void SimStore::Close() {
  std::deque<WriteRequest> rest;
  {
    std::unique_lock lock(mu_);
    closed_ = true;
    rest.swap(queue_);
  }
  // Nobody waits for these any more (the actors are gone): answered, not committed.
  for (auto& p : rest) p.done(Status::Busy("store is closing"), AppendResult{});
}

void SimStore::Reopen() {
  {
    std::unique_lock lock(mu_);
    sticky_ = Status::OK();
    queued_snapshots_.clear();
  }
  NewCore();
}

void SimStore::NewCore() {
  int64_t position = 0;
  Hash hash{};
  Micros recorded_at = 0;
  log_.Tail(&position, &hash, &recorded_at);
  const int fired = core_ ? core_->TEST_BugFired() : 0;
  core_ = std::make_unique<WriterCore>(&backend_, position, hash, recorded_at, clock_);
  core_->TEST_SetBug(bug_);
  core_->TEST_SetBugFired(fired);  // a bug fires once per run, restarts or not
}

Status SimStore::Backend::Commit(const std::vector<StoredEvent>& events,
                                 const std::vector<std::pair<std::string, std::string>>& claims,
                                 const std::vector<std::pair<std::string, Snapshot>>& snapshots) {
  if (store_->fault_ != CommitFault::lost)
    store_->log_.Commit(events, claims, snapshots).PermitUncheckedError();  // always OK in memory
  if (store_->fault_ == CommitFault::none) return Status::OK();
  return Status::IOError("injected commit failure (simulation)");
}

size_t SimStore::CommitGroup(size_t n, CommitFault fault) {
  std::vector<WriteRequest> group;
  std::vector<std::pair<std::string, Snapshot>> snapshots;
  Status sticky;
  {
    std::unique_lock lock(mu_);
    n = std::min({std::max<size_t>(n, 1), queue_.size(), WriterCore::GroupSize(queue_)});
    group.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      group.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    for (auto& [stream, snap] : queued_snapshots_) snapshots.emplace_back(stream, snap);
    queued_snapshots_.clear();  // committed or not, they leave the queue (a cache)
    sticky = sticky_;
  }
  if (!sticky.ok()) counters_.sticky_refusals += group.size();
  WriteBatch batch = core_->Admit(group, &sticky, std::move(snapshots));
  counters_.rejected += batch.rejected;
  const bool writes = !batch.events.empty() || !batch.snapshots.empty();
  fault_ = writes ? fault : CommitFault::none;  // nothing to write, nothing to fail
  // The driver's part, as Writer::CommitBatch: one atomic write.
  const Status commit = writes ? backend_.Commit(batch.events, batch.claims, batch.snapshots)
                               : Status::OK();
  if (fault_ != CommitFault::lost) counters_.snapshots += batch.snapshots.size();
  Status failure;
  {
    std::unique_lock lock(mu_);
    if (!commit.ok() && sticky_.ok())
      sticky_ = Status::IOError("commit failed: " + commit.message());
    failure = sticky_;
  }
  core_->Finish(group, batch, commit, failure);
  if (commit.ok()) {
    if (!batch.events.empty()) {
      ++counters_.groups;
      counters_.requests += batch.admitted;
      counters_.max_group = std::max<uint64_t>(counters_.max_group, batch.admitted);
    }
  } else {
    ++counters_.failed_groups;
    if (fault_ == CommitFault::persisted) ++counters_.persisted_failures;
    // A bug that never reached a client or the log did not happen.
    if (fault_ == CommitFault::lost || bug_ == Bug::drop_acked) core_->TEST_UnfireBug();
  }
  fault_ = CommitFault::none;
  // Callbacks, then subscribers, on this (the simulation) thread.
  for (auto& p : group) p.done(p.status, p.result);
  // Only a successful commit is announced (as by the writer); a failed one
  // that reached the log anyway is found by the next catch-up.
  if (commit.ok() && !batch.events.empty()) {
    std::lock_guard<std::mutex> lock(sub_mu_);
    for (auto& [id, fn] : subscribers_) fn(batch.events);
  }
  return group.size();
}

}  // namespace giftcard::reliability
