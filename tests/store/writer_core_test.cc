// WriterCore (store/writer_core.h): the thread-free admission and group
// commit that the writer thread and the simulation both drive.
#include <boost/test/unit_test.hpp>

#include <map>
#include <set>

#include "store/writer_core.h"

namespace giftcard {
namespace {

// Committed state in two maps; Commit writes unless told to fail.
class MapBackend final : public WriterBackend {
 public:
  Status LoadHead(const std::string& stream, int64_t* version) override {
    *version = heads[stream];
    return Status::OK();
  }
  Status ClaimExists(const std::string& key, bool* exists) override {
    *exists = claims.count(key) > 0;
    return Status::OK();
  }
  Status Commit(const std::vector<StoredEvent>& events,
                const std::vector<std::pair<std::string, std::string>>& cs,
                const std::vector<std::pair<std::string, Snapshot>>&) override {
    if (fail) return Status::IOError("disk");
    for (const auto& e : events) {
      log.push_back(e);
      heads[e.stream] = e.version;
    }
    for (const auto& [k, v] : cs) claims[k] = v;
    return Status::OK();
  }
  std::map<std::string, int64_t> heads;
  std::map<std::string, std::string> claims;
  std::vector<StoredEvent> log;
  bool fail = false;
};

AppendRequest one(const std::string& stream, size_t payload_bytes = 8,
                  int64_t expected = kAnyVersion, std::string claim = {}) {
  AppendRequest r;
  r.events.push_back(PendingEvent{stream, EventType::CodeRevoked, std::string(payload_bytes, 'x')});
  if (expected != kAnyVersion) r.expected.emplace_back(stream, expected);
  if (!claim.empty()) r.claims.push_back(Claim{std::move(claim), "v", true});
  return r;
}

std::vector<WriteRequest> group_of(std::vector<AppendRequest> reqs) {
  std::vector<WriteRequest> g;
  for (auto& r : reqs) g.emplace_back(std::move(r), [](const Status&, const AppendResult&) {});
  return g;
}

// One group through the core, as a driver runs it.
WriteBatch run(WriterCore& core, MapBackend& backend, std::vector<WriteRequest>& group) {
  Status sticky;
  WriteBatch batch = core.Admit(group, &sticky, {});
  Status commit = backend.Commit(batch.events, batch.claims, batch.snapshots);
  core.Finish(group, batch, commit, commit.ok() ? Status::OK() : Status::IOError("sticky"));
  return batch;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(writer_core)

BOOST_AUTO_TEST_CASE(a_group_is_capped_by_count_and_by_bytes) {
  std::deque<WriteRequest> q;
  auto push = [&](size_t bytes) {
    q.emplace_back(one("s", bytes), [](const Status&, const AppendResult&) {});
  };
  BOOST_TEST(WriterCore::GroupSize(q) == 0u);
  for (int i = 0; i < 10; ++i) push(100);
  BOOST_TEST(WriterCore::GroupSize(q) == 10u);
  push(kMaxGroupBytes);  // a large import waits for the next group
  push(100);
  BOOST_TEST(WriterCore::GroupSize(q) == 10u);
  for (int i = 0; i < 10; ++i) q.pop_front();
  BOOST_TEST(WriterCore::GroupSize(q) == 1u);  // ... and goes alone
  q.clear();
  for (size_t i = 0; i < kMaxGroupRequests + 5; ++i) push(1);
  BOOST_TEST(WriterCore::GroupSize(q) == kMaxGroupRequests);
}

BOOST_AUTO_TEST_CASE(admission_assigns_positions_versions_and_the_chain) {
  MapBackend backend;
  WriterCore core(&backend, 0, Hash{}, 0, [] { return Micros{5}; });
  auto g = group_of({one("a"), one("b"), one("a", 8, 1), one("a", 8, 1)});
  WriteBatch batch = run(core, backend, g);
  BOOST_TEST(batch.admitted == 3u);
  BOOST_TEST(batch.rejected == 1u);
  BOOST_TEST(g[3].status.IsConflict());  // "a" is at 2 by then
  BOOST_TEST(g[3].result.conflict_stream == "a");
  BOOST_REQUIRE(backend.log.size() == 3u);
  Hash prev{};
  for (size_t i = 0; i < backend.log.size(); ++i) {
    BOOST_TEST(backend.log[i].position == static_cast<int64_t>(i + 1));
    BOOST_TEST((backend.log[i].prev_hash == prev));
    BOOST_TEST((backend.log[i].hash == compute_hash(backend.log[i])));
    prev = backend.log[i].hash;
  }
  BOOST_TEST(g[2].result.versions.at(0) == 2);
  BOOST_TEST(core.position() == 3);
}

BOOST_AUTO_TEST_CASE(claims_conflict_within_a_group_and_against_the_log) {
  MapBackend backend;
  WriterCore core(&backend, 0, Hash{}, 0, [] { return Micros{5}; });
  auto g = group_of({one("a", 8, kAnyVersion, "k1"), one("b", 8, kAnyVersion, "k1")});
  run(core, backend, g);
  BOOST_TEST(g[0].status.ok());
  BOOST_TEST(g[1].status.IsConflict());
  BOOST_TEST(backend.claims.at("k1").size() == 1u + 8u);  // "v" + the position
  auto h = group_of({one("c", 8, kAnyVersion, "k1")});
  run(core, backend, h);
  BOOST_TEST(h[0].status.IsConflict());
  BOOST_TEST(h[0].result.conflicts == std::vector<std::string>{"k1"});
}

BOOST_AUTO_TEST_CASE(a_failed_commit_rolls_back_and_fails_the_admitted) {
  MapBackend backend;
  WriterCore core(&backend, 0, Hash{}, 0, [] { return Micros{5}; });
  auto g = group_of({one("a")});
  run(core, backend, g);
  const Hash tail = core.hash();
  backend.fail = true;
  auto f = group_of({one("a"), one("a", 8, 7)});
  run(core, backend, f);
  BOOST_TEST(f[0].status.IsIOError());
  BOOST_TEST(f[1].status.IsConflict());  // rejected before the commit: its own answer
  BOOST_TEST(core.position() == 1);
  BOOST_TEST((core.hash() == tail));
  backend.fail = false;
  auto n = group_of({one("a")});
  run(core, backend, n);
  BOOST_TEST(n[0].status.ok());
  BOOST_TEST(n[0].result.first_position == 2);
  BOOST_TEST((backend.log.back().prev_hash == tail));
}

BOOST_AUTO_TEST_CASE(a_sticky_error_answers_every_request) {
  MapBackend backend;
  WriterCore core(&backend, 0, Hash{}, 0, [] { return Micros{5}; });
  auto g = group_of({one("a"), one("b")});
  Status sticky = Status::IOError("earlier failure");
  WriteBatch batch = core.Admit(g, &sticky, {});
  BOOST_TEST(batch.events.empty());
  core.Finish(g, batch, Status::OK(), Status::OK());
  BOOST_TEST(g[0].status.IsIOError());
  BOOST_TEST(g[1].status.IsIOError());
  BOOST_TEST(core.position() == 0);
}

BOOST_AUTO_TEST_CASE(recorded_at_never_goes_backwards) {
  MapBackend backend;
  Micros now = 100;
  WriterCore core(&backend, 0, Hash{}, 0, [&] { return now; });
  auto g = group_of({one("a")});
  run(core, backend, g);
  now = 50;  // the wall clock steps back
  auto h = group_of({one("a")});
  run(core, backend, h);
  BOOST_TEST(backend.log.at(1).recorded_at == 100);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace giftcard

// ---------------------------------------------------------------------------
// The other half of the pair: what the writer core checked before the write
// (positions one by one, each event chained to the one before), a scan of the
// RocksDB log checks again after the read.

#include <rocksdb/db.h>

#include <unistd.h>
#include <filesystem>

#include "store/keys.h"
#include "store/rocks_event_store.h"

namespace giftcard {

BOOST_AUTO_TEST_SUITE(log_chain)

BOOST_AUTO_TEST_CASE(a_scan_refuses_a_rewritten_and_rehashed_event) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("gc-chain-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  StoreOptions so;
  so.path = dir.string();
  so.create_if_missing = true;
  {
    std::unique_ptr<EventStore> s;
    BOOST_REQUIRE(OpenRocksEventStore(so, &s).ok());
    for (int i = 0; i < 5; ++i) BOOST_REQUIRE(s->AppendAndWait(one("s"), nullptr).ok());
  }
  {  // a careful forger: new payload, recomputed hash and CRC, same position
    rocksdb::DB* raw = nullptr;
    BOOST_REQUIRE(rocksdb::DB::Open(rocksdb::Options(), dir.string(), &raw).ok());
    std::unique_ptr<rocksdb::DB> owned(raw);
    std::string v;
    BOOST_REQUIRE(raw->Get(rocksdb::ReadOptions(), keys::event_key(3), &v).ok());
    StoredEvent e;
    BOOST_REQUIRE(decode_record(v, &e).ok());
    e.payload = "forged";
    e.hash = compute_hash(e);
    BOOST_REQUIRE(raw->Put(rocksdb::WriteOptions(), keys::event_key(3), encode_record(e)).ok());
  }
  so.create_if_missing = false;
  std::unique_ptr<EventStore> s;
  BOOST_REQUIRE(OpenRocksEventStore(so, &s).ok());
  std::vector<StoredEvent> out;
  Status st = s->ReadAll(1, 100, &out);
  BOOST_TEST(st.IsCorruption());
  BOOST_TEST(st.message().find("position 4") != std::string::npos, st.ToString());
  BOOST_TEST(out.size() == 3u);             // what chained before the break
  BOOST_TEST(s->ReadAll(1, 3, &out).ok());  // up to the forged event the chain holds
  s.reset();
  std::filesystem::remove_all(dir);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace giftcard
