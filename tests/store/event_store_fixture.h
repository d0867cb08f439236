// What the event store tests share (event_store_test.cc,
// event_store_writer_test.cc, rocks_store_test.cc): temp dirs and the two
// backends, requests and reads, the invariants of a whole log, and async
// append callbacks.
#pragma once

#include <boost/mpl/list.hpp>
#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "events/codec.h"
#include "events/envelope.h"
#include "events/events.h"
#include "events/status.h"
#include "store/event_store.h"
#include "store/memory_event_store.h"
#include "store/rocks_event_store.h"
#include "tests/support/be.h"

namespace giftcard::test {

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

inline StoreOptions rocks_options(const std::string& path) {
  StoreOptions o;
  o.path = path;
  o.block_cache_bytes = 8u << 20;
  return o;
}

inline std::unique_ptr<EventStore> open_rocks(const StoreOptions& o) {
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
inline Event tagged(const std::string& tag, int64_t amount = 100) {
  return WalletCredited{"user-" + tag, amount, amount * 2, tag};
}

// Samples of every event type, for the round-trip test.
inline Event sample(int i) {
  const std::string n = std::to_string(i);
  switch (i % 7) {
    case 0: return CardCreated{"card" + n, "Card \xE2\x82\xAC " + n, 100 + i, 200 + i};
    case 1: return CodesAdded{"card" + n, {{"CODE-" + n, 0}, {"CODE-X" + n, 1767225600000000}}};
    case 2: return CodeAssigned{"card" + n, "CODE-" + n, "p-" + n, "alice", 150, "k-" + n};
    case 3: return CodeRevoked{"card" + n, "CODE-" + n};
    case 4: return CodesExpired{"card" + n, {"A-" + n, "B-" + n}};
    case 5: return WalletCredited{"bob", 1000 + i, 5000, "credit-" + n};
    default: return WalletDebited{"bob", 15, 4985, "p-" + n, "card" + n};
  }
}

inline AppendRequest one(const std::string& stream, const Event& e,
                         int64_t expected = kAnyVersion) {
  AppendRequest r;
  r.events.push_back(PendingEvent::of(stream, e));
  if (expected != kAnyVersion) r.expected.emplace_back(stream, expected);
  return r;
}

inline std::vector<StoredEvent> read_all(EventStore& store, int64_t from = 1, size_t max = kAll) {
  std::vector<StoredEvent> out;
  Status s = store.ReadAll(from, max, &out);
  BOOST_REQUIRE_MESSAGE(s.ok(), "ReadAll: " << s.ToString());
  return out;
}

inline std::vector<StoredEvent> read_stream(EventStore& store, const std::string& stream,
                                            int64_t from = 1, size_t max = kAll) {
  std::vector<StoredEvent> out;
  Status s = store.ReadStream(stream, from, max, &out);
  BOOST_REQUIRE_MESSAGE(s.ok(), "ReadStream(" << stream << "): " << s.ToString());
  return out;
}

inline int64_t stream_version(EventStore& store, const std::string& stream) {
  int64_t v = -1;
  Status s = store.StreamVersion(stream, &v);
  BOOST_REQUIRE_MESSAGE(s.ok(), "StreamVersion(" << stream << "): " << s.ToString());
  return v;
}

inline Event decoded(const StoredEvent& e) {
  Event ev;
  Status s = e.decode(&ev);
  BOOST_REQUIRE_MESSAGE(s.ok(), "decode at " << e.position << ": " << s.ToString());
  return ev;
}

inline std::string tag_of(const StoredEvent& e) {
  Event ev = decoded(e);
  const auto* w = std::get_if<WalletCredited>(&ev);
  return w ? w->idempotency_key : std::string();
}

inline bool same_event(const StoredEvent& a, const StoredEvent& b) {
  return a.position == b.position && a.stream == b.stream && a.version == b.version &&
         a.type == b.type && a.recorded_at == b.recorded_at && a.payload == b.payload &&
         a.prev_hash == b.prev_hash && a.hash == b.hash;
}

inline bool same_log(const std::vector<StoredEvent>& a, const std::vector<StoredEvent>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (!same_event(a[i], b[i])) return false;
  return true;
}

// The invariants of a whole log as ReadAll(1, ...) returns it: positions
// 1..N in order, the hash chain from the zero hash with recomputable hashes,
// recorded_at positive and non-decreasing, per-stream versions 1..k in
// position order, payloads that decode to their type. "" if all hold.
inline std::string check_log(const std::vector<StoredEvent>& log) {
  Hash prev{};
  Micros last_at = 0;
  std::map<std::string, int64_t> versions;
  for (size_t i = 0; i < log.size(); ++i) {
    const StoredEvent& e = log[i];
    const std::string at = "log[" + std::to_string(i) + "] (position " +
                           std::to_string(e.position) + "): ";
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

}  // namespace giftcard::test
