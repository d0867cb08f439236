#include "store/writer.h"

#include "store/crash_point.h"

#include <chrono>
#include <unordered_set>

namespace giftcard {
namespace {

constexpr size_t kMaxGroupRequests = 8192;
constexpr size_t kMaxHeadCache = 1 << 20;  // bounded: a million wallets stay cheap

}  // namespace

Writer::Writer(WriterBackend* backend, int64_t last_position, const Hash& last_hash,
               Micros last_recorded_at)
    : backend_(backend),
      position_(last_position),
      hash_(last_hash),
      recorded_at_(last_recorded_at),
      last_position_(last_position) {
  thread_ = std::thread([this] { Run(); });
}

Writer::~Writer() { Close(); }

void Writer::Append(AppendRequest req, AppendCallback done) {
  std::unique_lock<std::mutex> lock(mu_);
  if (closing_) {  // no writer thread to answer on: answered here, at once
    lock.unlock();
    done(Status::Busy("store is closing"), AppendResult{});
    return;
  }
  // A sticky-failed store still queues: ProcessGroup answers with the sticky
  // error on the writer thread, as the contract says.
  bool was_empty = queue_.empty();
  queue_.push_back(Pending{std::move(req), std::move(done), Status(), AppendResult{}});
  if (was_empty) cv_.notify_one();
}

void Writer::SaveSnapshot(std::string stream, Snapshot snap) {
  std::lock_guard<std::mutex> lock(mu_);
  if (closing_ && !thread_.joinable()) return;  // closed: a cache, dropping it is safe
  bool wake = queue_.empty() && snapshots_.empty();
  snapshots_[std::move(stream)] = std::move(snap);
  if (wake) cv_.notify_one();
}

bool Writer::PendingSnapshot(const std::string& stream, Snapshot* snap) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = snapshots_.find(stream);
  if (it == snapshots_.end()) return false;
  *snap = it->second;
  return true;
}

uint64_t Writer::Subscribe(Subscriber fn) {
  std::lock_guard<std::mutex> lock(sub_mu_);
  uint64_t id = next_sub_++;
  subscribers_.emplace(id, std::move(fn));
  return id;
}

void Writer::Unsubscribe(uint64_t id) {
  std::lock_guard<std::mutex> lock(sub_mu_);
  subscribers_.erase(id);
}

Status Writer::Health() const {
  std::lock_guard<std::mutex> lock(mu_);
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
    std::lock_guard<std::mutex> lock(mu_);
    if (closing_ && !thread_.joinable()) return;
    closing_ = true;
    cv_.notify_one();
  }
  if (thread_.joinable()) thread_.join();
}

void Writer::Run() {
  std::vector<Pending> group;
  std::vector<std::pair<std::string, Snapshot>> snapshots;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return closing_ || !queue_.empty() || !snapshots_.empty(); });
      if (queue_.empty() && snapshots_.empty()) return;  // closing and drained
      size_t n = std::min(queue_.size(), kMaxGroupRequests);
      group.clear();
      group.reserve(n);
      for (size_t i = 0; i < n; ++i) {
        group.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      snapshots.clear();
      for (auto& [stream, snap] : snapshots_) snapshots.emplace_back(stream, snap);
    }
    ProcessGroup(group, snapshots);
  }
}

Status Writer::Head(const std::string& stream, int64_t* version) {
  if (auto t = tentative_heads_.find(stream); t != tentative_heads_.end()) {
    *version = t->second;
    return Status::OK();
  }
  if (auto h = heads_.find(stream); h != heads_.end()) {
    *version = h->second;
    return Status::OK();
  }
  Status s = backend_->LoadHead(stream, version);
  if (s.ok()) {
    if (heads_.size() >= kMaxHeadCache) heads_.clear();
    heads_.emplace(stream, *version);
  }
  return s;
}

