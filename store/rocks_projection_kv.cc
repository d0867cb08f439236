#include "store/rocks_projection_kv.h"

#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/sst_file_writer.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <thread>

#include "events/coding.h"
#include "events/envelope.h"
#include "store/keys.h"
#include "store/rocks_util.h"

namespace giftcard {
namespace {

// Projection values carry a CRC-32C trailer over key and value: a damaged
// read model is reported (Corruption), never served as data.
// *out := value and trailer (its buffer reused).
void seal_into(std::string* out, std::string_view full_key, std::string_view value) {
  out->reserve(value.size() + keys::kProjectionTrailerBytes);
  out->assign(value);
  put_be32(*out, crc32c(value, crc32c(full_key)));
}
std::string seal_kv(std::string_view full_key, std::string_view value) {
  std::string out;
  seal_into(&out, full_key, value);
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

std::string RocksProjectionKv::IngestDirOf(const std::string& store_path) {
  return (std::filesystem::path(DirOf(store_path)) / "ingest.tmp").string();
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
  std::unique_ptr<RocksProjectionKv> kv(new RocksProjectionKv(db, !secondary));
  if (!secondary) {
    // Table files of an ingest a crash interrupted: never part of the space
    // (an ingest adds all its files or none), so they go.
    kv->ingest_dir_ = IngestDirOf(o.path);
    fs::remove_all(kv->ingest_dir_, ec);
    kv->opts_ = std::make_unique<rocksdb::Options>(opts);
    // Written once and read in place; compaction compresses them later.
    kv->opts_->compression = rocksdb::kNoCompression;
  }
  *out = std::move(kv);
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

Status RocksProjectionKv::WriteTable(const KvRun& run, const std::string& file, bool* written) {
  *written = false;
  rocksdb::SstFileWriter w(rocksdb::EnvOptions(*opts_), *opts_);
  if (Status s = from_rocks(w.Open(file), "creating " + file); !s.ok()) return s;
  std::string full, sealed;
  uint64_t n = 0;
  Status s = run([&](std::string_view k, std::string_view v) {
    full.assign(1, keys::kProjection);
    full.append(k);
    seal_into(&sealed, full, v);
    ++n;
    return from_rocks(w.Put(full, sealed), "writing " + file);
  });
  if (!s.ok() || n == 0) return s;  // (an empty table cannot be finished; it is not ingested)
  *written = true;
  return from_rocks(w.Finish(), "finishing " + file);
}

Status RocksProjectionKv::KvIngest(const std::vector<KvRun>& runs) {
  namespace fs = std::filesystem;
  if (!writable_) return Status::InvalidArgument("store is open read-only");
  {
    std::lock_guard lock(write_mu_);
    if (!failed_.ok()) return failed_;
  }
  static std::atomic<uint64_t> ingests{0};
  const std::string stem =
      (fs::path(ingest_dir_) / ("ingest-" + std::to_string(++ingests) + "-")).string();
  std::error_code ec;
  fs::create_directories(ingest_dir_, ec);
  if (ec) return Status::IOError("creating " + ingest_dir_ + ": " + ec.message());
  // Runs are taken in order by up to two threads (this one and one more):
  // the rebuild puts its heaviest run first.
  std::vector<std::string> files(runs.size());
  std::vector<Status> status(runs.size());
  std::vector<char> written(runs.size(), 0);
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i; (i = next.fetch_add(1)) < runs.size();) {
      files[i] = stem + std::to_string(i) + ".sst";
      bool w = false;
      status[i] = WriteTable(runs[i], files[i], &w);
      written[i] = w;
    }
  };
  {
    std::jthread helper;
    if (runs.size() > 1 && std::thread::hardware_concurrency() > 1) helper = std::jthread(work);
    work();
  }
  Status s;
  std::vector<std::string> ingest;
  for (size_t i = 0; i < runs.size(); ++i) {
    if (s.ok() && !status[i].ok()) s = status[i];
    if (written[i]) ingest.push_back(files[i]);
  }
  if (s.ok() && !ingest.empty()) {
    rocksdb::IngestExternalFileOptions io;
    io.move_files = true;  // hard links: no copy
    s = from_rocks(db_->IngestExternalFile(ingest, io), "ingesting projection tables");
  }
  // Ingested files were moved; what is left (a failure) is junk.
  for (const auto& f : files)
    if (!f.empty()) fs::remove(f, ec);
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
