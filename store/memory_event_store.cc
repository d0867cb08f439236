#include "store/memory_event_store.h"

#include <map>
#include <shared_mutex>
#include <unordered_map>

#include "store/keys.h"
#include "store/writer.h"

namespace giftcard {
namespace {

class MemoryEventStore final : public EventStore, private WriterBackend {
 public:
  MemoryEventStore() : writer_(std::make_unique<Writer>(static_cast<WriterBackend*>(this), 0, Hash{}, 0)) {}
  ~MemoryEventStore() override { Close(); }

  void Append(AppendRequest req, AppendCallback done) override {
    writer_->Append(std::move(req), std::move(done));
  }

  Status ReadStream(const std::string& stream, int64_t from_version, size_t max,
                    std::vector<StoredEvent>* out) override {
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

  Status ReadAll(int64_t from_position, size_t max, std::vector<StoredEvent>* out) override {
    out->clear();
    std::shared_lock lock(mu_);
    for (size_t p = static_cast<size_t>(std::max<int64_t>(from_position, 1));
         p <= log_.size() && out->size() < max; ++p)
      out->push_back(log_[p - 1]);
    return Status::OK();
  }

  Status StreamVersion(const std::string& stream, int64_t* version) override {
    return LoadHead(stream, version);
  }

  Status GetClaim(const std::string& key, std::string* value) override {
    std::shared_lock lock(mu_);
    auto it = claims_.find(key);
    if (it == claims_.end()) return Status::NotFound("no claim " + key);
    *value = it->second;
    return Status::OK();
  }

  Status SaveSnapshot(const std::string& stream, const Snapshot& snap) override {
    std::unique_lock lock(mu_);
    snapshots_[stream] = snap;
    return Status::OK();
  }

  Status LoadSnapshot(const std::string& stream, Snapshot* snap) override {
    std::shared_lock lock(mu_);
    auto it = snapshots_.find(stream);
    if (it == snapshots_.end()) return Status::NotFound("no snapshot");
    *snap = it->second;
    return Status::OK();
  }

  Status KvWrite(const KvBatch& kv) override {
    std::unique_lock lock(mu_);
    for (const auto& p : kv.delete_prefixes)
      kv_.erase(kv_.lower_bound(p), p.empty() ? kv_.end() : kv_.lower_bound(keys::prefix_successor(p)));
    for (const auto& k : kv.deletes) kv_.erase(k);
    for (const auto& [k, v] : kv.puts) kv_[k] = v;
    return Status::OK();
  }

  Status KvGet(const std::string& key, std::string* value) override {
    std::shared_lock lock(mu_);
    auto it = kv_.find(key);
    if (it == kv_.end()) return Status::NotFound("no projection key");
    *value = it->second;
    return Status::OK();
  }

  Status KvMultiGet(const std::vector<std::string>& ks,
                    std::vector<std::optional<std::string>>* values) override {
    std::shared_lock lock(mu_);
    values->assign(ks.size(), std::nullopt);
    for (size_t i = 0; i < ks.size(); ++i)
      if (auto it = kv_.find(ks[i]); it != kv_.end()) (*values)[i] = it->second;
    return Status::OK();
  }

  Status KvScan(const std::string& prefix, const std::string& start,
                const KvVisitor& fn) override {
    std::shared_lock lock(mu_);
    for (auto it = kv_.lower_bound(std::max(prefix, start));
         it != kv_.end() && it->first.starts_with(prefix); ++it)
      if (!fn(it->first, it->second)) break;
    return Status::OK();
  }

  int64_t LastPosition() const override { return writer_->LastPosition(); }
  uint64_t Subscribe(Subscriber fn) override { return writer_->Subscribe(std::move(fn)); }
  void Unsubscribe(uint64_t id) override { writer_->Unsubscribe(id); }
  Status Health() const override { return writer_->Health(); }
  StoreStats Stats() const override { return writer_->Stats(); }
  void Close() override { writer_->Close(); }
  void TEST_FailNextCommits(int n) override { writer_->TEST_FailNextCommits(n); }

 private:
  Status LoadHead(const std::string& stream, int64_t* version) override {
    std::shared_lock lock(mu_);
    auto it = streams_.find(stream);
    *version = it == streams_.end() ? 0 : static_cast<int64_t>(it->second.size());
    return Status::OK();
  }

  Status ClaimExists(const std::string& key, bool* exists) override {
    std::shared_lock lock(mu_);
    *exists = claims_.count(key) > 0;
    return Status::OK();
  }

  Status Commit(const std::vector<StoredEvent>& events,
                const std::vector<std::pair<std::string, std::string>>& claims,
                const std::vector<std::pair<std::string, Snapshot>>& snapshots) override {
    std::unique_lock lock(mu_);
    for (const auto& [stream, snap] : snapshots) snapshots_[stream] = snap;
    for (const auto& e : events) {
      log_.push_back(e);
      streams_[e.stream].push_back(e.position);
    }
    for (const auto& [k, v] : claims) claims_[k] = v;
    return Status::OK();
  }

  mutable std::shared_mutex mu_;
  std::vector<StoredEvent> log_;                                       // GUARDED_BY(mu_)
  std::unordered_map<std::string, std::vector<int64_t>> streams_;      // GUARDED_BY(mu_)
  std::unordered_map<std::string, std::string> claims_;                // GUARDED_BY(mu_)
  std::unordered_map<std::string, Snapshot> snapshots_;                // GUARDED_BY(mu_)
  std::map<std::string, std::string> kv_;                              // GUARDED_BY(mu_)
  std::unique_ptr<Writer> writer_;  // last: its thread stops before the maps go
};

}  // namespace

std::unique_ptr<EventStore> NewMemoryEventStore() { return std::make_unique<MemoryEventStore>(); }

}  // namespace giftcard
