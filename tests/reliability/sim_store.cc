#include "tests/reliability/sim_store.h"

#include <algorithm>
#include <unordered_set>

#include "store/keys.h"

namespace giftcard::reliability {

SimStore::SimStore(std::function<Micros()> clock) : clock_(std::move(clock)) {}

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
  queue_.push_back(Pending{std::move(req), std::move(done), Status(), AppendResult{}});
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
  std::deque<Pending> rest;
  {
    std::unique_lock lock(mu_);
    closed_ = true;
    rest.swap(queue_);
  }
  // Nobody waits for these any more (the actors are gone): answered, not committed.
  for (auto& p : rest) p.done(Status::Busy("store is closing"), AppendResult{});
}

void SimStore::Reopen() {
  std::unique_lock lock(mu_);
  sticky_ = Status::OK();
  queued_snapshots_.clear();
}

int64_t SimStore::HeadLocked(const std::string& stream) const {
  auto it = streams_.find(stream);
  return it == streams_.end() ? 0 : static_cast<int64_t>(it->second.size());
}

StoredEvent SimStore::Chain(StoredEvent e) {
  e.prev_hash = hash_;
  e.hash = compute_hash(e);
  hash_ = e.hash;
  return e;
}

// The writer's Admit (store/writer.cc), against the committed log plus the
// group so far. Mutates nothing unless it succeeds.
Status SimStore::Admit(Pending& p, std::vector<StoredEvent>& events,
                       std::vector<std::pair<std::string, std::string>>& claims) {
  const AppendRequest& req = p.req;
  if (req.events.empty()) return Status::InvalidArgument("append without events");
  auto head = [&](const std::string& stream) {
    if (auto t = tentative_heads_.find(stream); t != tentative_heads_.end()) return t->second;
    std::shared_lock lock(mu_);
    return HeadLocked(stream);
  };
  for (const auto& e : req.events)
    if (e.stream.empty() || e.stream.size() > kMaxStreamName ||
        e.stream.find('\0') != std::string::npos)
      return Status::InvalidArgument("bad stream name");
  for (const auto& [stream, expected] : req.expected) {
    if (expected == kAnyVersion) continue;
    int64_t h = head(stream);
    if (h != expected) {
      p.result.conflict_stream = stream;
      return Status::Conflict("stream " + stream + " is at version " + std::to_string(h) +
                              ", expected " + std::to_string(expected));
    }
  }
  std::unordered_set<std::string_view> seen, reported;
  for (const auto& c : req.claims) {
    bool exists = !seen.insert(c.key).second || tentative_claims_.count(c.key) > 0;
    if (!exists) {
      std::shared_lock lock(mu_);
      exists = claims_.count(c.key) > 0;
    }
    if (exists && reported.insert(c.key).second) p.result.conflicts.push_back(c.key);
  }
  if (!p.result.conflicts.empty())
    return Status::Conflict(std::to_string(p.result.conflicts.size()) + " claim(s) exist");
  // Admitted: positions, versions, the hash chain.
  recorded_at_ = std::max<Micros>(recorded_at_, clock_());
  p.result.first_position = position_ + 1;
  p.result.recorded_at = recorded_at_;
  std::vector<StoredEvent> mine;
  for (auto& pe : p.req.events) {
    StoredEvent e;
    e.position = ++position_;
    e.stream = pe.stream;
    e.version = head(pe.stream) + 1;
    e.type = pe.type;
    e.recorded_at = recorded_at_;
    e.payload = pe.payload;
    tentative_heads_[e.stream] = e.version;
    p.result.versions.push_back(e.version);
    mine.push_back(std::move(e));
  }
  const bool purchase = mine.size() == 2 && mine[0].type == EventType::CodeAssigned;
  if (purchase && bug_ == Bug::drop_acked && bug_fired_ == 0) {
    // BUG: answered OK with these positions, never written (nor its claims).
    // The positions are taken back, so the next request reuses them.
    ++bug_fired_;
    group_fired_ = true;
    position_ -= static_cast<int64_t>(mine.size());
    for (const auto& e : mine) tentative_heads_[e.stream] = e.version - 1;
    return Status::OK();
  }
  for (const auto& c : req.claims) {
    std::string value = c.value;
    if (c.append_position) keys::put_be64(value, static_cast<uint64_t>(p.result.first_position));
    tentative_claims_.emplace(c.key, true);
    claims.emplace_back(c.key, std::move(value));
  }
  for (auto& e : mine) events.push_back(Chain(std::move(e)));
  if (purchase && bug_ == Bug::double_commit && bug_fired_ == 0) {
    // BUG: the request's events are written a second time (a retried write
    // that skips admission), with positions and versions of their own.
    ++bug_fired_;
    group_fired_ = true;
    const size_t first = events.size() - mine.size(), end = events.size();
    for (size_t i = first; i < end; ++i) {
      StoredEvent again = events[i];
      again.position = ++position_;
      again.version = head(again.stream) + 1;
      tentative_heads_[again.stream] = again.version;
      events.push_back(Chain(std::move(again)));
    }
  }
  return Status::OK();
}

