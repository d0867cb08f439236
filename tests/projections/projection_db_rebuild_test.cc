// ProjectionDb rebuilds (projections/projection_db.h) on both store backends:
// a rebuild swaps in an equal generation and leaves nothing of the old one,
// also while other threads append and apply; WaitFor; a checkpoint ahead of
// the log. The rest of the projection_db suite: projection_db_test.cc.
#include <boost/test/unit_test.hpp>
#include <fstream>
#include <set>
#include <thread>

#include "projections/flat_models.h"
#include "store/rocks_projection_kv.h"

#include "tests/projections/projection_db_fixture.h"

namespace giftcard {
using namespace test;

BOOST_AUTO_TEST_SUITE(projection_db)

// Rebuild gives the live models in a new generation, drops every key of the
// old one, and ignores the leftovers of an interrupted rebuild.
void rebuild_swaps_generations(bool rocks) {
  TestStore s(rocks);
  ShopGen gen(13);
  gen.append_ops(s.get(), 600, 16);
  auto db = open_db(s.get());
  BOOST_REQUIRE(db->CatchUp().ok());
  const ReadModels live = load(*db);
  CHECK_MODELS_EQUAL(live, fold_log(s.get()));
  BOOST_TEST(keys_by_generation(s.get()).size() == 1u);
  BOOST_TEST(keys_by_generation(s.get()).count(1) == 1u);

  // Leftovers of a rebuild into generation 2 that died half way: a ghost
  // wallet and purchase, an undecodable card and a checkpoint far ahead.
  KvBatch junk;
  const std::string g2 = gen_prefix(2);
  junk.puts.emplace_back(g2 + "bghost", be64(777));
  junk.puts.emplace_back(g2 + "bu1", be64(123456789));
  junk.puts.emplace_back(g2 + "ccard0", "not a card view");
  junk.puts.emplace_back(g2 + "pghost-purchase", "junk");
  junk.puts.emplace_back(g2 + "k", be64(999999) + be64(1));
  BOOST_REQUIRE(s->KvWrite(junk).ok());

  RebuildReport r;
  std::vector<int64_t> progress;
  Status st = db->Rebuild(&r, [&](int64_t p) { progress.push_back(p); });
  BOOST_REQUIRE_MESSAGE(st.ok(), st.ToString());
  BOOST_TEST(r.generation == 2u);
  BOOST_TEST(db->generation() == 2u);
  BOOST_TEST(r.position == s->LastPosition());
  BOOST_TEST(r.events == s->LastPosition());
  BOOST_TEST(r.seconds >= 0);
  BOOST_REQUIRE(!progress.empty());
  BOOST_TEST(progress.back() == s->LastPosition());
  BOOST_TEST(db->position() == live.position);
  CHECK_MODELS_EQUAL(load(*db), live);
  auto gens = keys_by_generation(s.get());
  BOOST_TEST(gens.size() == 1u);
  BOOST_TEST(gens.count(2) == 1u);
  // The queries read the new generation.
  int64_t bal = -1;
  BOOST_REQUIRE(db->Balance("ghost", &bal).ok());
  BOOST_TEST(bal == 0);
  PurchaseView pv;
  BOOST_TEST(db->Purchase("ghost-purchase", &pv).IsNotFound());
  std::vector<CardView> cards;
  BOOST_REQUIRE(db->Cards(&cards).ok());
  BOOST_TEST(cards.size() == live.cards.size());

  // Live applies go on in generation 2; a second rebuild makes generation 3.
  gen.append_ops(s.get(), 50, 4);
  BOOST_REQUIRE(db->CatchUp().ok());
  const ReadModels live2 = load(*db);
  CHECK_MODELS_EQUAL(live2, fold_log(s.get()));
  BOOST_REQUIRE(db->Rebuild(&r).ok());
  BOOST_TEST(r.generation == 3u);
  CHECK_MODELS_EQUAL(load(*db), live2);
  gens = keys_by_generation(s.get());
  BOOST_TEST(gens.size() == 1u);
  BOOST_TEST(gens.count(3) == 1u);

  // The active generation survives a reopen.
  if (rocks) {
    db.reset();
    s.reopen();
    db = open_db(s.get());
    BOOST_TEST(db->generation() == 3u);
    CHECK_MODELS_EQUAL(load(*db), live2);
  }
}
BOTH_BACKENDS(rebuild_swaps_generations)

// The live models trail the log by a little (the driver applies after the
// commit): a rebuild then folds further than live and takes over there.
void rebuild_when_live_trails_the_log(bool rocks) {
  TestStore s(rocks);
  ShopGen gen(37);
  gen.append_ops(s.get(), 300, 8);
  auto db = open_db(s.get());
  const int64_t last = s->LastPosition();
  BOOST_REQUIRE(db->CatchUp(64, last / 2).ok());
  BOOST_REQUIRE_EQUAL(db->position(), last / 2);
  RebuildReport r;
  Status st = db->Rebuild(&r);
  BOOST_REQUIRE_MESSAGE(st.ok(), st.ToString());
  BOOST_TEST(r.position == last);
  BOOST_TEST(db->position() == last);
  BOOST_TEST(db->WaitFor(last, milliseconds(0)));
  CHECK_MODELS_EQUAL(load(*db), fold_log(s.get()));
  // Live applies continue from there, once.
  gen.append_ops(s.get(), 40, 4);
  BOOST_REQUIRE(db->Apply(read(s.get(), 1, 100000)).ok());
  CHECK_MODELS_EQUAL(load(*db), fold_log(s.get()));
  auto gens = keys_by_generation(s.get());
  BOOST_TEST(gens.size() == 1u);
  BOOST_TEST(gens.count(2) == 1u);
}
BOTH_BACKENDS(rebuild_when_live_trails_the_log)

// A rebuild of an empty log is an empty generation.
BOOST_AUTO_TEST_CASE(rebuild_of_an_empty_log) {
  TestStore s(false);
  auto db = open_db(s.get());
  RebuildReport r;
  BOOST_REQUIRE(db->Rebuild(&r).ok());
  BOOST_TEST(r.generation == 2u);
  BOOST_TEST(r.position == 0);
  CHECK_MODELS_EQUAL(load(*db), ReadModels{});
  append(s.get(), {{"wallet-a", WalletCredited{"a", 5, 5, "k"}}});
  BOOST_REQUIRE(db->CatchUp().ok());
  CHECK_MODELS_EQUAL(load(*db), fold_log(s.get()));
}

// While one rebuild runs (held in its progress callback), a second one is
// Busy; live applies and queries go on beside it.
void second_rebuild_is_busy(bool rocks) {
  TestStore s(rocks);
  ShopGen gen(17);
  gen.append_ops(s.get(), 200, 8);
  auto db = open_db(s.get());
  BOOST_REQUIRE(db->CatchUp().ok());
  Gate started, release;
  std::atomic<bool> first_call{true};
  Status first;
  RebuildReport r;
  std::thread t([&] {
    first = db->Rebuild(&r, [&](int64_t) {
      if (first_call.exchange(false)) {
        started.open();
        release.wait();
      }
    });
  });
  BOOST_REQUIRE(started.wait());
  RebuildReport r2;
  Status second = db->Rebuild(&r2);
  BOOST_TEST(second.IsBusy(), second.ToString());
  BOOST_TEST(db->generation() == 1u);
  // Beside the paused rebuild: appends, applies and queries.
  gen.append_ops(s.get(), 60, 4);
  BOOST_TEST(db->CatchUp().ok());
  BOOST_TEST(db->position() == s->LastPosition());
  CHECK_MODELS_EQUAL(load(*db), fold_log(s.get()));
  release.open();
  t.join();
  BOOST_REQUIRE_MESSAGE(first.ok(), first.ToString());
  BOOST_TEST(r.generation == 2u);
  BOOST_TEST(r.position == s->LastPosition());  // caught up with the live applies
  CHECK_MODELS_EQUAL(load(*db), fold_log(s.get()));
  auto gens = keys_by_generation(s.get());
  BOOST_TEST(gens.size() == 1u);
  BOOST_TEST(gens.count(2) == 1u);
  // Once it is done, the next rebuild is allowed.
  BOOST_TEST(db->Rebuild(&r2).ok());
  BOOST_TEST(r2.generation == 3u);
}
BOTH_BACKENDS(second_rebuild_is_busy)

// Rebuilds while real threads append and apply: every rebuild swaps in
// models equal to the full fold, and a reader never sees a snapshot that
// differs from the fold at its own position.
void rebuild_beside_live_appends(bool rocks) {
  TestStore s(rocks);
  ShopGen seed_gen(19);
  seed_gen.append_ops(s.get(), 3000, 64);  // enough for the rebuild to take a while
  auto db = open_db(s.get());
  BOOST_REQUIRE(db->CatchUp().ok());

  std::atomic<bool> stop{false};
  std::atomic<int64_t> appends{0}, applies{0};
  Status writer_status, applier_status;
  std::thread writer([&] {
    ShopGen gen(23, "w");
    std::mt19937 rng(41);
    while (!stop.load()) {
      AppendRequest r;
      for (int i = 0, n = 1 + static_cast<int>(rng() % (rocks ? 8 : 2)); i < n; ++i)
        for (auto& [stream, e] : gen.op()) r.events.push_back(PendingEvent::of(stream, e));
      AppendResult res;
      Status st = s->AppendAndWait(std::move(r), &res);
      if (!st.ok()) {
        writer_status = st;
        return;
      }
      ++appends;
    }
  });
  LogSignal signal(s.get());
  std::thread applier([&] {
    while (!stop.load()) {
      Status st = db->CatchUp(7);
      if (!st.ok()) {
        applier_status = st;
        return;
      }
      ++applies;
      signal.wait([&] { return stop.load() || s->LastPosition() > db->position(); });
    }
  });
  // A reader takes snapshots throughout.
  std::map<int64_t, ReadModels> seen;
  std::mutex seen_mu;
  std::thread reader([&] {
    while (!stop.load()) {
      ReadModels m;
      if (!db->LoadAll(&m).ok()) continue;
      std::lock_guard l(seen_mu);
      if (seen.size() < 40 || (seen.size() < 150 && m.position % 7 == 0))
        seen.emplace(m.position, std::move(m));
    }
  });

  // At least 3 rebuilds, and on until the log grew by 300 events while
  // rebuilds ran (a bounded number of them).
  int rebuilds = 0, grew = 0;
  int64_t grown = 0;
  while (rebuilds < 3 || (grown < 300 && rebuilds < 200)) {
    const int64_t before = s->LastPosition();
    RebuildReport r;
    Status st = db->Rebuild(&r);
    BOOST_REQUIRE_MESSAGE(st.ok(), st.ToString());
    ++rebuilds;
    BOOST_REQUIRE_EQUAL(r.generation, static_cast<uint32_t>(rebuilds + 1));
    BOOST_REQUIRE_GE(r.position, before);
    grown += s->LastPosition() - before;
    grew += s->LastPosition() > before;
  }
  const int kRebuilds = rebuilds;
  // Let the workload go on past the last swap.
  const int64_t target = s->LastPosition() + 20;
  BOOST_TEST(db->WaitFor(target, milliseconds(30000)));
  signal.stop(stop);
  writer.join();
  applier.join();
  reader.join();
  BOOST_REQUIRE_MESSAGE(writer_status.ok(), writer_status.ToString());
  BOOST_REQUIRE_MESSAGE(applier_status.ok(), applier_status.ToString());
  BOOST_REQUIRE(db->CatchUp().ok());

  // The log grew while rebuilds ran: they really ran beside the writes.
  BOOST_TEST(grew >= 1);
  BOOST_TEST(grown >= 300);
  BOOST_TEST(appends.load() > 0);
  BOOST_TEST_MESSAGE((rocks ? "rocks" : "memory")
                     << ": " << appends.load() << " appends, " << applies.load()
                     << " catch-ups beside " << kRebuilds << " rebuilds (" << grown
                     << " events appended during them); " << seen.size() << " snapshots");
  BOOST_TEST(db->generation() == static_cast<uint32_t>(kRebuilds + 1));
  BOOST_TEST(db->position() == s->LastPosition());
  CHECK_MODELS_EQUAL(load(*db), fold_log(s.get()));
  auto gens = keys_by_generation(s.get());
  BOOST_TEST(gens.size() == 1u);
  BOOST_TEST(gens.count(static_cast<uint32_t>(kRebuilds + 1)) == 1u);

  // Every snapshot equals the fold at its position (one incremental fold).
  BOOST_REQUIRE_GT(seen.size(), 1u);
  ReadModels m;
  std::vector<StoredEvent> batch;
  for (const auto& [pos, snap] : seen) {
    if (m.position < pos) {
      batch = read(s.get(), m.position + 1, static_cast<size_t>(pos - m.position));
      for (const auto& e : batch) BOOST_REQUIRE(apply(m, e).ok());
    }
    BOOST_REQUIRE_EQUAL(m.position, pos);
    BOOST_TEST((snap == m), "snapshot at " << pos << ": " << first_difference(snap, m));
  }
}
BOTH_BACKENDS(rebuild_beside_live_appends)

// WaitFor wakes when another thread's CatchUp passes the position, and gives
// up after the timeout otherwise.
void wait_for(bool rocks) {
  TestStore s(rocks);
  ShopGen gen(29);
  gen.append_ops(s.get(), 20, 4);
  auto db = open_db(s.get());
  BOOST_REQUIRE(db->CatchUp().ok());
  const int64_t pos = db->position();
  BOOST_TEST(db->WaitFor(pos, milliseconds(0)));
  BOOST_TEST(db->WaitFor(1, milliseconds(0)));

  // Nobody applies: the wait times out, not sooner.
  gen.append_ops(s.get(), 5, 1);
  const int64_t last = s->LastPosition();
  auto t0 = Clock::now();
  BOOST_TEST(!db->WaitFor(pos + 1, milliseconds(150)));
  auto waited = Clock::now() - t0;
  BOOST_TEST(waited >= milliseconds(150));
  BOOST_TEST(waited < milliseconds(5000));
  BOOST_TEST(db->position() == pos);

  // Waiters on several positions; another thread catches up one event at a
  // time: each wakes well before its generous timeout.
  std::vector<std::thread> waiters;
  std::vector<int> reached(static_cast<size_t>(last - pos), -1);
  std::vector<Clock::duration> took(reached.size());
  Gate all_started;
  std::atomic<int> started{0};
  for (int64_t p = pos + 1; p <= last; ++p)
    waiters.emplace_back([&, p] {
      size_t i = static_cast<size_t>(p - pos - 1);
      if (++started == static_cast<int>(reached.size())) all_started.open();
      auto w0 = Clock::now();
      reached[i] = db->WaitFor(p, milliseconds(20000)) ? 1 : 0;
      took[i] = Clock::now() - w0;
    });
  BOOST_REQUIRE(all_started.wait());
  Status caught;
  std::thread applier([&] { caught = db->CatchUp(1); });
  applier.join();
  BOOST_TEST(caught.ok(), caught.ToString());
  for (auto& w : waiters) w.join();
  for (size_t i = 0; i < reached.size(); ++i) {
    BOOST_TEST(reached[i] == 1, "waiter " << i);
    BOOST_TEST(took[i] < milliseconds(10000), "waiter " << i << " was not woken");
  }
  BOOST_TEST(db->position() == last);
  // A position beyond the log: false after the timeout.
  BOOST_TEST(!db->WaitFor(last + 1, milliseconds(50)));
  // NotifyAll wakes waiters without changing the answer.
  std::atomic<int> answer{-1};
  std::thread w([&] { answer = db->WaitFor(last + 1, milliseconds(300)) ? 1 : 0; });
  db->NotifyAll();
  w.join();
  BOOST_TEST(answer.load() == 0);
}
BOTH_BACKENDS(wait_for)

// A checkpoint ahead of the log is refused, naming both positions.
void open_refuses_checkpoint_ahead_of_log(bool rocks) {
  TestStore s(rocks);
  ShopGen gen(31);
  gen.append_ops(s.get(), 10, 10);
  const int64_t last = s->LastPosition();
  {
    auto db = open_db(s.get());
    BOOST_REQUIRE(db->CatchUp().ok());
  }
  KvBatch b;
  b.puts.emplace_back(gen_prefix(1) + "k", be64(static_cast<uint64_t>(last + 5)) + be64(0));
  BOOST_REQUIRE(s->KvWrite(b).ok());
  if (rocks) s.reopen();
  std::unique_ptr<ProjectionDb> db;
  Status st = ProjectionDb::Open(s.get(), &db);
  BOOST_TEST(st.IsCorruption(), st.ToString());
  BOOST_TEST(st.message().find("ahead of the log") != std::string::npos, st.message());
  BOOST_TEST(st.message().find(std::to_string(last + 5)) != std::string::npos, st.message());
  BOOST_TEST(st.message().find("(" + std::to_string(last) + ")") != std::string::npos,
             st.message());
  BOOST_TEST(!db);

  // A damaged checkpoint or generation marker is not refused: the projections
  // are a cache of the log, so they are dropped and refolded from position 1.
  b.puts = {{gen_prefix(1) + "k", "short"}};
  BOOST_REQUIRE(s->KvWrite(b).ok());
  st = ProjectionDb::Open(s.get(), &db);
  BOOST_REQUIRE_MESSAGE(st.ok(), st.ToString());
  BOOST_TEST(db->position() == 0);
  BOOST_TEST(db->reset_reason().find("checkpoint damaged") != std::string::npos,
             db->reset_reason());
  BOOST_REQUIRE(db->CatchUp().ok());
  BOOST_TEST(db->position() == last);
  db.reset();
  b.puts = {{"A", "xx"}};
  BOOST_REQUIRE(s->KvWrite(b).ok());
  st = ProjectionDb::Open(s.get(), &db);
  BOOST_REQUIRE_MESSAGE(st.ok(), st.ToString());
  BOOST_TEST(db->reset_reason().find("marker damaged") != std::string::npos, db->reset_reason());
  BOOST_REQUIRE(db->CatchUp().ok());
  BOOST_TEST(db->position() == last);
  db.reset();
  // An undamaged store opens at its checkpoint, without a reset.
  db = open_db(s.get());
  BOOST_TEST(db->position() == last);
  BOOST_TEST(db->reset_reason().empty());
}
BOTH_BACKENDS(open_refuses_checkpoint_ahead_of_log)

// Every key and value of a generation, without its generation prefix.
std::map<std::string, std::string> generation_bytes(EventStore* s, uint32_t gen) {
  std::map<std::string, std::string> out;
  const std::string p = gen_prefix(gen);
  Status st = s->KvScan(p, "", [&](std::string_view k, std::string_view v) {
    out.emplace(std::string(k.substr(p.size())), std::string(v));
    return true;
  });
  BOOST_REQUIRE_MESSAGE(st.ok(), st.ToString());
  return out;
}

// The rebuild folds in memory and ingests sorted runs (KvIngest: table files
// in RocksDB, KvWrite batches in memory): the generation it writes holds
// exactly the keys and values that live applies wrote (byte for byte), and
// LoadAll equals both replays of the log (std::map and flat hash maps). The
// log has every event type: cards, codes, credits, purchases, revocations,
// expiries. No table file is left behind.
void rebuild_by_ingest_equals_replay(bool rocks) {
  TestStore s(rocks);
  ShopGen gen(53, "", 200, 12);
  gen.append_ops(s.get(), 20000, 64);
  BOOST_REQUIRE_GT(gen.purchases(), 5000);
  auto db = open_db(s.get());
  BOOST_REQUIRE(db->CatchUp(977).ok());  // live applies, in odd-sized batches
  const auto applied = generation_bytes(s.get(), 1);
  RebuildReport r;
  Status st = db->Rebuild(&r);
  BOOST_REQUIRE_MESSAGE(st.ok(), st.ToString());
  BOOST_TEST(r.generation == 2u);
  BOOST_TEST(r.fold_seconds >= 0);
  BOOST_TEST(r.ingest_seconds >= 0);
  const auto ingested = generation_bytes(s.get(), 2);
  BOOST_REQUIRE_EQUAL(ingested.size(), applied.size());
  BOOST_TEST((ingested == applied), "the ingested generation differs from the applied one");
  const ReadModels replayed = fold_log(s.get());
  CHECK_MODELS_EQUAL(load(*db), replayed);
  ReadModels flat;
  BOOST_REQUIRE(replay_log_flat(s.get(), 0, std::nullopt, &flat).ok());
  CHECK_MODELS_EQUAL(load(*db), flat);
  BOOST_TEST(keys_by_generation(s.get()).size() == 1u);
  if (rocks) {
    const std::string tmp = RocksProjectionKv::IngestDirOf(s.dir);
    BOOST_TEST((!fs::exists(tmp) || fs::is_empty(tmp)), "table files left in " << tmp);
    // And after a reopen.
    db.reset();
    s.reopen();
    db = open_db(s.get());
    BOOST_TEST(db->generation() == 2u);
    CHECK_MODELS_EQUAL(load(*db), replayed);
  }
}
BOTH_BACKENDS(rebuild_by_ingest_equals_replay)

// A rebuild that dies after its ingest (or just before the swap) — the test
// hook ends it there as a crash would, and the store is reopened with table
// files of an ingest still lying in the ingest directory: the live
// generation is intact and still active, the orphan files are gone, and the
// next rebuild clears the dead one's generation and works.
void rebuild_dies_after_ingest(bool rocks, const char* stage) {
  TestStore s(rocks);
  ShopGen gen(59);
  gen.append_ops(s.get(), 3000, 32);
  auto db = open_db(s.get());
  BOOST_REQUIRE(db->CatchUp().ok());
  const ReadModels live = load(*db);
  const auto live_bytes = generation_bytes(s.get(), 1);
  db->TEST_SetRebuildHook([&](std::string_view at) {
    return at == stage ? Status::IOError("crashed at " + std::string(at)) : Status::OK();
  });
  RebuildReport r;
  Status st = db->Rebuild(&r);
  BOOST_TEST(st.IsIOError(), st.ToString());
  // Generation 2 was ingested but is not named by the marker.
  BOOST_TEST(db->generation() == 1u);
  BOOST_TEST(keys_by_generation(s.get()).count(2) == 1u);
  CHECK_MODELS_EQUAL(load(*db), live);
  if (rocks) {
    // What a crash in the middle of writing the tables would leave.
    const std::string tmp = RocksProjectionKv::IngestDirOf(s.dir);
    fs::create_directories(tmp);
    { std::ofstream(fs::path(tmp) / "ingest-7-0.sst") << "half a table"; }
    db.reset();
    s.reopen();
    BOOST_TEST(!fs::exists(tmp), "the orphan table files survived the reopen");
    db = open_db(s.get());
    BOOST_TEST(db->reset_reason().empty(), db->reset_reason());
  } else {
    db = open_db(s.get());  // the same space, opened anew
  }
  BOOST_TEST(db->generation() == 1u);
  BOOST_TEST(db->position() == live.position);
  CHECK_MODELS_EQUAL(load(*db), live);
  BOOST_TEST((generation_bytes(s.get(), 1) == live_bytes));
  // Live applies go on; the next rebuild replaces the dead one's generation.
  gen.append_ops(s.get(), 40, 4);
  BOOST_REQUIRE(db->CatchUp().ok());
  st = db->Rebuild(&r);
  BOOST_REQUIRE_MESSAGE(st.ok(), st.ToString());
  BOOST_TEST(r.generation == 2u);
  CHECK_MODELS_EQUAL(load(*db), fold_log(s.get()));
  auto gens = keys_by_generation(s.get());
  BOOST_TEST(gens.size() == 1u);
  BOOST_TEST(gens.count(2) == 1u);
}
BOOST_AUTO_TEST_CASE(rebuild_dies_after_ingest_memory) {
  rebuild_dies_after_ingest(false, "ingested");
}
BOOST_AUTO_TEST_CASE(rebuild_dies_after_ingest_rocks) {
  rebuild_dies_after_ingest(true, "ingested");
}
BOOST_AUTO_TEST_CASE(rebuild_dies_before_swap_rocks) {
  rebuild_dies_after_ingest(true, "before_swap");
}

// While a rebuild holds its ingested generation (paused in the test hook),
// every query reads the old one: the models, the point reads and the pages.
void reads_during_rebuild_see_the_old_generation(bool rocks) {
  TestStore s(rocks);
  ShopGen gen(61);
  gen.append_ops(s.get(), 1500, 16);
  auto db = open_db(s.get());
  BOOST_REQUIRE(db->CatchUp().ok());
  // Damage nothing, but make generation 1 tell itself apart: a wallet that
  // only generation 1 has.
  KvBatch mark;
  mark.puts.emplace_back(gen_prefix(1) + "bzz-only-in-gen-1", be64(42));
  BOOST_REQUIRE(s->KvWrite(mark).ok());
  const ReadModels live = load(*db);
  BOOST_REQUIRE_EQUAL(live.balances.count("zz-only-in-gen-1"), 1u);
  Gate ingested, release;
  db->TEST_SetRebuildHook([&](std::string_view at) {
    if (at == "ingested") {
      ingested.open();
      release.wait();
    }
    return Status::OK();
  });
  Status rebuilt;
  RebuildReport r;
  std::thread t([&] { rebuilt = db->Rebuild(&r); });
  BOOST_REQUIRE(ingested.wait());
  BOOST_TEST(keys_by_generation(s.get()).count(2) == 1u);  // the ingest is done
  BOOST_TEST(db->generation() == 1u);
  CHECK_MODELS_EQUAL(load(*db), live);
  int64_t bal = 0;
  BOOST_REQUIRE(db->Balance("zz-only-in-gen-1", &bal).ok());
  BOOST_TEST(bal == 42);
  std::vector<std::pair<std::string, int64_t>> wallets;
  BOOST_REQUIRE(db->Wallets("zz", "", 10, &wallets).ok());
  BOOST_TEST(wallets.size() == 1u);
  std::vector<PurchaseView> recent;
  BOOST_REQUIRE(db->RecentPurchases(5, &recent).ok());
  BOOST_TEST(recent.size() == std::min<size_t>(5, live.purchases.size()));
  release.open();
  t.join();
  BOOST_REQUIRE_MESSAGE(rebuilt.ok(), rebuilt.ToString());
  BOOST_TEST(db->generation() == 2u);
  BOOST_REQUIRE(db->Balance("zz-only-in-gen-1", &bal).ok());
  BOOST_TEST(bal == 0);  // the new generation is the log's fold, without the mark
  CHECK_MODELS_EQUAL(load(*db), fold_log(s.get()));
}
BOTH_BACKENDS(reads_during_rebuild_see_the_old_generation)

BOOST_AUTO_TEST_SUITE_END()

}  // namespace giftcard
