// RELIABILITY.md §4: on-disk corruption, each row of the table × seeds (2 in
// `make test`, 20 in `make soak`). A base store is written by the real actors,
// partly flushed to SST files and partly left in the WAL; each row damages a
// copy of it and then runs the real binary: `giftcard serve` must refuse to
// start (non-zero exit, a message naming what is damaged) or start with every
// acknowledged purchase present; `giftcard verify` must exit non-zero where
// the table says so; `giftcard events` never prints wrong data. Counters:
// rows detected, silent opens (a damaged store served as if whole), wrong data.
#include <rocksdb/db.h>
#include <rocksdb/options.h>

#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <random>

#include "store/keys.h"
#include "store/rocks_event_store.h"
#include "tests/actors/shop_fixture.h"
#include "tests/reliability/engine_workload.h"
#include "tests/reliability/oracle.h"
#include "tests/support/http_client.h"
#include "tests/support/log_oracle.h"
#include "tests/support/process.h"
#include "tests/support/serve_child.h"

namespace giftcard::reliability {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

struct Base {
  std::string dir;
  std::vector<Call> acked;
  std::string events_out;  // `giftcard events` of the whole store
  int64_t last = 0;
};

// The base store: purchases and credits through the actors, a flush (SST
// files), then more through the actors (left in the WAL).
Base make_base(const std::string& dir, uint64_t seed) {
  Base b;
  b.dir = dir;
  EngineLoadConfig cfg;
  History history;
  std::mt19937_64 rng(seed);
  for (int phase = 0; phase < 2; ++phase) {
    StoreOptions so;
    so.path = dir;
    {
      test::ShopFixture fix(so);
      if (phase == 0) set_up_engine_shop(fix, cfg, 400);
      for (int i = 0; i < 150; ++i) {
        Call c;
        c.user = "w" + std::to_string(rng() % 8);
        c.key = "b" + std::to_string(phase) + "-" + std::to_string(i);
        if (i % 4 == 3) {
          c.kind = Call::Kind::credit;
          c.amount = 50;
        } else {
          c.kind = Call::Kind::purchase;
          c.card = "pl" + std::to_string(rng() % 2);
        }
        engine_call(fix, &c);
        BOOST_REQUIRE_MESSAGE(c.outcome == Call::Outcome::ok, "base write: " << c.error);
        history.add(c);
      }
    }
    if (phase == 0) {
      rocksdb::DB* db = nullptr;
      rocksdb::Options o;
      BOOST_REQUIRE(rocksdb::DB::Open(o, dir, &db).ok());
      BOOST_REQUIRE(db->Flush(rocksdb::FlushOptions()).ok());
      delete db;
    }
  }
  b.acked = history.calls();
  auto ev = test::run_giftcard({"events", "--data", dir}, 60s);
  BOOST_REQUIRE_MESSAGE(ev.code() == 0, ev.describe());
  b.events_out = ev.out;
  // Not by opening the store: a read-write open replays the WAL into an SST
  // file, and the WAL rows need the last writes still in the WAL.
  b.last = static_cast<int64_t>(std::count(ev.out.begin(), ev.out.end(), '\n'));
  BOOST_REQUIRE(b.last > 10);
  return b;
}

std::vector<fs::path> files_with(const std::string& dir, const std::string& suffix) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    std::string n = e.path().filename().string();
    if (n.size() >= suffix.size() &&
        n.compare(n.size() - suffix.size(), suffix.size(), suffix) == 0 &&
        fs::file_size(e.path()) > 0)
      out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

void flip_bit(const fs::path& f, uint64_t offset, int bit) {
  std::fstream io(f, std::ios::in | std::ios::out | std::ios::binary);
  io.seekg(static_cast<std::streamoff>(offset));
  char c = 0;
  io.read(&c, 1);
  c = static_cast<char>(c ^ (1 << bit));
  io.seekp(static_cast<std::streamoff>(offset));
  io.write(&c, 1);
}

// Raw RocksDB access to damage values through the API.
struct Raw {
  rocksdb::DB* db = nullptr;
  explicit Raw(const std::string& dir) {
    rocksdb::Options o;
    auto s = rocksdb::DB::Open(o, dir, &db);
    BOOST_REQUIRE_MESSAGE(s.ok(), s.ToString());
  }
  ~Raw() { delete db; }
  std::string get(const std::string& k) {
    std::string v;
    auto s = db->Get(rocksdb::ReadOptions(), k, &v);
    BOOST_REQUIRE_MESSAGE(s.ok(), s.ToString());
    return v;
  }
  void put(const std::string& k, const std::string& v) {
    BOOST_REQUIRE(db->Put(rocksdb::WriteOptions(), k, v).ok());
  }
  std::vector<std::string> keys_with(char prefix) {
    std::vector<std::string> out;
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions()));
    for (it->Seek(std::string(1, prefix)); it->Valid() && it->key()[0] == prefix; it->Next())
      out.push_back(it->key().ToString());
    return out;
  }
};

