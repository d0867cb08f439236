// Tests of the event store (store/event_store.h). The generic bodies run
// against both implementations, the in-memory one and RocksDB on a fresh temp
// dir (rocksdb/db/fault_injection_test.cc runs one body per environment the
// same way): append and read back, expected versions, all-or-nothing
// requests, claims, group commit under real threads, subscribers, sticky
// failure and snapshots. The RocksDB-only suites cover reopening, locking,
// secondary instances, checksums and a kill -9 restart test with a forked
// child that reports every acknowledged append through a pipe
// (rocksdb/tools/db_crashtest.py, blackbox).
//
// Suites (one ctest each): event_store, event_store_group_commit, rocks_store,
// rocks_crash.
#include <boost/mpl/list.hpp>
#include <boost/test/unit_test.hpp>

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "events/codec.h"
#include "events/envelope.h"
#include "events/events.h"
#include "events/status.h"
#include "store/event_store.h"
#include "store/memory_event_store.h"
#include "store/rocks_event_store.h"

namespace giftcard {
namespace {

namespace fs = std::filesystem;

constexpr size_t kAll = std::numeric_limits<size_t>::max();

// ---------------------------------------------------------------------------
// Environment: temp dirs and the two backends.

class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    path_ = fs::temp_directory_path() /
            ("gc-store-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    std::error_code ec;
    fs::remove_all(path_, ec);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  std::string path() const { return path_.string(); }
  std::string sub(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

StoreOptions rocks_options(const std::string& path) {
  StoreOptions o;
  o.path = path;
  o.block_cache_bytes = 8u << 20;
  return o;
}

std::unique_ptr<EventStore> open_rocks(const StoreOptions& o) {
  std::unique_ptr<EventStore> store;
  Status s = OpenRocksEventStore(o, &store);
  BOOST_REQUIRE_MESSAGE(s.ok(), "opening " << o.path << ": " << s.ToString());
  BOOST_REQUIRE(store != nullptr);
  return store;
}

struct MemoryBackend {
  static constexpr bool kDurable = false;
  std::unique_ptr<EventStore> Open() { return NewMemoryEventStore(); }
};

struct RocksBackend {
  static constexpr bool kDurable = true;
  TempDir dir;
  std::string path() const { return dir.sub("db"); }
  std::unique_ptr<EventStore> Open() { return open_rocks(rocks_options(path())); }
};

using Backends = boost::mpl::list<MemoryBackend, RocksBackend>;

// ---------------------------------------------------------------------------
// Requests and reads.

// A recognisable event: the tag survives the round trip in idempotency_key.
Event tagged(const std::string& tag, int64_t amount = 100) {
  return WalletCredited{"user-" + tag, amount, amount * 2, tag};
}

// Samples of every event type, for the round-trip test.
Event sample(int i) {
  const std::string n = std::to_string(i);
  switch (i % 7) {
    case 0:
      return CardCreated{"card" + n, "Card \xE2\x82\xAC " + n, 100 + i, 200 + i};
    case 1:
      return CodesAdded{"card" + n, {{"CODE-" + n, 0}, {"CODE-X" + n, 1767225600000000}}};
    case 2:
      return CodeAssigned{"card" + n, "CODE-" + n, "p-" + n, "alice", 150, "k-" + n};
    case 3:
      return CodeRevoked{"card" + n, "CODE-" + n};
    case 4:
      return CodesExpired{"card" + n, {"A-" + n, "B-" + n}};
    case 5:
      return WalletCredited{"bob", 1000 + i, 5000, "credit-" + n};
    default:
      return WalletDebited{"bob", 15, 4985, "p-" + n, "card" + n};
  }
}

AppendRequest one(const std::string& stream, const Event& e, int64_t expected = kAnyVersion) {
  AppendRequest r;
  r.events.push_back(PendingEvent::of(stream, e));
  if (expected != kAnyVersion) r.expected.emplace_back(stream, expected);
  return r;
}

std::vector<StoredEvent> read_all(EventStore& store, int64_t from = 1, size_t max = kAll) {
  std::vector<StoredEvent> out;
  Status s = store.ReadAll(from, max, &out);
  BOOST_REQUIRE_MESSAGE(s.ok(), "ReadAll: " << s.ToString());
  return out;
}

std::vector<StoredEvent> read_stream(EventStore& store, const std::string& stream, int64_t from = 1,
                                     size_t max = kAll) {
  std::vector<StoredEvent> out;
  Status s = store.ReadStream(stream, from, max, &out);
  BOOST_REQUIRE_MESSAGE(s.ok(), "ReadStream(" << stream << "): " << s.ToString());
  return out;
}

int64_t stream_version(EventStore& store, const std::string& stream) {
  int64_t v = -1;
  Status s = store.StreamVersion(stream, &v);
  BOOST_REQUIRE_MESSAGE(s.ok(), "StreamVersion(" << stream << "): " << s.ToString());
  return v;
}

Event decoded(const StoredEvent& e) {
  Event ev;
  Status s = e.decode(&ev);
  BOOST_REQUIRE_MESSAGE(s.ok(), "decode at " << e.position << ": " << s.ToString());
  return ev;
}

std::string tag_of(const StoredEvent& e) {
  Event ev = decoded(e);
  const auto* w = std::get_if<WalletCredited>(&ev);
  return w ? w->idempotency_key : std::string();
}

std::string be64(int64_t v) {
  std::string s;
  for (int shift = 56; shift >= 0; shift -= 8)
    s.push_back(static_cast<char>((static_cast<uint64_t>(v) >> shift) & 0xff));
  return s;
}

bool same_event(const StoredEvent& a, const StoredEvent& b) {
  return a.position == b.position && a.stream == b.stream && a.version == b.version &&
         a.type == b.type && a.recorded_at == b.recorded_at && a.payload == b.payload &&
         a.prev_hash == b.prev_hash && a.hash == b.hash;
}

bool same_log(const std::vector<StoredEvent>& a, const std::vector<StoredEvent>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (!same_event(a[i], b[i])) return false;
  return true;
}

// The invariants of a whole log as ReadAll(1, ...) returns it: positions
// 1..N in order, the hash chain from the zero hash with recomputable hashes,
// recorded_at positive and non-decreasing, per-stream versions 1..k in
// position order, payloads that decode to their type. "" if all hold.
std::string check_log(const std::vector<StoredEvent>& log) {
  Hash prev{};
  Micros last_at = 0;
  std::map<std::string, int64_t> versions;
  for (size_t i = 0; i < log.size(); ++i) {
    const StoredEvent& e = log[i];
    const std::string at =
        "log[" + std::to_string(i) + "] (position " + std::to_string(e.position) + "): ";
    if (e.position != static_cast<int64_t>(i) + 1) return at + "position is not gap-free";
    if (e.prev_hash != prev) return at + "prev_hash is not the previous event's hash";
    if (e.hash != compute_hash(e)) return at + "hash != compute_hash(e)";
    if (e.recorded_at <= 0) return at + "recorded_at not set";
    if (e.recorded_at < last_at) return at + "recorded_at went backwards";
    int64_t& v = versions[e.stream];
    if (e.version != ++v)
      return at + "stream " + e.stream + " version " + std::to_string(e.version) + ", expected " +
             std::to_string(v);
    Event ev;
    if (Status s = e.decode(&ev); !s.ok()) return at + "decode: " + s.ToString();
    if (type_of(ev) != e.type) return at + "decoded type differs from the envelope's";
    prev = e.hash;
    last_at = e.recorded_at;
  }
  return "";
}

#define CHECK_LOG(log)                       \
  do {                                       \
    const std::string err_ = check_log(log); \
    BOOST_CHECK_MESSAGE(err_.empty(), err_); \
  } while (0)

#define CHECK_OK(expr)                                           \
  do {                                                           \
    const Status st_ = (expr);                                   \
    BOOST_CHECK_MESSAGE(st_.ok(), #expr ": " << st_.ToString()); \
  } while (0)

#define REQUIRE_OK(expr)                                           \
  do {                                                             \
    const Status st_ = (expr);                                     \
    BOOST_REQUIRE_MESSAGE(st_.ok(), #expr ": " << st_.ToString()); \
  } while (0)

// Collects async Append callbacks, one slot per request.
class Callbacks {
 public:
  explicit Callbacks(size_t n) : slots_(n) {}

  AppendCallback slot(size_t i) {
    return [this, i](const Status& s, const AppendResult& r) {
      slots_[i].status = s;
      slots_[i].result = r;
      slots_[i].calls++;
      if (done_.fetch_add(1) + 1 == slots_.size()) {
        std::lock_guard<std::mutex> lock(mu_);
        cv_.notify_all();
      }
    };
  }

  // False on timeout.
  bool wait(std::chrono::seconds timeout = std::chrono::seconds(120)) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return done_.load() >= slots_.size(); });
  }

  struct Slot {
    Status status;
    AppendResult result;
    int calls = 0;
  };
  const Slot& operator[](size_t i) const { return slots_[i]; }
  size_t size() const { return slots_.size(); }
  size_t done() const { return done_.load(); }

 private:
  std::vector<Slot> slots_;
  std::atomic<size_t> done_{0};
  std::mutex mu_;
  std::condition_variable cv_;
};

}  // namespace

// ===========================================================================
BOOST_AUTO_TEST_SUITE(event_store)

BOOST_AUTO_TEST_CASE_TEMPLATE(append_and_read_back, B, Backends) {
  B backend;
  auto store = backend.Open();
  BOOST_CHECK_EQUAL(store->LastPosition(), 0);
  BOOST_CHECK(read_all(*store).empty());
  BOOST_CHECK_EQUAL(stream_version(*store, "card-1"), 0);
  BOOST_CHECK(read_stream(*store, "card-1").empty());

  // Streams whose names are prefixes of each other must not mix.
  const std::vector<std::string> streams = {"card-1", "card-10", "card-1x", "wallet-bob",
                                            std::string(kMaxStreamName, 's')};
  struct Appended {
    std::string stream;
    Event event;
  };
  std::vector<Appended> expected;
  std::vector<AppendResult> results;
  std::map<std::string, int64_t> versions;
  int n = 0;
  for (int r = 0; r < 30; ++r) {
    AppendRequest req;
    const int events = 1 + r % 3;  // multi-event requests, across streams
    for (int k = 0; k < events; ++k) {
      const std::string& stream = streams[static_cast<size_t>(n * 7 + k) % streams.size()];
      Event e = sample(n++);
      req.events.push_back(PendingEvent::of(stream, e));
      expected.push_back({stream, e});
    }
    AppendResult res;
    REQUIRE_OK(store->AppendAndWait(std::move(req), &res));
    BOOST_CHECK_EQUAL(res.first_position, static_cast<int64_t>(expected.size()) - events + 1);
    BOOST_REQUIRE_EQUAL(res.versions.size(), static_cast<size_t>(events));
    for (int k = 0; k < events; ++k) {
      const auto& stream = expected[expected.size() - static_cast<size_t>(events - k)].stream;
      BOOST_CHECK_EQUAL(res.versions[static_cast<size_t>(k)], ++versions[stream]);
    }
    BOOST_CHECK(res.conflicts.empty());
    BOOST_CHECK(res.conflict_stream.empty());
    BOOST_CHECK_EQUAL(store->LastPosition(), static_cast<int64_t>(expected.size()));
    results.push_back(res);
  }
  CHECK_OK(store->Health());

  auto check_contents = [&](EventStore& s) {
    auto log = read_all(s);
    BOOST_REQUIRE_EQUAL(log.size(), expected.size());
    CHECK_LOG(log);
    BOOST_CHECK_EQUAL(s.LastPosition(), static_cast<int64_t>(log.size()));
    for (size_t i = 0; i < log.size(); ++i) {
      BOOST_CHECK_EQUAL(log[i].stream, expected[i].stream);
      BOOST_CHECK(log[i].type == type_of(expected[i].event));
      BOOST_CHECK_EQUAL(log[i].payload, encode_payload(expected[i].event));
      BOOST_CHECK(decoded(log[i]) == expected[i].event);
    }
    // Each request's events carry its commit timestamp, and its positions.
    size_t i = 0;
    for (const auto& res : results) {
      for (size_t k = 0; k < res.versions.size(); ++k, ++i) {
        BOOST_CHECK_EQUAL(log[i].position, res.first_position + static_cast<int64_t>(k));
        BOOST_CHECK_EQUAL(log[i].version, res.versions[k]);
        BOOST_CHECK_EQUAL(log[i].recorded_at, res.recorded_at);
      }
    }
    // ReadStream is ReadAll filtered, with versions 1..k.
    for (const auto& stream : streams) {
      std::vector<StoredEvent> filtered;
      for (const auto& e : log)
        if (e.stream == stream) filtered.push_back(e);
      auto got = read_stream(s, stream);
      BOOST_CHECK_MESSAGE(same_log(got, filtered), "ReadStream(" << stream << ") differs");
      BOOST_CHECK_EQUAL(stream_version(s, stream), static_cast<int64_t>(filtered.size()));
      for (size_t v = 0; v < got.size(); ++v)
        BOOST_CHECK_EQUAL(got[v].version, static_cast<int64_t>(v) + 1);
      // Paging.
      if (filtered.size() >= 5) {
        auto page = read_stream(s, stream, 3, 2);
        BOOST_REQUIRE_EQUAL(page.size(), 2u);
        BOOST_CHECK(same_event(page[0], filtered[2]));
        BOOST_CHECK(same_event(page[1], filtered[3]));
      }
      BOOST_CHECK(read_stream(s, stream, static_cast<int64_t>(filtered.size()) + 1).empty());
      BOOST_CHECK(read_stream(s, stream, 1, 0).empty());
    }
    auto page = read_all(s, 10, 5);
    BOOST_REQUIRE_EQUAL(page.size(), 5u);
    for (size_t k = 0; k < 5; ++k) BOOST_CHECK(same_event(page[k], log[9 + k]));
    BOOST_CHECK(read_all(s, static_cast<int64_t>(log.size()) + 1).empty());
    BOOST_CHECK_EQUAL(read_all(s, static_cast<int64_t>(log.size())).size(), 1u);
    BOOST_CHECK(same_log(read_all(s, 0), log));  // from <= 0 reads from the start
    BOOST_CHECK(read_stream(s, "card-2").empty());
    BOOST_CHECK_EQUAL(stream_version(s, "card-2"), 0);
    BOOST_CHECK_EQUAL(stream_version(s, "card-"), 0);
  };
  check_contents(*store);
  if constexpr (B::kDurable) {
    store.reset();
    store = backend.Open();
    check_contents(*store);
  }
}

BOOST_AUTO_TEST_CASE_TEMPLATE(expected_version_no_stream, B, Backends) {
  B backend;
  auto store = backend.Open();
  AppendResult res;
  CHECK_OK(store->AppendAndWait(one("card-a", tagged("a1"), kNoStream), &res));
  BOOST_CHECK_EQUAL(res.first_position, 1);

  // kNoStream on an existing stream.
  res = AppendResult{};
  Status s = store->AppendAndWait(one("card-a", tagged("a2"), kNoStream), &res);
  BOOST_CHECK_MESSAGE(s.IsConflict(), s.ToString());
  BOOST_CHECK_EQUAL(res.conflict_stream, "card-a");
  BOOST_CHECK(res.conflicts.empty());
  BOOST_CHECK_EQUAL(store->LastPosition(), 1);
  BOOST_CHECK_EQUAL(stream_version(*store, "card-a"), 1);

  // Also when the stream was created earlier in the same group: FIFO order
  // makes the outcome independent of how the writer groups the requests.
  Callbacks cb(3);
  store->Append(one("card-b", tagged("b1"), kNoStream), cb.slot(0));
  store->Append(one("card-b", tagged("b2"), kNoStream), cb.slot(1));
  store->Append(one("card-b", tagged("b3"), 1), cb.slot(2));
  BOOST_REQUIRE(cb.wait());
  CHECK_OK(cb[0].status);
  BOOST_CHECK_MESSAGE(cb[1].status.IsConflict(), cb[1].status.ToString());
  BOOST_CHECK_EQUAL(cb[1].result.conflict_stream, "card-b");
  CHECK_OK(cb[2].status);
  BOOST_CHECK_EQUAL(stream_version(*store, "card-b"), 2);

  auto log = read_all(*store);
  BOOST_REQUIRE_EQUAL(log.size(), 3u);
  CHECK_LOG(log);
  BOOST_CHECK_EQUAL(tag_of(log[0]), "a1");
  BOOST_CHECK_EQUAL(tag_of(log[1]), "b1");
  BOOST_CHECK_EQUAL(tag_of(log[2]), "b3");
  CHECK_OK(store->Health());
  BOOST_CHECK_EQUAL(store->Stats().rejected, 2u);

  if constexpr (B::kDurable) {  // the head now comes from disk, not the cache
    store.reset();
    store = backend.Open();
    s = store->AppendAndWait(one("card-a", tagged("a3"), kNoStream), &res);
    BOOST_CHECK_MESSAGE(s.IsConflict(), s.ToString());
    CHECK_OK(store->AppendAndWait(one("card-a", tagged("a3"), 1), &res));
    BOOST_CHECK_EQUAL(res.versions.at(0), 2);
  }
}

BOOST_AUTO_TEST_CASE_TEMPLATE(expected_version_mismatch, B, Backends) {
  B backend;
  auto store = backend.Open();
  for (int i = 0; i < 3; ++i)
    REQUIRE_OK(store->AppendAndWait(one("card-x", tagged("x" + std::to_string(i)), i), nullptr));
  REQUIRE_OK(store->AppendAndWait(one("card-y", tagged("y0")), nullptr));
  const auto before = read_all(*store);
  BOOST_REQUIRE_EQUAL(before.size(), 4u);

  for (int64_t wrong : {int64_t{0}, int64_t{1}, int64_t{2}, int64_t{4}, int64_t{1000}}) {
    AppendResult res;
    Status s = store->AppendAndWait(one("card-x", tagged("bad"), wrong), &res);
    BOOST_CHECK_MESSAGE(s.IsConflict(), "expected " << wrong << ": " << s.ToString());
    BOOST_CHECK_EQUAL(res.conflict_stream, "card-x");
    BOOST_CHECK_EQUAL(store->LastPosition(), 4);
  }
  // The expectation may name a stream the request does not write.
  {
    AppendRequest r = one("card-z", tagged("bad"));
    r.expected.emplace_back("card-y", 0);
    AppendResult res;
    Status s = store->AppendAndWait(std::move(r), &res);
    BOOST_CHECK_MESSAGE(s.IsConflict(), s.ToString());
    BOOST_CHECK_EQUAL(res.conflict_stream, "card-y");
  }
  // Nothing of the rejected requests was written.
  BOOST_CHECK_EQUAL(store->LastPosition(), 4);
  BOOST_CHECK(same_log(read_all(*store), before));
  BOOST_CHECK_EQUAL(stream_version(*store, "card-x"), 3);
  BOOST_CHECK_EQUAL(stream_version(*store, "card-z"), 0);
  CHECK_OK(store->Health());  // a conflict is not a failure
  BOOST_CHECK_EQUAL(store->Stats().rejected, 6u);

  // The right version, and kAnyVersion, still work.
  AppendResult res;
  CHECK_OK(store->AppendAndWait(one("card-x", tagged("x3"), 3), &res));
  BOOST_CHECK_EQUAL(res.first_position, 5);
  BOOST_CHECK_EQUAL(res.versions.at(0), 4);
  CHECK_OK(store->AppendAndWait(one("card-x", tagged("x4"), kAnyVersion), &res));
  BOOST_CHECK_EQUAL(res.versions.at(0), 5);

  // A chain of expectations queued at once commits in order, whatever the grouping.
  constexpr int kChain = 300;
  Callbacks cb(kChain);
  for (int i = 0; i < kChain; ++i)
    store->Append(one("card-chain", tagged("c" + std::to_string(i)), i),
                  cb.slot(static_cast<size_t>(i)));
  BOOST_REQUIRE(cb.wait());
  for (int i = 0; i < kChain; ++i) {
    BOOST_CHECK_MESSAGE(cb[static_cast<size_t>(i)].status.ok(),
                        cb[static_cast<size_t>(i)].status.ToString());
    BOOST_CHECK_EQUAL(cb[static_cast<size_t>(i)].result.versions.at(0), i + 1);
  }
  auto chain = read_stream(*store, "card-chain");
  BOOST_REQUIRE_EQUAL(chain.size(), static_cast<size_t>(kChain));
  for (int i = 0; i < kChain; ++i)
    BOOST_CHECK_EQUAL(tag_of(chain[static_cast<size_t>(i)]), "c" + std::to_string(i));
  CHECK_LOG(read_all(*store));
}

BOOST_AUTO_TEST_CASE_TEMPLATE(multi_stream_request_is_all_or_nothing, B, Backends) {
  B backend;
  auto store = backend.Open();
  REQUIRE_OK(store->AppendAndWait(one("wallet-u", tagged("w1")), nullptr));

  // card-n is new (kNoStream holds) but wallet-u is at 1, not 5.
  AppendRequest r;
  r.events.push_back(PendingEvent::of("card-n", tagged("n1")));
  r.events.push_back(PendingEvent::of("wallet-u", tagged("w2")));
  r.expected = {{"card-n", kNoStream}, {"wallet-u", 5}};
  r.claims = {{"code/fresh", "v", false}};
  AppendResult res;
  Status s = store->AppendAndWait(std::move(r), &res);
  BOOST_CHECK_MESSAGE(s.IsConflict(), s.ToString());
  BOOST_CHECK_EQUAL(res.conflict_stream, "wallet-u");
  BOOST_CHECK_EQUAL(store->LastPosition(), 1);
  BOOST_CHECK_EQUAL(stream_version(*store, "card-n"), 0);
  BOOST_CHECK(read_stream(*store, "card-n").empty());
  BOOST_CHECK_EQUAL(stream_version(*store, "wallet-u"), 1);
  std::string value;
  BOOST_CHECK(store->GetClaim("code/fresh", &value).IsNotFound());
  BOOST_CHECK_EQUAL(read_all(*store).size(), 1u);

  // The same request with the right expectation commits both, contiguously.
  AppendRequest ok;
  ok.events.push_back(PendingEvent::of("card-n", tagged("n1")));
  ok.events.push_back(PendingEvent::of("wallet-u", tagged("w2")));
  ok.expected = {{"card-n", kNoStream}, {"wallet-u", 1}};
  CHECK_OK(store->AppendAndWait(std::move(ok), &res));
  BOOST_CHECK_EQUAL(res.first_position, 2);
  BOOST_CHECK(res.versions == (std::vector<int64_t>{1, 2}));
  auto log = read_all(*store);
  BOOST_REQUIRE_EQUAL(log.size(), 3u);
  CHECK_LOG(log);
  BOOST_CHECK_EQUAL(log[1].stream, "card-n");
  BOOST_CHECK_EQUAL(log[2].stream, "wallet-u");
  BOOST_CHECK_EQUAL(log[1].recorded_at, log[2].recorded_at);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(claims_conflict_lists_every_existing_key, B, Backends) {
  B backend;
  auto store = backend.Open();
  // Three claims exist.
  AppendRequest setup = one("card-c", tagged("setup"));
  for (const char* k : {"code/A", "code/C", "code/E"})
    setup.claims.push_back({k, std::string("v-") + k, false});
  REQUIRE_OK(store->AppendAndWait(std::move(setup), nullptr));

  AppendRequest r = one("card-c", tagged("second"));
  for (const char* k : {"code/A", "code/B", "code/C", "code/D", "code/E"})
    r.claims.push_back({k, "new", false});
  AppendResult res;
  Status s = store->AppendAndWait(std::move(r), &res);
  BOOST_CHECK_MESSAGE(s.IsConflict(), s.ToString());
  BOOST_CHECK((std::set<std::string>(res.conflicts.begin(), res.conflicts.end()) ==
               std::set<std::string>{"code/A", "code/C", "code/E"}));
  BOOST_CHECK_EQUAL(res.conflicts.size(), 3u);
  BOOST_CHECK(res.conflict_stream.empty());
  // Nothing written: no events, the free keys are still free, the old values stay.
  BOOST_CHECK_EQUAL(store->LastPosition(), 1);
  BOOST_CHECK_EQUAL(stream_version(*store, "card-c"), 1);
  std::string value;
  BOOST_CHECK(store->GetClaim("code/B", &value).IsNotFound());
  BOOST_CHECK(store->GetClaim("code/D", &value).IsNotFound());
  CHECK_OK(store->GetClaim("code/A", &value));
  BOOST_CHECK_EQUAL(value, "v-code/A");
  CHECK_OK(store->Health());

  // Free keys can be claimed afterwards.
  AppendRequest free = one("card-c", tagged("third"));
  free.claims = {{"code/B", "b", false}, {"code/D", "d", false}};
  CHECK_OK(store->AppendAndWait(std::move(free), nullptr));
  CHECK_OK(store->GetClaim("code/D", &value));
  BOOST_CHECK_EQUAL(value, "d");
}

BOOST_AUTO_TEST_CASE_TEMPLATE(claim_twice_in_one_request_conflicts, B, Backends) {
  B backend;
  auto store = backend.Open();
  AppendRequest r = one("card-d", tagged("dup"));
  r.claims = {{"code/X", "1", false}, {"code/Y", "2", false}, {"code/X", "3", false}};
  AppendResult res;
  Status s = store->AppendAndWait(std::move(r), &res);
  BOOST_CHECK_MESSAGE(s.IsConflict(), s.ToString());
  BOOST_CHECK(std::find(res.conflicts.begin(), res.conflicts.end(), "code/X") !=
              res.conflicts.end());
  BOOST_CHECK(std::find(res.conflicts.begin(), res.conflicts.end(), "code/Y") ==
              res.conflicts.end());
  BOOST_CHECK_EQUAL(std::count(res.conflicts.begin(), res.conflicts.end(), "code/X"), 1);
  BOOST_CHECK_EQUAL(store->LastPosition(), 0);
  std::string value;
  BOOST_CHECK(store->GetClaim("code/X", &value).IsNotFound());
  BOOST_CHECK(store->GetClaim("code/Y", &value).IsNotFound());

  // Two requests of one group claiming the same key: the first wins.
  Callbacks cb(2);
  AppendRequest a = one("card-d", tagged("a"));
  a.claims = {{"code/Z", "first", false}};
  AppendRequest b = one("card-d", tagged("b"));
  b.claims = {{"code/Z", "second", false}};
  store->Append(std::move(a), cb.slot(0));
  store->Append(std::move(b), cb.slot(1));
  BOOST_REQUIRE(cb.wait());
  CHECK_OK(cb[0].status);
  BOOST_CHECK_MESSAGE(cb[1].status.IsConflict(), cb[1].status.ToString());
  BOOST_CHECK(cb[1].result.conflicts == std::vector<std::string>{"code/Z"});
  CHECK_OK(store->GetClaim("code/Z", &value));
  BOOST_CHECK_EQUAL(value, "first");
  auto log = read_all(*store);
  BOOST_REQUIRE_EQUAL(log.size(), 1u);
  BOOST_CHECK_EQUAL(tag_of(log[0]), "a");
}

BOOST_AUTO_TEST_CASE_TEMPLATE(concurrent_claims_exactly_one_wins, B, Backends) {
  B backend;
  auto store = backend.Open();
  constexpr int kThreads = 4;
  constexpr int kRounds = 60;
  struct Outcome {
    Status status;
    AppendResult result;
  };
  std::vector<std::vector<Outcome>> outcomes(kRounds, std::vector<Outcome>(kThreads));
  std::barrier sync(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int r = 0; r < kRounds; ++r) {
        AppendRequest req =
            one("card-race", tagged("r" + std::to_string(r) + "t" + std::to_string(t)));
        req.claims = {{"code/race-" + std::to_string(r), "t" + std::to_string(t), false}};
        sync.arrive_and_wait();
        auto& o = outcomes[static_cast<size_t>(r)][static_cast<size_t>(t)];
        o.status = store->AppendAndWait(std::move(req), &o.result);
      }
    });
  }
  for (auto& th : threads) th.join();

