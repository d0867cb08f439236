// RELIABILITY.md §3: power loss. kill -9 cannot reveal a missing fsync — the
// kernel still holds the page cache — so here the real actors and store run
// on test::LossyFS, which remembers what was synced. At a random moment under
// load the "power goes off" (every later write fails), the shop is torn down,
// and Cut() drops what a real cut would: unsynced tails (sometimes torn
// mid-record), files and renames no directory sync covered. The store is
// reopened on the same files and the oracle checks that every acknowledged
// call is there. A negative control runs the same loop with sync off and must
// lose acknowledged purchases — proof that the check can see a missing fsync.
// Injected EIO/ENOSPC on append, sync and rename must never acknowledge.
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <memory>
#include <thread>

#include "actors/errors.h"
#include "events/errc.h"
#include "projections/audit.h"
#include "store/rocks_event_store.h"
#include "tests/reliability/engine_workload.h"
#include "tests/reliability/lossy_fs.h"
#include "tests/reliability/oracle.h"
#include "tests/support/log_oracle.h"
#include "tests/support/process.h"

namespace giftcard::reliability {
namespace {

using namespace std::chrono_literals;

// A store opened on a fresh LossyFS; owns both.
struct LossyShop {
  std::shared_ptr<LossyFS> fs;
  std::unique_ptr<rocksdb::Env> env;
  std::unique_ptr<test::ShopFixture> shop;
  uint64_t unsynced_acks = 0;  // batches committed without a WAL sync since the last
  uint64_t batches = 0;
  uint64_t sub = 0;

  LossyShop(const std::string& path, bool sync) {
    fs = std::make_shared<LossyFS>(rocksdb::FileSystem::Default());
    env = rocksdb::NewCompositeEnv(fs);
    StoreOptions so;
    so.path = path;
    so.sync = sync;
    so.env = env.get();
    // The log's WAL: the projection space's (path/projections) is never synced.
    fs->CountWalSyncsIn(path);
    shop = std::make_unique<test::ShopFixture>(so);
    // Called on the writer thread after each group commit's callbacks: the
    // batch those callbacks acknowledged must have been followed by a sync.
    sub = shop->store()->Subscribe(
        [this, last = fs->wal_syncs()](const std::vector<StoredEvent>&) mutable {
          uint64_t now = fs->wal_syncs();
          if (now == last) ++unsynced_acks;
          last = now;
          ++batches;
        });
  }
  ~LossyShop() { stop(); }
  void stop() {
    if (!shop) return;
    shop->store()->Unsubscribe(sub);
    shop->stop();
    shop.reset();
  }
};

struct CutRun {
  Counters counters;
  LossyFS::CutStats dropped;
  uint64_t unsynced_acks = 0, batches = 0;
  int cuts = 0;
  std::vector<std::string> problems;
};

CutRun run_cuts(int cuts, bool sync, std::mt19937_64& rng) {
  CutRun run;
  test::TempDir dir("giftcard-rel-power");
  const std::string path = dir.str("data");
  EngineLoadConfig cfg;
  History history;
  {
    LossyShop first(path, sync);
    set_up_engine_shop(*first.shop, cfg, 2000);
  }
  std::uniform_int_distribution<int> delay_ms(10, 250);
  for (int k = 0; k < cuts; ++k) {
    LossyShop s(path, sync);
    resolve_infos(*s.shop, &history);
    top_up_engine_codes(*s.shop, cfg, k, 1000, 2000);
    EngineLoad load(*s.shop, cfg, &history, rng(), "p" + std::to_string(k));
    load.start();
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms(rng)));
    s.fs->SetActive(false);  // the power goes off: nothing more reaches the disk
    load.stop();
    s.stop();
    run.unsynced_acks += s.unsynced_acks;
    run.batches += s.batches;
    auto d = s.fs->Cut(rng, rng() % 2 == 0);
    // With the log's sync off (the negative control) its WAL loses what the
    // projections' own WAL may keep: their checkpoint would then be ahead of
    // the log, which the shop refuses to open (in production, with the log
    // synced, that means a log that lost acknowledged events). The control
    // measures the log alone: its projections, a cache, are dropped.
    if (!sync) std::filesystem::remove_all(std::filesystem::path(path) / "projections");
    run.dropped.files_truncated += d.files_truncated;
    run.dropped.files_deleted += d.files_deleted;
    run.dropped.renames_undone += d.renames_undone;
    run.dropped.bytes_dropped += d.bytes_dropped;
    ++run.cuts;
    if ((k + 1) % 50 == 0)
      std::cout << "power_loss: " << (k + 1) << "/" << cuts << " cuts" << std::endl;
  }
  // Back on a plain file system: settle the unanswered calls and check.
  StoreOptions so;
  so.path = path;
  {
    test::ShopFixture last(so);
    resolve_infos(last, &history);
  }
  std::unique_ptr<EventStore> store;
  so.create_if_missing = false;
  Status st = OpenRocksEventStore(so, &store);
  BOOST_REQUIRE_MESSAGE(st.ok(), st.ToString());
  auto log = test::check_log(store.get());
  store->Close();
  run.counters = check_history(history.calls(), log, &run.problems);
  return run;
}

