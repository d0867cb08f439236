// MemoryLog: a committed log, its stream index, claims, snapshots and the
// projection key space, in memory. The backend of MemoryEventStore (tests and
// tools) and of the simulation's SimStore: both commit through a WriterCore
// into one of these, so neither keeps a copy of the other's maps.
//
// Thread-safe: reads share a lock, Commit and the writes take it alone.
#pragma once

#include <map>
#include <optional>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "store/event_store.h"
#include "store/writer_core.h"

namespace giftcard {

class MemoryLog final : public WriterBackend {
 public:
  // --- WriterBackend: what admission reads, and the atomic commit ---------
  Status LoadHead(const std::string& stream, int64_t* version) override;
  Status ClaimExists(const std::string& key, bool* exists) override;
  Status Commit(const std::vector<StoredEvent>& events,
                const std::vector<std::pair<std::string, std::string>>& claims,
                const std::vector<std::pair<std::string, Snapshot>>& snapshots) override;

  // --- EventLog reads ------------------------------------------------------
  Status ReadStream(const std::string& stream, int64_t from_version, size_t max,
                    std::vector<StoredEvent>* out) const;
  Status ReadAll(int64_t from_position, size_t max, std::vector<StoredEvent>* out) const;
  Status GetClaim(const std::string& key, std::string* value) const;
  Status LoadSnapshot(const std::string& stream, Snapshot* snap) const;
  void SaveSnapshot(const std::string& stream, const Snapshot& snap);
  int64_t LastPosition() const;
  // The committed tail: position, hash and commit time of the last event
  // (0, zero hash, 0 when empty) — where a WriterCore over this log starts.
  void Tail(int64_t* position, Hash* hash, Micros* recorded_at) const;

  // --- ProjectionKv ----------------------------------------------------------
  Status KvWrite(const KvBatch& batch);
  Status KvGet(const std::string& key, std::string* value) const;
  Status KvMultiGet(const std::vector<std::string>& keys,
                    std::vector<std::optional<std::string>>* values) const;
  Status KvScan(const std::string& prefix, const std::string& start, const KvVisitor& fn) const;

 private:
  mutable std::shared_mutex mu_;
  std::vector<StoredEvent> log_;                                   // GUARDED_BY(mu_)
  std::unordered_map<std::string, std::vector<int64_t>> streams_;  // GUARDED_BY(mu_)
  std::unordered_map<std::string, std::string> claims_;            // GUARDED_BY(mu_)
  std::unordered_map<std::string, Snapshot> snapshots_;            // GUARDED_BY(mu_)
  std::map<std::string, std::string> kv_;                          // GUARDED_BY(mu_)
};

}  // namespace giftcard