  for (int r = 0; r < kRounds; ++r) {
    const std::string key = "code/race-" + std::to_string(r);
    int winners = 0, winner = -1;
    for (int t = 0; t < kThreads; ++t) {
      const auto& o = outcomes[static_cast<size_t>(r)][static_cast<size_t>(t)];
      if (o.status.ok()) {
        ++winners;
        winner = t;
      } else {
        BOOST_CHECK_MESSAGE(o.status.IsConflict(), o.status.ToString());
        BOOST_CHECK(o.result.conflicts == std::vector<std::string>{key});
      }
    }
    BOOST_CHECK_MESSAGE(winners == 1, "round " << r << ": " << winners << " winners");
    std::string value;
    CHECK_OK(store->GetClaim(key, &value));
    BOOST_CHECK_EQUAL(value, "t" + std::to_string(winner));
  }
  auto log = read_all(*store);
  BOOST_CHECK_EQUAL(log.size(), static_cast<size_t>(kRounds));
  CHECK_LOG(log);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(claim_append_position_and_get_claim, B, Backends) {
  B backend;
  auto store = backend.Open();
  std::string value = "untouched";
  BOOST_CHECK(store->GetClaim("code/missing", &value).IsNotFound());

  // 300 events first, so that the position needs more than one byte.
  AppendRequest bulk;
  for (int i = 0; i < 300; ++i)
    bulk.events.push_back(PendingEvent::of("card-bulk", tagged(std::to_string(i))));
  REQUIRE_OK(store->AppendAndWait(std::move(bulk), nullptr));

  AppendRequest r;
  r.events.push_back(PendingEvent::of("card-p", tagged("p1")));
  r.events.push_back(PendingEvent::of("wallet-p", tagged("p2")));
  r.claims = {{"code/P", "card-p", true},
              {"idem/p/u\x1fk", std::string("raw\0bytes", 9), false},
              {"idem/c/u\x1fk", "", true}};
  AppendResult res;
  REQUIRE_OK(store->AppendAndWait(std::move(r), &res));
  BOOST_CHECK_EQUAL(res.first_position, 301);
  CHECK_OK(store->GetClaim("code/P", &value));
  BOOST_CHECK_EQUAL(value, "card-p" + be64(301));
  BOOST_CHECK_EQUAL(value.substr(value.size() - 8), std::string("\0\0\0\0\0\0\x01\x2d", 8));
  CHECK_OK(store->GetClaim("idem/p/u\x1fk", &value));
  BOOST_CHECK_EQUAL(value, std::string("raw\0bytes", 9));
  CHECK_OK(store->GetClaim("idem/c/u\x1fk", &value));
  BOOST_CHECK_EQUAL(value, be64(301));
  BOOST_CHECK(store->GetClaim("code/p", &value).IsNotFound());  // keys are exact

  // The helpers' namespaces.
  BOOST_CHECK_EQUAL(code_claim("ABCD"), "code/ABCD");
  BOOST_CHECK_EQUAL(purchase_idem_claim("u", "k"), "idem/p/u\x1fk");
  BOOST_CHECK_EQUAL(credit_idem_claim("u", "k"), "idem/c/u\x1fk");
  BOOST_CHECK_NE(purchase_idem_claim("u", "k"), credit_idem_claim("u", "k"));

  if constexpr (B::kDurable) {
    store.reset();
    store = backend.Open();
    CHECK_OK(store->GetClaim("code/P", &value));
    BOOST_CHECK_EQUAL(value, "card-p" + be64(301));
    AppendRequest again = one("card-p", tagged("again"));
    again.claims = {{"code/P", "x", false}};
    AppendResult res2;
    Status s = store->AppendAndWait(std::move(again), &res2);
    BOOST_CHECK_MESSAGE(s.IsConflict(), s.ToString());
    BOOST_CHECK(res2.conflicts == std::vector<std::string>{"code/P"});
  }
}

BOOST_AUTO_TEST_CASE_TEMPLATE(invalid_arguments, B, Backends) {
  B backend;
  auto store = backend.Open();
  REQUIRE_OK(store->AppendAndWait(one("card-ok", tagged("ok")), nullptr));

  Status s = store->AppendAndWait(AppendRequest{}, nullptr);
  BOOST_CHECK_MESSAGE(s.IsInvalidArgument(), "empty request: " << s.ToString());

  AppendRequest claims_only;
  claims_only.claims = {{"code/lonely", "v", false}};
  s = store->AppendAndWait(std::move(claims_only), nullptr);
  BOOST_CHECK_MESSAGE(s.IsInvalidArgument(), "claims only: " << s.ToString());
  std::string value;
  BOOST_CHECK(store->GetClaim("code/lonely", &value).IsNotFound());

  s = store->AppendAndWait(one("", tagged("empty")), nullptr);
  BOOST_CHECK_MESSAGE(s.IsInvalidArgument(), "empty stream: " << s.ToString());

  s = store->AppendAndWait(one(std::string("card\0nul", 8), tagged("nul")), nullptr);
  BOOST_CHECK_MESSAGE(s.IsInvalidArgument(), "NUL in stream: " << s.ToString());

  s = store->AppendAndWait(one(std::string(kMaxStreamName + 1, 's'), tagged("long")), nullptr);
  BOOST_CHECK_MESSAGE(s.IsInvalidArgument(), "long stream: " << s.ToString());

  AppendRequest huge;
  huge.events.push_back(
      PendingEvent{"card-ok", EventType::CardCreated, std::string(kMaxPayload + 1, 'x')});
  s = store->AppendAndWait(std::move(huge), nullptr);
  BOOST_CHECK_MESSAGE(s.IsInvalidArgument(), "oversize payload: " << s.ToString());

  // One bad event spoils the whole request.
  AppendRequest mixed = one("card-ok", tagged("good"));
  mixed.events.push_back(PendingEvent::of("", tagged("bad")));
  mixed.claims = {{"code/mixed", "v", false}};
  s = store->AppendAndWait(std::move(mixed), nullptr);
  BOOST_CHECK_MESSAGE(s.IsInvalidArgument(), "mixed: " << s.ToString());
  BOOST_CHECK(store->GetClaim("code/mixed", &value).IsNotFound());

  BOOST_CHECK_EQUAL(store->LastPosition(), 1);
  BOOST_CHECK_EQUAL(read_all(*store).size(), 1u);
  BOOST_CHECK_EQUAL(stream_version(*store, "card-ok"), 1);
  CHECK_OK(store->Health());  // invalid requests do not poison the store
  AppendResult res;
  CHECK_OK(store->AppendAndWait(one("card-ok", tagged("after")), &res));
  BOOST_CHECK_EQUAL(res.first_position, 2);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(subscribers_see_committed_events_once_in_order, B, Backends) {
  B backend;
  auto store = backend.Open();

  struct Seen {
    std::mutex mu;
    std::vector<StoredEvent> events;
    int empty_batches = 0;
    int64_t out_of_order = 0;
  };
  auto subscriber = [](Seen& seen) {
    return [&seen](const std::vector<StoredEvent>& batch) {
      std::lock_guard<std::mutex> lock(seen.mu);
      if (batch.empty()) seen.empty_batches++;
      for (const auto& e : batch) {
        int64_t expect = seen.events.empty() ? 1 : seen.events.back().position + 1;
        if (e.position != expect) seen.out_of_order++;
        seen.events.push_back(e);
      }
    };
  };
  Seen all, early;
  const uint64_t id_all = store->Subscribe(subscriber(all));
  const uint64_t id_early = store->Subscribe(subscriber(early));
  BOOST_CHECK_NE(id_all, id_early);

  AppendRequest taken = one("card-taken", tagged("taken"));
  taken.claims = {{"code/taken", "v", false}};
  REQUIRE_OK(store->AppendAndWait(std::move(taken), nullptr));

  constexpr int kThreads = 4;
  constexpr int kPerThread = 250;
  std::atomic<int> ok_requests{1}, ok_events{1}, rejected{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int j = 0; j < kPerThread; ++j) {
        const std::string tag = std::to_string(t) + "-" + std::to_string(j);
        AppendRequest r;
        int events = 1;
        switch (j % 5) {
          case 0:
          case 1:
            r = one("sub-" + std::to_string(t), tagged(tag));
            break;
          case 2:  // two streams at once
            r = one("sub-" + std::to_string(t), tagged(tag));
            r.events.push_back(PendingEvent::of("sub-shared", tagged(tag + "b")));
            events = 2;
            break;
          case 3:  // version conflict
            r = one("rejected-v", tagged(tag), 7);
            break;
          default:
            if (j % 10 == 4) {  // claim conflict
              r = one("rejected-c", tagged(tag));
              r.claims = {{"code/taken", "again", false}};
            } else {  // invalid stream name
              r = one("rejected-i", tagged(tag));
              r.events.push_back(PendingEvent::of("", tagged(tag)));
            }
        }
        Status s = store->AppendAndWait(std::move(r), nullptr);
        if (s.ok()) {
          ok_requests++;
          ok_events += events;
        } else {
          rejected++;
        }
      }
    });
  }
  // Unsubscribe one subscriber while appends are in flight.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  auto early_seen = [&] {
    std::lock_guard<std::mutex> lock(early.mu);
    return early.events.size();
  };
  while (early_seen() < 200 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  store->Unsubscribe(id_early);
  const size_t early_count = early_seen();
  for (auto& th : threads) th.join();
  store->Close();  // joins the writer: every subscriber call has returned

  BOOST_CHECK_EQUAL(ok_requests.load(), 1 + kThreads * kPerThread * 3 / 5);
  BOOST_CHECK_EQUAL(rejected.load(), kThreads * kPerThread * 2 / 5);
  BOOST_CHECK_EQUAL(store->Stats().rejected, static_cast<uint64_t>(rejected.load()));
  auto log = read_all(*store);
  BOOST_CHECK_EQUAL(log.size(), static_cast<size_t>(ok_events.load()));
  CHECK_LOG(log);
  for (const auto& e : log) BOOST_CHECK_MESSAGE(e.stream.rfind("rejected-", 0) != 0, e.stream);

  std::lock_guard<std::mutex> lock_all(all.mu);
  BOOST_CHECK_EQUAL(all.out_of_order, 0);
  BOOST_CHECK_EQUAL(all.empty_batches, 0);
  BOOST_CHECK_MESSAGE(same_log(all.events, log), "subscriber saw " << all.events.size()
                                                                   << " events, the log has "
                                                                   << log.size());
  std::lock_guard<std::mutex> lock_early(early.mu);
  BOOST_CHECK_EQUAL(early.events.size(), early_count);  // nothing after Unsubscribe
  BOOST_CHECK_GE(early.events.size(), 200u);
  BOOST_CHECK_EQUAL(early.out_of_order, 0);
  BOOST_REQUIRE_LE(early.events.size(), log.size());
  BOOST_CHECK(same_log(
      early.events, std::vector<StoredEvent>(log.begin(), log.begin() + static_cast<std::ptrdiff_t>(
                                                                            early.events.size()))));
}

