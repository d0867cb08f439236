// EventStore: the append-only, hash-chained event log — the only source of
// truth (docs/CONTRACT.md, "Events") — as two interfaces: EventLog (the log)
// and ProjectionKv (the projection space beside it). EventStore is both.
// Implementations: RocksEventStore (durable; rocks_event_store.h) and
// MemoryEventStore (tests and simulation; memory_event_store.h).
//
// Writes: Append() is asynchronous and group-committed. One writer thread
// drains every pending request into one batch and one synced write, then calls
// each request's callback *on the writer thread* (callbacks must be quick and
// must not call Append synchronously-and-wait). A request is all or nothing:
// its events, stream index entries and claims commit atomically or not at all.
// After a failed write the store is sticky-failed: every later Append fails
// with IOError until the store is reopened (leveldb's bg_error_).
//
// Reads are thread-safe and see only committed data.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "events/envelope.h"
#include "events/events.h"
#include "events/status.h"

namespace giftcard {

// Expected stream version for an append.
constexpr int64_t kAnyVersion = -1;  // no check
constexpr int64_t kNoStream = 0;     // the stream must not exist yet

struct PendingEvent {
  std::string stream;
  EventType type = EventType::CardCreated;
  std::string payload;  // encode_payload(); encoded by the caller, off the writer thread
  static PendingEvent of(std::string stream, const Event& e);
};

// A unique key the request claims: the append is rejected (Conflict) if the key
// exists already or is claimed twice in the same request. Used for system-wide
// code uniqueness and idempotency records. Claim keys are namespaced strings,
// e.g. "code/<code>" or "idem/p/<user>\x1f<key>".
struct Claim {
  std::string key;
  std::string value;
  // If true, the writer appends the request's first global position (8 bytes,
  // big-endian) to `value`, so the claim points at the events it guards.
  bool append_position = false;
};

struct AppendRequest {
  std::vector<PendingEvent> events;
  // Per stream: the version its head must have before this request. Streams
  // not listed are unchecked (kAnyVersion).
  std::vector<std::pair<std::string, int64_t>> expected;
  std::vector<Claim> claims;
};

struct AppendResult {
  int64_t first_position = 0;          // position of events[0]; the rest follow contiguously
  Micros recorded_at = 0;              // commit timestamp stamped on every event of the request
  std::vector<int64_t> versions;       // per event, its stream version
  std::vector<std::string> conflicts;  // on Conflict: every claim key that exists
  std::string conflict_stream;         // on Conflict: the stream whose version mismatched
};

using AppendCallback = std::function<void(const Status&, const AppendResult&)>;
using Subscriber = std::function<void(const std::vector<StoredEvent>&)>;

struct Snapshot {
  int64_t version = 0;  // stream version the snapshot includes
  std::string data;
};

// One atomic write to the projection space (ProjectionKv::KvWrite).
struct KvBatch {
  std::vector<std::string> delete_prefixes;  // applied first
  std::vector<std::string> deletes;
  std::vector<std::pair<std::string, std::string>> puts;
};
using KvVisitor = std::function<bool(std::string_view key, std::string_view value)>;
// ProjectionKv::KvIngest: a run calls `put` for each of its keys in strictly
// increasing byte order and stops at the first put that is not OK (returning
// it).
using KvPut = std::function<Status(std::string_view key, std::string_view value)>;
using KvRun = std::function<Status(const KvPut& put)>;

struct StoreStats {
  uint64_t batches = 0;      // synced writes
  uint64_t requests = 0;     // append requests committed
  uint64_t events = 0;       // events committed
  uint64_t rejected = 0;     // requests rejected (version or claim conflict)
  uint64_t sync_micros = 0;  // total time inside the synced write
  uint64_t max_batch_requests = 0;
};

// The log: appends, reads, claims, snapshots, subscriptions, health. What
// the actors, the writer's callers and the auditors need.
class EventLog {
 public:
  virtual ~EventLog() = default;

  // Enqueues `req`; `done` runs exactly once, on the writer thread, after the
  // request is durable (ok) or rejected/failed. Only after Close() is `done`
  // called at once, on the caller's thread, with Busy. Status codes: Conflict (expected
  // version or claim), InvalidArgument (empty or oversize request), IOError
  // (write or sync failed; sticky), Busy (the store is closing).
  virtual void Append(AppendRequest req, AppendCallback done) = 0;

  // Convenience for tests and tools: Append and wait.
  Status AppendAndWait(AppendRequest req, AppendResult* result);

