#include "store/rocks_event_store.h"

#include <rocksdb/db.h>
#include <rocksdb/options.h>

#include <rocksdb/write_batch.h>
#include <algorithm>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "events/coding.h"
#include "events/envelope.h"
#include "store/crash_point.h"
#include "store/keys.h"
#include "store/rocks_projection_kv.h"
#include "store/rocks_util.h"
#include "store/writer.h"

namespace giftcard {
namespace {

constexpr std::string_view kFormatName = "format";
constexpr std::string_view kFormatValue = "giftcard-log-1";

class RocksEventStore final : public EventStore, private WriterBackend {
 public:
  RocksEventStore(rocksdb::DB* db, const StoreOptions& opts, std::unique_ptr<RocksProjectionKv> kv)
      : db_(db), opts_(opts), kv_(std::move(kv)) {
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
      if (Status d = DropOldProjectionSpace(); !d.ok()) return d;
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
    if (max >= 256) {
      ro.readahead_size = 2 << 20;
      // A scan (verify, replay, a rebuild) reads each block once: kept out of
      // the block cache, it neither evicts what purchases and queries reuse
      // nor grows the process (verify of 1M events: 561 -> 330 MB).
      ro.fill_cache = false;
    }
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

  Status ReadEvent(int64_t position, StoredEvent* out) override {
    const std::string k = keys::event_key(position);
    std::string v;
    if (Status s = from_rocks(db_->Get(rocksdb::ReadOptions(), k, &v), "reading event"); !s.ok())
      return s.IsNotFound() ? Status::NotFound("no event at position " + std::to_string(position))
                            : s;
    return Decode(k, v, out);
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

  // ProjectionKv: its own database (rocks_projection_kv.h).
  Status KvWrite(const KvBatch& kv) override { return kv_->KvWrite(kv); }
  Status KvGet(const std::string& key, std::string* value) override {
    return kv_->KvGet(key, value);
  }
  Status KvMultiGet(const std::vector<std::string>& ks,
                    std::vector<std::optional<std::string>>* values) override {
    return kv_->KvMultiGet(ks, values);
  }
  Status KvScan(const std::string& prefix, const std::string& start, const KvVisitor& fn) override {
    return kv_->KvScan(prefix, start, fn);
  }
  Status KvIngest(const std::vector<KvRun>& runs) override { return kv_->KvIngest(runs); }

  Status CatchUp() override {
    if (opts_.mode != StoreOptions::Mode::secondary) return Status::OK();
    // The projections first: what they folded is then never ahead of the
    // log this instance reads.
    if (Status k = kv_->CatchUp(); !k.ok()) return k;
    auto s = db_->TryCatchUpWithPrimary();
    if (!s.ok()) return from_rocks(s, "catching up with primary");
    StoredEvent last;
    bool any = false;
    if (Status r = ReadLast(&last, &any); !r.ok()) return r;
    secondary_last_ = any ? last.position : 0;
    return Status::OK();
  }

  Status VerifyChecksums() override {
    if (Status s = from_rocks(db_->VerifyChecksum(), "verifying checksums"); !s.ok()) return s;
    return kv_->VerifyChecksums();
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

  // Stores written before issue #16 kept the projections under 'p' in this
  // database. They are a cache: dropped here, rebuilt from the log in their
  // own database (ProjectionDb finds no checkpoint there).
  Status DropOldProjectionSpace() {
    const std::string from(1, keys::kProjection);
    const std::string to = keys::prefix_successor(from);
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
    it->Seek(from);
    if (!it->status().ok()) return from_rocks(it->status(), "looking for old projections");
    if (!it->Valid() || it->key()[0] != keys::kProjection) return Status::OK();
    it.reset();
    rocksdb::WriteOptions wo;
    wo.sync = true;
    if (auto s = db_->DeleteRange(wo, db_->DefaultColumnFamily(), from, to); !s.ok())
      return from_rocks(s, "dropping old projections");
    rocksdb::Slice b(from), e(to);
    return from_rocks(db_->CompactRange(rocksdb::CompactRangeOptions(), &b, &e),
                      "compacting old projections away");
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
  std::unique_ptr<RocksProjectionKv> kv_;
  std::unique_ptr<Writer> writer_;
  std::atomic<int64_t> secondary_last_{0};
};

rocksdb::Options make_options(const StoreOptions& o, std::shared_ptr<rocksdb::Cache> cache) {
  rocksdb::Options opts = base_rocks_options(o.create_if_missing, o.env, std::move(cache));
  // A torn last record (an unacknowledged write) is dropped; corruption in the
  // middle of the WAL refuses to open instead of silently cutting the log.
  opts.wal_recovery_mode = rocksdb::WALRecoveryMode::kTolerateCorruptedTailRecords;
  opts.write_buffer_size = 64u << 20;
  opts.max_write_buffer_number = 3;
  // Every new purchase looks up an absent idempotency claim (the wallet, then
  // the writer): a memtable bloom filter answers those misses without a
  // skiplist walk.
  opts.memtable_whole_key_filtering = true;
  opts.memtable_prefix_bloom_size_ratio = 0.05;
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
  auto cache = rocksdb::NewLRUCache(options.block_cache_bytes);
  rocksdb::Options opts = make_options(options, cache);
  StoreOptions o = options;
  rocksdb::DB* db = nullptr;
  rocksdb::Status s;
  std::unique_ptr<RocksProjectionKv> kv;
  if (o.mode == StoreOptions::Mode::secondary) {
    if (o.secondary_path.empty()) {
      o.secondary_path = (fs::temp_directory_path() /
                          ("giftcard-secondary-" + std::to_string(::getpid())))
                             .string();
    }
    fs::create_directories(o.secondary_path, ec);
    // The projections first: what they folded is then never ahead of the log
    // this instance reads.
    if (Status k = RocksProjectionKv::Open(o, cache, &kv); !k.ok()) return k;
    opts.max_open_files = -1;  // required by secondary instances
    s = rocksdb::DB::OpenAsSecondary(opts, o.path, o.secondary_path, &db);
  } else {
    fs::create_directories(o.path, ec);
    s = rocksdb::DB::Open(opts, o.path, &db);
  }
  if (!s.ok()) {
    Status st = from_rocks(s, "opening store at " + o.path);
    if (st.IsCorruption()) return Status::Corruption(st.message() + corruption_hint(o.path));
    return st;
  }
  if (!kv) {
    if (Status k = RocksProjectionKv::Open(o, cache, &kv); !k.ok()) {
      delete db;
      return k;
    }
  }
  auto store = std::make_unique<RocksEventStore>(db, o, std::move(kv));
  if (Status i = store->Init(); !i.ok()) return i;
  *out = std::move(store);
  return Status::OK();
}

Status CatchUpWithPrimary(EventLog* store) { return store->CatchUp(); }

Status VerifyRocksChecksums(EventLog* store) { return store->VerifyChecksums(); }

}  // namespace giftcard