BOOST_AUTO_TEST_CASE_TEMPLATE(callbacks_run_on_the_writer_before_subscribers, B, Backends) {
  B backend;
  auto store = backend.Open();
  const auto caller = std::this_thread::get_id();
  // Writer-thread state: touched only by callbacks and the subscriber.
  std::thread::id subscriber_thread;
  int64_t seen = 0;
  int inline_calls = 0, wrong_thread = 0, early_subscriber = 0;
  store->Subscribe([&](const std::vector<StoredEvent>& batch) {
    subscriber_thread = std::this_thread::get_id();
    seen = batch.back().position;
  });
  constexpr int kRequests = 300;
  Callbacks cb(kRequests + 1);
  for (int i = 0; i < kRequests; ++i) {
    AppendCallback inner = cb.slot(static_cast<size_t>(i));
    store->Append(one("card-cb", tagged(std::to_string(i)), i == 7 ? 99 : kAnyVersion),
                  [&, i, inner](const Status& s, const AppendResult& r) {
                    const auto me = std::this_thread::get_id();
                    if (me == caller) inline_calls++;
                    if (subscriber_thread != std::thread::id() && me != subscriber_thread)
                      wrong_thread++;
                    // Appenders hear first; the subscriber sees the batch afterwards.
                    if (s.ok() && seen >= r.first_position) early_subscriber++;
                    if (i == kRequests - 1)  // a callback may Append (without waiting)
                      store->Append(one("card-cb", tagged("chained")), cb.slot(kRequests));
                    inner(s, r);
                  });
  }
  BOOST_REQUIRE(cb.wait());
  store->Close();
  BOOST_CHECK_EQUAL(inline_calls, 0);
  BOOST_CHECK_EQUAL(wrong_thread, 0);
  BOOST_CHECK_EQUAL(early_subscriber, 0);
  BOOST_CHECK(subscriber_thread != caller);
  BOOST_CHECK(cb[7].status.IsConflict());
  CHECK_OK(cb[kRequests].status);
  BOOST_CHECK_EQUAL(seen, kRequests);  // 299 appended + the chained one
  auto log = read_all(*store);
  BOOST_REQUIRE_EQUAL(log.size(), static_cast<size_t>(kRequests));
  BOOST_CHECK_EQUAL(tag_of(log.back()), "chained");
}