void SimStore::Write(const std::vector<StoredEvent>& events,
                     const std::vector<std::pair<std::string, std::string>>& claims) {
  std::unique_lock lock(mu_);
  for (const auto& e : events) {
    log_.push_back(e);
    streams_[e.stream].push_back(e.position);
  }
  for (const auto& [k, v] : claims) claims_[k] = v;
}

size_t SimStore::CommitGroup(size_t n, CommitFault fault) {
  std::vector<Pending> group;
  std::vector<std::pair<std::string, Snapshot>> snapshots;
  Status sticky;
  {
    std::unique_lock lock(mu_);
    n = std::min(std::max<size_t>(n, 1), queue_.size());
    group.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      group.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    for (auto& [stream, snap] : queued_snapshots_) snapshots.emplace_back(stream, snap);
    queued_snapshots_.clear();  // committed or not, they leave the queue (a cache)
    sticky = sticky_;
    position_ = static_cast<int64_t>(log_.size());
  }
  tentative_heads_.clear();
  tentative_claims_.clear();
  const int64_t start_position = position_;
  const Hash start_hash = hash_;
  std::vector<StoredEvent> events;
  std::vector<std::pair<std::string, std::string>> claims;
  size_t admitted = 0;
  for (auto& p : group) {
    if (!sticky.ok()) {
      p.status = sticky;
      ++counters_.sticky_refusals;
      continue;
    }
    p.status = Admit(p, events, claims);
    if (p.status.ok())
      ++admitted;
    else
      ++counters_.rejected;
  }
  const int fired_before = bug_fired_ - (group_fired_ ? 1 : 0);
  group_fired_ = false;
  const bool writes = !events.empty() || !snapshots.empty();
  if (!writes) fault = CommitFault::none;  // nothing to write, nothing to fail
  if (fault == CommitFault::none || fault == CommitFault::persisted) {
    Write(events, claims);
    std::unique_lock lock(mu_);
    for (auto& [stream, snap] : snapshots) snapshots_[stream] = snap;
    counters_.snapshots += snapshots.size();
  }
  if (fault == CommitFault::none) {
    if (!events.empty()) {
      ++counters_.groups;
      counters_.requests += admitted;
      counters_.max_group = std::max<uint64_t>(counters_.max_group, admitted);
    }
  } else {
    ++counters_.failed_groups;
    if (fault == CommitFault::persisted) {
      ++counters_.persisted_failures;
    } else {
      position_ = start_position;
      hash_ = start_hash;
    }
    Status failed = Status::IOError("commit failed: injected commit failure (simulation)");
    {
      std::unique_lock lock(mu_);
      if (sticky_.ok()) sticky_ = failed;
      failed = sticky_;
    }
    for (auto& p : group)
      if (p.status.ok()) p.status = failed;
    // A bug that never reached a client or the log did not happen.
    if (fault == CommitFault::lost || bug_ == Bug::drop_acked) bug_fired_ = fired_before;
  }
  tentative_heads_.clear();
  tentative_claims_.clear();
  // Callbacks, then subscribers, on this (the simulation) thread.
  for (auto& p : group) p.done(p.status, p.result);
  // Only a successful commit is announced (as by the writer); a failed one
  // that reached the log anyway is found by the next catch-up.
  if (fault == CommitFault::none && !events.empty()) {
    std::lock_guard<std::mutex> lock(sub_mu_);
    for (auto& [id, fn] : subscribers_) fn(events);
  }
  return group.size();
}

}  // namespace giftcard::reliability
