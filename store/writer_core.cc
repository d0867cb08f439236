#include "store/writer_core.h"

#include <unordered_set>

#include "events/check.h"
#include "store/keys.h"

namespace giftcard {
namespace {

constexpr size_t kMaxHeadCache = 1 << 20;  // bounded: a million wallets stay cheap

size_t request_bytes(const AppendRequest& req) {
  size_t n = 0;
  for (const auto& e : req.events) n += e.stream.size() + e.payload.size();
  for (const auto& c : req.claims) n += c.key.size() + c.value.size();
  return n;
}

Status bad_stream(const PendingEvent& e) {
  if (e.stream.empty() || e.stream.size() > kMaxStreamName ||
      e.stream.find('\0') != std::string::npos)
    return Status::InvalidArgument("bad stream name");
  if (e.payload.size() > kMaxPayload) return Status::InvalidArgument("payload too large");
  return Status::OK();
}

}  // namespace

WriteRequest::WriteRequest(AppendRequest r, AppendCallback d)
    : req(std::move(r)), done(std::move(d)), bytes(request_bytes(req)) {}

WriterCore::WriterCore(WriterBackend* backend, int64_t last_position, const Hash& last_hash,
                       Micros last_recorded_at, Clock clock)
    : backend_(backend),
      clock_(std::move(clock)),
      position_(last_position),
      hash_(last_hash),
      recorded_at_(last_recorded_at),
      start_position_(last_position),
      start_hash_(last_hash) {}

size_t WriterCore::GroupSize(const std::deque<WriteRequest>& queue) {
  if (queue.empty()) return 0;
  size_t n = 1, bytes = queue.front().bytes;
  while (n < queue.size() && n < kMaxGroupRequests && bytes + queue[n].bytes <= kMaxGroupBytes)
    bytes += queue[n++].bytes;
  return n;
}

Status WriterCore::Head(const std::string& stream, int64_t* version) {
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

// Stream names, sizes and every head the request touches (resolved now, so
// that Assign cannot fail half-way), then its expected versions.
Status WriterCore::Validate(WriteRequest& p, std::unordered_map<std::string_view, int64_t>* heads) {
  const AppendRequest& req = p.req;
  if (req.events.empty()) return Status::InvalidArgument("append without events");
  for (const auto& e : req.events) {
    if (Status s = bad_stream(e); !s.ok()) return s;
    int64_t head = 0;
    if (Status s = Head(e.stream, &head); !s.ok()) return s;
    heads->emplace(e.stream, head);
  }
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
  return Status::OK();
}

// Every conflicting claim is reported, so a caller can name them all.
Status WriterCore::CheckClaims(WriteRequest& p) {
  std::unordered_set<std::string_view> seen, reported;
  for (const auto& c : p.req.claims) {
    bool exists = false;
    if (!seen.insert(c.key).second || tentative_claims_.count(c.key)) {
      exists = true;  // claimed twice in this request, or earlier in this group
    } else if (Status s = backend_->ClaimExists(c.key, &exists); !s.ok()) {
      return s;
    }
    if (exists && reported.insert(c.key).second) p.result.conflicts.push_back(c.key);
  }
  if (!p.result.conflicts.empty())
    return Status::Conflict(std::to_string(p.result.conflicts.size()) + " claim(s) exist");
  return Status::OK();
}

// Admitted: positions, versions, the hash chain, the claims. Infallible.
void WriterCore::Assign(WriteRequest& p, const std::unordered_map<std::string_view, int64_t>& heads,
                        WriteBatch& batch) {
  recorded_at_ = std::max<Micros>(recorded_at_, clock_());  // never goes backwards
  p.result.first_position = position_ + 1;
  p.result.recorded_at = recorded_at_;
  for (auto& pe : p.req.events) {
    auto t = tentative_heads_.find(pe.stream);
    const int64_t head = t != tentative_heads_.end() ? t->second : heads.at(pe.stream);
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
    batch.events.push_back(std::move(e));
  }
  for (const auto& c : p.req.claims) {
    std::string value = c.value;
    if (c.append_position) keys::put_be64(value, static_cast<uint64_t>(p.result.first_position));
    tentative_claims_.emplace(c.key, true);
    batch.claims.emplace_back(c.key, std::move(value));
  }
}

Status WriterCore::AdmitOne(WriteRequest& p, WriteBatch& batch) {
  std::unordered_map<std::string_view, int64_t> heads;
  if (Status s = Validate(p, &heads); !s.ok()) return s;
  if (Status s = CheckClaims(p); !s.ok()) return s;
  const size_t first_event = batch.events.size(), first_claim = batch.claims.size();
  const Hash hash_before = hash_;
  Assign(p, heads, batch);
  if (bug_ != Bug::none && Sabotage(batch, first_event)) {
    if (bug_ == Bug::drop_acked) {  // answered OK with these positions, never written
      for (size_t i = first_event; i < batch.events.size(); ++i)
        tentative_heads_[batch.events[i].stream] = batch.events[i].version - 1;
      for (size_t i = first_claim; i < batch.claims.size(); ++i)
        tentative_claims_.erase(batch.claims[i].first);
      position_ -= static_cast<int64_t>(batch.events.size() - first_event);
      hash_ = hash_before;
      batch.events.resize(first_event);
      batch.claims.resize(first_claim);
    }
  }
  return Status::OK();
}

// The negative controls. True if the bug fires for this request.
bool WriterCore::Sabotage(WriteBatch& batch, size_t first) {
  const size_t n = batch.events.size() - first;
  const bool purchase = n == 2 && batch.events[first].type == EventType::CodeAssigned;
  if (!purchase || bug_fired_ > 0) return false;
  ++bug_fired_;
  group_fired_ = true;
  if (bug_ == Bug::double_commit) {  // written again, with positions of its own
    for (size_t i = first; i < first + n; ++i) {
      StoredEvent again = batch.events[i];
      again.position = ++position_;
      again.version = tentative_heads_[again.stream] + 1;
      again.prev_hash = hash_;
      again.hash = compute_hash(again);
      hash_ = again.hash;
      tentative_heads_[again.stream] = again.version;
      batch.events.push_back(std::move(again));
    }
  }
  return true;
}

WriteBatch WriterCore::Admit(std::vector<WriteRequest>& group, Status* sticky,
                             std::vector<std::pair<std::string, Snapshot>> snapshots) {
  WriteBatch batch;
  batch.snapshots = std::move(snapshots);
  tentative_heads_.clear();
  tentative_claims_.clear();
  group_fired_ = false;
  GIFTCARD_CHECK(position_ == start_position_ && hash_ == start_hash_);
  for (auto& p : group) {
    if (!sticky->ok()) {
      p.status = *sticky;
      continue;
    }
    p.status = AdmitOne(p, batch);  // changes nothing unless it succeeds
    if (p.status.ok()) {
      ++batch.admitted;
    } else {
      ++batch.rejected;
      if (!p.status.IsConflict() && !p.status.IsInvalidArgument())
        *sticky = p.status;  // a read failed
    }
  }
  CheckBatch(batch);
  return batch;
}

// Paired with Assign: what goes to the backend continues the committed log
// exactly — positions one by one from its tail, each event chained to the
// previous one, the group's last hash the core's.
void WriterCore::CheckBatch(const WriteBatch& batch) const {
  int64_t position = start_position_;
  const Hash* prev = &start_hash_;
  for (const auto& e : batch.events) {
    GIFTCARD_CHECK(e.position == position + 1);
    GIFTCARD_CHECK(e.prev_hash == *prev);
    GIFTCARD_CHECK(e.version >= 1);
    position = e.position;
    prev = &e.hash;
  }
  GIFTCARD_CHECK(position == position_ && *prev == hash_);
}

void WriterCore::Finish(std::vector<WriteRequest>& group, const WriteBatch& batch,
                        const Status& commit, const Status& failure) {
  (void)batch;
  if (commit.ok()) {
    for (auto& [stream, v] : tentative_heads_) {
      if (heads_.size() >= kMaxHeadCache) heads_.clear();
      heads_[stream] = v;
    }
    GIFTCARD_CHECK(position_ >= start_position_);  // positions only increase
    start_position_ = position_;
    start_hash_ = hash_;
  } else {
    position_ = start_position_;
    hash_ = start_hash_;
    for (auto& p : group)
      if (p.status.ok()) p.status = failure;
  }
  tentative_heads_.clear();
  tentative_claims_.clear();
}

}  // namespace giftcard