BOOST_AUTO_TEST_CASE_TEMPLATE(close_commits_queued_then_refuses, B, Backends) {
  B backend;
  auto store = backend.Open();
  constexpr int kQueued = 200;
  Callbacks cb(kQueued);
  for (int i = 0; i < kQueued; ++i)
    store->Append(one("card-q", tagged(std::to_string(i)), i), cb.slot(static_cast<size_t>(i)));
  store->Close();
  BOOST_REQUIRE_EQUAL(cb.done(),
                      static_cast<size_t>(kQueued));  // all answered before Close returns
  for (int i = 0; i < kQueued; ++i) {
    BOOST_CHECK_MESSAGE(cb[static_cast<size_t>(i)].status.ok(),
                        cb[static_cast<size_t>(i)].status.ToString());
    BOOST_CHECK_EQUAL(cb[static_cast<size_t>(i)].calls, 1);
  }
  auto log = read_all(*store);  // reads still work after Close
  BOOST_CHECK_EQUAL(log.size(), static_cast<size_t>(kQueued));
  CHECK_LOG(log);

  Callbacks late(1);
  store->Append(one("card-q", tagged("late")), late.slot(0));
  BOOST_REQUIRE(late.wait(std::chrono::seconds(10)));
  BOOST_CHECK_EQUAL(late[0].calls, 1);
  BOOST_CHECK(late[0].status.code() == Status::Code::busy);
  BOOST_CHECK_EQUAL(store->LastPosition(), kQueued);
  store->Close();  // idempotent
}

