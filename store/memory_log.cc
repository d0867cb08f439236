#include "store/memory_log.h"

#include <algorithm>
#include <mutex>

#include "store/keys.h"

namespace giftcard {

Status MemoryLog::LoadHead(const std::string& stream, int64_t* version) {
  std::shared_lock lock(mu_);
  auto it = streams_.find(stream);
  *version = it == streams_.end() ? 0 : static_cast<int64_t>(it->second.size());
  return Status::OK();
}

Status MemoryLog::ClaimExists(const std::string& key, bool* exists) {
  std::shared_lock lock(mu_);
  *exists = claims_.count(key) > 0;
  return Status::OK();
}

Status MemoryLog::Commit(const std::vector<StoredEvent>& events,
                         const std::vector<std::pair<std::string, std::string>>& claims,
                         const std::vector<std::pair<std::string, Snapshot>>& snapshots) {
  std::unique_lock lock(mu_);
  for (const auto& [stream, snap] : snapshots) snapshots_[stream] = snap;
  for (const auto& e : events) {
    log_.push_back(e);
    streams_[e.stream].push_back(e.position);
  }
  for (const auto& [k, v] : claims) claims_[k] = v;
  return Status::OK();
}

Status MemoryLog::ReadStream(const std::string& stream, int64_t from_version, size_t max,
                             std::vector<StoredEvent>* out) const {
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

Status MemoryLog::ReadAll(int64_t from_position, size_t max, std::vector<StoredEvent>* out) const {
  out->clear();
  std::shared_lock lock(mu_);
  for (size_t p = static_cast<size_t>(std::max<int64_t>(from_position, 1));
       p <= log_.size() && out->size() < max; ++p)
    out->push_back(log_[p - 1]);
  return Status::OK();
}

Status MemoryLog::GetClaim(const std::string& key, std::string* value) const {
  std::shared_lock lock(mu_);
  auto it = claims_.find(key);
  if (it == claims_.end()) return Status::NotFound("no claim " + key);
  *value = it->second;
  return Status::OK();
}

Status MemoryLog::LoadSnapshot(const std::string& stream, Snapshot* snap) const {
  std::shared_lock lock(mu_);
  auto it = snapshots_.find(stream);
  if (it == snapshots_.end()) return Status::NotFound("no snapshot");
  *snap = it->second;
  return Status::OK();
}

void MemoryLog::SaveSnapshot(const std::string& stream, const Snapshot& snap) {
  std::unique_lock lock(mu_);
  snapshots_[stream] = snap;
}

int64_t MemoryLog::LastPosition() const {
  std::shared_lock lock(mu_);
  return static_cast<int64_t>(log_.size());
}

void MemoryLog::Tail(int64_t* position, Hash* hash, Micros* recorded_at) const {
  std::shared_lock lock(mu_);
  *position = 0;
  *hash = Hash{};
  *recorded_at = 0;
  if (log_.empty()) return;
  *position = log_.back().position;
  *hash = log_.back().hash;
  *recorded_at = log_.back().recorded_at;
}

Status MemoryLog::KvWrite(const KvBatch& kv) {
  std::unique_lock lock(mu_);
  for (const auto& p : kv.delete_prefixes)
    kv_.erase(kv_.lower_bound(p),
              p.empty() ? kv_.end() : kv_.lower_bound(keys::prefix_successor(p)));
  for (const auto& k : kv.deletes) kv_.erase(k);
  for (const auto& [k, v] : kv.puts) kv_[k] = v;
  return Status::OK();
}

Status MemoryLog::KvGet(const std::string& key, std::string* value) const {
  std::shared_lock lock(mu_);
  auto it = kv_.find(key);
  if (it == kv_.end()) return Status::NotFound("no projection key");
  *value = it->second;
  return Status::OK();
}

Status MemoryLog::KvMultiGet(const std::vector<std::string>& ks,
                             std::vector<std::optional<std::string>>* values) const {
  std::shared_lock lock(mu_);
  values->assign(ks.size(), std::nullopt);
  for (size_t i = 0; i < ks.size(); ++i)
    if (auto it = kv_.find(ks[i]); it != kv_.end()) (*values)[i] = it->second;
  return Status::OK();
}

Status MemoryLog::KvScan(const std::string& prefix, const std::string& start,
                         const KvVisitor& fn) const {
  std::shared_lock lock(mu_);
  for (auto it = kv_.lower_bound(std::max(prefix, start));
       it != kv_.end() && it->first.starts_with(prefix); ++it)
    if (!fn(it->first, it->second)) break;
  return Status::OK();
}

}  // namespace giftcard
