// RocksEventStore: the durable EventStore on RocksDB (see event_store.h for
// the contract, keys.h for the layout). RocksDB headers stay inside store/.
//
// Opened read-write by `serve` (one process at a time: RocksDB's LOCK file),
// or as a secondary instance by the audit tools, which may run beside a live
// server and never modify the store.
#pragma once

#include <memory>
#include <string>

#include "store/event_store.h"

namespace rocksdb {
class Env;
}

namespace giftcard {

struct StoreOptions {
  std::string path;
  enum class Mode { read_write, secondary } mode = Mode::read_write;
  // Default: true for serve. Audit tools never create a store.
  bool create_if_missing = true;
  // Synced WAL write per group commit. Default: true. false exists only as the
  // negative control of the power-loss tests; never turn it off in production.
  bool sync = true;
  // Where a secondary instance keeps its own info log. Default: a temp dir.
  std::string secondary_path;
  // Block cache for reads (the log and the projections share it). Default: 256 MiB.
  size_t block_cache_bytes = 256u << 20;
  // The file system RocksDB goes through. Default (null): the real one. Tests
  // pass a fault-injecting one (tests/reliability/lossy_fs.h); not owned.
  rocksdb::Env* env = nullptr;
};

// Opens the store. On success *out owns it. Errors: NotFound (no store at
// path and !create_if_missing), Corruption (checksums, torn WAL mid-log),
// IOError (locked by another process, permissions).
Status OpenRocksEventStore(const StoreOptions& options, std::unique_ptr<EventStore>* out);

// For secondary instances: catch up with the primary's latest writes
// (= store->CatchUp(); OK for any other store).
Status CatchUpWithPrimary(EventLog* store);

// Full-store integrity check of RocksDB's own block checksums
// (= store->VerifyChecksums(); OK for a store without any).
Status VerifyRocksChecksums(EventLog* store);

}  // namespace giftcard