BOOST_AUTO_TEST_CASE_TEMPLATE(sticky_failure, B, Backends) {
  B backend;
  auto store = backend.Open();
  for (int i = 0; i < 5; ++i)
    REQUIRE_OK(store->AppendAndWait(one("card-s", tagged(std::to_string(i))), nullptr));
  const auto before = read_all(*store);
  BOOST_REQUIRE_EQUAL(before.size(), 5u);

  store->TEST_FailNextCommits(1);
  AppendRequest doomed = one("card-failed", tagged("doomed"));
  doomed.claims = {{"code/doomed", "v", true}};
  Status s = store->AppendAndWait(std::move(doomed), nullptr);
  BOOST_CHECK_MESSAGE(s.IsIOError(), s.ToString());
  Status health = store->Health();
  BOOST_CHECK(!health.ok());
  BOOST_CHECK_MESSAGE(health.IsIOError(), health.ToString());
  BOOST_CHECK_EQUAL(store->LastPosition(), 5);

  // The injection is used up, yet every later append fails: the error is sticky.
  for (int i = 0; i < 3; ++i) {
    s = store->AppendAndWait(one("card-s", tagged("after" + std::to_string(i))), nullptr);
    BOOST_CHECK_MESSAGE(s.IsIOError(), s.ToString());
  }
  Callbacks cb(50);
  for (int i = 0; i < 50; ++i)
    store->Append(one("card-s", tagged("async")), cb.slot(static_cast<size_t>(i)));
  BOOST_REQUIRE(cb.wait());
  for (size_t i = 0; i < cb.size(); ++i)
    BOOST_CHECK_MESSAGE(cb[i].status.IsIOError(), cb[i].status.ToString());

  BOOST_CHECK_EQUAL(store->LastPosition(), 5);
  BOOST_CHECK(same_log(read_all(*store), before));
  BOOST_CHECK_EQUAL(stream_version(*store, "card-failed"), 0);
  BOOST_CHECK_EQUAL(stream_version(*store, "card-s"), 5);
  std::string value;
  BOOST_CHECK(store->GetClaim("code/doomed", &value).IsNotFound());
  BOOST_CHECK(!store->Health().ok());

  if constexpr (B::kDurable) {
    // Reopening clears the sticky error; the failed append left no trace.
    store.reset();
    store = backend.Open();
    CHECK_OK(store->Health());
    BOOST_CHECK_EQUAL(store->LastPosition(), 5);
    BOOST_CHECK(same_log(read_all(*store), before));
    BOOST_CHECK(read_stream(*store, "card-failed").empty());
    BOOST_CHECK(store->GetClaim("code/doomed", &value).IsNotFound());
    AppendRequest retry = one("card-failed", tagged("retry"), kNoStream);
    retry.claims = {{"code/doomed", "v", true}};
    AppendResult res;
    CHECK_OK(store->AppendAndWait(std::move(retry), &res));
    BOOST_CHECK_EQUAL(res.first_position, 6);
    BOOST_CHECK_EQUAL(res.versions.at(0), 1);
    CHECK_OK(store->GetClaim("code/doomed", &value));
    BOOST_CHECK_EQUAL(value, "v" + be64(6));
    auto log = read_all(*store);
    BOOST_REQUIRE_EQUAL(log.size(), 6u);
    CHECK_LOG(log);
    BOOST_CHECK(log[5].prev_hash == before.back().hash);
    BOOST_CHECK_EQUAL(tag_of(log[5]), "retry");
  }
}

// event_store.h: "`done` runs exactly once, on the writer thread" and "calls
// each request's callback *on the writer thread*". A caller that holds a lock
// across Append and takes it in its callback must not deadlock once the store
// has failed.
BOOST_AUTO_TEST_CASE_TEMPLATE(sticky_failure_callbacks_run_on_the_writer, B, Backends) {
  B backend;
  auto store = backend.Open();
  store->TEST_FailNextCommits(1);
  Status s = store->AppendAndWait(one("card-f", tagged("doomed")), nullptr);
  BOOST_REQUIRE_MESSAGE(s.IsIOError(), s.ToString());
  const auto caller = std::this_thread::get_id();
  Callbacks cb(1);
  std::thread::id callback_thread;
  AppendCallback inner = cb.slot(0);
  store->Append(one("card-f", tagged("later")), [&](const Status& st, const AppendResult& r) {
    callback_thread = std::this_thread::get_id();
    inner(st, r);
  });
  BOOST_REQUIRE(cb.wait(std::chrono::seconds(10)));
  BOOST_CHECK(cb[0].status.IsIOError());
  BOOST_CHECK_MESSAGE(callback_thread != caller,
                      "the callback of an Append on a sticky-failed store ran inline, on the "
                      "appending thread (Writer::Append), not on the writer thread");
}