BOOST_AUTO_TEST_SUITE(power_loss)

BOOST_AUTO_TEST_CASE(no_acknowledged_call_is_lost_at_a_power_cut) {
  uint64_t seed = 0;
  auto rng = seeded_rng("power_loss", &seed);
  const int cuts = tier_count(50, 500);
  CutRun run = run_cuts(cuts, /*sync=*/true, rng);
  auto figures = run.counters.to_json();
  figures["cuts"] = run.cuts;
  figures["seed"] = seed;
  figures["unsynced_acks"] = run.unsynced_acks;
  figures["group_commits"] = run.batches;
  figures["files_truncated"] = run.dropped.files_truncated;
  figures["files_deleted"] = run.dropped.files_deleted;
  figures["renames_undone"] = run.dropped.renames_undone;
  figures["bytes_dropped"] = run.dropped.bytes_dropped;
  report("power_loss", figures);
  BOOST_TEST(run.counters.clean(),
             "seed " << seed << ": " << run.counters.summary() << join(run.problems));
  BOOST_TEST(run.unsynced_acks == 0u, "group commits acknowledged before a WAL sync");
  BOOST_TEST(run.counters.ok > cuts, "too little was acknowledged to prove anything");
  BOOST_TEST(run.dropped.bytes_dropped > 0u, "the cuts dropped nothing: the test proves nothing");
}

// The negative control: the same cuts with the WAL unsynced must lose
// acknowledged calls, or the check above could not see a missing fsync.
BOOST_AUTO_TEST_CASE(negative_control_without_sync_loses_acknowledged_calls) {
  uint64_t seed = 0;
  auto rng = seeded_rng("power_loss_negative_control", &seed);
  CutRun run = run_cuts(5, /*sync=*/false, rng);
  auto figures = run.counters.to_json();
  figures["cuts"] = run.cuts;
  figures["seed"] = seed;
  figures["unsynced_acks"] = run.unsynced_acks;
  report("power_loss_negative_control", figures);
  BOOST_TEST(run.counters.lost > 0,
             "with sync off nothing acknowledged was lost: " << run.counters.summary());
  BOOST_TEST(run.unsynced_acks > 0u);
}

// A store with the engine's shop set up, for the injected-error tests.
struct EioStore {
  test::TempDir dir;
  std::string path;
  EngineLoadConfig cfg;
  History history;
  explicit EioStore(const char* name) : dir(name), path(dir.str("data")) {
    LossyShop first(path, true);
    set_up_engine_shop(*first.shop, cfg, 500);
  }
};

