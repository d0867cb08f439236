// verify (projections/audit.h) and the audit CLI: a clean log passes; every
// kind of tampering through the RocksDB API is caught and its position named.
#include <rocksdb/db.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>

#include <cstdio>
#include <filesystem>
#include "events/envelope.h"

#include "events/codec.h"
#include "projections/audit.h"
#include "projections/projection_db.h"
#include "projections/read_models.h"
#include "store/keys.h"
#include "store/rocks_event_store.h"
#include "tests/support/models.h"
#include "tests/support/run_command.h"

namespace giftcard {
namespace {

namespace fs = std::filesystem;

std::string fresh_dir() {
  static int n = 0;
  auto p = fs::temp_directory_path() /
           ("gc-audit-" + std::to_string(::getpid()) + "-" + std::to_string(++n));
  fs::remove_all(p);
  return p.string();
}

using test::append;  // tests/support/models.h

// A small, consistent shop: 1 card, 5 codes, 2 wallets, 3 purchases, a
// revocation and an expiry. 12 events.
void write_shop(EventStore* s) {
  append(s, {{"card-c", CardCreated{"c", "Card", 100, 120}}});
  append(s,
         {{"card-c",
           CodesAdded{
               "c", {{"C-0001", 0}, {"C-0002", 0}, {"C-0003", 0}, {"C-0004", 0}, {"C-0005", 0}}}}});
  append(s, {{"wallet-a", WalletCredited{"a", 250, 250, "k"}}});
  append(s, {{"wallet-b", WalletCredited{"b", 100, 100, "k"}}});
  append(s, {{"card-c", CodeAssigned{"c", "C-0001", "p1", "a", 100, "x1"}},
             {"wallet-a", WalletDebited{"a", 100, 150, "p1", "c"}}});
  append(s, {{"card-c", CodeAssigned{"c", "C-0002", "p2", "b", 100, "x2"}},
             {"wallet-b", WalletDebited{"b", 100, 0, "p2", "c"}}});
  append(s, {{"card-c", CodeAssigned{"c", "C-0003", "p3", "a", 100, "x3"}},
             {"wallet-a", WalletDebited{"a", 100, 50, "p3", "c"}}});
  append(s, {{"card-c", CodeRevoked{"c", "C-0004"}}});
  append(s, {{"card-c", CodesExpired{"c", {"C-0005"}}}});
}

std::unique_ptr<EventStore> open_store(const std::string& dir, bool create) {
  StoreOptions so;
  so.path = dir;
  so.create_if_missing = create;
  std::unique_ptr<EventStore> s;
  Status st = OpenRocksEventStore(so, &s);
  BOOST_REQUIRE_MESSAGE(st.ok(), st.ToString());
  return s;
}

// Opens the raw RocksDB under the store (the store must be closed).
struct Raw {
  rocksdb::DB* db = nullptr;
  explicit Raw(const std::string& dir) {
    rocksdb::Options o;
    BOOST_REQUIRE(rocksdb::DB::Open(o, dir, &db).ok());
  }
  ~Raw() { delete db; }
  StoredEvent get(int64_t pos) {
    std::string v;
    BOOST_REQUIRE(db->Get(rocksdb::ReadOptions(), keys::event_key(pos), &v).ok());
    StoredEvent e;
    BOOST_REQUIRE(decode_record(v, &e).ok());
    return e;
  }
  void put(int64_t pos, const StoredEvent& e) {
    BOOST_REQUIRE(db->Put(rocksdb::WriteOptions(), keys::event_key(pos), encode_record(e)).ok());
  }
};

VerifyReport verify_dir(const std::string& dir) {
  auto s = open_store(dir, false);
  return verify_log(s.get());
}

std::string joined(const VerifyReport& r) {
  std::string s;
  for (auto& p : r.problems) s += p + "; ";
  return s;
}

// Makes a fresh shop, applies `tamper` to the raw DB, returns the report.
template <class F>
VerifyReport tampered(F tamper) {
  std::string dir = fresh_dir();
  {
    auto s = open_store(dir, true);
    write_shop(s.get());
  }
  {
    Raw raw(dir);
    tamper(raw);
  }
  VerifyReport r = verify_dir(dir);
  fs::remove_all(dir);
  return r;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(audit)

BOOST_AUTO_TEST_CASE(clean_log_verifies) {
  std::string dir = fresh_dir();
  {
    auto s = open_store(dir, true);
    write_shop(s.get());
  }
  VerifyReport r = verify_dir(dir);
  BOOST_TEST(r.ok(), joined(r));
  BOOST_TEST(r.events == 12);
  BOOST_TEST(r.purchases == 3);
  BOOST_TEST(r.wallets == 2);
  fs::remove_all(dir);
}

// Invariant 6 against what the server persisted: the read models at their
// checkpoint (here mid-log) must equal a fold of the log up to it.
BOOST_AUTO_TEST_CASE(persisted_projections_are_checked_at_their_checkpoint) {
  std::string dir = fresh_dir();
  {
    auto s = open_store(dir, true);
    write_shop(s.get());
    std::unique_ptr<ProjectionDb> db;
    BOOST_REQUIRE(ProjectionDb::Open(s.get(), &db).ok());
    BOOST_REQUIRE(db->CatchUp(16, 7).ok());
    BOOST_REQUIRE(db->position() == 7);
  }
  VerifyReport r = verify_dir(dir);
  BOOST_TEST(r.ok(), joined(r));
  BOOST_TEST(r.projections_checked_at == 7);
  {
    Raw raw(dir + "/projections");  // wallet "a" of generation 1: 'p' 'g' 00 00 00 01 'b' "a"
    std::string k("pg\0\0\0\1ba", 8);
    std::string v;
    BOOST_REQUIRE(raw.db->Get(rocksdb::ReadOptions(), k, &v).ok());
    BOOST_REQUIRE(v.size() == 12);       // balance (8) + CRC-32C trailer (4)
    v[7] = static_cast<char>(v[7] + 1);  // one cent more
    BOOST_REQUIRE(raw.db->Put(rocksdb::WriteOptions(), k, v).ok());
  }
  // Damage: the value's checksum no longer matches.
  r = verify_dir(dir);
  BOOST_TEST(!r.ok());
  BOOST_TEST(joined(r).find("damaged") != std::string::npos, joined(r));
  {
    // A forgery with a valid checksum: only the fold comparison can catch it.
    Raw raw(dir + "/projections");
    std::string k("pg\0\0\0\1ba", 8);
    std::string v;
    BOOST_REQUIRE(raw.db->Get(rocksdb::ReadOptions(), k, &v).ok());
    v.resize(8);
    uint32_t crc = crc32c(v, crc32c(k));
    for (int i = 3; i >= 0; --i) v.push_back(static_cast<char>((crc >> (8 * i)) & 0xff));
    BOOST_REQUIRE(raw.db->Put(rocksdb::WriteOptions(), k, v).ok());
  }
  r = verify_dir(dir);
  BOOST_TEST(!r.ok());
  BOOST_TEST(joined(r).find("wallet a differs") != std::string::npos, joined(r));
  fs::remove_all(dir);
}

BOOST_AUTO_TEST_CASE(rewritten_payload_is_caught_at_its_position) {
  VerifyReport r = tampered([](Raw& raw) {
    StoredEvent e = raw.get(7);                                                   // CodeAssigned p2
    e.payload = encode_payload(CodeAssigned{"c", "C-0002", "p2", "b", 1, "x2"});  // price 100 -> 1
    raw.put(7, e);
  });
  BOOST_TEST(!r.ok());
  BOOST_TEST(r.first_bad_position == 7, joined(r));
}

BOOST_AUTO_TEST_CASE(rewritten_and_rehashed_event_breaks_the_chain) {
  VerifyReport r = tampered([](Raw& raw) {
    StoredEvent e = raw.get(5);  // WalletCredited b: 100 -> 1,000,000
    e.payload = encode_payload(WalletCredited{"b", 1000000, 1000000, "k"});
    e.hash = compute_hash(e);  // a careful forger re-hashes it...
    raw.put(5, e);
  });
  BOOST_TEST(!r.ok());
  // ...but position 6 still points at the original hash.
  BOOST_TEST(r.first_bad_position == 5, joined(r));  // balance_after disagrees at 5 as well
  BOOST_TEST(joined(r).find("position 6: hash chain broken") != std::string::npos, joined(r));
}

BOOST_AUTO_TEST_CASE(deleted_event_is_a_gap) {
  VerifyReport r = tampered([](Raw& raw) {
    BOOST_REQUIRE(raw.db->Delete(rocksdb::WriteOptions(), keys::event_key(9)).ok());
  });
  BOOST_TEST(!r.ok());
  BOOST_TEST(r.first_bad_position == 9, joined(r));
}

BOOST_AUTO_TEST_CASE(swapped_events_are_caught) {
  VerifyReport r = tampered([](Raw& raw) {
    StoredEvent a = raw.get(3), b = raw.get(4);
    std::string va = encode_record(a), vb = encode_record(b);
    BOOST_REQUIRE(raw.db->Put(rocksdb::WriteOptions(), keys::event_key(3), vb).ok());
    BOOST_REQUIRE(raw.db->Put(rocksdb::WriteOptions(), keys::event_key(4), va).ok());
  });
  BOOST_TEST(!r.ok());
  BOOST_TEST(r.first_bad_position == 3, joined(r));
}

BOOST_AUTO_TEST_CASE(swapped_and_renumbered_events_break_the_chain) {
  VerifyReport r = tampered([](Raw& raw) {
    StoredEvent a = raw.get(3), b = raw.get(4);
    std::swap(a.position, b.position);  // renumbered so the keys agree
    raw.put(3, b);
    raw.put(4, a);
  });
  BOOST_TEST(!r.ok());
  BOOST_TEST(r.first_bad_position == 3, joined(r));
}

BOOST_AUTO_TEST_CASE(altered_hash_is_caught) {
  VerifyReport r = tampered([](Raw& raw) {
    StoredEvent e = raw.get(10);
    e.hash[0] ^= 0x01;
    raw.put(10, e);
  });
  BOOST_TEST(!r.ok());
  BOOST_TEST(r.first_bad_position == 10, joined(r));
}

BOOST_AUTO_TEST_CASE(cli_exit_codes_and_report) {
  std::string dir = fresh_dir();
  {
    auto s = open_store(dir, true);
    write_shop(s.get());
  }
  std::string bin = GIFTCARD_BINARY, out;
  BOOST_TEST(test::run_command(bin + " verify --data " + dir, &out) == 0);
  BOOST_TEST(out.find("OK") != std::string::npos, out);
  out.clear();
  BOOST_TEST(test::run_command(bin + " events --data " + dir + " --stream wallet-a", &out) == 0);
  BOOST_TEST(std::count(out.begin(), out.end(), '\n') == 3);  // credit + 2 debits
  out.clear();
  BOOST_TEST(test::run_command(bin + " replay --data " + dir + " --to 6", &out) == 0);
  BOOST_TEST(out.find("\"position\":6") != std::string::npos, out);
  {
    Raw raw(dir);
    StoredEvent e = raw.get(8);
    e.hash[5] ^= 0x40;
    raw.put(8, e);
  }
  out.clear();
  BOOST_TEST(test::run_command(bin + " verify --data " + dir, &out) == 1);
  BOOST_TEST(out.find("first bad position 8") != std::string::npos, out);
  out.clear();
  BOOST_TEST(test::run_command(bin + " verify --data " + dir + "/nope", &out) == 4);
  BOOST_TEST(test::run_command(bin + " replay --data " + dir + " --at yesterday", &out) == 2);
  BOOST_TEST(!fs::exists(dir + "/nope"));
  fs::remove_all(dir);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(read_models)

BOOST_AUTO_TEST_CASE(fold_gives_the_views_and_skips_applied_positions) {
  std::string dir = fresh_dir();
  auto s = open_store(dir, true);
  write_shop(s.get());
  std::vector<StoredEvent> all;
  BOOST_REQUIRE(s->ReadAll(1, 100, &all).ok());
  ReadModels m;
  for (const auto& e : all) BOOST_REQUIRE(apply(m, e).ok());
  for (const auto& e : all) BOOST_REQUIRE(apply(m, e).ok());  // a second pass changes nothing
  BOOST_TEST(m.position == 12);
  BOOST_TEST(m.balances.at("a") == 50);
  BOOST_TEST(m.balances.at("b") == 0);
  const CardView& c = m.cards.at("c");
  BOOST_TEST(c.available == 0);
  BOOST_TEST(c.assigned == 3);
  BOOST_TEST(c.revoked == 1);
  BOOST_TEST(c.expired == 1);
  BOOST_TEST(c.revenue == 300);
  BOOST_TEST(m.purchases.at("p2").user_id == "b");
  BOOST_TEST(m.purchases.at("p2").position == 7);
  BOOST_TEST(m.user_purchases.at("a") == (std::vector<std::string>{"p1", "p3"}));
  // Replay to every prefix equals the fold stopped there.
  for (size_t p = 1; p <= all.size(); ++p) {
    ReadModels prefix, stepped;
    for (size_t i = 0; i < p; ++i) BOOST_REQUIRE(apply(prefix, all[i]).ok());
    for (size_t i = 0; i < all.size(); ++i) {
      if (static_cast<size_t>(all[i].position) > p) break;
      BOOST_REQUIRE(apply(stepped, all[i]).ok());
    }
    BOOST_TEST((prefix == stepped));
  }
  s.reset();
  fs::remove_all(dir);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace giftcard
