// The RocksDB-only suites of the event store (store/rocks_event_store.h):
// reopening, locking, secondary instances, checksums, and a kill -9 restart
// test with a forked child that reports every acknowledged append through a
// pipe (rocksdb/tools/db_crashtest.py, blackbox).
#include <boost/test/unit_test.hpp>

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <random>
#include <set>
#include <thread>

#include "tests/store/event_store_fixture.h"

namespace giftcard {
using namespace test;

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
