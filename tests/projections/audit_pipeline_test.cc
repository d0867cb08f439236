// The audit's fast paths: verify's reading pipeline (projections/audit_pipeline.h)
// reports exactly the same whatever its page size — a page of 1 is the old
// one-event-at-a-time loop — also when the damage sits at a page boundary;
// and the fold's two instantiations (fold_event(), projections/read_models_fold.h:
// FlatModels::fold on hash maps, apply() on ReadModels' std::maps) build exactly
// the same models event by event, also from a damaged log, and so does
// replay_log_flat().
#include <rocksdb/db.h>
#include <unistd.h>

#include <algorithm>
#include <boost/test/unit_test.hpp>
#include <cstring>
#include <filesystem>

#include "events/codec.h"
#include "events/envelope.h"
#include "projections/audit.h"
#include "projections/flat_models.h"
#include "projections/read_models.h"
#include "store/keys.h"
#include "store/log_scanner.h"
#include "store/rocks_event_store.h"
#include "tests/support/models.h"

namespace giftcard {
namespace {

namespace fs = std::filesystem;

std::string fresh_dir() {
  static int n = 0;
  auto p = fs::temp_directory_path() /
           ("gc-audit-pipe-" + std::to_string(::getpid()) + "-" + std::to_string(++n));
  fs::remove_all(p);
  return p.string();
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

// 1 card, 30 codes, 2 wallets, 12 purchases, a revocation, an expiry: 30 events.
void write_shop(EventStore* s) {
  test::append(s, {{"card-c", CardCreated{"c", "Card", 10, 12}}});
  std::vector<CodeSpec> codes;
  for (int i = 0; i < 30; ++i) codes.push_back({"C-" + std::to_string(1000 + i), 0});
  test::append(s, {{"card-c", CodesAdded{"c", codes}}});
  test::append(s, {{"wallet-a", WalletCredited{"a", 1000, 1000, "k"}}});
  test::append(s, {{"wallet-b", WalletCredited{"b", 1000, 1000, "k"}}});
  int64_t balance[2] = {1000, 1000};
  for (int i = 0; i < 12; ++i) {
    const std::string user = i % 2 ? "b" : "a", id = "p" + std::to_string(i);
    balance[i % 2] -= 10;
    test::append(s, {{"card-c", CodeAssigned{"c", codes[i].code, id, user, 10, "x" + id}},
                     {"wallet-" + user, WalletDebited{user, 10, balance[i % 2], id, "c"}}});
  }
  test::append(s, {{"card-c", CodeRevoked{"c", codes[20].code}}});
  test::append(s, {{"card-c", CodesExpired{"c", {codes[21].code}}}});
}

struct Raw {
  rocksdb::DB* db = nullptr;
  explicit Raw(const std::string& dir) {
    BOOST_REQUIRE(rocksdb::DB::Open(rocksdb::Options(), dir, &db).ok());
  }
  ~Raw() { delete db; }
  StoredEvent get(int64_t pos) {
    std::string v;
    BOOST_REQUIRE(db->Get(rocksdb::ReadOptions(), keys::event_key(pos), &v).ok());
    StoredEvent e;
    BOOST_REQUIRE(decode_record(v, &e).ok());
    return e;
  }
  void put(int64_t pos, const std::string& record) {
    BOOST_REQUIRE(db->Put(rocksdb::WriteOptions(), keys::event_key(pos), record).ok());
  }
};

// Everything a report says, problems sorted (finish() walks hash maps).
std::string summary(VerifyReport r) {
  std::sort(r.problems.begin(), r.problems.end());
  std::string s = "events " + std::to_string(r.events) + " last " +
                  std::to_string(r.last_position) + " first_bad " +
                  std::to_string(r.first_bad_position) + " purchases " +
                  std::to_string(r.purchases) + " assigned " + std::to_string(r.codes_assigned) +
                  " wallets " + std::to_string(r.wallets) + " |";
  for (const auto& p : r.problems) s += " " + p + ";";
  return s;
}

enum class Damage { payload, prev_hash, garbage, missing };

// A fresh shop with `what` done to the event at `pos`; the reports of verify
// with pages of 1, 3, 8 and 8192 events must be identical. Returns it.
VerifyReport damaged_at(Damage what, int64_t pos) {
  std::string dir = fresh_dir();
  {
    auto s = open_store(dir, true);
    write_shop(s.get());
  }
  {
    Raw raw(dir);
    StoredEvent e = raw.get(pos);
    switch (what) {
      case Damage::payload:  // a valid record whose hash no longer matches
        e.payload = encode_payload(WalletCredited{"z", 1, 1, "k"});
        raw.put(pos, encode_record(e));
        break;
      case Damage::prev_hash:  // the chain breaks inside ReadAll's page
        e.prev_hash[0] ^= 1;
        raw.put(pos, encode_record(e));
        break;
      case Damage::garbage:  // does not decode: unreadable
        raw.put(pos, "not a record");
        break;
      case Damage::missing:
        BOOST_REQUIRE(raw.db->Delete(rocksdb::WriteOptions(), keys::event_key(pos)).ok());
        break;
    }
  }
  auto s = open_store(dir, false);
  VerifyReport first = verify_log(s.get(), {}, 1);
  for (size_t page : {3, 8, 8192}) {
    VerifyReport r = verify_log(s.get(), {}, page);
    BOOST_TEST(summary(r) == summary(first), "page " << page);
  }
  s.reset();
  fs::remove_all(dir);
  return first;
}

// The log's events, read back (with their hashes) for folds without a store.
std::vector<StoredEvent> events_of(EventStore* s) {
  std::vector<StoredEvent> out;
  BOOST_REQUIRE(s->ReadAll(1, 1000, &out).ok());
  return out;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(audit_pipeline)

BOOST_AUTO_TEST_CASE(clean_log_verifies_at_every_page_size) {
  std::string dir = fresh_dir();
  {
    auto s = open_store(dir, true);
    write_shop(s.get());
    for (size_t page : {1, 2, 7, 8, 29, 30, 31, 8192}) {
      VerifyReport r = verify_log(s.get(), {}, page);
      BOOST_TEST(r.ok(), summary(r));
      BOOST_TEST(r.events == 30);
      BOOST_TEST(r.purchases == 12);
      BOOST_TEST(r.codes_assigned == 12);
      BOOST_TEST(r.wallets == 2);
    }
  }
  fs::remove_all(dir);
}

// Positions 8 and 9 end and begin a page of 8, 16/17 the next; 24 ends a page
// of 3. Damage to one half of a purchase also shows at the other half: the
// first bad position is then the CodeAssigned's, one before.
BOOST_AUTO_TEST_CASE(damage_at_page_boundaries_is_named_exactly) {
  for (int64_t pos : {1, 8, 9, 16, 17, 24, 30}) {
    BOOST_TEST_CONTEXT("position " << pos) {
      VerifyReport r = damaged_at(Damage::payload, pos);
      BOOST_TEST(!r.ok());
      BOOST_TEST((r.first_bad_position == pos || r.first_bad_position == pos - 1), summary(r));
      BOOST_TEST(summary(r).find("position " + std::to_string(pos) +
                                 ": event hash does not match its contents") != std::string::npos,
                 summary(r));

      r = damaged_at(Damage::prev_hash, pos);
      BOOST_TEST((r.first_bad_position == pos || r.first_bad_position == pos - 1), summary(r));
      BOOST_TEST(summary(r).find("position " + std::to_string(pos) + ": hash chain broken") !=
                     std::string::npos,
                 summary(r));
      BOOST_TEST(r.events == 30);  // a broken chain hides no event

      if (pos != 30) {  // the store refuses to open on a bad tail; a missing one is a shorter log
        r = damaged_at(Damage::garbage, pos);
        BOOST_TEST((r.first_bad_position == pos || r.first_bad_position == pos - 1), summary(r));
        BOOST_TEST(summary(r).find("position " + std::to_string(pos) + ": unreadable") !=
                       std::string::npos,
                   summary(r));
        BOOST_TEST(r.events == 29);

        r = damaged_at(Damage::missing, pos);
        BOOST_TEST((r.first_bad_position == pos || r.first_bad_position == pos - 1), summary(r));
        BOOST_TEST(summary(r).find("position " + std::to_string(pos) +
                                   ": missing or out of order") != std::string::npos,
                   summary(r));
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(flat_fold_equals_apply_event_for_event) {
  std::string dir = fresh_dir();
  auto s = open_store(dir, true);
  write_shop(s.get());
  std::vector<StoredEvent> log = events_of(s.get());
  // What a damaged log can hold: a repeated purchase id (for another user),
  // a sale of an unknown card, a card created twice, a repeated position.
  auto extra = [&](const std::string& stream, Event ev) {
    StoredEvent e = log.back();
    e.position += 1;
    e.recorded_at += 1;
    e.stream = stream;
    e.type = type_of(ev);
    e.payload = encode_payload(ev);
    log.push_back(e);
  };
  extra("card-c", CodeAssigned{"c", "C-1022", "p3", "a", 7, "y"});
  extra("card-q", CodeAssigned{"q", "Q-1", "p99", "b", 5, "y"});
  extra("card-c", CardCreated{"c", "Card renamed", 11, 13});
  extra("wallet-n", WalletDebited{"n", 4, -4, "p99", "q"});
  // Keys too long to be kept inline in the hash maps' slots (StoredKey).
  const std::string long_id(40, 'L'), long_user = "user-" + std::string(30, 'u');
  extra("card-c", CodeAssigned{"c", "C-1023", long_id, long_user, 10, "z"});
  extra("wallet-" + long_user, WalletDebited{long_user, 10, -10, long_id, "c"});
  log.push_back(log[5]);  // an old position again: skipped by both
  ReadModels expect;
  FlatModels flat;
  for (size_t i = 0; i < log.size(); ++i) {
    BOOST_REQUIRE(apply(expect, log[i]).ok());
    Event ev;
    BOOST_REQUIRE(log[i].decode(&ev).ok());
    flat.fold(log[i], std::move(ev));
    BOOST_TEST(first_difference(flat.to_read_models(), expect) == "", "after event " << i);
  }
  BOOST_TEST((flat.to_read_models() == expect));
  BOOST_TEST(flat.purchase_count() == expect.purchases.size());
  BOOST_TEST(*flat.balance("a") == expect.balances.at("a"));
  BOOST_TEST(!flat.balance("nobody").has_value());
  s.reset();
  fs::remove_all(dir);
}

// decode_event()'s own parser of CodeAssigned and WalletDebited accepts
// exactly what cereal accepts, yields the same values, and leaves every error
// (and its message) to cereal: checked on every truncation, a trailing byte,
// each class version and a lying string length.
BOOST_AUTO_TEST_CASE(decode_event_equals_cereal) {
  const std::string long_id(40, 'L');
  const std::vector<Event> events = {
      CodeAssigned{"c", "C-1022", "p3", "a", 7, "y"},
      CodeAssigned{"", "", "", "", 0, ""},
      CodeAssigned{"card", "GC-4N3U-FBFS-PXMK", long_id, long_id, -5, long_id},
      WalletDebited{"user0046872", 5250, 1020750, "p_5eedb0a7c0ffee11_224700", "gc0099"},
      WalletDebited{"", 0, 0, "", ""},
      WalletCredited{"a", 10, 10, "k"},
      CardCreated{"c", "Card", 10, 12},
  };
  auto same = [](const StoredEvent& e, Event start, const std::string& what) {
    Event fast = start, slow = start;
    const Status a = decode_event(e, &fast), b = e.decode(&slow);
    BOOST_TEST(a.ok() == b.ok(), what);
    BOOST_TEST(a.ToString() == b.ToString(), what);
    if (a.ok() && b.ok()) BOOST_TEST((fast == slow), what);
  };
  for (const Event& ev : events) {
    StoredEvent e;
    e.type = type_of(ev);
    const std::string payload = encode_payload(ev);
    std::vector<std::pair<std::string, std::string>> variants = {{"whole", payload},
                                                                 {"trailing", payload + "x"}};
    for (size_t n = 0; n < payload.size(); ++n)
      variants.emplace_back("truncated to " + std::to_string(n), payload.substr(0, n));
    for (uint32_t version : {0u, 1u, 2u, 0xffffffffu}) {
      std::string p = payload;
      std::memcpy(p.data(), &version, sizeof version);
      variants.emplace_back("class version " + std::to_string(version), p);
    }
    if (payload.size() >= 12) {  // the first string's u64 length, after the version
      std::string p = payload;
      const uint64_t lie = payload.size();
      std::memcpy(p.data() + 4, &lie, sizeof lie);
      variants.emplace_back("lying length", p);
    }
    for (const auto& [what, bytes] : variants) {
      e.payload = bytes;
      same(e, Event{}, what);
      same(e, ev, what + " (into the same type)");
      same(e, CodeAssigned{long_id, long_id, long_id, long_id, 1, long_id},
           what + " (into a CodeAssigned with long strings)");
      same(e, WalletDebited{long_id, 1, 2, long_id, long_id},
           what + " (into a WalletDebited with long strings)");
    }
  }
}

BOOST_AUTO_TEST_CASE(replay_log_flat_equals_replay_log) {
  std::string dir = fresh_dir();
  auto s = open_store(dir, true);
  write_shop(s.get());
  const Micros mid = events_of(s.get())[14].recorded_at;
  for (int64_t to : {0, 1, 9, 31, 40})
    for (std::optional<Micros> at : {std::optional<Micros>(), std::optional<Micros>(mid)}) {
      ReadModels a, b;
      BOOST_REQUIRE(replay_log(s.get(), to, at, &a).ok());
      BOOST_REQUIRE(replay_log_flat(s.get(), to, at, &b).ok());
      BOOST_TEST(first_difference(b, a) == "", "to " << to);
      BOOST_TEST((a == b));
    }
  s.reset();
  fs::remove_all(dir);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace giftcard