// One call of the mixed load: a purchase of one of the two cards or a credit.
Call eio_call(test::ShopFixture& shop, std::mt19937_64& rng, Call::Kind kind, std::string key) {
  Call c;
  c.kind = kind;
  c.user = "w" + std::to_string(rng() % 8);
  c.key = std::move(key);
  if (kind == Call::Kind::purchase) c.card = "pl" + std::to_string(rng() % 2);
  else c.amount = 10;
  engine_call(shop, &c);
  return c;
}

// EIO and ENOSPC on WAL append and sync: the affected call is never
// acknowledged, nor is any later one until the store is reopened; after the
// reopen every acknowledged call is there and the unanswered ones settle.
BOOST_AUTO_TEST_CASE(injected_io_errors_are_never_acknowledged) {
  uint64_t seed = 0;
  auto rng = seeded_rng("io_errors", &seed);
  EioStore store_dir("giftcard-rel-eio");
  const std::string& path = store_dir.path;
  History& history = store_dir.history;
  int rounds = 0, refused = 0, acked_after_fault = 0;
  const int repeats = tier_count(3, 20);
  for (int rep = 0; rep < repeats; ++rep)
    for (auto op : {LossyFS::Op::append, LossyFS::Op::sync})
      for (auto err : {LossyFS::Err::eio, LossyFS::Err::enospc}) {
        ++rounds;
        const std::string tag = "e" + std::to_string(rounds);
        LossyShop s(path, true);
        resolve_infos(*s.shop, &history);
        int64_t n = 0;
        auto call = [&](Call::Kind kind) {
          return eio_call(*s.shop, rng, kind, tag + "-" + std::to_string(++n));
        };
        for (int i = 0; i < 5; ++i) {
          Call c = call(i % 2 ? Call::Kind::credit : Call::Kind::purchase);
          BOOST_TEST((c.outcome == Call::Outcome::ok), "before the fault: " << c.error);
          history.add(c);
        }
        s.fs->Inject(op, err, static_cast<int>(rng() % 2), path);  // the log's files
        // Calls until the fault fires, then a few more with the disk healthy again.
        int after_fault = 0;
        // The call during which the fault fires may still have been acknowledged
        // (the fault may hit the projections' write after its commit); every call
        // that starts after it must be refused.
        for (int i = 0; i < 16 && after_fault < 4; ++i) {
          bool fired = s.fs->faults_fired() > 0;
          if (fired) s.fs->ClearFaults();
          Call c = call(i % 3 == 2 ? Call::Kind::credit : Call::Kind::purchase);
          if (fired) {
            ++after_fault;
            if (c.outcome == Call::Outcome::ok) ++acked_after_fault;
            else ++refused;
            if (c.outcome != Call::Outcome::ok)
              BOOST_TEST(c.status == static_cast<int>(Errc::storage_unavailable),
                         "after an I/O error: " << c.error);
          }
          history.add(c);
        }
        BOOST_TEST(after_fault > 0, "the injected fault never fired");
        s.stop();
      }
  // A failed rename while opening (RocksDB renames OPTIONS and CURRENT into
  // place) refuses to open; the next clean open has everything.
  {
    auto fs = std::make_shared<LossyFS>(rocksdb::FileSystem::Default());
    auto env = rocksdb::NewCompositeEnv(fs);
    fs->Inject(LossyFS::Op::rename, LossyFS::Err::eio);
    StoreOptions so;
    so.path = path;
    so.env = env.get();
    std::unique_ptr<EventStore> store;
    Status st = OpenRocksEventStore(so, &store);
    BOOST_TEST(!st.ok(), "the store opened although every rename failed");
    BOOST_TEST(fs->faults_fired() > 0u);
    if (store) store->Close();
  }
  StoreOptions so;
  so.path = path;
  {
    test::ShopFixture last(so);
    resolve_infos(last, &history);
  }
  std::unique_ptr<EventStore> store;
  so.create_if_missing = false;
  Status st = OpenRocksEventStore(so, &store);
  BOOST_REQUIRE_MESSAGE(st.ok(), st.ToString());
  auto log = test::check_log(store.get());
  store->Close();
  std::vector<std::string> problems;
  auto c = check_history(history.calls(), log, &problems);
  auto figures = c.to_json();
  figures["fault_rounds"] = rounds;
  figures["refused_after_fault"] = refused;
  figures["acknowledged_after_fault"] = acked_after_fault;
  report("io_errors", figures);
  BOOST_TEST(c.clean(), "seed " << seed << ": " << c.summary() << join(problems));
  BOOST_TEST(acked_after_fault == 0, "calls were acknowledged after a failed write or sync");
  BOOST_TEST(http_status(Errc::storage_unavailable) == 503);
}