BOOST_AUTO_TEST_CASE_TEMPLATE(sticky_failure_fails_the_whole_group, B, Backends) {
  B backend;
  auto store = backend.Open();
  REQUIRE_OK(store->AppendAndWait(one("card-g", tagged("first")), nullptr));
  store->TEST_FailNextCommits(1);
  // Several requests queued at once; whichever group fails, none may commit.
  constexpr int kRequests = 100;
  Callbacks cb(kRequests);
  for (int i = 0; i < kRequests; ++i)
    store->Append(one("card-g" + std::to_string(i % 3), tagged(std::to_string(i))),
                  cb.slot(static_cast<size_t>(i)));
  BOOST_REQUIRE(cb.wait());
  size_t failed = 0;
  for (size_t i = 0; i < cb.size(); ++i) failed += cb[i].status.IsIOError() ? 1 : 0;
  BOOST_CHECK_EQUAL(failed, static_cast<size_t>(kRequests));
  BOOST_CHECK_EQUAL(store->LastPosition(), 1);
  BOOST_CHECK_EQUAL(read_all(*store).size(), 1u);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(snapshots, B, Backends) {
  B backend;
  auto store = backend.Open();
  Snapshot snap{99, "untouched"};
  Status s = store->LoadSnapshot("card-snap", &snap);
  BOOST_CHECK_MESSAGE(s.IsNotFound(), s.ToString());

  REQUIRE_OK(store->AppendAndWait(one("card-snap", tagged("e1")), nullptr));
  const std::string binary("state\0with\xff bytes", 17);
  CHECK_OK(store->SaveSnapshot("card-snap", Snapshot{1, binary}));
  CHECK_OK(store->SaveSnapshot("card-empty", Snapshot{7, ""}));
  CHECK_OK(store->SaveSnapshot("card-over", Snapshot{1, "old"}));
  CHECK_OK(store->SaveSnapshot("card-over", Snapshot{2, "new"}));

  auto check = [&](EventStore& st) {
    Snapshot got;
    CHECK_OK(st.LoadSnapshot("card-snap", &got));
    BOOST_CHECK_EQUAL(got.version, 1);
    BOOST_CHECK_EQUAL(got.data, binary);
    CHECK_OK(st.LoadSnapshot("card-empty", &got));
    BOOST_CHECK_EQUAL(got.version, 7);
    BOOST_CHECK_EQUAL(got.data, "");
    CHECK_OK(st.LoadSnapshot("card-over", &got));
    BOOST_CHECK_EQUAL(got.version, 2);
    BOOST_CHECK_EQUAL(got.data, "new");
    BOOST_CHECK(st.LoadSnapshot("card-sna", &got).IsNotFound());
    BOOST_CHECK(st.LoadSnapshot("card-snap2", &got).IsNotFound());
    // Snapshots are not events.
    auto log = read_all(st);
    BOOST_CHECK_EQUAL(log.size(), 1u);
    BOOST_CHECK_EQUAL(stream_version(st, "card-empty"), 0);
    BOOST_CHECK_EQUAL(st.LastPosition(), 1);
  };
  check(*store);
  if constexpr (B::kDurable) {
    store.reset();
    store = backend.Open();
    check(*store);
  }
}

BOOST_AUTO_TEST_SUITE_END()

// ===========================================================================
// Group commit under real threads: its own suite (and ctest), as the slowest.
BOOST_AUTO_TEST_SUITE(event_store_group_commit)

BOOST_AUTO_TEST_CASE_TEMPLATE(threads_append_concurrently, B, Backends) {
  B backend;
  auto store = backend.Open();
  constexpr int kThreads = 8;
  constexpr int kPerThread = 2000;
  constexpr int kTotal = kThreads * kPerThread;
  Callbacks cb(kTotal);
  std::barrier start(kThreads + 1);
  std::atomic<bool> writers_done{false};

  // Even requests go to the thread's own stream with an exact expected version
  // (FIFO queueing makes it predictable); odd ones to shared streams, unchecked.
  auto request = [](int t, int j) {
    const std::string tag = std::to_string(t) + "-" + std::to_string(j);
    if (j % 2 == 0) return one("own-" + std::to_string(t), tagged(tag), j / 2);
    return one("shared-" + std::to_string(j % 3), tagged(tag));
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      for (int j = 0; j < kPerThread; ++j)
        store->Append(request(t, j), cb.slot(static_cast<size_t>(t * kPerThread + j)));
    });
  }
  // A reader alongside: every read is a gap-free, chained window that reaches
  // at least the LastPosition published before it (only committed data).
  std::atomic<int> reads{0};
  std::string reader_error;
  std::thread reader([&] {
    start.arrive_and_wait();
    while (!writers_done.load() && reader_error.empty()) {
      const int64_t last = store->LastPosition();
      const int64_t from = std::max<int64_t>(1, last - 20);
      std::vector<StoredEvent> out;
      Status s = store->ReadAll(from, 64, &out);
      if (!s.ok()) {
        reader_error = "ReadAll: " + s.ToString();
        break;
      }
      if (last > 0 && (out.empty() || out.front().position != from ||
                       out.back().position < std::min<int64_t>(last, from + 63)))
        reader_error = "ReadAll window does not reach LastPosition " + std::to_string(last);
      for (size_t i = 1; i < out.size() && reader_error.empty(); ++i)
        if (out[i].position != out[i - 1].position + 1 || out[i].prev_hash != out[i - 1].hash)
          reader_error = "ReadAll window broken at " + std::to_string(out[i].position);
      reads++;
    }
  });
  for (auto& th : threads) th.join();
  const bool all_answered = cb.wait();
  writers_done = true;
  reader.join();
  BOOST_REQUIRE_MESSAGE(all_answered, cb.done() << " of " << kTotal << " callbacks ran");
  BOOST_CHECK_MESSAGE(reader_error.empty(), reader_error);
  BOOST_TEST_MESSAGE("concurrent reads: " << reads.load());

  // Every request succeeded, exactly once; positions are a permutation of 1..N.
  std::vector<int> owner(kTotal + 1, -1);
  for (int i = 0; i < kTotal; ++i) {
    const auto& slot = cb[static_cast<size_t>(i)];
    BOOST_CHECK_EQUAL(slot.calls, 1);
    if (!slot.status.ok()) {
      BOOST_ERROR("request " << i << ": " << slot.status.ToString());
      continue;
    }
    const int64_t p = slot.result.first_position;
    if (p < 1 || p > kTotal || owner[static_cast<size_t>(p)] != -1) {
      BOOST_ERROR("request " << i << " got position " << p << " (out of range or duplicate)");
      continue;
    }
    owner[static_cast<size_t>(p)] = i;
  }
  // Per thread, its own stream's versions follow its submission order.
  for (int t = 0; t < kThreads; ++t)
    for (int j = 0; j < kPerThread; j += 2) {
      const auto& slot = cb[static_cast<size_t>(t * kPerThread + j)];
      if (slot.status.ok() && slot.result.versions.at(0) != j / 2 + 1)
        BOOST_ERROR("thread " << t << " request " << j << " got version "
                              << slot.result.versions.at(0));
    }

  StoreStats stats = store->Stats();
  BOOST_TEST_MESSAGE("batches " << stats.batches << ", requests " << stats.requests
                                << ", max batch " << stats.max_batch_requests);
  BOOST_CHECK_EQUAL(stats.requests, static_cast<uint64_t>(kTotal));
  BOOST_CHECK_EQUAL(stats.events, static_cast<uint64_t>(kTotal));
  BOOST_CHECK_EQUAL(stats.rejected, 0u);
  BOOST_CHECK_GE(stats.batches, 1u);
  BOOST_CHECK_LT(stats.batches, stats.requests);  // group commit happened
  BOOST_CHECK_GT(stats.max_batch_requests, 1u);
  BOOST_CHECK_EQUAL(store->LastPosition(), kTotal);

  auto check_log_matches = [&](EventStore& s) {
    auto log = read_all(s);
    BOOST_REQUIRE_EQUAL(log.size(), static_cast<size_t>(kTotal));
    CHECK_LOG(log);  // includes gap-free per-stream versions
    int mismatches = 0;
    for (const auto& e : log) {
      const int i = owner[static_cast<size_t>(e.position)];
      if (i < 0) continue;
      const int t = i / kPerThread, j = i % kPerThread;
      const AppendRequest r = request(t, j);
      if (e.stream != r.events[0].stream || e.payload != r.events[0].payload ||
          e.version != cb[static_cast<size_t>(i)].result.versions.at(0))
        ++mismatches;
    }
    BOOST_CHECK_EQUAL(mismatches, 0);
    for (int t = 0; t < kThreads; ++t)
      BOOST_CHECK_EQUAL(stream_version(s, "own-" + std::to_string(t)), kPerThread / 2);
    int64_t shared = 0;
    for (int k = 0; k < 3; ++k) shared += stream_version(s, "shared-" + std::to_string(k));
    BOOST_CHECK_EQUAL(shared, kTotal / 2);
  };
  check_log_matches(*store);
  if constexpr (B::kDurable) {
    store.reset();
    store = backend.Open();
    check_log_matches(*store);
  }
}

BOOST_AUTO_TEST_SUITE_END()

// ===========================================================================
BOOST_AUTO_TEST_SUITE(rocks_store)

