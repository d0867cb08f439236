#include "store/rocks_event_store.h"

#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/options.h>

#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>
#include <algorithm>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "events/coding.h"
#include "events/envelope.h"
#include "store/crash_point.h"
#include "store/keys.h"
#include "store/writer.h"

namespace giftcard {
namespace {

constexpr std::string_view kFormatName = "format";
constexpr std::string_view kFormatValue = "giftcard-log-1";

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

// The one place rocksdb::Status becomes ours.
Status from_rocks(const rocksdb::Status& s, const std::string& what) {
  if (s.ok()) return Status::OK();
  std::string msg = what + ": " + s.ToString();
  if (s.IsNotFound()) return Status::NotFound(msg);
  if (s.IsCorruption()) return Status::Corruption(msg);
  if (s.IsInvalidArgument()) return Status::InvalidArgument(msg);
  if (s.IsBusy() || s.IsTryAgain()) return Status::Busy(msg);
  return Status::IOError(msg);
}

class RocksEventStore final : public EventStore, private WriterBackend {
 public:
  RocksEventStore(rocksdb::DB* db, const StoreOptions& opts) : db_(db), opts_(opts) {
    write_opts_.sync = opts.sync;
  }
  ~RocksEventStore() override {
    Close();
    delete db_;
  }

  Status Init() {
    if (opts_.mode == StoreOptions::Mode::read_write) {
      std::string fmt;
      auto s = db_->Get(rocksdb::ReadOptions(), keys::meta_key(kFormatName), &fmt);
      if (s.IsNotFound()) {
        rocksdb::WriteOptions wo;
        wo.sync = true;
        s = db_->Put(wo, keys::meta_key(kFormatName), std::string(kFormatValue));
        if (!s.ok()) return from_rocks(s, "writing format marker");
      } else if (!s.ok()) {
        return from_rocks(s, "reading format marker");
      } else if (fmt != kFormatValue) {
        return Status::Corruption("not a giftcard store (format '" + fmt + "')");
      }
    }
    StoredEvent last;
    bool any = false;
    if (Status s = ReadLast(&last, &any); !s.ok()) return s;
    if (opts_.mode == StoreOptions::Mode::read_write) {
      writer_ = std::make_unique<Writer>(static_cast<WriterBackend*>(this), any ? last.position : 0,
                                         any ? last.hash : Hash{}, any ? last.recorded_at : 0);
    } else {
      secondary_last_ = any ? last.position : 0;
    }
    return Status::OK();
  }

  // EventStore
  void Append(AppendRequest req, AppendCallback done) override {
    if (!writer_) {
      done(Status::InvalidArgument("store is open read-only"), AppendResult{});
      return;
    }
    writer_->Append(std::move(req), std::move(done));
  }

  Status ReadStream(const std::string& stream, int64_t from_version, size_t max,
                    std::vector<StoredEvent>* out) override {
    out->clear();
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
    const std::string prefix = keys::stream_prefix(stream);
    std::vector<std::string> event_keys;
    for (it->Seek(keys::stream_key(stream, std::max<int64_t>(from_version, 1)));
         it->Valid() && event_keys.size() < max && it->key().starts_with(prefix); it->Next()) {
      if (it->value().size() != keys::kStreamIndexValueBytes)
        return Status::Corruption("bad stream index entry");
      event_keys.push_back(keys::event_key(static_cast<int64_t>(
          get_be64(std::string_view(it->value().data(), it->value().size())))));
    }
    if (!it->status().ok()) return from_rocks(it->status(), "reading stream " + stream);
    // One batched lookup for the whole page (recovery reads long streams).
    std::vector<rocksdb::Slice> slices(event_keys.begin(), event_keys.end());
    std::vector<std::string> values;
    std::vector<rocksdb::Status> statuses = db_->MultiGet(rocksdb::ReadOptions(), slices, &values);
    out->reserve(event_keys.size());
    for (size_t i = 0; i < event_keys.size(); ++i) {
      const auto& s = statuses[i];
      if (!s.ok())
        return s.IsNotFound() ? Status::Corruption("stream index points at a missing event")
                              : from_rocks(s, "reading event");
      StoredEvent e;
      if (Status d = Decode(event_keys[i], values[i], &e); !d.ok()) return d;
      if (e.stream != stream) return Status::Corruption("stream index points at another stream");
      out->push_back(std::move(e));
    }
    return Status::OK();
  }