// The projection space is a database of its own (issue #16), with its own
// unsynced WAL. A failing disk under it stops no purchase (the log is the truth); after a restart
// on the healed disk the projections catch up with everything acknowledged meanwhile, and the
// oracle checks the log and the projections against every call.
BOOST_AUTO_TEST_CASE(io_errors_in_the_projection_space_stop_no_purchase) {
  uint64_t seed = 0;
  auto rng = seeded_rng("projection_io_errors", &seed);
  EioStore store_dir("giftcard-rel-eio-proj");
  const std::string& path = store_dir.path;
  History& history = store_dir.history;
  int calls = 0, acked = 0;
  for (auto err : {LossyFS::Err::eio, LossyFS::Err::enospc}) {
    LossyShop s(path, true);
    resolve_infos(*s.shop, &history);
    s.fs->Inject(LossyFS::Op::append, err, 0, path + "/projections");
    int64_t n = 0;
    auto call = [&](Call::Kind kind) {
      Call c = eio_call(*s.shop, rng, kind,
                        "pe" + std::to_string(static_cast<int>(err)) + "-" + std::to_string(++n));
      history.add(c);
      ++calls;
      if (c.outcome == Call::Outcome::ok) ++acked;
      else BOOST_TEST(false, "refused while only the projections' disk failed: " << c.error);
      return c;
    };
    // Until a write has failed, then some more calls with the disk still failing.
    for (int i = 0, after = 0; i < 3000 && after < 20; ++i) {
      if (s.fs->faults_fired() > 0) ++after;
      call(i % 3 == 2 ? Call::Kind::credit : Call::Kind::purchase);
    }
    BOOST_TEST(s.fs->faults_fired() > 0u, "the projections never wrote: the test proves nothing");
    s.fs->ClearFaults();
    s.stop();
    // RocksDB refuses writes after a failed one until it is reopened; a
    // restart on the healed disk re-derives what the projections lost.
    LossyShop again(path, true);
    const int64_t head = again.shop->store()->LastPosition();
    auto w = again.shop->wallet("w0", head);
    for (int i = 0; i < 100 && !w; ++i) {
      std::this_thread::sleep_for(100ms);
      w = again.shop->wallet("w0", head);
    }
    BOOST_TEST(static_cast<bool>(w), "the projections did not catch up after a restart: "
                                         << (w ? "" : caf::to_string(w.error())));
    again.stop();
  }
  StoreOptions so;
  so.path = path;
  std::unique_ptr<EventStore> store;
  so.create_if_missing = false;
  Status st = OpenRocksEventStore(so, &store);
  BOOST_REQUIRE_MESSAGE(st.ok(), st.ToString());
  auto log = test::check_log(store.get());
  // The persisted read models equal a fold of the log at their checkpoint.
  VerifyReport vr = verify_log(store.get(), {});
  BOOST_TEST(vr.ok(), "verify: " << (vr.problems.empty() ? "" : vr.problems.front()));
  store->Close();
  std::vector<std::string> problems;
  auto c = check_history(history.calls(), log, &problems);
  auto figures = c.to_json();
  figures["calls"] = calls;
  figures["acknowledged"] = acked;
  report("projection_io_errors", figures);
  BOOST_TEST(c.clean(), "seed " << seed << ": " << c.summary() << join(problems));
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace giftcard::reliability