  // Events of `stream` with version >= from_version, at most `max` of them.
  virtual Status ReadStream(const std::string& stream, int64_t from_version, size_t max,
                            std::vector<StoredEvent>* out) = 0;
  // Events with position >= from_position, at most `max`, in position order.
  virtual Status ReadAll(int64_t from_position, size_t max, std::vector<StoredEvent>* out) = 0;
  // The event at `position`: NotFound if the log does not reach it. A durable
  // store answers with one point lookup, whatever the log's size (a committed
  // idempotency key's repeat reads its event back this way).
  virtual Status ReadEvent(int64_t position, StoredEvent* out);
  // The current head version of a stream (0 if it does not exist).
  virtual Status StreamVersion(const std::string& stream, int64_t* version) = 0;
  // A claim's value (NotFound if absent).
  virtual Status GetClaim(const std::string& key, std::string* value) = 0;

  // Snapshots are caches: written without sync, verified by checksum on load;
  // a missing or damaged snapshot is NotFound and the caller rebuilds.
  virtual Status SaveSnapshot(const std::string& stream, const Snapshot& snap) = 0;
  virtual Status LoadSnapshot(const std::string& stream, Snapshot* snap) = 0;

  // Highest committed position (0 for an empty log).
  virtual int64_t LastPosition() const = 0;

  // `fn` is called on the writer thread with every committed batch, in order,
  // after the appenders' callbacks. Returns an id for Unsubscribe.
  virtual uint64_t Subscribe(Subscriber fn) = 0;
  virtual void Unsubscribe(uint64_t id) = 0;

  // The sticky error, if a write has failed.
  virtual Status Health() const = 0;
  virtual StoreStats Stats() const = 0;

  // A read-only follower of another process's store (RocksDB's secondary
  // instance: the audit tools beside a live server) reads what the writer
  // has committed since it opened or last caught up. A store that is its own
  // writer is always current: OK.
  virtual Status CatchUp() { return Status::OK(); }
  // Checks the backend's own checksums of everything stored (RocksDB's block
  // checksums; `giftcard verify`). A backend without any: OK.
  virtual Status VerifyChecksums() { return Status::OK(); }

  // Stops accepting appends, commits what is queued, joins the writer.
  virtual void Close() = 0;

  // Test hook: the next `n` group commits fail as a failing disk would.
  virtual void TEST_FailNextCommits(int /*n*/) {}
};

// The projection space: keys and values the projection driver keeps beside
// the log — read models and their checkpoints (projections/projection_db.h).
// Not part of the log, never hashed, always rebuildable from it. A KvBatch
// commits atomically but is never synced: what it folded is already durable
// in the log, a crash keeps a prefix of the batches, and a batch lost to a
// crash is re-derived from the log. Secondary instances are read-only here
// too (KvWrite: InvalidArgument).
class ProjectionKv {
 public:
  virtual ~ProjectionKv() = default;

  virtual Status KvWrite(const KvBatch& batch) = 0;
  // NotFound if absent.
  virtual Status KvGet(const std::string& key, std::string* value) = 0;
  // values[i] is the value of keys[i], or nullopt if absent.
  virtual Status KvMultiGet(const std::vector<std::string>& keys,
                            std::vector<std::optional<std::string>>* values) = 0;
  // Visits keys that start with `prefix` and are >= `start` (pass "" for the
  // beginning), in byte order, until `fn` returns false.
  virtual Status KvScan(const std::string& prefix, const std::string& start,
                        const KvVisitor& fn) = 0;

  // Writes many new keys at once: a rebuild's whole generation. The `runs`
  // cover disjoint key ranges, each in increasing order, and may be called
  // at the same time on different threads. Not one atomic step: callers
  // write only keys nobody reads yet (a generation the marker does not name)
  // and make them live with a later KvWrite; after a failure or a crash some
  // of them may be there, or none. The default writes each run through
  // KvWrite, kIngestChunk puts per batch (memory stores); RocksDB writes
  // sorted table files and ingests them (rocks_projection_kv.h).
  static constexpr size_t kIngestChunk = 65536;
  virtual Status KvIngest(const std::vector<KvRun>& runs) {
    KvBatch b;
    auto flush = [&] {
      Status s = KvWrite(b);
      b.puts.clear();
      return s;
    };
    for (const KvRun& run : runs) {
      Status s = run([&](std::string_view k, std::string_view v) {
        b.puts.emplace_back(k, v);
        return b.puts.size() < kIngestChunk ? Status::OK() : flush();
      });
      if (s.ok() && !b.puts.empty()) s = flush();
      if (!s.ok()) return s;
    }
    return Status::OK();
  }
};

// One store serves both: RocksEventStore keeps the projection space in a
// RocksDB of its own beside the log's (so a projection batch never waits in,
// or delays, the log's synced group commit); MemoryEventStore and the
// simulation's SimStore keep both in memory. Code that needs only one side
// takes that side.
class EventStore : public EventLog, public ProjectionKv {
 public:
  EventLog* log() { return this; }
  ProjectionKv* kv() { return this; }
};

// Claim key helpers (one place for the namespaces).
std::string code_claim(const std::string& code);
std::string purchase_idem_claim(const std::string& user, const std::string& key);
std::string credit_idem_claim(const std::string& user, const std::string& key);

}  // namespace giftcard
