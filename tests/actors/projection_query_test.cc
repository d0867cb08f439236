// Queries through the shop's front door (card, cards, wallet, lookup,
// history, status, rebuild), answered from the persisted projections with a
// minimum log position `after`. Rebuilds and replays under real concurrency:
// projection_rebuild_test.cc.
#include <boost/test/unit_test.hpp>
#include <set>
#include <thread>

#include "tests/actors/projection_query_fixture.h"

namespace giftcard::test {

BOOST_AUTO_TEST_SUITE(projection_queries)

// Every query answers what the commands did, at or after the position asked.
void queries_answer_what_was_done(Backend backend) {
  ShopFixture f(backend);
  BOOST_REQUIRE(f.create_card("c1", 300));
  BOOST_REQUIRE(f.create_card("c2", 150, 200));
  BOOST_REQUIRE(f.add_codes("c1", ShopFixture::codes("ONE", 5)));
  BOOST_REQUIRE(f.add_codes("c2", ShopFixture::codes("TWO", 5)));
  BOOST_REQUIRE(f.credit("alice", 1000, "a1"));
  BOOST_REQUIRE(f.credit("bob", 500, "b1"));
  std::vector<Purchase> bought;
  for (auto [card, user, key] :
       std::vector<std::tuple<const char*, const char*, const char*>>{{"c1", "alice", "k1"},
                                                                      {"c2", "bob", "k1"},
                                                                      {"c2", "alice", "k2"},
                                                                      {"c1", "alice", "k3"},
                                                                      {"c1", "bob", "k2"}}) {
    auto p = f.purchase(card, user, key);
    BOOST_REQUIRE_MESSAGE(p, what(p));
    BOOST_TEST(!p->replayed);
    bought.push_back(*p);
  }
  auto again = f.purchase("c1", "alice", "k1");
  BOOST_REQUIRE(again);
  BOOST_TEST(again->replayed);
  BOOST_TEST(same_purchase(*again, bought[0]));
  BOOST_TEST(err(f.purchase("c1", "bob", "k3")) == Errc::insufficient_funds);  // 50 < 300
  auto revoked = f.revoke("c2", "TWO-000005");
  BOOST_REQUIRE(revoked);
  const int64_t head = f.store()->LastPosition();
  BOOST_TEST(*revoked == head);

  auto c1 = f.card("c1", head);
  BOOST_REQUIRE_MESSAGE(c1, what(c1));
  BOOST_TEST(show(*c1) == show(CardInfo{"c1", "Card c1", 300, 300, 2, 3, 0, 0, 0}));
  BOOST_TEST(c1->position >= head);
  auto c2 = f.card("c2", head);
  BOOST_REQUIRE_MESSAGE(c2, what(c2));
  BOOST_TEST(show(*c2) == show(CardInfo{"c2", "Card c2", 150, 200, 2, 2, 0, 1, 0}));
  BOOST_TEST(c2->position >= head);
  auto all = cards(f, head);
  BOOST_REQUIRE_MESSAGE(all, what(all));
  BOOST_REQUIRE_EQUAL(all->size(), 2u);
  BOOST_TEST(show((*all)[0]) == show(*c1));
  BOOST_TEST(show((*all)[1]) == show(*c2));
  BOOST_TEST((*all)[0].position >= head);

  auto alice = f.wallet("alice", head);
  BOOST_REQUIRE_MESSAGE(alice, what(alice));
  BOOST_TEST(alice->user_id == "alice");
  BOOST_TEST(alice->balance == 1000 - 300 - 150 - 300);
  BOOST_TEST(alice->position >= head);
  auto bob = f.wallet("bob", head);
  BOOST_REQUIRE(bob);
  BOOST_TEST(bob->balance == 500 - 150 - 300);

  for (const auto& p : bought) {
    auto l = f.lookup(p.purchase_id, p.position);
    BOOST_REQUIRE_MESSAGE(l, p.purchase_id << ": " << what(l));
    BOOST_TEST(show(*l) == show(p));
    BOOST_TEST(!l->replayed);
  }
  auto ha = f.history("alice", head);
  BOOST_REQUIRE_MESSAGE(ha, what(ha));
  BOOST_REQUIRE_EQUAL(ha->size(), 3u);
  BOOST_TEST(show((*ha)[0]) == show(bought[0]));
  BOOST_TEST(show((*ha)[1]) == show(bought[2]));
  BOOST_TEST(show((*ha)[2]) == show(bought[3]));
  auto hb = f.history("bob", head);
  BOOST_REQUIRE(hb);
  BOOST_REQUIRE_EQUAL(hb->size(), 2u);
  BOOST_TEST(show((*hb)[0]) == show(bought[1]));
  BOOST_TEST(show((*hb)[1]) == show(bought[4]));
  auto hc = f.history("carol", head);
  BOOST_REQUIRE(hc);
  BOOST_TEST(hc->empty());

  // The front door answers from the same models the ProjectionDb holds.
  await_head(f);
  CHECK_MODELS_EQUAL(load(f.projections()), fold_log(f.store()));
  auto st = status(f);
  BOOST_REQUIRE(st);
  BOOST_TEST(st->log_position == head);
  BOOST_TEST(st->projection_position == head);
  BOOST_TEST(st->generation == 1);
  check_oracle(f);
}
BOOST_AUTO_TEST_CASE(queries_answer_what_was_done_memory) {
  queries_answer_what_was_done(Backend::memory);
}
BOOST_AUTO_TEST_CASE(queries_answer_what_was_done_rocks) {
  queries_answer_what_was_done(Backend::rocks);
}

// `after`: the head includes the write just made; beyond the head or
// negative is invalid; unknown things are not found; bad ids are invalid.
BOOST_AUTO_TEST_CASE(after_semantics_and_errors) {
  ShopFixture f;
  BOOST_REQUIRE(f.create_card("gc", 100));
  BOOST_REQUIRE(f.add_codes("gc", ShopFixture::codes("GC", 300)));
  // Read-your-writes, many times over: each answer includes the write just
  // acknowledged, although the projections follow the log asynchronously.
  int64_t expect = 0;
  for (int i = 0; i < 150; ++i) {
    auto c = f.credit("ryw", 100 + i, "k" + std::to_string(i));
    BOOST_REQUIRE_MESSAGE(c, what(c));
    expect += 100 + i;
    BOOST_REQUIRE_EQUAL(c->balance, expect);
    auto w = f.wallet("ryw", c->position);
    BOOST_REQUIRE_MESSAGE(w, what(w));
    BOOST_REQUIRE_EQUAL(w->balance, expect);
    BOOST_REQUIRE_GE(w->position, c->position);
    if (i % 3 == 0) {
      auto p = f.purchase("gc", "ryw", "p" + std::to_string(i));
      BOOST_REQUIRE_MESSAGE(p, what(p));
      expect -= 100;
      // The purchase's WalletDebited is at position + 1: the log head.
      BOOST_REQUIRE_EQUAL(p->position + 1, f.store()->LastPosition());
      auto l = ask<Purchase>(f, lookup_atom::value, p->purchase_id, p->position + 1);
      BOOST_REQUIRE_MESSAGE(l, what(l));
      BOOST_REQUIRE(same_purchase(*l, *p));
      auto h = history(f, "ryw", p->position + 1);
      BOOST_REQUIRE(h);
      BOOST_REQUIRE(!h->purchases.empty());
      BOOST_REQUIRE(same_purchase(h->purchases.back(), *p));
      auto card = ask<CardInfo>(f, card_atom::value, std::string("gc"), p->position);
      BOOST_REQUIRE(card);
      BOOST_REQUIRE_EQUAL(card->assigned, i / 3 + 1);
      BOOST_REQUIRE_GE(card->position, p->position);
    }
  }
  const int64_t head = f.store()->LastPosition();
  const std::string gc = "gc", user = "ryw";
  // after = 0: whatever is there (all of it, by now, after a wait on the head).
  BOOST_TEST(static_cast<bool>(ask<WalletView>(f, wallet_atom::value, user, int64_t{0})));
  BOOST_TEST(static_cast<bool>(ask<WalletView>(f, wallet_atom::value, user, head)));
  // Beyond the head or negative: invalid_request, for every query.
  for (int64_t bad : {head + 1, head + 1000, INT64_MAX, int64_t{-1}, int64_t{-5}, INT64_MIN}) {
    BOOST_TEST_CONTEXT("after = " << bad) {
      BOOST_TEST(err(ask<WalletView>(f, wallet_atom::value, user, bad)) == Errc::invalid_request);
      BOOST_TEST(err(ask<CardInfo>(f, card_atom::value, gc, bad)) == Errc::invalid_request);
      BOOST_TEST(err(cards(f, bad)) == Errc::invalid_request);
      BOOST_TEST(err(ask<Purchase>(f, lookup_atom::value, std::string("p_x"), bad)) ==
                 Errc::invalid_request);
      BOOST_TEST(err(history(f, user, bad)) == Errc::invalid_request);
    }
  }
  auto beyond = ask<WalletView>(f, wallet_atom::value, user, head + 1);
  BOOST_REQUIRE(!beyond);
  BOOST_TEST(detail_of(beyond.error()).find(std::to_string(head)) != std::string::npos,
             detail_of(beyond.error()));
  // Unknown things.
  BOOST_TEST(err(f.card("nope", head)) == Errc::card_not_found);
  BOOST_TEST(err(f.lookup("p_nope_1", head)) == Errc::purchase_not_found);
  auto nobody = f.wallet("nobody", head);
  BOOST_REQUIRE_MESSAGE(nobody, what(nobody));
  BOOST_TEST(nobody->balance == 0);
  BOOST_TEST(nobody->user_id == "nobody");
  auto none = f.history("nobody", head);
  BOOST_REQUIRE(none);
  BOOST_TEST(none->empty());
  // Bad ids.
  BOOST_TEST(err(f.card("bad/id", head)) == Errc::invalid_request);
  BOOST_TEST(err(f.card("", head)) == Errc::invalid_request);
  BOOST_TEST(err(f.card(std::string(65, 'a'), head)) == Errc::invalid_request);
  BOOST_TEST(err(f.wallet("bad user", head)) == Errc::invalid_request);
  BOOST_TEST(err(f.wallet("", head)) == Errc::invalid_request);
  BOOST_TEST(err(f.wallet(std::string(129, 'u'), head)) == Errc::invalid_request);
  BOOST_TEST(err(f.history("bad/user", head)) == Errc::invalid_request);
  BOOST_TEST(err(f.lookup("", head)) == Errc::invalid_request);
  BOOST_TEST(err(f.lookup(std::string(129, 'p'), head)) == Errc::invalid_request);
  // Bad input never reached the log.
  BOOST_TEST(f.store()->LastPosition() == head);
  check_oracle(f);
}

// A query whose `after` the projections cannot reach within
// ShopConfig::projection_wait fails with projection_lagging, in about that
// time, and the same query succeeds once they have caught up.
//
// Provoked honestly: one append of a large batch of events straight into the
// store (as a bulk import, or a restart with projections far behind the log,
// would) leaves the driver a long catch-up (200,000 events, 49 steps of the
// driver); the query must not wait for all of it. The wait is short so that
// the catch-up is many times longer than the wait.
BOOST_AUTO_TEST_CASE(projection_lagging_is_bounded) {
  ShopConfig cfg;
  cfg.projection_wait = milliseconds(5);
  ShopFixture f(Backend::memory, {}, cfg);
  BOOST_REQUIRE(f.credit("lag", 7, "k"));
  const int64_t start = f.store()->LastPosition();
  await_head(f);

  constexpr int kEvents = 200000, kUsers = 5000;
  AppendRequest bulk;
  bulk.events.reserve(kEvents);
  for (int i = 0; i < kEvents; ++i) {
    std::string user = "bulk" + std::to_string(i % kUsers);
    bulk.events.push_back(
        PendingEvent::of(wallet_stream(user), WalletCredited{user, 1, 1 + i / kUsers, "b"}));
  }
  AppendResult res;
  BOOST_REQUIRE(f.store()->AppendAndWait(std::move(bulk), &res).ok());
  const int64_t head = f.store()->LastPosition();
  BOOST_REQUIRE_EQUAL(head, start + kEvents);

  auto t0 = Clock::now();
  auto w = f.wallet("bulk7", head);
  auto took = std::chrono::duration_cast<milliseconds>(Clock::now() - t0);
  // A query the projections already include is answered meanwhile.
  auto lag = f.wallet("lag", start);
  BOOST_TEST(static_cast<bool>(lag), what(lag));
  await_head(f);
  auto full = std::chrono::duration_cast<milliseconds>(Clock::now() - t0);
  BOOST_TEST_MESSAGE("query answered after " << took.count() << " ms with " << what(w)
                                             << "; the whole catch-up took " << full.count()
                                             << " ms");
  BOOST_TEST(err(w) == Errc::projection_lagging, what(w));
  BOOST_TEST((took >= cfg.projection_wait), took.count() << " ms");
  if (!w) {
    // The answer names where the projections were: short of the head (the
    // query did not wait for the whole catch-up).
    const std::string d = detail_of(w.error());
    auto at = d.find("at position ");
    BOOST_REQUIRE_MESSAGE(at != std::string::npos, d);
    const int64_t was = std::stoll(d.substr(at + 12));
    BOOST_TEST(was >= start);
    BOOST_TEST(was < head, d);
    BOOST_TEST(d.find(std::to_string(head)) != std::string::npos, d);
  }

  auto later = f.wallet("bulk7", head);
  BOOST_REQUIRE_MESSAGE(later, what(later));
  BOOST_TEST(later->balance == kEvents / kUsers);
  auto done = f.wallet("bulk4999", head);
  BOOST_REQUIRE(done);
  BOOST_TEST(done->balance == kEvents / kUsers);
}

// A projection that cannot be applied (a damaged model) fails the query with
// the storage error instead of hanging it.
BOOST_AUTO_TEST_CASE(projection_failure_is_reported) {
  ShopFixture f;
  BOOST_REQUIRE(f.create_card("gc", 100));
  await_head(f);
  // Damage the card's view in the active generation.
  KvBatch b;
  std::string k = "g";
  uint32_t gen = f.projections().generation();
  for (int i = 3; i >= 0; --i) k.push_back(static_cast<char>((gen >> (8 * i)) & 0xff));
  b.puts.emplace_back(k + "cgc", "damaged");
  BOOST_REQUIRE(f.store()->KvWrite(b).ok());
  auto added = f.add_codes("gc", ShopFixture::codes("GC", 3));
  BOOST_REQUIRE(added);
  auto t0 = Clock::now();
  auto c = f.card("gc", added->position);
  BOOST_TEST(err(c) == Errc::storage_corruption, what(c));
  BOOST_TEST((Clock::now() - t0 < std::chrono::seconds(5)));
  auto w = f.wallet("anyone", added->position);
  BOOST_TEST(err(w) == Errc::storage_corruption, what(w));
  auto st = status(f);
  BOOST_REQUIRE(st);
  BOOST_TEST(st->projection_position < st->log_position);
  // A rebuild repairs it.
  auto r = rebuild(f);
  BOOST_REQUIRE_MESSAGE(r, what(r));
  BOOST_TEST(r->generation == 2);
  auto c2 = f.card("gc", added->position);
  BOOST_REQUIRE_MESSAGE(c2, what(c2));
  BOOST_TEST(c2->available == 3);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace giftcard::test
