// Tests of the event store (store/event_store.h). The generic bodies run
// against both implementations, the in-memory one and RocksDB on a fresh temp
// dir (rocksdb/db/fault_injection_test.cc runs one body per environment the
// same way). Here: append and read back, expected versions, all-or-nothing
// requests, claims and invalid arguments. The rest of the event_store suite
// (subscribers, callbacks, close, sticky failure, snapshots) and group commit
// under real threads: event_store_writer_test.cc; the RocksDB-only suites:
// rocks_store_test.cc.
//
// Suites (one ctest each): event_store, event_store_group_commit, rocks_store,
// rocks_crash.
#include <boost/mpl/list.hpp>
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <barrier>
#include <set>
#include <thread>

#include "tests/store/event_store_fixture.h"

namespace giftcard {
using namespace test;

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
        AppendRequest req = one("card-race",
                                tagged("r" + std::to_string(r) + "t" + std::to_string(t)));
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

BOOST_AUTO_TEST_SUITE_END()

}  // namespace giftcard