struct RowResult {
  int runs = 0, detected = 0, silent = 0, wrong_data = 0;
  std::vector<std::string> problems;
};

// `serve` must not start: non-zero exit within the deadline, and a message.
bool refuses_to_start(const std::string& dir, std::string* message) {
  auto r = test::run_giftcard(
      {"serve", "--data", dir, "--http", "127.0.0.1:0", "--caf", "127.0.0.1:0"},
      test::by_build(20000ms, 60000ms));
  *message = r.err.substr(0, 600);
  return r.exited() && r.code() != 0;
}

// `serve` starts; every acknowledged call is in the log afterwards; the live
// views equal `giftcard replay`. Returns false with a reason otherwise.
bool starts_whole(const Base& base, const std::string& dir, std::string* why) {
  {
    test::ServeChild server(dir, dir + ".serve.log");
    // A purchase goes through after the damage.
    test::HttpConnection conn(server.port());
    auto r = conn.post("/api/purchases", nlohmann::json{{"card_id", "pl0"}, {"user_id", "w1"}},
                       {{"Idempotency-Key", "after-damage"}});
    if (r.status != 201) {
      *why = "purchase after the damage: " + r.describe();
      return false;
    }
    server.stop_clean(test::by_build(10000ms, 60000ms));
  }
  auto v = test::run_giftcard({"verify", "--data", dir}, 120s);
  if (v.code() != 0) {
    *why = "verify after restart: " + v.describe();
    return false;
  }
  StoreOptions so;
  so.path = dir;
  so.create_if_missing = false;
  std::unique_ptr<EventStore> store;
  if (Status s = OpenRocksEventStore(so, &store); !s.ok()) {
    *why = s.ToString();
    return false;
  }
  auto log = test::check_log(store.get());
  store->Close();
  std::vector<std::string> problems;
  auto c = check_history(base.acked, log, &problems);
  auto replay = test::run_giftcard({"replay", "--data", dir}, 120s);
  c.replay_diff += diff_views(views_from_replay(nlohmann::json::parse(replay.out, nullptr, false)),
                              log, "replay", &problems);
  if (!c.clean()) {
    *why = c.summary() + (problems.empty() ? "" : " " + problems.front());
    return false;
  }
  return true;
}

// `giftcard events` either fails or prints exactly the original events.
bool events_never_wrong(const Base& base, const std::string& dir, std::string* why) {
  auto ev = test::run_giftcard({"events", "--data", dir}, 120s);
  if (ev.code() != 0) return true;
  if (ev.out == base.events_out) return true;
  *why = "giftcard events exited 0 with different output";
  return false;
}

bool verify_fails_naming(const std::string& dir, const std::string& needle, std::string* why) {
  auto v = test::run_giftcard({"verify", "--data", dir}, 120s);
  if (v.code() == 0) {
    *why = "verify exited 0";
    return false;
  }
  if (!needle.empty() && (v.out + v.err).find(needle) == std::string::npos) {
    *why = "verify does not name '" + needle + "': " + v.describe();
    return false;
  }
  return true;
}

