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
  out->clear();
  std::shared_lock lock(mu_);
  auto it = streams_.find(stream);
  if (it == streams_.end()) return Status::OK();
  const auto& positions = it->second;
  for (size_t v = static_cast<size_t>(std::max<int64_t>(from_version, 1));
       v <= positions.size() && out->size() < max; ++v)
    out->push_back(log_[static_cast<size_t>(positions[v - 1] - 1)]);
  return Status::OK();
}

Status SimStore::ReadAll(int64_t from_position, size_t max, std::vector<StoredEvent>* out) {
  out->clear();
  std::shared_lock lock(mu_);
  for (size_t p = static_cast<size_t>(std::max<int64_t>(from_position, 1));
       p <= log_.size() && out->size() < max; ++p)
    out->push_back(log_[p - 1]);
  return Status::OK();
}

Status SimStore::StreamVersion(const std::string& stream, int64_t* version) {
  std::shared_lock lock(mu_);
  *version = HeadLocked(stream);
  return Status::OK();
}

Status SimStore::GetClaim(const std::string& key, std::string* value) {
  std::shared_lock lock(mu_);
  auto it = claims_.find(key);
  if (it == claims_.end()) return Status::NotFound("no claim " + key);
  *value = it->second;
  return Status::OK();
}

Status SimStore::SaveSnapshot(const std::string& stream, const Snapshot& snap) {
  std::unique_lock lock(mu_);
  if (closed_) return Status::OK();  // a cache
  queued_snapshots_[stream] = snap;
  return Status::OK();
}

Status SimStore::LoadSnapshot(const std::string& stream, Snapshot* snap) {
  std::shared_lock lock(mu_);
  if (auto q = queued_snapshots_.find(stream); q != queued_snapshots_.end()) {
    *snap = q->second;
    return Status::OK();
  }
  auto it = snapshots_.find(stream);
  if (it == snapshots_.end()) return Status::NotFound("no snapshot");
  *snap = it->second;
  return Status::OK();
}

int64_t SimStore::LastPosition() const {
  std::shared_lock lock(mu_);
  return static_cast<int64_t>(log_.size());
}

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

Status SimStore::KvWrite(const KvBatch& kv) {
  std::unique_lock lock(mu_);
  for (const auto& p : kv.delete_prefixes)
    kv_.erase(kv_.lower_bound(p),
              p.empty() ? kv_.end() : kv_.lower_bound(keys::prefix_successor(p)));
  for (const auto& k : kv.deletes) kv_.erase(k);
  for (const auto& [k, v] : kv.puts) kv_[k] = v;
  return Status::OK();
}

Status SimStore::KvGet(const std::string& key, std::string* value) {
  std::shared_lock lock(mu_);
  auto it = kv_.find(key);
  if (it == kv_.end()) return Status::NotFound("no projection key");
  *value = it->second;
  return Status::OK();
}

Status SimStore::KvMultiGet(const std::vector<std::string>& ks,
                            std::vector<std::optional<std::string>>* values) {
  std::shared_lock lock(mu_);
  values->assign(ks.size(), std::nullopt);
  for (size_t i = 0; i < ks.size(); ++i)
    if (auto it = kv_.find(ks[i]); it != kv_.end()) (*values)[i] = it->second;
  return Status::OK();
}

Status SimStore::KvScan(const std::string& prefix, const std::string& start, const KvVisitor& fn) {
  std::shared_lock lock(mu_);
  for (auto it = kv_.lower_bound(std::max(prefix, start));
       it != kv_.end() && it->first.starts_with(prefix); ++it)
    if (!fn(it->first, it->second)) break;
  return Status::OK();
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
  {
    std::shared_lock lock(mu_);
    if (!log_.empty()) {
      position = log_.back().position;
      hash = log_.back().hash;
      recorded_at = log_.back().recorded_at;
    }
  }
  const int fired = core_ ? core_->TEST_BugFired() : 0;
  core_ = std::make_unique<WriterCore>(&backend_, position, hash, recorded_at, clock_);
  core_->TEST_SetBug(bug_);
  core_->TEST_SetBugFired(fired);  // a bug fires once per run, restarts or not
}

int64_t SimStore::HeadLocked(const std::string& stream) const {
  auto it = streams_.find(stream);
  return it == streams_.end() ? 0 : static_cast<int64_t>(it->second.size());
}

Status SimStore::Backend::LoadHead(const std::string& stream, int64_t* version) {
  std::shared_lock lock(store_->mu_);
  *version = store_->HeadLocked(stream);
  return Status::OK();
}

Status SimStore::Backend::ClaimExists(const std::string& key, bool* exists) {
  std::shared_lock lock(store_->mu_);
  *exists = store_->claims_.count(key) > 0;
  return Status::OK();
}

Status SimStore::Backend::Commit(const std::vector<StoredEvent>& events,
                                 const std::vector<std::pair<std::string, std::string>>& claims,
                                 const std::vector<std::pair<std::string, Snapshot>>& snapshots) {
  if (store_->fault_ != CommitFault::lost) {
    std::unique_lock lock(store_->mu_);
    for (const auto& e : events) {
      store_->log_.push_back(e);
      store_->streams_[e.stream].push_back(e.position);
    }
    for (const auto& [k, v] : claims) store_->claims_[k] = v;
    for (const auto& [stream, snap] : snapshots) store_->snapshots_[stream] = snap;
  }
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
    if (!commit.ok() && sticky_.ok()) sticky_ = Status::IOError("commit failed: " + commit.message());
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