  Status ReadAll(int64_t from_position, size_t max, std::vector<StoredEvent>* out) override {
    // The events already in *out are overwritten in place: a caller that
    // passes the same vector page after page reuses its strings' buffers.
    size_t n = 0;
    rocksdb::ReadOptions ro;
    // Readahead pays for a scan, not for the projection driver's one-event
    // peeks: 2 MiB read and decompressed per peek made a server whose log had
    // left the memtable 10x slower.
    if (max >= 256) ro.readahead_size = 2 << 20;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro));
    for (it->Seek(keys::event_key(std::max<int64_t>(from_position, 1)));
         it->Valid() && n < max && it->key()[0] == keys::kEvent; it->Next(), ++n) {
      if (n == out->size()) out->emplace_back();
      if (Status d = Decode(std::string_view(it->key().data(), it->key().size()),
                            std::string_view(it->value().data(), it->value().size()), &(*out)[n]);
          !d.ok()) {
        out->resize(n);
        return d;
      }
      // Paired with the writer core's check before the write: what a scan
      // reads back is gap-free and chained, event to event (the CRC covers
      // each record; this covers their order). verify also recomputes hashes.
      if (n > 0) {
        const StoredEvent& prev = (*out)[n - 1];
        const StoredEvent& e = (*out)[n];
        if (e.position != prev.position + 1 || e.prev_hash != prev.hash) {
          out->resize(n);
          return Status::Corruption("the log's chain breaks at position " +
                                    std::to_string(prev.position + 1));
        }
      }
    }
    out->resize(n);
    return from_rocks(it->status(), "scanning events");
  }

  Status StreamVersion(const std::string& stream, int64_t* version) override {
    return LoadHead(stream, version);
  }

  Status GetClaim(const std::string& key, std::string* value) override {
    return from_rocks(db_->Get(rocksdb::ReadOptions(), keys::claim_key(key), value),
                      "reading claim");
  }

  Status SaveSnapshot(const std::string& stream, const Snapshot& snap) override {
    if (!writer_) return Status::InvalidArgument("store is open read-only");
    writer_->SaveSnapshot(stream, snap);  // committed with the writer's next batch
    return Status::OK();
  }

  Status LoadSnapshot(const std::string& stream, Snapshot* snap) override {
    if (writer_ && writer_->PendingSnapshot(stream, snap)) return Status::OK();
    std::string v;
    auto s = db_->Get(rocksdb::ReadOptions(), keys::snapshot_key(stream), &v);
    if (!s.ok()) return from_rocks(s, "loading snapshot");
    if (v.size() < keys::kSnapshotOverheadBytes)
      return Status::NotFound("snapshot damaged (short)");
    const std::string_view sealed = std::string_view(v).substr(0, v.size() - kCrc32cBytes);
    if (crc32c(sealed) != get_be32(std::string_view(v).substr(sealed.size())))
      return Status::NotFound("snapshot damaged (checksum)");
    snap->version = static_cast<int64_t>(get_be64(v));
    snap->data = v.substr(keys::kSnapshotHeaderBytes, v.size() - keys::kSnapshotOverheadBytes);
    return Status::OK();
  }

  int64_t LastPosition() const override {
    return writer_ ? writer_->LastPosition() : secondary_last_.load();
  }
  uint64_t Subscribe(Subscriber fn) override {
    return writer_ ? writer_->Subscribe(std::move(fn)) : 0;
  }
  void Unsubscribe(uint64_t id) override {
    if (writer_) writer_->Unsubscribe(id);
  }
  Status Health() const override { return writer_ ? writer_->Health() : Status::OK(); }
  StoreStats Stats() const override { return writer_ ? writer_->Stats() : StoreStats{}; }
  void Close() override {
    if (writer_) writer_->Close();
  }

  Status KvWrite(const KvBatch& kv) override {
    if (!writer_) return Status::InvalidArgument("store is open read-only");
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
    return from_rocks(db_->Write(rocksdb::WriteOptions(), &batch), "writing projections");
  }

  Status KvGet(const std::string& key, std::string* value) override {
    const std::string k = keys::projection_key(key);
    std::string stored;
    Status s = from_rocks(db_->Get(rocksdb::ReadOptions(), k, &stored), "reading projection");
    if (!s.ok()) return s;
    std::string_view v;
    if (Status c = open_kv(k, stored, &v); !c.ok()) return c;
    value->assign(v);
    return Status::OK();
  }