BOOST_AUTO_TEST_SUITE(corruption)

BOOST_AUTO_TEST_CASE(every_row_is_detected_and_nothing_wrong_is_served) {
  uint64_t seed = 0;
  auto rng = seeded_rng("corruption", &seed);
  const int seeds = tier_count(2, 20);
  test::TempDir tmp("giftcard-rel-corrupt");
  std::map<std::string, RowResult> rows;
  auto fail = [&](const std::string& row, const std::string& why) {
    auto& r = rows[row];
    if (r.problems.size() < 3) r.problems.push_back(why);
  };

  for (int s = 0; s < seeds; ++s) {
    const std::string base_dir = tmp.str("base" + std::to_string(s));
    Base base = make_base(base_dir, rng());
    auto copy = [&](const std::string& row) {
      std::string d = tmp.str(row + std::to_string(s));
      fs::copy(base_dir, d, fs::copy_options::recursive);
      fs::remove(fs::path(d) / "LOCK");
      return d;
    };
    std::string why, msg;

    {  // 1. A partial record appended to the last WAL: an unacknowledged write.
      auto d = copy("wal_tail");
      auto wals = files_with(d, ".log");
      BOOST_REQUIRE(!wals.empty());
      std::ofstream out(wals.back(), std::ios::binary | std::ios::app);
      std::string junk(1 + rng() % 40, '\0');
      for (auto& ch : junk) ch = static_cast<char>(rng());
      out << junk;
      out.close();
      auto& r = rows["wal_partial_tail_record"];
      ++r.runs;
      if (starts_whole(base, d, &why)) ++r.detected;
      else fail("wal_partial_tail_record", why);
    }
    {  // 2. A bit flip mid-WAL: refuse to start, naming the file.
      auto d = copy("wal_flip");
      auto wals = files_with(d, ".log");
      auto wal = wals.back();
      uint64_t size = fs::file_size(wal);
      flip_bit(wal, size / 4 + rng() % (size / 4), static_cast<int>(rng() % 8));
      auto& r = rows["wal_bit_flip"];
      ++r.runs;
      if (!refuses_to_start(d, &msg)) {
        ++r.silent;
        fail("wal_bit_flip", "serve started on a WAL with a bit flip in the middle");
      } else if (msg.find(wal.filename().string()) == std::string::npos) {
        fail("wal_bit_flip", "the message does not name the WAL: " + msg);
      } else {
        ++r.detected;
      }
    }
    {  // 3. A truncated SST: open fails, verify fails.
      auto d = copy("sst_trunc");
      auto ssts = files_with(d, ".sst");
      BOOST_REQUIRE(!ssts.empty());
      auto sst = ssts[rng() % ssts.size()];
      fs::resize_file(sst, fs::file_size(sst) / 2);
      auto& r = rows["sst_truncated"];
      ++r.runs;
      bool refused = refuses_to_start(d, &msg);
      bool verified = verify_fails_naming(d, "", &why);
      if (refused && verified) ++r.detected;
      else {
        if (!refused) ++r.silent;
        fail("sst_truncated", refused ? why : "serve started on a truncated SST");
      }
    }
    {  // 4. A bit flip in an SST data block: verify fails; reads never wrong.
      auto d = copy("sst_flip");
      auto ssts = files_with(d, ".sst");
      auto sst = ssts[rng() % ssts.size()];
      uint64_t size = fs::file_size(sst);
      flip_bit(sst, rng() % (size / 2), static_cast<int>(rng() % 8));
      auto& r = rows["sst_data_bit_flip"];
      ++r.runs;
      bool verified = verify_fails_naming(d, "", &why);
      std::string why2;
      bool never_wrong = events_never_wrong(base, d, &why2);
      if (!never_wrong) ++r.wrong_data;
      if (verified && never_wrong) ++r.detected;
      else fail("sst_data_bit_flip", verified ? why2 : why);
    }
    for (std::string victim : {"CURRENT", "MANIFEST"}) {  // 5. CURRENT or MANIFEST deleted.
      auto d = copy("meta");
      for (const auto& e : fs::directory_iterator(d))
        if (e.path().filename().string().rfind(victim, 0) == 0) fs::remove(e.path());
      const std::string row = victim + "_deleted";
      auto& r = rows[row];
      ++r.runs;
      if (refuses_to_start(d, &msg) && !msg.empty()) ++r.detected;
      else {
        ++r.silent;
        fail(row, "serve started (or said nothing) without " + victim + ": " + msg);
      }
      fs::remove_all(d);
    }
    {  // 6. Events rewritten, deleted or swapped through the RocksDB API.
      const int64_t p = 3 + static_cast<int64_t>(rng() % static_cast<uint64_t>(base.last - 4));
      for (int kind = 0; kind < 3; ++kind) {
        auto d = copy("event" + std::to_string(kind));
        {
          Raw raw(d);
          std::string k = keys::event_key(p), k2 = keys::event_key(p + 1);
          std::string v = raw.get(k);
          if (kind == 0) {
            v[v.size() / 2] = static_cast<char>(v[v.size() / 2] ^ 0x20);
            raw.put(k, v);
          } else if (kind == 1) {
            BOOST_REQUIRE(raw.db->Delete(rocksdb::WriteOptions(), k).ok());
          } else {
            std::string v2 = raw.get(k2);
            raw.put(k, v2);
            raw.put(k2, v);
          }
        }
        const std::string row = kind == 0   ? "event_rewritten"
                                : kind == 1 ? "event_deleted"
                                            : "events_swapped";
        auto& r = rows[row];
        ++r.runs;
        if (verify_fails_naming(d, std::to_string(p), &why)) ++r.detected;
        else {
          ++r.silent;
          fail(row, why);
        }
        fs::remove_all(d);
      }
    }
    {  // 7. A damaged snapshot or projection checkpoint: caught, rebuilt, equal to replay.
      for (int kind = 0; kind < 2; ++kind) {
        auto d = copy("cache" + std::to_string(kind));
        std::string row = kind == 0 ? "snapshot_damaged" : "checkpoint_damaged";
        {
          // The projections live in their own database (issue #16).
          Raw raw(kind == 0 ? d : d + "/projections");
          std::string k;
          if (kind == 0) {
            auto snaps = raw.keys_with(keys::kSnapshot);
            BOOST_REQUIRE_MESSAGE(!snaps.empty(), "the base has no snapshots");
            k = snaps[rng() % snaps.size()];
          } else {
            k = std::string("pg\0\0\0\1k", 7);
          }
          std::string v = raw.get(k);
          size_t at = rng() % v.size();
          v[at] = static_cast<char>(v[at] ^ (1 << (rng() % 8)));
          raw.put(k, v);
        }
        auto& r = rows[row];
        ++r.runs;
        if (starts_whole(base, d, &why)) ++r.detected;
        else fail(row, why);
        fs::remove_all(d);
      }
    }
    fs::remove_all(base_dir);
    std::cout << "corruption: seed " << (s + 1) << "/" << seeds << " done" << std::endl;
  }

  nlohmann::json figures;
  int runs = 0, detected = 0, silent = 0, wrong = 0;
  for (const auto& [name, r] : rows) {
    figures["rows"][name] = {{"runs", r.runs},
                             {"detected", r.detected},
                             {"silent", r.silent},
                             {"wrong_data", r.wrong_data}};
    runs += r.runs;
    detected += r.detected;
    silent += r.silent;
    wrong += r.wrong_data;
  }
  figures["runs"] = runs;
  figures["detected"] = detected;
  figures["silent_opens"] = silent;
  figures["wrong_data"] = wrong;
  figures["seed"] = seed;
  report("corruption", figures);
  for (const auto& [name, r] : rows)
    BOOST_TEST(
        r.detected == r.runs, name << ": " << r.detected << "/" << r.runs << " detected" << [&] {
          std::string s;
          for (auto& p : r.problems) s += "\n  " + p;
          return s;
        }());
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace giftcard::reliability
