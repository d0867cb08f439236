// ProjectionDb (projections/projection_db.h) on both store backends: the
// persisted fold equals the pure in-memory fold, every query answers from it,
// events are applied exactly once (overlaps skipped, gaps refused, the
// checkpoint survives a reopen and a crash between append and apply).
// Rebuilds and generations: projection_db_rebuild_test.cc (the same suite).
#include <boost/test/unit_test.hpp>

#include "tests/projections/projection_db_fixture.h"

namespace giftcard {
using namespace test;

BOOST_AUTO_TEST_SUITE(projection_db)

// Applying the log in chunks of every size gives exactly the pure fold after
// every chunk; CatchUp from zero gives it too.
void fold_equals_pure_fold(bool rocks) {
  TestStore s(rocks);
  ShopGen gen(7);
  gen.append_ops(s.get(), 1500, 16);
  const int64_t last = s->LastPosition();
  BOOST_REQUIRE_GT(last, 1500);
  BOOST_REQUIRE_GT(gen.purchases(), 100);

  auto db = open_db(s.get());
  BOOST_TEST(db->position() == 0);
  BOOST_TEST(db->generation() == 1u);
  std::mt19937 rng(11);
  ReadModels expect;
  int64_t next = 1;
  int checks = 0;
  while (next <= last) {
    auto chunk = read(s.get(), next, 1 + rng() % 97);
    BOOST_REQUIRE_MESSAGE(db->Apply(chunk).ok(), "apply at " << next);
    for (const auto& e : chunk) BOOST_REQUIRE(apply(expect, e).ok());
    next = chunk.back().position + 1;
    BOOST_REQUIRE_EQUAL(db->position(), chunk.back().position);
    BOOST_REQUIRE_EQUAL(db->recorded_at(), chunk.back().recorded_at);
    if (rng() % 4 == 0 || next > last) {
      ++checks;
      ReadModels got = load(*db);
      CHECK_MODELS_EQUAL(got, expect);
      if (got != expect) break;
    }
  }
  BOOST_TEST(checks > 10);
  CHECK_MODELS_EQUAL(load(*db), fold_log(s.get()));

  // The same through CatchUp, on a second ProjectionDb after dropping the
  // models: progress reports every chunk.
  KvBatch wipe;
  wipe.delete_prefixes.push_back("");
  BOOST_REQUIRE(s->KvWrite(wipe).ok());
  db.reset();
  db = open_db(s.get());
  BOOST_TEST(db->position() == 0);
  std::vector<int64_t> progress;
  BOOST_REQUIRE(db->CatchUp(500, INT64_MAX, [&](int64_t p) { progress.push_back(p); }).ok());
  BOOST_TEST(db->position() == last);
  BOOST_TEST(progress.size() == static_cast<size_t>((last + 499) / 500));
  BOOST_TEST(progress.back() == last);
  CHECK_MODELS_EQUAL(load(*db), expect);
  // CatchUp with up_to stops there.
  wipe.delete_prefixes = {""};
  BOOST_REQUIRE(s->KvWrite(wipe).ok());
  db.reset();
  db = open_db(s.get());
  BOOST_REQUIRE(db->CatchUp(64, last / 2).ok());
  BOOST_TEST(db->position() == last / 2);
  CHECK_MODELS_EQUAL(load(*db), fold_log(s.get(), last / 2));
}
BOTH_BACKENDS(fold_equals_pure_fold)

// Every query on a small shop whose answers are known by hand.
void queries_answer_from_the_models(bool rocks) {
  TestStore s(rocks);
  auto results = write_small_shop(s.get());
  auto db = open_db(s.get());
  BOOST_REQUIRE(db->CatchUp().ok());
  BOOST_TEST(db->position() == 19);
  CHECK_MODELS_EQUAL(load(*db), fold_log(s.get()));

  CardView c, d;
  BOOST_REQUIRE(db->Card("c", &c).ok());
  BOOST_REQUIRE(db->Card("d", &d).ok());
  BOOST_TEST(show(c) == show(CardView{"c", "Card C", 100, 120, 1, 3, 0, 1, 3, 300}));
  BOOST_TEST(show(d) == show(CardView{"d", "Card D", 50, 50, 0, 2, 1, 0, 2, 100}));
  CardView none;
  BOOST_TEST(db->Card("nope", &none).IsNotFound());
  BOOST_TEST(db->Card("", &none).IsNotFound());
  std::vector<CardView> cards;
  BOOST_REQUIRE(db->Cards(&cards).ok());
  BOOST_REQUIRE_EQUAL(cards.size(), 2u);
  BOOST_TEST((cards[0] == c));
  BOOST_TEST((cards[1] == d));

  int64_t bal = -1;
  BOOST_REQUIRE(db->Balance("alice", &bal).ok());
  BOOST_TEST(bal == 250);
  BOOST_REQUIRE(db->Balance("alfred", &bal).ok());
  BOOST_TEST(bal == 50);
  BOOST_REQUIRE(db->Balance("bob", &bal).ok());
  BOOST_TEST(bal == 0);
  bal = -1;
  BOOST_REQUIRE(db->Balance("nobody", &bal).ok());
  BOOST_TEST(bal == 0);

  std::vector<std::pair<std::string, int64_t>> ws;
  BOOST_REQUIRE(db->Wallets("", "", 100, &ws).ok());
  BOOST_TEST(ws == (std::vector<std::pair<std::string, int64_t>>{
                       {"alfred", 50}, {"alice", 250}, {"bob", 0}}));
  BOOST_REQUIRE(db->Wallets("al", "", 100, &ws).ok());
  BOOST_TEST(names(ws) == (Strings{"alfred", "alice"}));
  BOOST_REQUIRE(db->Wallets("al", "alfreda", 100, &ws).ok());
  BOOST_TEST(names(ws) == (Strings{"alice"}));
  BOOST_REQUIRE(db->Wallets("", "alice", 100, &ws).ok());
  BOOST_TEST(names(ws) == (Strings{"alice", "bob"}));
  BOOST_REQUIRE(db->Wallets("", "", 2, &ws).ok());
  BOOST_TEST(names(ws) == (Strings{"alfred", "alice"}));
  BOOST_REQUIRE(db->Wallets("", "b", 1, &ws).ok());
  BOOST_TEST(names(ws) == (Strings{"bob"}));
  BOOST_REQUIRE(db->Wallets("", "", 0, &ws).ok());
  BOOST_TEST(ws.empty());
  BOOST_REQUIRE(db->Wallets("z", "", 10, &ws).ok());
  BOOST_TEST(ws.empty());
  BOOST_REQUIRE(db->Wallets("bob", "", 10, &ws).ok());
  BOOST_TEST(names(ws) == (Strings{"bob"}));

  for (const auto& [pid, r] : results) {
    PurchaseView p;
    BOOST_REQUIRE_MESSAGE(db->Purchase(pid, &p).ok(), pid);
    BOOST_TEST(p.purchase_id == pid);
    BOOST_TEST(p.position == r.first_position);
    BOOST_TEST(p.purchased_at == r.recorded_at);
  }
  PurchaseView p1;
  BOOST_REQUIRE(db->Purchase("p1", &p1).ok());
  BOOST_TEST(show(p1) ==
             show(PurchaseView{"p1", "c", "alice", "C-1", 100, results["p1"].recorded_at,
                               results["p1"].first_position}));
  PurchaseView missing;
  BOOST_TEST(db->Purchase("p9", &missing).IsNotFound());

  std::vector<PurchaseView> ps;
  BOOST_REQUIRE(db->UserPurchases("alice", 100, &ps).ok());
  BOOST_TEST(ids(ps) == (Strings{"p1", "p3", "p4"}));
  BOOST_TEST(ps[1].card_id == "d");
  BOOST_TEST(ps[1].price == 50);
  BOOST_REQUIRE(db->UserPurchases("alice", 2, &ps).ok());
  BOOST_TEST(ids(ps) == (Strings{"p1", "p3"}));
  BOOST_REQUIRE(db->UserPurchases("al", 100, &ps).ok());  // a prefix of two users: neither
  BOOST_TEST(ps.empty());
  BOOST_REQUIRE(db->UserPurchases("bob", 100, &ps).ok());
  BOOST_TEST(ids(ps) == (Strings{"p2"}));
  BOOST_REQUIRE(db->UserPurchases("nobody", 100, &ps).ok());
  BOOST_TEST(ps.empty());
  BOOST_REQUIRE(db->RecentPurchases(3, &ps).ok());
  BOOST_TEST(ids(ps) == (Strings{"p5", "p4", "p3"}));
  BOOST_REQUIRE(db->RecentPurchases(100, &ps).ok());
  BOOST_TEST(ids(ps) == (Strings{"p5", "p4", "p3", "p2", "p1"}));
  BOOST_REQUIRE(db->RecentPurchases(0, &ps).ok());
  BOOST_TEST(ps.empty());
}
BOTH_BACKENDS(queries_answer_from_the_models)

// Pages: Cards(from, limit) and UserPurchases(user, from, limit) start at
// their cursor (an id, a log position), stop at `limit`, and pages chained by
// "the first one not returned" give every item exactly once, in order.
void pages_start_at_their_cursor(bool rocks) {
  TestStore s(rocks);
  auto results = write_small_shop(s.get());
  auto db = open_db(s.get());
  BOOST_REQUIRE(db->CatchUp().ok());
  auto card_ids = [](const std::vector<CardView>& cs) {
    Strings out;
    for (const auto& c : cs) out.push_back(c.id);
    return out;
  };
  std::vector<CardView> cs;
  BOOST_REQUIRE(db->Cards("", 1, &cs).ok());
  BOOST_TEST(card_ids(cs) == (Strings{"c"}));
  BOOST_REQUIRE(db->Cards("", 100, &cs).ok());
  BOOST_TEST(card_ids(cs) == (Strings{"c", "d"}));
  BOOST_REQUIRE(db->Cards("c", 100, &cs).ok());  // inclusive
  BOOST_TEST(card_ids(cs) == (Strings{"c", "d"}));
  BOOST_REQUIRE(db->Cards("c0", 100, &cs).ok());  // between two ids: the next one
  BOOST_TEST(card_ids(cs) == (Strings{"d"}));
  BOOST_REQUIRE(db->Cards("d", 1, &cs).ok());
  BOOST_TEST(card_ids(cs) == (Strings{"d"}));
  BOOST_REQUIRE(db->Cards("e", 100, &cs).ok());
  BOOST_TEST(cs.empty());
  BOOST_REQUIRE(db->Cards("", 0, &cs).ok());
  BOOST_TEST(cs.empty());

  const int64_t p1 = results["p1"].first_position, p3 = results["p3"].first_position,
                p4 = results["p4"].first_position;
  std::vector<PurchaseView> ps;
  BOOST_REQUIRE(db->UserPurchases("alice", 0, 100, &ps).ok());
  BOOST_TEST(ids(ps) == (Strings{"p1", "p3", "p4"}));
  BOOST_REQUIRE(db->UserPurchases("alice", -7, 100, &ps).ok());  // before the start: the start
  BOOST_TEST(ids(ps) == (Strings{"p1", "p3", "p4"}));
  BOOST_REQUIRE(db->UserPurchases("alice", p1, 1, &ps).ok());
  BOOST_TEST(ids(ps) == (Strings{"p1"}));
  BOOST_REQUIRE(db->UserPurchases("alice", p1 + 1, 100, &ps).ok());
  BOOST_TEST(ids(ps) == (Strings{"p3", "p4"}));
  BOOST_REQUIRE(db->UserPurchases("alice", p3, 100, &ps).ok());  // inclusive
  BOOST_TEST(ids(ps) == (Strings{"p3", "p4"}));
  BOOST_REQUIRE(db->UserPurchases("alice", p4, 100, &ps).ok());
  BOOST_TEST(ids(ps) == (Strings{"p4"}));
  BOOST_REQUIRE(db->UserPurchases("alice", p4 + 1, 100, &ps).ok());
  BOOST_TEST(ps.empty());
  BOOST_REQUIRE(db->UserPurchases("alice", INT64_MAX, 100, &ps).ok());
  BOOST_TEST(ps.empty());
  BOOST_REQUIRE(db->UserPurchases("alice", 0, 0, &ps).ok());
  BOOST_TEST(ps.empty());
  BOOST_REQUIRE(db->UserPurchases("al", 0, 100, &ps).ok());  // a prefix of two users: neither
  BOOST_TEST(ps.empty());
  BOOST_REQUIRE(db->UserPurchases("alfred", p1, 100, &ps).ok());
  BOOST_TEST(ids(ps) == (Strings{"p5"}));

  // A long history interleaved with a neighbour's ("whale" and "whale1"
  // share a prefix), walked in pages of several sizes.
  append(s.get(), {{"card-w", CardCreated{"w", "Card W", 1, 1}}});
  constexpr int kCodes = 2600;
  std::vector<CodeSpec> codes;
  for (int i = 0; i < kCodes; ++i) codes.push_back({"W-" + std::to_string(i), 0});
  append(s.get(), {{"card-w", CodesAdded{"w", codes}}});
  append(s.get(), {{"wallet-whale", WalletCredited{"whale", kCodes, kCodes, "k"}},
                   {"wallet-whale1", WalletCredited{"whale1", kCodes, kCodes, "k"}}});
  Strings whale;
  std::vector<int64_t> whale_at;
  int64_t left = kCodes, left1 = kCodes;
  for (int i = 0; i < kCodes;) {
    std::vector<std::pair<std::string, Event>> evs;
    for (int j = 0; j < 200 && i < kCodes; ++j, ++i) {
      const bool mine = i % 5 != 0;  // 4 of 5 to the whale
      const std::string user = mine ? "whale" : "whale1";
      const std::string pid = "pw" + std::to_string(i);
      int64_t& bal = mine ? left : left1;
      --bal;
      evs.push_back(
          {"card-w", CodeAssigned{"w", "W-" + std::to_string(i), pid, user, 1, "x" + pid}});
      evs.push_back({"wallet-" + user, WalletDebited{user, 1, bal, pid, "w"}});
      if (mine) whale.push_back(pid);
    }
    AppendResult r = append(s.get(), evs);
    // This batch's purchases are at r.first_position + 2k (CodeAssigned first).
    for (size_t k = 0; k < evs.size() / 2; ++k)
      if (std::get<CodeAssigned>(evs[2 * k].second).user_id == "whale")
        whale_at.push_back(r.first_position + 2 * static_cast<int64_t>(k));
  }
  BOOST_REQUIRE(db->CatchUp().ok());
  BOOST_REQUIRE_EQUAL(whale.size(), whale_at.size());
  for (size_t limit :
       {size_t{1}, size_t{7}, size_t{1000}, whale.size() - 1, whale.size(), whale.size() + 1}) {
    BOOST_TEST_CONTEXT("limit " << limit) {
      Strings got;
      int64_t from = 0;
      size_t pages = 0;
      for (;;) {
        // limit + 1, as the shop reads: the extra one is the next cursor.
        BOOST_REQUIRE(db->UserPurchases("whale", from, limit + 1, &ps).ok());
        ++pages;
        BOOST_REQUIRE(!ps.empty() || from == 0);
        const size_t take = std::min(limit, ps.size());
        for (size_t k = 0; k < take; ++k) {
          BOOST_REQUIRE_EQUAL(ps[k].user_id, "whale");
          BOOST_REQUIRE_EQUAL(ps[k].position, whale_at[got.size()]);
          got.push_back(ps[k].purchase_id);
        }
        if (ps.size() <= limit) break;
        BOOST_REQUIRE_GT(ps[limit].position, ps[limit - 1].position);
        from = ps[limit].position;
      }
      BOOST_TEST((got == whale));
      BOOST_TEST(pages == (whale.size() + limit - 1) / limit);
    }
  }
  BOOST_REQUIRE(db->UserPurchases("whale1", whale_at[5], 3, &ps).ok());
  BOOST_REQUIRE_EQUAL(ps.size(), 3u);
  for (const auto& p : ps) {
    BOOST_TEST(p.user_id == "whale1");
    BOOST_TEST(p.position > whale_at[5]);
  }
}
BOTH_BACKENDS(pages_start_at_their_cursor)

// Overlapping ranges are skipped; a gap is refused and changes nothing, also
// when the batch starts with events that would fit.
void exactly_once(bool rocks) {
  TestStore s(rocks);
  ShopGen gen(3);
  gen.append_ops(s.get(), 300, 8);
  const int64_t last = s->LastPosition();
  auto db = open_db(s.get());
  auto all = read(s.get(), 1, 100000);
  BOOST_REQUIRE_EQUAL(static_cast<int64_t>(all.size()), last);
  auto range = [&](int64_t from, int64_t to) {  // positions [from, to]
    return std::vector<StoredEvent>(all.begin() + (from - 1), all.begin() + to);
  };
  BOOST_REQUIRE(db->Apply(range(1, 100)).ok());
  const ReadModels at100 = load(*db);
  CHECK_MODELS_EQUAL(at100, fold_log(s.get(), 100));

  // Again, and every sub-range of it: nothing changes.
  BOOST_REQUIRE(db->Apply(range(1, 100)).ok());
  BOOST_REQUIRE(db->Apply(range(40, 60)).ok());
  BOOST_REQUIRE(db->Apply(range(100, 100)).ok());
  BOOST_REQUIRE(db->Apply({}).ok());
  BOOST_TEST(db->position() == 100);
  CHECK_MODELS_EQUAL(load(*db), at100);

  // An overlap that reaches further applies only the new part.
  BOOST_REQUIRE(db->Apply(range(50, 150)).ok());
  BOOST_TEST(db->position() == 150);
  const ReadModels at150 = load(*db);
  CHECK_MODELS_EQUAL(at150, fold_log(s.get(), 150));

  // Gaps: entirely ahead, or ahead after a part that would fit.
  Status g1 = db->Apply(range(152, 160));
  BOOST_TEST(g1.IsInvalidArgument(), g1.ToString());
  Status g2 = db->Apply(range(140, 155));
  BOOST_TEST(g2.ok());  // contiguous overlap: fine
  BOOST_TEST(db->position() == 155);
  auto gapped = range(150, 158);
  gapped.erase(gapped.begin() + 7);  // drop position 157
  Status g3 = db->Apply(gapped);
  BOOST_TEST(g3.IsInvalidArgument(), g3.ToString());
  BOOST_TEST(g3.message().find("157") != std::string::npos, g3.message());
  BOOST_TEST(db->position() == 155);  // 156 fitted, but the batch is all or nothing
  CHECK_MODELS_EQUAL(load(*db), fold_log(s.get(), 155));

  // And the rest applies once.
  BOOST_REQUIRE(db->Apply(range(1, last)).ok());
  BOOST_REQUIRE(db->CatchUp().ok());
  BOOST_REQUIRE(db->Apply(range(1, last)).ok());
  BOOST_TEST(db->position() == last);
  CHECK_MODELS_EQUAL(load(*db), fold_log(s.get()));
}
BOTH_BACKENDS(exactly_once)

// The checkpoint (and the active generation) survive a reopen: the models
// resume where they were, and catching up gives the full fold.
BOOST_AUTO_TEST_CASE(checkpoint_survives_reopen) {
  TestStore s(true);
  ShopGen gen(5);
  gen.append_ops(s.get(), 400, 16);
  int64_t applied = 0;
  Micros applied_at = 0;
  ReadModels before;
  {
    auto db = open_db(s.get());
    BOOST_REQUIRE(db->CatchUp(128).ok());
    BOOST_REQUIRE(db->Rebuild(nullptr).ok());  // generation 2 from now on
    BOOST_TEST(db->generation() == 2u);
    gen.append_ops(s.get(), 100, 16);
    BOOST_REQUIRE(db->CatchUp(128, s->LastPosition() - 37).ok());
    applied = db->position();
    applied_at = db->recorded_at();
    before = load(*db);
    BOOST_TEST(before.position == applied);
  }
  BOOST_REQUIRE_GT(applied, 0);
  s.reopen();
  {
    auto db = open_db(s.get());
    BOOST_TEST(db->position() == applied);
    BOOST_TEST(db->recorded_at() == applied_at);
    BOOST_TEST(db->generation() == 2u);
    CHECK_MODELS_EQUAL(load(*db), before);
    gen.append_ops(s.get(), 200, 16);
    BOOST_REQUIRE(db->CatchUp().ok());
    BOOST_TEST(db->position() == s->LastPosition());
    CHECK_MODELS_EQUAL(load(*db), fold_log(s.get()));
    before = load(*db);
  }
  s.reopen();
  auto db = open_db(s.get());
  BOOST_TEST(db->position() == s->LastPosition());
  CHECK_MODELS_EQUAL(load(*db), before);
  BOOST_TEST(keys_by_generation(s.get()).size() == 1u);
}

// A crash between an append and its projection update: the events are in the
// log, the models are still at the old checkpoint. After reopening, CatchUp
// applies exactly the missing events: nothing lost, nothing twice.
BOOST_AUTO_TEST_CASE(crash_between_append_and_projection_update) {
  TestStore s(true);
  ShopGen gen(9);
  gen.append_ops(s.get(), 250, 8);
  int64_t checkpoint = 0;
  {
    auto db = open_db(s.get());
    BOOST_REQUIRE(db->CatchUp().ok());
    checkpoint = db->position();
    // These commit, but the process dies before the driver applies them.
    gen.append_ops(s.get(), 100, 4);
    append(s.get(), {{"wallet-u1", WalletCredited{"u1", 1000000, 0, "late"}}});
  }
  const int64_t last = s->LastPosition();
  BOOST_REQUIRE_GT(last, checkpoint);
  s.reopen();
  BOOST_TEST(s->LastPosition() == last);
  auto db = open_db(s.get());
  BOOST_TEST(db->position() == checkpoint);
  CHECK_MODELS_EQUAL(load(*db), fold_log(s.get(), checkpoint));
  // The driver would first try the whole log again (e.g. a subscription batch
  // it saw before the crash): skipped up to the checkpoint.
  BOOST_REQUIRE(db->Apply(read(s.get(), 1, 100000)).ok());
  BOOST_REQUIRE(db->CatchUp().ok());
  BOOST_TEST(db->position() == last);
  ReadModels got = load(*db);
  ReadModels want = fold_log(s.get());
  CHECK_MODELS_EQUAL(got, want);
  int64_t u1_before = fold_log(s.get(), last - 1).balances["u1"];
  BOOST_TEST(got.balances["u1"] == u1_before + 1000000);  // the late credit, once
  // Nothing counted twice: every purchase of the log is there once.
  BOOST_TEST(static_cast<int64_t>(got.purchases.size()) == gen.purchases());
  size_t listed = 0;
  for (const auto& [u, v] : got.user_purchases) listed += v.size();
  BOOST_TEST(listed == got.purchases.size());
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace giftcard