  Status KvMultiGet(const std::vector<std::string>& ks,
                    std::vector<std::optional<std::string>>* values) override {
    std::vector<std::string> full;
    full.reserve(ks.size());
    for (const auto& k : ks) full.push_back(keys::projection_key(k));
    std::vector<rocksdb::Slice> slices(full.begin(), full.end());
    std::vector<std::string> got;
    std::vector<rocksdb::Status> st = db_->MultiGet(rocksdb::ReadOptions(), slices, &got);
    values->assign(ks.size(), std::nullopt);
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

  Status KvScan(const std::string& prefix, const std::string& start, const KvVisitor& fn) override {
    const std::string full_prefix = keys::projection_key(prefix);
    const std::string upper = keys::prefix_successor(full_prefix);
    rocksdb::Slice upper_slice(upper);
    rocksdb::ReadOptions ro;
    ro.iterate_upper_bound = &upper_slice;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro));
    for (it->Seek(std::max(full_prefix, keys::projection_key(start))); it->Valid(); it->Next()) {
      std::string_view full(it->key().data(), it->key().size());
      std::string_view v;
      if (Status c = open_kv(full, std::string_view(it->value().data(), it->value().size()), &v);
          !c.ok())
        return c;
      if (!fn(full.substr(1), v)) break;
    }
    return from_rocks(it->status(), "scanning projections");
  }

  Status CatchUp() override {
    if (opts_.mode != StoreOptions::Mode::secondary) return Status::OK();
    auto s = db_->TryCatchUpWithPrimary();
    if (!s.ok()) return from_rocks(s, "catching up with primary");
    StoredEvent last;
    bool any = false;
    if (Status r = ReadLast(&last, &any); !r.ok()) return r;
    secondary_last_ = any ? last.position : 0;
    return Status::OK();
  }

  Status VerifyChecksums() override {
    return from_rocks(db_->VerifyChecksum(), "verifying checksums");
  }

  void TEST_FailNextCommits(int n) override {
    if (writer_) writer_->TEST_FailNextCommits(n);
  }

 private:
  // WriterBackend
  Status LoadHead(const std::string& stream, int64_t* version) override {
    *version = 0;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
    std::string upper = keys::stream_key(stream, INT64_MAX);
    it->SeekForPrev(upper);
    if (it->Valid()) {
      int64_t v = 0;
      if (keys::parse_stream_key(std::string_view(it->key().data(), it->key().size()), stream, &v))
        *version = v;
    }
    return from_rocks(it->status(), "reading stream head");
  }

  Status ClaimExists(const std::string& key, bool* exists) override {
    std::string v;
    auto s = db_->Get(rocksdb::ReadOptions(), keys::claim_key(key), &v);
    *exists = s.ok();
    return s.ok() || s.IsNotFound() ? Status::OK() : from_rocks(s, "reading claim");
  }

  Status Commit(const std::vector<StoredEvent>& events,
                const std::vector<std::pair<std::string, std::string>>& claims,
                const std::vector<std::pair<std::string, Snapshot>>& snapshots) override {
    // Keys go in in key order, range by range (events ascend already): the
    // memtable's skip list reuses its last insert position instead of a full
    // search per key.
    rocksdb::WriteBatch batch;
    std::vector<std::pair<std::string, std::string>> index;
    index.reserve(events.size());
    for (const auto& e : events) {
      batch.Put(keys::event_key(e.position), encode_record(e));
      index.emplace_back(keys::stream_key(e.stream, e.version),
                         encode_be64(static_cast<uint64_t>(e.position)));
    }
    std::sort(index.begin(), index.end());
    for (const auto& [k, v] : index) batch.Put(k, v);
    {
      std::vector<size_t> order(claims.size());
      for (size_t i = 0; i < order.size(); ++i) order[i] = i;
      std::sort(order.begin(), order.end(),
                [&](size_t a, size_t b) { return claims[a].first < claims[b].first; });
      for (size_t i : order) batch.Put(keys::claim_key(claims[i].first), claims[i].second);
    }
    if (!claims.empty()) GIFTCARD_CRASH_POINT("idempotency.mid_batch");
    for (const auto& [stream, snap] : snapshots) {
      std::string v;
      v.reserve(snap.data.size() + keys::kSnapshotOverheadBytes);
      put_be64(v, static_cast<uint64_t>(snap.version));
      v.append(snap.data);
      put_be32(v, crc32c(v));
      batch.Put(keys::snapshot_key(stream), v);
    }
    if (!snapshots.empty()) GIFTCARD_CRASH_POINT("snapshot.mid_batch");
    // Snapshots alone are a cache and need no sync of their own.
    return from_rocks(db_->Write(events.empty() ? rocksdb::WriteOptions() : write_opts_, &batch),
                      "group commit");
  }

  Status Decode(std::string_view key, std::string_view value, StoredEvent* e) {
    int64_t pos = 0;
    if (!keys::parse_event_key(key, &pos)) return Status::Corruption("malformed event key");
    Status s = decode_record(value, e);
    if (!s.ok())
      return Status::Corruption("event at position " + std::to_string(pos) + ": " + s.message());
    if (e->position != pos)
      return Status::Corruption("event at position " + std::to_string(pos) + " claims position " +
                                std::to_string(e->position));
    return Status::OK();
  }

  Status ReadLast(StoredEvent* last, bool* any) {
    *any = false;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
    it->SeekForPrev(keys::event_key(INT64_MAX));
    if (it->Valid() && it->key()[0] == keys::kEvent) {
      if (Status s = Decode(std::string_view(it->key().data(), it->key().size()),
                            std::string_view(it->value().data(), it->value().size()), last);
          !s.ok())
        return s;
      *any = true;
    }
    return from_rocks(it->status(), "reading the log's tail");
  }

  rocksdb::DB* db_;
  StoreOptions opts_;
  rocksdb::WriteOptions write_opts_;
  std::unique_ptr<Writer> writer_;
  std::atomic<int64_t> secondary_last_{0};
};

