// The event store's writer, on both backends (store/event_store.h): the rest
// of the event_store suite (subscribers, callbacks on the writer, close,
// sticky failure, snapshots) and group commit under real threads.
#include <boost/mpl/list.hpp>
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <barrier>
#include <random>
#include <set>
#include <thread>

#include "tests/store/event_store_fixture.h"

namespace giftcard {
using namespace test;

// ===========================================================================
BOOST_AUTO_TEST_SUITE(event_store)

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
          case 1: r = one("sub-" + std::to_string(t), tagged(tag)); break;
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

}  // namespace giftcard
