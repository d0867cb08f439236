// Internal to store/: what the RocksDB log and the RocksDB projection space
// share — the one conversion of rocksdb::Status into ours, and the options
// both databases start from.
#pragma once

#include <rocksdb/cache.h>
#include <rocksdb/options.h>
#include <rocksdb/status.h>

#include <memory>
#include <string>

#include "events/status.h"

namespace giftcard {

// The one place rocksdb::Status becomes ours.
Status from_rocks(const rocksdb::Status& s, const std::string& what);

// Options common to both databases of a store: paranoid checks, a bloom
// filter per table, `cache` for blocks, `env` (null: the real file system).
rocksdb::Options base_rocks_options(bool create_if_missing, rocksdb::Env* env,
                                    std::shared_ptr<rocksdb::Cache> cache);

}  // namespace giftcard
