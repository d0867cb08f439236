// The purchase engine through the shop's front door, in process: commands,
// errors, idempotency, expiry, storage failure, passivation and restart.
#include <boost/test/unit_test.hpp>
#include <set>
#include <thread>

#include "actors/recovery.h"
#include "shop_fixture.h"
#include "tests/support/log_oracle.h"

namespace giftcard::test {
namespace {

Errc err(const caf::error& e) { return errc_of(e); }
using giftcard::test::err;  // and of a caf::expected (shop_fixture.h)

ShopConfig fast_passivation() {
  ShopConfig c;
  c.passivate_after = std::chrono::milliseconds(50);
  c.tick = std::chrono::milliseconds(20);
  return c;
}

bool wait_until(const std::function<bool()>& pred, int ms = 5000) {
  for (int i = 0; i < ms / 10; ++i) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return pred();
}

}  // namespace

BOOST_AUTO_TEST_SUITE(purchase_flow)

BOOST_AUTO_TEST_CASE(card_commands_and_errors) {
  ShopFixture f;
  auto c = f.create_card("gc-1", 500);
  BOOST_REQUIRE(c);
  BOOST_TEST(c->id == "gc-1");
  BOOST_TEST(c->price == 500);
  BOOST_TEST(c->position == 1);
  BOOST_TEST(err(f.create_card("gc-1", 500)) == Errc::card_exists);
  BOOST_TEST(err(f.create_card("bad/id", 500)) == Errc::invalid_request);
  BOOST_TEST(err(f.create_card("gc-2", 0)) == Errc::invalid_request);
  BOOST_TEST(err(f.add_codes("nope", ShopFixture::codes("X", 2))) == Errc::card_not_found);

  auto added = f.add_codes("gc-1", ShopFixture::codes("AAAA", 3));
  BOOST_REQUIRE(added);
  BOOST_TEST(added->added == 3);
  // Duplicates are all reported, and nothing of the batch is added.
  auto dup = f.add_codes("gc-1", {{"AAAA-000001", 0}, {"NEW-0001", 0}, {"AAAA-000003", 0}});
  BOOST_REQUIRE(!dup);
  BOOST_TEST(err(dup.error()) == Errc::duplicate_codes);
  BOOST_TEST(codes_of(dup.error()) == (std::vector<std::string>{"AAAA-000001", "AAAA-000003"}));
  // Uniqueness is system-wide: the same code on another card is a duplicate.
  BOOST_REQUIRE(f.create_card("gc-2", 100));
  auto cross = f.add_codes("gc-2", {{"AAAA-000002", 0}, {"BBBB-0001", 0}});
  BOOST_REQUIRE(!cross);
  BOOST_TEST(err(cross.error()) == Errc::duplicate_codes);
  BOOST_TEST(codes_of(cross.error()) == std::vector<std::string>{"AAAA-000002"});
  BOOST_TEST(f.card("gc-2")->available == 0);

  BOOST_TEST(err(f.revoke("gc-1", "ZZZZ-0000")) == Errc::code_not_found);
  BOOST_REQUIRE(f.revoke("gc-1", "AAAA-000001"));
  BOOST_TEST(err(f.revoke("gc-1", "AAAA-000001")) == Errc::code_not_available);
  auto view = f.card("gc-1");
  BOOST_REQUIRE(view);
  BOOST_TEST(view->available == 2);
  BOOST_TEST(view->revoked == 1);
  BOOST_TEST(err(f.card("nope")) == Errc::card_not_found);
}

BOOST_AUTO_TEST_CASE(purchase_and_idempotency) {
  ShopFixture f;
  BOOST_REQUIRE(f.create_card("gc", 300));
  BOOST_REQUIRE(f.add_codes("gc", ShopFixture::codes("CODE", 4)));
  BOOST_REQUIRE(f.credit("ann", 1000, "c1"));

  auto p1 = f.purchase("gc", "ann", "k1");
  BOOST_REQUIRE(p1);
  BOOST_TEST(p1->code == "CODE-000001");  // FIFO in import order
  BOOST_TEST(p1->price == 300);
  BOOST_TEST(!p1->replayed);
  auto again = f.purchase("gc", "ann", "k1");
  BOOST_REQUIRE(again);
  BOOST_TEST(again->replayed);
  BOOST_TEST(again->purchase_id == p1->purchase_id);
  BOOST_TEST(again->code == p1->code);
  BOOST_TEST(again->position == p1->position);
  BOOST_TEST(again->purchased_at == p1->purchased_at);
  BOOST_TEST(f.wallet("ann")->balance == 700);  // charged once

  BOOST_REQUIRE(f.create_card("other", 10));
  BOOST_TEST(err(f.purchase("other", "ann", "k1")) == Errc::idempotency_key_reused);
  BOOST_TEST(err(f.purchase("gc", "ann", "")) == Errc::missing_idempotency_key);
  BOOST_TEST(err(f.purchase("gc", "ann", std::string(129, 'k'))) == Errc::invalid_request);
  BOOST_TEST(err(f.purchase("nope", "ann", "k2")) == Errc::card_not_found);
  BOOST_TEST(err(f.purchase("gc", "bad user", "k2")) == Errc::invalid_request);

  BOOST_REQUIRE(f.purchase("gc", "ann", "k2"));
  // 1000 - 600 = 400 left: one more at 300, then insufficient funds.
  BOOST_REQUIRE(f.purchase("gc", "ann", "k3"));
  auto broke = f.purchase("gc", "ann", "k4");
  BOOST_TEST(err(broke) == Errc::insufficient_funds);
  BOOST_TEST(f.wallet("ann")->balance == 100);
  // A rejected key is not remembered: after a credit the same key succeeds.
  BOOST_REQUIRE(f.credit("ann", 500, "c2"));
  auto retried = f.purchase("gc", "ann", "k4");
  BOOST_REQUIRE(retried);
  BOOST_TEST(!retried->replayed);
  BOOST_TEST(err(f.purchase("gc", "ann", "k5")) == Errc::out_of_stock);

  // Credits: repeat returns the first body; another amount is a reused key.
  auto c1 = f.credit("bo", 250, "x");
  BOOST_REQUIRE(c1);
  auto c1b = f.credit("bo", 250, "x");
  BOOST_REQUIRE(c1b);
  BOOST_TEST(c1b->replayed);
  BOOST_TEST(c1b->balance == c1->balance);
  BOOST_TEST(c1b->position == c1->position);
  BOOST_TEST(err(f.credit("bo", 251, "x")) == Errc::idempotency_key_reused);
  BOOST_TEST(err(f.credit("bo", 0, "y")) == Errc::invalid_request);
  BOOST_TEST(err(f.credit("bo", -5, "y")) == Errc::invalid_request);
  BOOST_TEST(err(f.credit("bo", INT64_MAX, "y")) == Errc::balance_overflow);
  BOOST_TEST(f.wallet("bo")->balance == 250);
  BOOST_TEST(f.wallet("nobody")->balance == 0);

  auto report = check_log(f.store());
  BOOST_TEST(report.clean(), report.summary());
  BOOST_TEST(report.purchases == 4);
}

BOOST_AUTO_TEST_CASE(concurrent_repeats_of_one_key_charge_once) {
  ShopFixture f;
  BOOST_REQUIRE(f.create_card("gc", 100));
  BOOST_REQUIRE(f.add_codes("gc", ShopFixture::codes("K", 50)));
  BOOST_REQUIRE(f.credit("u", 10000, "c"));
  constexpr int kThreads = 16;
  std::vector<std::thread> threads;
  std::vector<caf::expected<Purchase>> results(kThreads, caf::expected<Purchase>{Purchase{}});
  for (int i = 0; i < kThreads; ++i)
    threads.emplace_back([&, i] { results[i] = f.purchase("gc", "u", "same-key"); });
  for (auto& t : threads) t.join();
  std::set<std::string> ids;
  int fresh = 0;
  for (auto& r : results) {
    BOOST_REQUIRE(r);
    ids.insert(r->purchase_id);
    fresh += r->replayed ? 0 : 1;
  }
  BOOST_TEST(ids.size() == 1u);
  BOOST_TEST(fresh == 1);
  BOOST_TEST(f.wallet("u")->balance == 9900);
  BOOST_TEST(check_log(f.store()).purchases == 1);
}

// An unfunded buyer racing a funded one for the last code must never make
// the funded one see out_of_stock: the card refuses before holding the code.
BOOST_AUTO_TEST_CASE(unfunded_buyer_never_blocks_the_last_code) {
  ShopFixture f;
  BOOST_REQUIRE(f.credit("rich", 1'000'000, "c"));
  BOOST_REQUIRE(f.credit("poor", 5, "c"));
  for (int round = 0; round < 100; ++round) {
    std::string card = "one-" + std::to_string(round);
    BOOST_REQUIRE(f.create_card(card, 10));
    BOOST_REQUIRE(f.add_codes(card, ShopFixture::codes("L" + std::to_string(round), 1)));
    caf::expected<Purchase> rich{Purchase{}}, poor{Purchase{}};
    std::thread a([&] { poor = f.purchase(card, "poor", "k" + std::to_string(round)); });
    std::thread b([&] { rich = f.purchase(card, "rich", "k" + std::to_string(round)); });
    a.join();
    b.join();
    BOOST_TEST(err(poor) == Errc::insufficient_funds);
    BOOST_TEST(err(rich) == Errc::ok, "round " << round);
  }
}

BOOST_AUTO_TEST_CASE(expired_codes_are_recorded_and_never_sold) {
  std::atomic<Micros> now{1'000'000'000'000};
  ShopConfig cfg;
  cfg.clock = [&] { return now.load(); };
  ShopFixture f(ShopFixture::Backend::memory, {}, cfg);
  BOOST_REQUIRE(f.create_card("gc", 100));
  std::vector<CodeSpec> codes = {{"EXP-0001", now + 1000},
                                 {"EXP-0002", now + 1000},
                                 {"LIVE-0001", 0},
                                 {"LIVE-0002", now + 10'000'000}};
  BOOST_REQUIRE(f.add_codes("gc", codes));
  BOOST_REQUIRE(f.credit("u", 1000, "c"));
  now += 2000;  // the first two expire
  auto p = f.purchase("gc", "u", "k1");
  BOOST_REQUIRE(p);
  BOOST_TEST(p->code == "LIVE-0001");
  BOOST_TEST(wait_until([&] { return f.card("gc")->expired == 2; }));
  now += 20'000'000;  // LIVE-0002 expires too
  BOOST_TEST(err(f.purchase("gc", "u", "k2")) == Errc::out_of_stock);
  BOOST_TEST(wait_until([&] { return f.card("gc")->expired == 3; }));
  auto view = f.card("gc");
  BOOST_TEST(view->available == 0);
  BOOST_TEST(view->assigned == 1);
  auto report = check_log(f.store());
  BOOST_TEST(report.clean(), report.summary());
}

BOOST_AUTO_TEST_CASE(failed_write_charges_nothing_and_is_sticky) {
  ShopFixture f;
  BOOST_REQUIRE(f.create_card("gc", 100));
  BOOST_REQUIRE(f.add_codes("gc", ShopFixture::codes("F", 5)));
  BOOST_REQUIRE(f.credit("u", 1000, "c"));
  int64_t before = f.store()->LastPosition();
  f.store()->TEST_FailNextCommits(1);
  BOOST_TEST(err(f.purchase("gc", "u", "k1")) == Errc::storage_unavailable);
  BOOST_TEST(err(f.purchase("gc", "u", "k2")) == Errc::storage_unavailable);
  BOOST_TEST(f.store()->LastPosition() == before);
  BOOST_TEST(f.wallet("u")->balance == 1000);
  BOOST_TEST(f.card("gc")->available == 5);
}

BOOST_AUTO_TEST_CASE(passivation_keeps_state) {
  ShopFixture f(ShopFixture::Backend::rocks, {}, fast_passivation());
  BOOST_REQUIRE(f.create_card("gc", 100));
  BOOST_REQUIRE(f.add_codes("gc", ShopFixture::codes("P", 10)));
  BOOST_REQUIRE(f.credit("u", 1000, "c"));
  auto p1 = f.purchase("gc", "u", "k1");
  BOOST_REQUIRE(p1);
  BOOST_TEST(wait_until(
      [&] { return f.ctx().metrics.live_cards == 0 && f.ctx().metrics.live_wallets == 0; }));
  BOOST_TEST(f.ctx().metrics.passivations >= 2u);
  // Reactivated from snapshot (+ tail): same balance, next code, key replays.
  BOOST_TEST(f.wallet("u")->balance == 900);
  auto p2 = f.purchase("gc", "u", "k2");
  BOOST_REQUIRE(p2);
  BOOST_TEST(p2->code == "P-000002");
  auto r1 = f.purchase("gc", "u", "k1");
  BOOST_REQUIRE(r1);
  BOOST_TEST(r1->replayed);
  BOOST_TEST(r1->code == p1->code);
  Snapshot snap;
  BOOST_TEST(f.store()->LoadSnapshot(card_stream("gc"), &snap).ok());
  BOOST_TEST(f.store()->LoadSnapshot(wallet_stream("u"), &snap).ok());
  BOOST_TEST(check_log(f.store()).clean());
}

BOOST_AUTO_TEST_CASE(passivation_under_load_never_doubles_an_owner) {
  // Passivation every few ms while purchases keep arriving: the counted
  // protocol must never let two actors own a stream (no code twice).
  ShopConfig cfg;
  cfg.passivate_after = std::chrono::milliseconds(1);
  cfg.tick = std::chrono::milliseconds(1);
  ShopFixture f(ShopFixture::Backend::memory, {}, cfg);
  BOOST_REQUIRE(f.create_card("gc", 1));
  BOOST_REQUIRE(f.add_codes("gc", ShopFixture::codes("Q", 2000)));
  for (int u = 0; u < 8; ++u) BOOST_REQUIRE(f.credit("u" + std::to_string(u), 1000, "c"));
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int u = 0; u < 8; ++u)
    threads.emplace_back([&, u] {
      for (int i = 0; i < 150; ++i) {
        if (f.purchase("gc", "u" + std::to_string(u), "k" + std::to_string(i))) ++ok;
        if (i % 10 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(3));
      }
    });
  for (auto& t : threads) t.join();
  BOOST_TEST(ok == 1200);
  BOOST_TEST(f.ctx().metrics.passivations > 0u);
  auto report = check_log(f.store());
  BOOST_TEST(report.clean(), report.summary());
  BOOST_TEST(report.purchases == 1200);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(restart)

BOOST_AUTO_TEST_CASE(acknowledged_purchases_survive_reopen) {
  std::string dir = temp_dir("restart");
  std::vector<Purchase> acked;
  {
    ShopFixture f(ShopFixture::Backend::rocks, dir);
    BOOST_REQUIRE(f.create_card("gc", 10));
    BOOST_REQUIRE(f.add_codes("gc", ShopFixture::codes("R", 100)));
    BOOST_REQUIRE(f.credit("u", 1000, "c"));
    for (int i = 0; i < 40; ++i) {
      auto p = f.purchase("gc", "u", "k" + std::to_string(i));
      BOOST_REQUIRE(p);
      acked.push_back(*p);
    }
  }
  ShopFixture g(ShopFixture::Backend::rocks, dir);
  std::set<std::string> codes;
  for (size_t i = 0; i < acked.size(); ++i) {
    auto p = g.purchase("gc", "u", "k" + std::to_string(i));
    BOOST_REQUIRE(p);
    BOOST_TEST(p->replayed);
    BOOST_TEST(p->code == acked[i].code);
    BOOST_TEST(p->purchase_id == acked[i].purchase_id);
    BOOST_TEST(p->position == acked[i].position);
    codes.insert(p->code);
  }
  auto fresh = g.purchase("gc", "u", "new");
  BOOST_REQUIRE(fresh);
  BOOST_TEST(!codes.count(fresh->code));
  BOOST_TEST(g.wallet("u")->balance == 1000 - 41 * 10);
  BOOST_TEST(check_log(g.store()).clean());
  g.stop();
  std::filesystem::remove_all(dir);
}

// Under load, live actors snapshot every config.snapshot_every events, and
// what they snapshot is exactly the state at the snapshot's version: recovery
// from snapshot + tail equals a fold of the whole stream. Checked while the
// shop is still running (no passivation, no drain snapshot).
BOOST_AUTO_TEST_CASE(live_snapshots_equal_a_full_fold) {
  ShopConfig cfg;
  cfg.snapshot_every = 8;
  ShopFixture f(ShopFixture::Backend::rocks, {}, cfg);
  BOOST_REQUIRE(f.create_card("snap", 5));
  BOOST_REQUIRE(f.add_codes("snap", ShopFixture::codes("S", 96)));  // every max(8, 96/4) = 24
  const int kUsers = 8, kEach = 10;
  for (int u = 0; u < kUsers; ++u) BOOST_REQUIRE(f.credit("su" + std::to_string(u), 1000, "c"));
  std::vector<std::thread> buyers;
  std::atomic<int> ok{0};
  for (int u = 0; u < kUsers; ++u)
    buyers.emplace_back([&, u] {
      for (int i = 0; i < kEach; ++i)
        if (f.purchase("snap", "su" + std::to_string(u), "k" + std::to_string(i))) ++ok;
    });
  for (auto& t : buyers) t.join();
  BOOST_REQUIRE_EQUAL(ok.load(), kUsers * kEach);
  // Passivation is 30 s away: the actors are live; the snapshots were taken under load.
  auto full_fold = [&](const std::string& stream, auto* state) {
    std::vector<StoredEvent> evs;
    BOOST_REQUIRE(f.store()->ReadStream(stream, 1, 1 << 20, &evs).ok());
    for (const auto& e : evs) {
      Event ev;
      BOOST_REQUIRE(e.decode(&ev).ok());
      BOOST_REQUIRE(fold(*state, std::move(ev)).ok());
    }
    return static_cast<int64_t>(evs.size());
  };
  {
    Snapshot snap;
    BOOST_REQUIRE(f.store()->LoadSnapshot(card_stream("snap"), &snap).ok());
    BOOST_TEST(snap.version >= 24);
    CardState recovered, full;
    int64_t version = 0, tail = 0;
    BOOST_REQUIRE(recover(f.store(), card_stream("snap"), &recovered, &version, &tail).ok());
    BOOST_TEST(version == full_fold(card_stream("snap"), &full));
    BOOST_TEST(tail == version - snap.version);
    BOOST_TEST(recovered.assigned == full.assigned);
    BOOST_TEST(recovered.available == full.available);
    BOOST_REQUIRE_EQUAL(recovered.slots.size(), full.slots.size());
    for (size_t i = 0; i < full.slots.size(); ++i)
      BOOST_TEST((recovered.slots[i].status == full.slots[i].status), "slot " << i);
  }
  {
    Snapshot snap;
    BOOST_REQUIRE(f.store()->LoadSnapshot(wallet_stream("su0"), &snap).ok());
    BOOST_TEST(snap.version >= 8);  // a credit and 10 debits
    WalletState recovered, full;
    int64_t version = 0, tail = 0;
    BOOST_REQUIRE(recover(f.store(), wallet_stream("su0"), &recovered, &version, &tail).ok());
    BOOST_TEST(version == full_fold(wallet_stream("su0"), &full));
    BOOST_TEST(tail == version - snap.version);
    BOOST_TEST(recovered.balance == full.balance);
    BOOST_TEST(recovered.version == version);  // evolve counts the wallet's versions
    BOOST_TEST(full.version == version);
  }
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace giftcard::test
