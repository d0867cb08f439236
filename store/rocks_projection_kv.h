// RocksProjectionKv: the projection space of a RocksDB store, in its own
// RocksDB instance at <store>/projections (internal to store/; opened by
// OpenRocksEventStore, reached through EventStore's ProjectionKv side).
//
// Why a database of its own: the log's group commit is one synced write at a
// time; a projection batch in the same database queued in that write path and
// made it longer. Here projection batches go through their own write path and
// their own WAL, never synced: a crash keeps a prefix of the batches
// (point-in-time recovery), each checkpoint with the models it folded, and
// nothing the projections folded is newer than a synced append. What a crash
// loses is re-derived from the log at the next start.
#pragma once

#include <rocksdb/options.h>

#include <memory>
#include <mutex>
#include <string>

#include "store/event_store.h"
#include "store/rocks_event_store.h"

namespace rocksdb {
class Cache;
class DB;
}  // namespace rocksdb

namespace giftcard {

class RocksProjectionKv final : public ProjectionKv {
 public:
  // The directory of the projection space inside a store's directory.
  static std::string DirOf(const std::string& store_path);
  // Where KvIngest writes its table files before they are ingested. Files
  // left there by a crash are never part of the space; Open removes them.
  static std::string IngestDirOf(const std::string& store_path);

  // read_write: opens or creates <store>/projections. secondary: follows it
  // read-only, or serves an empty space when the store has none yet.
  static Status Open(const StoreOptions& options, std::shared_ptr<rocksdb::Cache> cache,
                     std::unique_ptr<RocksProjectionKv>* out);
  ~RocksProjectionKv() override;

  Status KvWrite(const KvBatch& batch) override;
  Status KvGet(const std::string& key, std::string* value) override;
  Status KvMultiGet(const std::vector<std::string>& keys,
                    std::vector<std::optional<std::string>>* values) override;
  Status KvScan(const std::string& prefix, const std::string& start, const KvVisitor& fn) override;
  // Each run becomes a sorted table file (rocksdb::SstFileWriter, values
  // sealed as KvWrite seals them) in IngestDirOf(), written by up to two
  // threads; then one IngestExternalFile moves them all into the space.
  Status KvIngest(const std::vector<KvRun>& runs) override;

  Status CatchUp();          // secondary: reads what the primary wrote since
  Status VerifyChecksums();  // RocksDB's block checksums of the space

 private:
  RocksProjectionKv(rocksdb::DB* db, bool writable) : db_(db), writable_(writable) {}
  Status WriteTable(const KvRun& run, const std::string& file, bool* written);
  rocksdb::DB* db_;  // null: a secondary of a store without a projection space
  bool writable_;
  std::string ingest_dir_;                  // IngestDirOf(the store)
  std::unique_ptr<rocksdb::Options> opts_;  // the space's, for its table files
  std::mutex write_mu_;
  Status failed_;  // GUARDED_BY(write_mu_): sticky after a failed write
};

}  // namespace giftcard
