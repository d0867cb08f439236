#include "store/rocks_util.h"

#include <rocksdb/filter_policy.h>
#include <rocksdb/table.h>

namespace giftcard {

Status from_rocks(const rocksdb::Status& s, const std::string& what) {
  if (s.ok()) return Status::OK();
  std::string msg = what + ": " + s.ToString();
  if (s.IsNotFound()) return Status::NotFound(msg);
  if (s.IsCorruption()) return Status::Corruption(msg);
  if (s.IsInvalidArgument()) return Status::InvalidArgument(msg);
  if (s.IsBusy() || s.IsTryAgain()) return Status::Busy(msg);
  return Status::IOError(msg);
}

rocksdb::Options base_rocks_options(bool create_if_missing, rocksdb::Env* env,
                                    std::shared_ptr<rocksdb::Cache> cache) {
  rocksdb::Options opts;
  opts.create_if_missing = create_if_missing;
  if (env != nullptr) opts.env = env;
  opts.paranoid_checks = true;
  opts.max_background_jobs = 2;
  opts.bytes_per_sync = 1u << 20;
  rocksdb::BlockBasedTableOptions table;
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  table.block_cache = std::move(cache);
  // Index and filter blocks stay with their table reader, outside the block
  // cache (RocksDB's default; ~1.25 bytes per key for the filters). In the
  // cache, scans of big events evicted them, and every claim lookup (one per
  // imported code) read a filter block back from its file.
  table.cache_index_and_filter_blocks = false;
  opts.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  return opts;
}

}  // namespace giftcard