Status Writer::Admit(Pending& p, std::vector<StoredEvent>& events,
                     std::vector<std::pair<std::string, std::string>>& claims) {
  const AppendRequest& req = p.req;
  if (req.events.empty()) return Status::InvalidArgument("append without events");
  std::unordered_map<std::string_view, int64_t> heads;  // step 0's answers, for step 3
  for (const auto& e : req.events) {
    if (e.stream.empty() || e.stream.size() > kMaxStreamName ||
        e.stream.find('\0') != std::string::npos)
      return Status::InvalidArgument("bad stream name");
    if (e.payload.size() > kMaxPayload) return Status::InvalidArgument("payload too large");
    // Resolve every head now, so that step 3 below cannot fail half-way.
    int64_t head = 0;
    if (Status s = Head(e.stream, &head); !s.ok()) return s;
    heads.emplace(e.stream, head);
  }
  // 1. Expected versions, against committed heads plus this batch so far.
  for (const auto& [stream, expected] : req.expected) {
    if (expected == kAnyVersion) continue;
    int64_t head = 0;
    if (Status s = Head(stream, &head); !s.ok()) return s;
    if (head != expected) {
      p.result.conflict_stream = stream;
      return Status::Conflict("stream " + stream + " is at version " + std::to_string(head) +
                              ", expected " + std::to_string(expected));
    }
  }
  // 2. Claims: every conflicting key is reported, so a caller can name them all.
  std::unordered_set<std::string_view> seen, reported;
  for (const auto& c : req.claims) {
    bool exists = false;
    if (!seen.insert(c.key).second || tentative_claims_.count(c.key)) {
      exists = true;  // claimed twice in this request, or earlier in this batch
    } else if (Status s = backend_->ClaimExists(c.key, &exists); !s.ok()) {
      return s;
    }
    if (exists && reported.insert(c.key).second) p.result.conflicts.push_back(c.key);
  }
  if (!p.result.conflicts.empty())
    return Status::Conflict(std::to_string(p.result.conflicts.size()) + " claim(s) exist");
  // 3. Admitted: assign positions, versions and the hash chain. Infallible.
  auto now = std::chrono::duration_cast<std::chrono::microseconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
  recorded_at_ = std::max<Micros>(recorded_at_, now);  // never goes backwards
  p.result.first_position = position_ + 1;
  p.result.recorded_at = recorded_at_;
  for (auto& pe : p.req.events) {
    auto t = tentative_heads_.find(pe.stream);
    int64_t head = t != tentative_heads_.end() ? t->second : heads.at(pe.stream);
    StoredEvent e;
    e.position = ++position_;
    e.stream = pe.stream;
    e.version = head + 1;
    e.type = pe.type;
    e.recorded_at = recorded_at_;
    e.payload = std::move(pe.payload);
    e.prev_hash = hash_;
    e.hash = compute_hash(e);
    hash_ = e.hash;
    tentative_heads_[e.stream] = e.version;
    p.result.versions.push_back(e.version);
    events.push_back(std::move(e));
  }
  for (const auto& c : req.claims) {
    std::string value = c.value;
    if (c.append_position) {
      for (int s = 56; s >= 0; s -= 8)
        value.push_back(static_cast<char>((static_cast<uint64_t>(p.result.first_position) >> s) & 0xff));
    }
    tentative_claims_.emplace(c.key, true);
    claims.emplace_back(c.key, std::move(value));
  }
  return Status::OK();
}

void Writer::ProcessGroup(std::vector<Pending>& group,
                          std::vector<std::pair<std::string, Snapshot>>& snapshots) {
  std::vector<StoredEvent> events;
  std::vector<std::pair<std::string, std::string>> claims;
  tentative_heads_.clear();
  tentative_claims_.clear();
  const int64_t start_position = position_;
  const Hash start_hash = hash_;
  Status sticky = Health();
  size_t admitted = 0;
  for (auto& p : group) {
    if (!sticky.ok()) {
      p.status = sticky;
      continue;
    }
    // Admit() mutates nothing unless it succeeds.
    p.status = Admit(p, events, claims);
    if (!p.status.ok()) {
      ++rejected_;
      if (!p.status.IsConflict() && !p.status.IsInvalidArgument()) {  // a read failed
        std::lock_guard<std::mutex> lock(mu_);
        if (sticky_.ok()) sticky_ = p.status;
        sticky = sticky_;
      }
    } else {
      ++admitted;
    }
  }
  Status commit;
  if (!events.empty() || !snapshots.empty()) {
    auto t0 = std::chrono::steady_clock::now();
    if (fail_next_ > 0) {
      --fail_next_;
      commit = Status::IOError("injected commit failure (test)");
    } else {
      if (!events.empty()) GIFTCARD_CRASH_POINT("commit.before_write");
      commit = backend_->Commit(events, claims, snapshots);
      if (commit.ok() && !events.empty()) GIFTCARD_CRASH_POINT("commit.after_write");
    }
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                  std::chrono::steady_clock::now() - t0)
                  .count();
    sync_micros_ += static_cast<uint64_t>(us);
  }
  if (!snapshots.empty()) {  // committed or not, they leave the queue (a cache)
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [stream, snap] : snapshots) {
      auto it = snapshots_.find(stream);
      if (it != snapshots_.end() && it->second.version == snap.version) snapshots_.erase(it);
    }
  }
  if (commit.ok()) {
    for (auto& [stream, v] : tentative_heads_) {
      if (heads_.size() >= kMaxHeadCache) heads_.clear();
      heads_[stream] = v;
    }
    last_position_.store(position_, std::memory_order_release);
    if (!events.empty()) {
      ++batches_;
      events_ += events.size();
      requests_ += admitted;
      if (admitted > max_batch_) max_batch_ = admitted;
    }
  } else {
    position_ = start_position;
    hash_ = start_hash;
    std::lock_guard<std::mutex> lock(mu_);
    if (sticky_.ok()) sticky_ = Status::IOError("commit failed: " + commit.message());
    for (auto& p : group)
      if (p.status.ok()) p.status = sticky_;
  }
  tentative_heads_.clear();
  tentative_claims_.clear();
  for (auto& p : group) p.done(p.status, p.result);
  if (commit.ok() && !events.empty()) {
    GIFTCARD_CRASH_POINT("commit.after_reply");
    std::lock_guard<std::mutex> lock(sub_mu_);
    for (auto& [id, fn] : subscribers_) fn(events);
  }
}

}  // namespace giftcard
