#include "store/writer.h"

#include <chrono>

#include "store/crash_point.h"

namespace giftcard {
namespace {

Micros system_now() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

Writer::Writer(WriterBackend* backend, int64_t last_position, const Hash& last_hash,
               Micros last_recorded_at)
    : backend_(backend),
      core_(backend, last_position, last_hash, last_recorded_at, system_now),
      last_position_(last_position) {
  thread_ = std::thread([this] { Run(); });
}

Writer::~Writer() { Close(); }

void Writer::Append(AppendRequest req, AppendCallback done) {
  mu_.Lock();
  if (closing_) {  // no writer thread to answer on: answered here, at once
    mu_.Unlock();
    done(Status::Busy("store is closing"), AppendResult{});
    return;
  }
  // A sticky-failed store still queues: the core answers with the sticky
  // error on the writer thread, as the contract says.
  const bool was_empty = queue_.empty();
  queue_.emplace_back(std::move(req), std::move(done));
  if (was_empty) cv_.Signal();
  mu_.Unlock();
}

void Writer::SaveSnapshot(std::string stream, Snapshot snap) {
  MutexLock lock(&mu_);
  if (joined_) return;  // closed: a cache, dropping it is safe
  const bool wake = queue_.empty() && snapshots_.empty();
  snapshots_[std::move(stream)] = std::move(snap);
  if (wake) cv_.Signal();
}

bool Writer::PendingSnapshot(const std::string& stream, Snapshot* snap) const {
  MutexLock lock(&mu_);
  auto it = snapshots_.find(stream);
  if (it == snapshots_.end()) return false;
  *snap = it->second;
  return true;
}

uint64_t Writer::Subscribe(Subscriber fn) {
  MutexLock lock(&sub_mu_);
  uint64_t id = next_sub_++;
  subscribers_.emplace(id, std::move(fn));
  return id;
}

void Writer::Unsubscribe(uint64_t id) {
  MutexLock lock(&sub_mu_);
  subscribers_.erase(id);
}

Status Writer::Health() const {
  MutexLock lock(&mu_);
  return sticky_;
}

StoreStats Writer::Stats() const {
  StoreStats s;
  s.batches = batches_.load();
  s.requests = requests_.load();
  s.events = events_.load();
  s.rejected = rejected_.load();
  s.sync_micros = sync_micros_.load();
  s.max_batch_requests = max_batch_.load();
  return s;
}

void Writer::Close() {
  {
    MutexLock lock(&mu_);
    if (joined_) return;
    closing_ = true;
    cv_.Signal();
  }
  // One Close() joins; a concurrent one waits for it here (std::thread::join
  // from two threads at once is undefined).
  MutexLock join(&close_mu_);
  if (thread_.joinable()) thread_.join();
  MutexLock lock(&mu_);
  joined_ = true;
}

bool Writer::NextGroup(std::vector<WriteRequest>* group,
                       std::vector<std::pair<std::string, Snapshot>>* snapshots) {
  MutexLock lock(&mu_);
  while (!closing_ && queue_.empty() && snapshots_.empty()) cv_.Wait();
  if (queue_.empty() && snapshots_.empty()) return false;  // closing and drained
  const size_t n = WriterCore::GroupSize(queue_);
  group->clear();
  group->reserve(n);
  for (size_t i = 0; i < n; ++i) {
    group->push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
  snapshots->clear();
  for (auto& [stream, snap] : snapshots_) snapshots->emplace_back(stream, snap);
  return true;
}

void Writer::Run() {
  std::vector<WriteRequest> group;
  std::vector<std::pair<std::string, Snapshot>> snapshots;
  while (NextGroup(&group, &snapshots)) ProcessGroup(group, std::move(snapshots));
}

Status Writer::CommitBatch(const WriteBatch& batch) {
  if (batch.events.empty() && batch.snapshots.empty()) return Status::OK();
  auto t0 = std::chrono::steady_clock::now();
  Status commit;
  if (fail_next_ > 0) {
    --fail_next_;
    commit = Status::IOError("injected commit failure (test)");
  } else {
    if (!batch.events.empty()) GIFTCARD_CRASH_POINT("commit.before_write");
    commit = backend_->Commit(batch.events, batch.claims, batch.snapshots);
    if (commit.ok() && !batch.events.empty()) GIFTCARD_CRASH_POINT("commit.after_write");
  }
  sync_micros_ += static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0)
          .count());
  return commit;
}

void Writer::ProcessGroup(std::vector<WriteRequest>& group,
                          std::vector<std::pair<std::string, Snapshot>> snapshots) {
  Status sticky = Health();
  WriteBatch batch = core_.Admit(group, &sticky, std::move(snapshots));
  rejected_ += batch.rejected;
  const Status commit = CommitBatch(batch);
  Status failure;
  {
    MutexLock lock(&mu_);
    if (sticky_.ok() && !sticky.ok()) sticky_ = sticky;  // a read failed during admission
    for (auto& [stream, snap] : batch.snapshots) {       // committed or not, they leave the queue
      auto it = snapshots_.find(stream);
      if (it != snapshots_.end() && it->second.version == snap.version) snapshots_.erase(it);
    }
    if (!commit.ok() && sticky_.ok())
      sticky_ = Status::IOError("commit failed: " + commit.message());
    failure = sticky_;
  }
  core_.Finish(group, batch, commit, failure);
  if (commit.ok()) {
    last_position_.store(core_.position(), std::memory_order_release);
    if (!batch.events.empty()) {
      ++batches_;
      events_ += batch.events.size();
      requests_ += batch.admitted;
      if (batch.admitted > max_batch_) max_batch_ = batch.admitted;
    }
  }
  for (auto& p : group) p.done(p.status, p.result);
  if (commit.ok() && !batch.events.empty()) {
    GIFTCARD_CRASH_POINT("commit.after_reply");
    Announce(batch.events);
  }
}

void Writer::Announce(const std::vector<StoredEvent>& events) {
  MutexLock lock(&sub_mu_);
  for (auto& [id, fn] : subscribers_) fn(events);
}

}  // namespace giftcard