rocksdb::Options make_options(const StoreOptions& o) {
  rocksdb::Options opts;
  opts.create_if_missing = o.create_if_missing;
  if (o.env != nullptr) opts.env = o.env;
  opts.paranoid_checks = true;
  // A torn last record (an unacknowledged write) is dropped; corruption in the
  // middle of the WAL refuses to open instead of silently cutting the log.
  opts.wal_recovery_mode = rocksdb::WALRecoveryMode::kTolerateCorruptedTailRecords;
  opts.write_buffer_size = 64u << 20;
  opts.max_write_buffer_number = 3;
  opts.max_background_jobs = 2;
  opts.bytes_per_sync = 1u << 20;
  // Every new purchase looks up an absent idempotency claim (the wallet, then
  // the writer): a memtable bloom filter answers those misses without a
  // skiplist walk.
  opts.memtable_whole_key_filtering = true;
  opts.memtable_prefix_bloom_size_ratio = 0.05;
  rocksdb::BlockBasedTableOptions table;
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  table.block_cache = rocksdb::NewLRUCache(o.block_cache_bytes);
  // Index and filter blocks stay with their table reader, outside the block
  // cache (RocksDB's default; ~1.25 bytes per key for the filters). In the
  // cache, scans of big events evicted them, and every claim lookup (one per
  // imported code) read a filter block back from its file.
  table.cache_index_and_filter_blocks = false;
  opts.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  return opts;
}

// RocksDB's Corruption status on open says "checksum mismatch" but not where;
// its info log (<path>/LOG, new for each open) names the file: "<file>:
// dropping N bytes; Corruption: ...". Returns " (in <file>: dropping ...)" or "".
std::string corruption_hint(const std::string& path) {
  std::ifstream in(std::filesystem::path(path) / "LOG");
  std::string line;
  while (std::getline(in, line)) {
    auto drop = line.find(": dropping ");
    if (drop == std::string::npos || line.find("Corruption") == std::string::npos) continue;
    auto start = line.rfind("] ", drop);
    start = start == std::string::npos ? 0 : start + 2;
    return " (in " + line.substr(start) + ")";
  }
  return "";
}

}  // namespace

Status OpenRocksEventStore(const StoreOptions& options, std::unique_ptr<EventStore>* out) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!options.create_if_missing && !fs::exists(fs::path(options.path) / "CURRENT", ec))
    return Status::NotFound("no giftcard store at " + options.path);
  rocksdb::Options opts = make_options(options);
  rocksdb::DB* db = nullptr;
  rocksdb::Status s;
  if (options.mode == StoreOptions::Mode::secondary) {
    std::string sec = options.secondary_path;
    if (sec.empty()) {
      sec = (fs::temp_directory_path() / ("giftcard-secondary-" + std::to_string(::getpid())))
                .string();
    }
    fs::create_directories(sec, ec);
    opts.max_open_files = -1;  // required by secondary instances
    s = rocksdb::DB::OpenAsSecondary(opts, options.path, sec, &db);
  } else {
    fs::create_directories(options.path, ec);
    s = rocksdb::DB::Open(opts, options.path, &db);
  }
  if (!s.ok()) {
    Status st = from_rocks(s, "opening store at " + options.path);
    if (st.IsCorruption()) return Status::Corruption(st.message() + corruption_hint(options.path));
    return st;
  }
  auto store = std::make_unique<RocksEventStore>(db, options);
  if (Status i = store->Init(); !i.ok()) return i;
  *out = std::move(store);
  return Status::OK();
}

Status CatchUpWithPrimary(EventLog* store) { return store->CatchUp(); }

Status VerifyRocksChecksums(EventLog* store) { return store->VerifyChecksums(); }

}  // namespace giftcard