BOOST_AUTO_TEST_CASE(reopen_keeps_everything_and_continues_the_chain) {
  TempDir dir;
  const StoreOptions opts = rocks_options(dir.sub("db"));
  std::vector<StoredEvent> before;
  {
    auto store = open_rocks(opts);
    for (int i = 0; i < 40; ++i) {
      AppendRequest r = one("card-" + std::to_string(i % 4), tagged("a" + std::to_string(i)));
      if (i % 5 == 0)
        r.events.push_back(PendingEvent::of("wallet-w", tagged("b" + std::to_string(i))));
      r.claims = {{"code/k" + std::to_string(i), "v" + std::to_string(i), i % 2 == 0}};
      REQUIRE_OK(store->AppendAndWait(std::move(r), nullptr));
    }
    CHECK_OK(store->SaveSnapshot("card-0", Snapshot{10, "snap"}));
    before = read_all(*store);
    BOOST_REQUIRE_EQUAL(before.size(), 48u);
    store->Close();
  }
  for (int cycle = 0; cycle < 2; ++cycle) {
    auto store = open_rocks(opts);
    CHECK_OK(store->Health());
    const int64_t last = static_cast<int64_t>(before.size());
    BOOST_CHECK_EQUAL(store->LastPosition(), last);
    BOOST_CHECK(same_log(read_all(*store), before));
    BOOST_CHECK_EQUAL(stream_version(*store, "card-3"), 10);
    BOOST_CHECK_EQUAL(stream_version(*store, "wallet-w"), 8);
    std::string value;
    CHECK_OK(store->GetClaim("code/k7", &value));
    BOOST_CHECK_EQUAL(value, "v7");
    Snapshot snap;
    CHECK_OK(store->LoadSnapshot("card-0", &snap));
    BOOST_CHECK_EQUAL(snap.data, "snap");

    // Heads and claims are checked against what is on disk.
    Status s = store->AppendAndWait(one("card-1", tagged("x"), 3), nullptr);
    BOOST_CHECK_MESSAGE(s.IsConflict(), s.ToString());
    AppendRequest dup = one("card-1", tagged("x"));
    dup.claims = {{"code/k0", "again", false}};
    s = store->AppendAndWait(std::move(dup), nullptr);
    BOOST_CHECK_MESSAGE(s.IsConflict(), s.ToString());

    AppendResult res;
    const int64_t v1 = stream_version(*store, "card-1");
    REQUIRE_OK(store->AppendAndWait(one("card-1", tagged("c" + std::to_string(cycle)), v1), &res));
    BOOST_CHECK_EQUAL(res.first_position, last + 1);
    BOOST_CHECK_EQUAL(res.versions.at(0), v1 + 1);
    BOOST_CHECK_GE(res.recorded_at, before.back().recorded_at);
    auto log = read_all(*store);
    BOOST_REQUIRE_EQUAL(log.size(), before.size() + 1);
    CHECK_LOG(log);
    BOOST_CHECK(log.back().prev_hash == before.back().hash);
    before = log;
  }
}

BOOST_AUTO_TEST_CASE(open_without_create_if_missing) {
  TempDir dir;
  StoreOptions opts = rocks_options(dir.path());  // exists, but empty
  opts.create_if_missing = false;
  std::unique_ptr<EventStore> store;
  Status s = OpenRocksEventStore(opts, &store);
  BOOST_CHECK_MESSAGE(s.IsNotFound(), s.ToString());
  BOOST_CHECK(store == nullptr);
  BOOST_CHECK(fs::is_empty(dir.path()));

  opts.path = dir.sub("absent");
  s = OpenRocksEventStore(opts, &store);
  BOOST_CHECK_MESSAGE(s.IsNotFound(), s.ToString());
  BOOST_CHECK(!fs::exists(opts.path));

  opts.mode = StoreOptions::Mode::secondary;
  opts.secondary_path = dir.sub("secondary");
  s = OpenRocksEventStore(opts, &store);
  BOOST_CHECK_MESSAGE(s.IsNotFound(), s.ToString());

  // Once created, opening without create_if_missing works.
  opts = rocks_options(dir.sub("db"));
  {
    auto created = open_rocks(opts);
    REQUIRE_OK(created->AppendAndWait(one("card-1", tagged("x")), nullptr));
  }
  opts.create_if_missing = false;
  auto reopened = open_rocks(opts);
  BOOST_CHECK_EQUAL(reopened->LastPosition(), 1);
}

BOOST_AUTO_TEST_CASE(second_read_write_instance_is_refused) {
  TempDir dir;
  const StoreOptions opts = rocks_options(dir.sub("db"));
  auto first = open_rocks(opts);
  REQUIRE_OK(first->AppendAndWait(one("card-1", tagged("x")), nullptr));

  std::unique_ptr<EventStore> second;
  Status s = OpenRocksEventStore(opts, &second);
  BOOST_CHECK_MESSAGE(!s.ok(), "a second writer opened a locked store");
  BOOST_TEST_MESSAGE("second open: " << s.ToString());
  BOOST_CHECK(second == nullptr);

  // The first is unaffected; after it is gone the store opens again.
  AppendResult res;
  CHECK_OK(first->AppendAndWait(one("card-1", tagged("y")), &res));
  BOOST_CHECK_EQUAL(res.first_position, 2);
  first.reset();
  auto third = open_rocks(opts);
  BOOST_CHECK_EQUAL(third->LastPosition(), 2);
}

BOOST_AUTO_TEST_CASE(secondary_reads_and_catches_up) {
  TempDir dir;
  const StoreOptions opts = rocks_options(dir.sub("db"));
  auto primary = open_rocks(opts);
  for (int i = 0; i < 20; ++i) {
    AppendRequest r = one("card-" + std::to_string(i % 3), tagged(std::to_string(i)));
    r.claims = {{"code/s" + std::to_string(i), "v", true}};
    REQUIRE_OK(primary->AppendAndWait(std::move(r), nullptr));
  }

  StoreOptions sopts = rocks_options(dir.sub("db"));
  sopts.mode = StoreOptions::Mode::secondary;
  sopts.create_if_missing = false;
  sopts.secondary_path = dir.sub("secondary");
  auto secondary = open_rocks(sopts);
  BOOST_CHECK_EQUAL(secondary->LastPosition(), 20);
  BOOST_CHECK(same_log(read_all(*secondary), read_all(*primary)));
  CHECK_LOG(read_all(*secondary));
  BOOST_CHECK_EQUAL(stream_version(*secondary, "card-1"), 7);
  std::string value;
  CHECK_OK(secondary->GetClaim("code/s5", &value));
  BOOST_CHECK_EQUAL(value, "v" + be64(6));

  // A secondary never modifies the store.
  Status s = secondary->AppendAndWait(one("card-1", tagged("nope")), nullptr);
  BOOST_CHECK_MESSAGE(!s.ok(), "append on a secondary succeeded");
  BOOST_CHECK(!secondary->SaveSnapshot("card-1", Snapshot{1, "x"}).ok());

  for (int i = 20; i < 50; ++i) {
    AppendRequest r = one("card-" + std::to_string(i % 3), tagged(std::to_string(i)));
    r.claims = {{"code/s" + std::to_string(i), "v", true}};
    REQUIRE_OK(primary->AppendAndWait(std::move(r), nullptr));
  }
  BOOST_CHECK_EQUAL(primary->LastPosition(), 50);
  BOOST_CHECK_EQUAL(secondary->LastPosition(), 20);  // not before catching up

  CHECK_OK(CatchUpWithPrimary(secondary.get()));
  BOOST_CHECK_EQUAL(secondary->LastPosition(), 50);
  auto seen = read_all(*secondary);
  BOOST_CHECK_EQUAL(seen.size(), 50u);
  BOOST_CHECK(same_log(seen, read_all(*primary)));
  CHECK_LOG(seen);
  BOOST_CHECK_EQUAL(stream_version(*secondary, "card-1"), 17);
  BOOST_CHECK(same_log(read_stream(*secondary, "card-2"), read_stream(*primary, "card-2")));
  CHECK_OK(secondary->GetClaim("code/s49", &value));
  BOOST_CHECK_EQUAL(value, "v" + be64(50));

  // Catching up is a no-op for the primary and for the memory store.
  CHECK_OK(CatchUpWithPrimary(primary.get()));
  auto memory = NewMemoryEventStore();
  CHECK_OK(CatchUpWithPrimary(memory.get()));

  // The secondary survives the primary closing, and still reads.
  primary.reset();
  BOOST_CHECK_EQUAL(read_all(*secondary).size(), 50u);
}

BOOST_AUTO_TEST_CASE(verify_checksums_on_a_clean_store) {
  TempDir dir;
  const StoreOptions opts = rocks_options(dir.sub("db"));
  {
    auto store = open_rocks(opts);
    CHECK_OK(VerifyRocksChecksums(store.get()));  // empty
    for (int i = 0; i < 200; ++i)
      REQUIRE_OK(store->AppendAndWait(
          one("card-" + std::to_string(i % 7), tagged(std::to_string(i))), nullptr));
    CHECK_OK(VerifyRocksChecksums(store.get()));
  }
  auto store = open_rocks(opts);  // recovery writes the WAL into table files
  CHECK_OK(VerifyRocksChecksums(store.get()));
  BOOST_CHECK_EQUAL(read_all(*store).size(), 200u);
  auto memory = NewMemoryEventStore();
  CHECK_OK(VerifyRocksChecksums(memory.get()));
}

BOOST_AUTO_TEST_SUITE_END()

