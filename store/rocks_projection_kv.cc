#include "store/rocks_projection_kv.h"

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <filesystem>

#include "events/coding.h"
#include "events/envelope.h"
#include "store/keys.h"
#include "store/rocks_util.h"

namespace giftcard {
namespace {

// Projection values carry a CRC-32C trailer over key and value: a damaged
// read model is reported (Corruption), never served as data.
std::string seal_kv(std::string_view full_key, std::string_view value) {
  std::string out;
  out.reserve(value.size() + keys::kProjectionTrailerBytes);
  out.append(value);
  put_be32(out, crc32c(value, crc32c(full_key)));
  return out;
}

// Strips and checks the trailer; *value views into `stored`.
Status open_kv(std::string_view full_key, std::string_view stored, std::string_view* value) {
  if (stored.size() < keys::kProjectionTrailerBytes)
    return Status::Corruption("projection value damaged (too short); rebuild the projections");
  std::string_view v = stored.substr(0, stored.size() - keys::kProjectionTrailerBytes);
  uint32_t want = get_be32(stored.substr(v.size()));
  if (crc32c(v, crc32c(full_key)) != want)
    return Status::Corruption(
        "projection value damaged (checksum mismatch); rebuild the projections");
  *value = v;
  return Status::OK();
}

std::string_view view(const rocksdb::Slice& s) { return {s.data(), s.size()}; }

}  // namespace

std::string RocksProjectionKv::DirOf(const std::string& store_path) {
  return (std::filesystem::path(store_path) / "projections").string();
}

Status RocksProjectionKv::Open(const StoreOptions& o, std::shared_ptr<rocksdb::Cache> cache,
                               std::unique_ptr<RocksProjectionKv>* out) {
  namespace fs = std::filesystem;
  const std::string dir = DirOf(o.path);
  const bool secondary = o.mode == StoreOptions::Mode::secondary;
  rocksdb::Options opts = base_rocks_options(!secondary, o.env, std::move(cache));
  // Its own WAL, never synced: a crash keeps a prefix of the batches written
  // (point-in-time recovery stops at the first torn or damaged record), every
  // batch a consistent step, its checkpoint with the models it folded. (Not
  // disableWAL: a secondary instance — the audit tools beside a live server —
  // sees only what reaches a WAL or a table file.)
  opts.wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;
  opts.write_buffer_size = 32u << 20;
  opts.max_write_buffer_number = 3;
  rocksdb::DB* db = nullptr;
  rocksdb::Status s;
  std::error_code ec;
  if (secondary) {
    if (!fs::exists(fs::path(dir) / "CURRENT", ec)) {
      out->reset(new RocksProjectionKv(nullptr, false));
      return Status::OK();
    }
    std::string sec = (fs::path(o.secondary_path) / "projections").string();
    fs::create_directories(sec, ec);
    opts.max_open_files = -1;  // required by secondary instances
    s = rocksdb::DB::OpenAsSecondary(opts, dir, sec, &db);
  } else {
    fs::create_directories(dir, ec);
    s = rocksdb::DB::Open(opts, dir, &db);
  }
  if (!s.ok()) return from_rocks(s, "opening the projection space at " + dir);
  out->reset(new RocksProjectionKv(db, !secondary));
  return Status::OK();
}

RocksProjectionKv::~RocksProjectionKv() { delete db_; }

Status RocksProjectionKv::KvWrite(const KvBatch& kv) {
  if (!writable_) return Status::InvalidArgument("store is open read-only");
  rocksdb::WriteBatch batch;
  for (const auto& p : kv.delete_prefixes)
    batch.DeleteRange(keys::projection_key(p), keys::prefix_successor(keys::projection_key(p)));
  for (const auto& k : kv.deletes) batch.Delete(keys::projection_key(k));
  // In key order: the memtable's skip list then reuses its last insert
  // position instead of searching from the top for every key. Stable, so a
  // key put twice keeps its last value.
  std::vector<const std::pair<std::string, std::string>*> puts;
  puts.reserve(kv.puts.size());
  for (const auto& p : kv.puts) puts.push_back(&p);
  std::stable_sort(puts.begin(), puts.end(),
                   [](const auto* a, const auto* b) { return a->first < b->first; });
  for (const auto* p : puts) {
    std::string k = keys::projection_key(p->first);
    batch.Put(k, seal_kv(k, p->second));
  }
  // After a failed write nothing more is written until a restart refolds the
  // projections (they report the error meanwhile): RocksDB 7.8 does not stop
  // unsynced writes after a failed WAL append, and the next append to that
  // WAL trips an assertion inside RocksDB.
  std::lock_guard lock(write_mu_);
  if (!failed_.ok()) return failed_;
  Status s = from_rocks(db_->Write(rocksdb::WriteOptions(), &batch), "writing projections");
  if (!s.ok()) failed_ = Status::IOError("the projection space failed a write: " + s.message());
  return s;
}

Status RocksProjectionKv::KvGet(const std::string& key, std::string* value) {
  if (db_ == nullptr) return Status::NotFound("no projection space yet");
  const std::string k = keys::projection_key(key);
  std::string stored;
  Status s = from_rocks(db_->Get(rocksdb::ReadOptions(), k, &stored), "reading projection");
  if (!s.ok()) return s;
  std::string_view v;
  if (Status c = open_kv(k, stored, &v); !c.ok()) return c;
  value->assign(v);
  return Status::OK();
}

Status RocksProjectionKv::KvMultiGet(const std::vector<std::string>& ks,
                                     std::vector<std::optional<std::string>>* values) {
  values->assign(ks.size(), std::nullopt);
  if (db_ == nullptr) return Status::OK();
  std::vector<std::string> full;
  full.reserve(ks.size());
  for (const auto& k : ks) full.push_back(keys::projection_key(k));
  std::vector<rocksdb::Slice> slices(full.begin(), full.end());
  std::vector<std::string> got;
  std::vector<rocksdb::Status> st = db_->MultiGet(rocksdb::ReadOptions(), slices, &got);
  for (size_t i = 0; i < ks.size(); ++i) {
    if (st[i].ok()) {
      std::string_view v;
      if (Status c = open_kv(full[i], got[i], &v); !c.ok()) return c;
      (*values)[i] = std::string(v);
    } else if (!st[i].IsNotFound()) {
      return from_rocks(st[i], "reading projections");
    }
  }
  return Status::OK();
}

Status RocksProjectionKv::KvScan(const std::string& prefix, const std::string& start,
                                 const KvVisitor& fn) {
  if (db_ == nullptr) return Status::OK();
  const std::string full_prefix = keys::projection_key(prefix);
  const std::string upper = keys::prefix_successor(full_prefix);
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro));
  for (it->Seek(std::max(full_prefix, keys::projection_key(start))); it->Valid(); it->Next()) {
    std::string_view full = view(it->key());
    std::string_view v;
    if (Status c = open_kv(full, view(it->value()), &v); !c.ok()) return c;
    if (!fn(full.substr(1), v)) break;
  }
  return from_rocks(it->status(), "scanning projections");
}

Status RocksProjectionKv::CatchUp() {
  if (db_ == nullptr || writable_) return Status::OK();
  return from_rocks(db_->TryCatchUpWithPrimary(), "catching up with the projection space");
}

Status RocksProjectionKv::VerifyChecksums() {
  if (db_ == nullptr) return Status::OK();
  return from_rocks(db_->VerifyChecksum(), "verifying the projection space's checksums");
}

}  // namespace giftcard