// ===========================================================================
// kill -9 restart test. A forked child opens the store and appends purchases
// one by one (CodeAssigned + WalletDebited, two claims); after each ack it
// writes (index, position) to a pipe. The parent SIGKILLs it at a random
// moment, reopens the store and checks that every acked purchase is there,
// whole, and that the log is gap-free and chained. The parent holds no open
// store when it forks.
namespace {

constexpr int kCrashRequests = 500;

struct Ack {
  int64_t index;
  int64_t position;
};

std::string crash_user(int i) { return "u" + std::to_string(i % 5); }
std::string crash_code(int round, int i) {
  return "R" + std::to_string(round) + "-C" + std::to_string(i);
}
std::string crash_purchase(int round, int i) {
  return "p" + std::to_string(round) + "-" + std::to_string(i);
}
std::string crash_key(int round, int i) {
  return "k" + std::to_string(round) + "-" + std::to_string(i);
}

AppendRequest crash_request(int round, int i, int64_t card_version) {
  const std::string user = crash_user(i);
  AppendRequest r;
  r.events.push_back(PendingEvent::of(
      "card-crash", CodeAssigned{"crash", crash_code(round, i), crash_purchase(round, i), user, 100,
                                 crash_key(round, i)}));
  r.events.push_back(PendingEvent::of(
      wallet_stream(user), WalletDebited{user, 100, 0, crash_purchase(round, i), "crash"}));
  r.expected = {{"card-crash", card_version}};
  r.claims = {{code_claim(crash_code(round, i)), "", true},
              {purchase_idem_claim(user, crash_key(round, i)), crash_purchase(round, i), false}};
  return r;
}

bool write_all(int fd, const void* data, size_t n) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

// Runs in the child. Never returns; no Boost.Test here, only exit codes.
[[noreturn]] void crash_child(const std::string& path, int fd, int round) {
  try {
    std::unique_ptr<EventStore> store;
    if (!OpenRocksEventStore(rocks_options(path), &store).ok()) ::_exit(2);
    int64_t card_version = 0;
    if (!store->StreamVersion("card-crash", &card_version).ok()) ::_exit(3);
    for (int i = 0; i < kCrashRequests; ++i) {
      AppendResult res;
      if (!store->AppendAndWait(crash_request(round, i, card_version), &res).ok()) ::_exit(4);
      card_version = res.versions.at(0);
      const Ack ack{i, res.first_position};
      if (!write_all(fd, &ack, sizeof ack)) ::_exit(5);
    }
    for (;;) ::pause();  // a server that stays up until killed
  } catch (...) {
    ::_exit(6);
  }
}

}  // namespace

BOOST_AUTO_TEST_SUITE(rocks_crash)

BOOST_AUTO_TEST_CASE(kill9_keeps_every_acknowledged_append) {
  TempDir dir;
  const std::string path = dir.sub("db");
  std::random_device rd;
  const unsigned seed = rd();
  BOOST_TEST_MESSAGE("seed " << seed);
  std::mt19937 rng(seed);
  std::vector<StoredEvent> previous;  // the log as of the last round

  constexpr int kRounds = 3;
  for (int round = 0; round < kRounds; ++round) {
    const int kill_after = std::uniform_int_distribution<int>(100, 400)(rng);
    int fds[2];
    BOOST_REQUIRE_EQUAL(::pipe(fds), 0);
    std::fflush(nullptr);
    const pid_t pid = ::fork();
    BOOST_REQUIRE(pid >= 0);
    if (pid == 0) {
      ::close(fds[0]);
      crash_child(path, fds[1], round);
    }
    ::close(fds[1]);

    // Read acks until it is time to kill; then drain what the child wrote.
    std::vector<Ack> acks;
    std::string buf;
    bool killed = false, eof = false, timed_out = false;
    while (!eof) {
      if (!killed && static_cast<int>(acks.size()) >= kill_after) {
        ::kill(pid, SIGKILL);
        killed = true;
      }
      pollfd p{fds[0], POLLIN, 0};
      int ready = ::poll(&p, 1, 60000);
      if (ready < 0 && errno == EINTR) continue;
      if (ready == 0) {
        timed_out = true;
        ::kill(pid, SIGKILL);
        killed = true;
        break;
      }
      char chunk[4096];
      ssize_t n = ::read(fds[0], chunk, sizeof chunk);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        eof = true;
        break;
      }
      buf.append(chunk, static_cast<size_t>(n));
      while (buf.size() >= sizeof(Ack)) {
        Ack a;
        std::memcpy(&a, buf.data(), sizeof a);
        acks.push_back(a);
        buf.erase(0, sizeof a);
      }
    }
    ::close(fds[0]);
    int wstatus = 0;
    BOOST_REQUIRE_EQUAL(::waitpid(pid, &wstatus, 0), pid);
    BOOST_REQUIRE_MESSAGE(
        !timed_out, "round " << round << ": the child stalled after " << acks.size() << " acks");
    BOOST_REQUIRE_MESSAGE(WIFSIGNALED(wstatus) && WTERMSIG(wstatus) == SIGKILL,
                          "round " << round << ": child ended on its own, status " << wstatus
                                   << " (exit code "
                                   << (WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1) << ") after "
                                   << acks.size() << " acks");
    BOOST_CHECK(buf.empty());  // no torn ack records
    BOOST_REQUIRE_GE(static_cast<int>(acks.size()), kill_after);
    BOOST_TEST_MESSAGE("round " << round << ": killed after " << kill_after << " acks read, "
                                << acks.size() << " acked in all");

    // Reopen and check.
    auto store = open_rocks(rocks_options(path));
    CHECK_OK(store->Health());
    CHECK_OK(VerifyRocksChecksums(store.get()));
    auto log = read_all(*store);
    CHECK_LOG(log);
    BOOST_CHECK_EQUAL(store->LastPosition(), static_cast<int64_t>(log.size()));
    BOOST_REQUIRE_GE(log.size(), previous.size());
    BOOST_CHECK(
        same_log(std::vector<StoredEvent>(
                     log.begin(), log.begin() + static_cast<std::ptrdiff_t>(previous.size())),
                 previous));

    for (size_t k = 0; k < acks.size(); ++k) {
      const Ack& a = acks[k];
      BOOST_REQUIRE_EQUAL(a.index, static_cast<int64_t>(k));
      const int i = static_cast<int>(a.index);
      if (a.position < 1 || a.position + 1 > static_cast<int64_t>(log.size())) {
        BOOST_ERROR("round " << round << ": acked purchase " << i << " at " << a.position
                             << " is missing");
        continue;
      }
      Event first = decoded(log[static_cast<size_t>(a.position - 1)]);
      Event second = decoded(log[static_cast<size_t>(a.position)]);
      const auto* assigned = std::get_if<CodeAssigned>(&first);
      const auto* debited = std::get_if<WalletDebited>(&second);
      if (!assigned || !debited || assigned->purchase_id != crash_purchase(round, i) ||
          debited->purchase_id != crash_purchase(round, i)) {
        BOOST_ERROR("round " << round << ": acked purchase " << i << " at " << a.position
                             << " is not there");
        continue;
      }
      std::string value;
      Status s = store->GetClaim(code_claim(crash_code(round, i)), &value);
      if (!s.ok() || value != be64(a.position))
        BOOST_ERROR("round " << round << ": code claim of purchase " << i << ": " << s.ToString());
      s = store->GetClaim(purchase_idem_claim(crash_user(i), crash_key(round, i)), &value);
      if (!s.ok() || value != crash_purchase(round, i))
        BOOST_ERROR("round " << round << ": idempotency claim of purchase " << i << ": "
                             << s.ToString());
    }

    // This round's purchases: whole pairs, in order, all acked but at most the
    // one in flight when the child died.
    int present = 0;
    for (size_t p = previous.size(); p < log.size(); ++p) {
      Event ev = decoded(log[p]);
      const auto* assigned = std::get_if<CodeAssigned>(&ev);
      if (!assigned) {
        BOOST_ERROR("round " << round << ": position " << p + 1 << " is not a CodeAssigned");
        break;
      }
      BOOST_CHECK_EQUAL(assigned->purchase_id, crash_purchase(round, present));
      BOOST_REQUIRE_MESSAGE(p + 1 < log.size(), "torn purchase at the end of the log");
      Event next = decoded(log[p + 1]);
      const auto* debited = std::get_if<WalletDebited>(&next);
      BOOST_CHECK_MESSAGE(debited && debited->purchase_id == assigned->purchase_id,
                          "purchase at " << p + 1 << " without its WalletDebited");
      ++p;
      ++present;
    }
    BOOST_CHECK_GE(present, static_cast<int>(acks.size()));
    BOOST_CHECK_LE(present, static_cast<int>(acks.size()) + 1);

    // The store takes appends again, continuing the chain and the stream.
    AppendResult res;
    const int64_t card_version = stream_version(*store, "card-crash");
    BOOST_CHECK_EQUAL(card_version,
                      static_cast<int64_t>((log.size() - static_cast<size_t>(round)) / 2));
    CHECK_OK(
        store->AppendAndWait(one("marker", tagged("after-round-" + std::to_string(round))), &res));
    BOOST_CHECK_EQUAL(res.first_position, static_cast<int64_t>(log.size()) + 1);
    previous = read_all(*store);
    BOOST_REQUIRE_EQUAL(previous.size(), log.size() + 1);
    CHECK_LOG(previous);
    if (!log.empty()) BOOST_CHECK(previous.back().prev_hash == log.back().hash);
    store.reset();  // no open store at the next fork
  }
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace giftcard
