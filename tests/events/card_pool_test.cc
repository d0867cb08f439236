// The GiftCard aggregate's code pool (events/gift_card.h): reserve(),
// release(), hold(), sweep_expired(), and a property test of random
// operations against a model, with pool_violation() after every step.
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cstdint>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "events/gift_card.h"
#include "events/snapshot.h"
#include "events/time_util.h"
#include "events/validate.h"
#include "tests/events/card_fixture.h"

namespace giftcard {

using namespace card_test;

BOOST_AUTO_TEST_SUITE(gift_card)

// ---------------------------------------------------------------- reserve()

BOOST_AUTO_TEST_CASE(reserve_is_fifo_in_import_order) {
  CardState s = given(
      {created(), added({"B1-1", "B1-2"}), added({"B2-1"}), added({"B3-1", "B3-2"})});
  std::vector<std::string> got;
  for (int i = 0; i < 5; ++i) {
    Reservation r = reserve(s, 1);
    BOOST_TEST(to_string(r.error) == to_string(Errc::ok));
    BOOST_TEST(r.expired.empty());
    BOOST_TEST(slot_of(s, r.code).held);
    got.push_back(r.code);
    check_counters(s, 5, 0, 0, 0, i + 1);
  }
  BOOST_TEST(got == (std::vector<std::string>{"B1-1", "B1-2", "B2-1", "B3-1", "B3-2"}),
             boost::test_tools::per_element());
  Reservation r = reserve(s, 1);
  BOOST_TEST(to_string(r.error) == to_string(Errc::out_of_stock));
  BOOST_TEST(r.code.empty());
  BOOST_TEST(r.expired.empty());
  check_counters(s, 5, 0, 0, 0, 5);
}

BOOST_AUTO_TEST_CASE(reserve_out_of_stock_on_empty_card) {
  CardState s = given({created()});
  Reservation r = reserve(s, 1);
  BOOST_TEST(to_string(r.error) == to_string(Errc::out_of_stock));
  BOOST_TEST(r.code.empty());
  BOOST_TEST(r.expired.empty());
  check_counters(s, 0, 0, 0, 0, 0);
}

BOOST_AUTO_TEST_CASE(reserve_skips_held_assigned_revoked_expired) {
  CardState s = given({created(), added({"ASSIGNED", "HELD", "REVOKED", "EXPIRED", "FREE"}),
                       assigned("ASSIGNED"), revoked("REVOKED"), expired({"EXPIRED"})});
  BOOST_REQUIRE(hold(s, "HELD"));
  Reservation r = reserve(s, 1);
  BOOST_TEST(to_string(r.error) == to_string(Errc::ok));
  BOOST_TEST(r.code == "FREE");
  BOOST_TEST(r.expired.empty());
  r = reserve(s, 1);
  BOOST_TEST(to_string(r.error) == to_string(Errc::out_of_stock));
  check_counters(s, 2, 1, 1, 1, 2);
}

BOOST_AUTO_TEST_CASE(reserve_skips_and_reports_expired_codes) {
  const Micros now = 1000;
  CardState s = given({created(), added({"EXP-1"}, 100), added({"FREE-1"}),
                       added({"EXP-EXACT"}, now), added({"LATER"}, now + 1)});
  Reservation r = reserve(s, now);
  BOOST_TEST(to_string(r.error) == to_string(Errc::ok));
  BOOST_TEST(r.code == "FREE-1");
  BOOST_TEST(r.expired == (std::vector<std::string>{"EXP-1"}), boost::test_tools::per_element());
  BOOST_TEST(slot_of(s, "EXP-1").held);  // held until its CodesExpired commits
  BOOST_TEST((slot_of(s, "EXP-1").status == CodeStatus::available));

  // expires_at == now is expired; now + 1 is not yet.
  r = reserve(s, now);
  BOOST_TEST(to_string(r.error) == to_string(Errc::ok));
  BOOST_TEST(r.code == "LATER");
  BOOST_TEST(r.expired == (std::vector<std::string>{"EXP-EXACT"}),
             boost::test_tools::per_element());
  check_counters(s, 4, 0, 0, 0, 4);

  // An expired, held code is not revocable, not swept again.
  check_rejected(decide(RevokeCode{kCard, "EXP-1"}, s), Errc::code_not_available);
  BOOST_TEST(sweep_expired(s, now).empty());

  // The CodesExpired commit drops the holds.
  s = evolve(s, expired({"EXP-1", "EXP-EXACT"}));
  check_counters(s, 2, 0, 0, 2, 2);
  BOOST_TEST(!slot_of(s, "EXP-1").held);
  BOOST_TEST((slot_of(s, "EXP-1").status == CodeStatus::expired));
}

BOOST_AUTO_TEST_CASE(reserve_out_of_stock_reports_all_expired) {
  CardState s = given({created(), added({"E1", "E2"}, 50), added({"E3"}, 60)});
  // "E1" etc. are not valid codes for AddCodes, but evolve folds what was committed.
  Reservation r = reserve(s, 60);
  BOOST_TEST(to_string(r.error) == to_string(Errc::out_of_stock));
  BOOST_TEST(r.code.empty());
  BOOST_TEST(r.expired == (std::vector<std::string>{"E1", "E2", "E3"}),
             boost::test_tools::per_element());
  check_counters(s, 3, 0, 0, 0, 3);
}

BOOST_AUTO_TEST_CASE(reserve_does_not_expire_codes_without_expiry) {
  CardState s = given({created(), added({"NEVER"})});
  Reservation r = reserve(s, INT64_MAX);
  BOOST_TEST(to_string(r.error) == to_string(Errc::ok));
  BOOST_TEST(r.code == "NEVER");
  BOOST_TEST(r.expired.empty());
}

// ---------------------------------------------------------------- release()

BOOST_AUTO_TEST_CASE(release_puts_code_back_at_the_front) {
  CardState s = card_with(4);
  BOOST_REQUIRE(reserve(s, 1).code == "CODE-1");
  BOOST_REQUIRE(reserve(s, 1).code == "CODE-2");
  release(s, "CODE-1");
  check_counters(s, 4, 0, 0, 0, 1);
  BOOST_TEST(!slot_of(s, "CODE-1").held);
  BOOST_TEST(reserve(s, 1).code == "CODE-1");

  release(s, "CODE-2");
  release(s, "CODE-1");  // last released is first out
  BOOST_TEST(reserve(s, 1).code == "CODE-1");
  BOOST_TEST(reserve(s, 1).code == "CODE-2");
  BOOST_TEST(reserve(s, 1).code == "CODE-3");
  check_counters(s, 4, 0, 0, 0, 3);
}

BOOST_AUTO_TEST_CASE(release_of_unknown_or_unheld_code_is_a_no_op) {
  CardState s = card_with(3);
  BOOST_REQUIRE(reserve(s, 1).code == "CODE-1");
  const std::string before = dump(s);
  release(s, "NOPE");
  release(s, "CODE-2");  // not held
  BOOST_TEST(dump(s) == before);
}

BOOST_AUTO_TEST_CASE(release_after_commit_does_not_requeue) {
  CardState s = card_with(2);
  Reservation r = reserve(s, 1);
  BOOST_REQUIRE(r.code == "CODE-1");
  s = evolve(s, assigned("CODE-1"));
  release(s, "CODE-1");
  check_counters(s, 1, 1, 0, 0, 0);
  BOOST_TEST(reserve(s, 1).code == "CODE-2");
  BOOST_TEST(to_string(reserve(s, 1).error) == to_string(Errc::out_of_stock));
}

BOOST_AUTO_TEST_CASE(released_expired_code_is_reported_again) {
  CardState s = given({created(), added({"EXP-1"}, 10), added({"FREE-1", "FREE-2"})});
  Reservation r = reserve(s, 10);
  BOOST_REQUIRE(r.code == "FREE-1");
  BOOST_REQUIRE(r.expired.size() == 1u);
  release(s, "FREE-1");  // the purchase failed
  release(s, "EXP-1");   // the CodesExpired append failed; now first in line
  r = reserve(s, 10);
  BOOST_TEST(r.code == "FREE-1");
  BOOST_TEST(r.expired == (std::vector<std::string>{"EXP-1"}), boost::test_tools::per_element());
  check_counters(s, 3, 0, 0, 0, 2);
}

// ------------------------------------------------------------------- hold()

BOOST_AUTO_TEST_CASE(hold_only_available_unheld_codes) {
  CardState s = given({created(), added({"FREE", "ASSIGNED", "REVOKED", "EXPIRED"}),
                       assigned("ASSIGNED"), revoked("REVOKED"), expired({"EXPIRED"})});
  BOOST_TEST(hold(s, "FREE"));
  BOOST_TEST(!hold(s, "FREE"));  // already held
  BOOST_TEST(!hold(s, "ASSIGNED"));
  BOOST_TEST(!hold(s, "REVOKED"));
  BOOST_TEST(!hold(s, "EXPIRED"));
  BOOST_TEST(!hold(s, "UNKNOWN"));
  check_counters(s, 1, 1, 1, 1, 1);
  BOOST_TEST(to_string(reserve(s, 1).error) == to_string(Errc::out_of_stock));
  release(s, "FREE");
  check_counters(s, 1, 1, 1, 1, 0);
  BOOST_TEST(reserve(s, 1).code == "FREE");
}

BOOST_AUTO_TEST_CASE(hold_then_revoke_commit) {
  CardState s = card_with(2);
  BOOST_REQUIRE(decide(RevokeCode{kCard, "CODE-1"}, s).ok());
  BOOST_REQUIRE(hold(s, "CODE-1"));
  s = evolve(s, revoked("CODE-1"));
  check_counters(s, 1, 0, 1, 0, 0);
  BOOST_TEST(!slot_of(s, "CODE-1").held);
  BOOST_TEST(reserve(s, 1).code == "CODE-2");
}

// ----------------------------------------------------------- sweep_expired()

BOOST_AUTO_TEST_CASE(sweep_expired_holds_due_codes) {
  CardState s = given({created(), added({"E-10"}, 10), added({"NEVER"}), added({"E-20"}, 20),
                       added({"E-30"}, 30), added({"E-5-HELD"}, 5), added({"E-1-GONE"}, 1),
                       assigned("E-1-GONE")});
  BOOST_REQUIRE(hold(s, "E-5-HELD"));
  std::vector<std::string> due = sweep_expired(s, 20);
  BOOST_TEST(due == (std::vector<std::string>{"E-10", "E-20"}), boost::test_tools::per_element());
  BOOST_TEST(slot_of(s, "E-10").held);
  BOOST_TEST(slot_of(s, "E-20").held);
  check_counters(s, 5, 1, 0, 0, 3);
  BOOST_TEST(sweep_expired(s, 20).empty());  // already held

  // Purchases skip them meanwhile.
  Reservation r = reserve(s, 20);
  BOOST_TEST(r.code == "NEVER");
  BOOST_TEST(r.expired.empty());

  s = evolve(s, expired(due));
  check_counters(s, 3, 1, 0, 2, 2);
  // Later sweeps find the next ones.
  BOOST_TEST(sweep_expired(s, 29).empty());
  BOOST_TEST(sweep_expired(s, 30) == (std::vector<std::string>{"E-30"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(sweep_released_codes_are_found_again) {
  CardState s = given({created(), added({"E-10"}, 10)});
  BOOST_REQUIRE(sweep_expired(s, 10).size() == 1u);
  release(s, "E-10");
  check_counters(s, 1, 0, 0, 0, 0);
  BOOST_TEST(sweep_expired(s, 10) == (std::vector<std::string>{"E-10"}),
             boost::test_tools::per_element());
}

// ------------------------------------------------------------ property test

// A random interleaving of the card actor's operations, checked against a
// simple model: reserve never hands out a held or unavailable code, nothing
// is assigned twice, and the counters always equal a recount.
BOOST_AUTO_TEST_CASE(random_operations_keep_the_pool_consistent) {
  std::mt19937 rng(424242);
  auto pick = [&](size_t n) { return static_cast<size_t>(rng() % n); };

  struct Model {
    CodeStatus status = CodeStatus::available;
    bool held = false;
    Expiry expires_at;
  };
  std::map<std::string, Model> model;
  std::vector<std::string> all;         // every code ever added
  std::vector<std::string> reserved;    // held by reserve, awaiting commit
  std::vector<std::string> expiring;    // held as expired, awaiting commit
  std::vector<std::string> held_other;  // held by hold(), awaiting a revoke commit
  std::set<std::string> ever_assigned;

  CardState s = given({created()});
  Micros now = 1000;
  int next_code = 0, reservations = 0, outs = 0, expired_seen = 0;

  auto take = [&](std::vector<std::string>& v) {
    size_t i = pick(v.size());
    std::string c = v[i];
    v[i] = v.back();
    v.pop_back();
    return c;
  };

  for (int op = 0; op < 10000; ++op) {
    now += static_cast<Micros>(pick(3));
    const size_t kind = pick(100);
    if (kind < 12) {
      // Add a batch of fresh codes, some expiring soon; sometimes with a duplicate.
      std::vector<CodeSpec> batch;
      const size_t n = 1 + pick(5);
      for (size_t i = 0; i < n; ++i) {
        // Expiring soon, but after now: an expiry at or before now is refused.
        Expiry exp;
        if (pick(3) == 0) exp = now + 1 + static_cast<Micros>(pick(200));
        batch.push_back(CodeSpec{"CODE-" + std::to_string(next_code++)});
        batch.back().expires_at = exp;
      }
      const bool dup = !all.empty() && pick(4) == 0;
      if (dup) batch.push_back(CodeSpec{all[pick(all.size())]});
      CardDecision d = decide(AddCodes{kCard, batch, now}, s);
      if (dup) {
        BOOST_REQUIRE(d.error == Errc::duplicate_codes);
        BOOST_REQUIRE(d.conflicts.size() == 1u);
        BOOST_REQUIRE(d.conflicts[0] == batch.back().code);
        continue;
      }
      BOOST_REQUIRE(d.ok());
      for (const auto& e : d.events) s = evolve(s, e);
      for (const auto& c : batch) {
        model[c.code] = Model{CodeStatus::available, false, c.expires_at};
        all.push_back(c.code);
      }
    } else if (kind < 45) {
      // Reserve: the result must be the model's eligible code, never held or final.
      Reservation r = reserve(s, now);
      for (const auto& c : r.expired) {
        Model& m = model.at(c);
        BOOST_REQUIRE_MESSAGE(m.status == CodeStatus::available && !m.held,
                              "reserve reported unavailable/held code as expired: " << c);
        BOOST_REQUIRE(is_expired(m.expires_at, now));
        m.held = true;
        expiring.push_back(c);
        ++expired_seen;
      }
      if (r.error == Errc::ok) {
        Model& m = model.at(r.code);
        BOOST_REQUIRE_MESSAGE(m.status == CodeStatus::available && !m.held,
                              "reserve returned held or unavailable code " << r.code);
        BOOST_REQUIRE(!is_expired(m.expires_at, now));
        m.held = true;
        reserved.push_back(r.code);
        ++reservations;
      } else {
        BOOST_REQUIRE(r.error == Errc::out_of_stock);
        BOOST_REQUIRE(r.code.empty());
        // Out of stock means no sellable code exists.
        for (const auto& [code, m] : model)
          BOOST_REQUIRE_MESSAGE(
              !(m.status == CodeStatus::available && !m.held && !is_expired(m.expires_at, now)),
              "out_of_stock while " << code << " is sellable");
        ++outs;
      }
    } else if (kind < 65 && !reserved.empty()) {
      // Commit a purchase.
      std::string c = take(reserved);
      BOOST_REQUIRE(ever_assigned.insert(c).second);
      s = evolve(s, assigned(c, "p-" + std::to_string(op)));
      model.at(c) = Model{CodeStatus::assigned, false, model.at(c).expires_at};
    } else if (kind < 75 && !reserved.empty()) {
      // A purchase failed (e.g. insufficient funds): release.
      std::string c = take(reserved);
      release(s, c);
      model.at(c).held = false;
    } else if (kind < 82 && !expiring.empty()) {
      // Commit or fail the expiry of held expired codes.
      if (pick(4) == 0) {
        for (const auto& c : expiring) {
          release(s, c);
          model.at(c).held = false;
        }
      } else {
        s = evolve(s, expired(expiring));
        for (const auto& c : expiring) model.at(c) = Model{CodeStatus::expired, false, {}};
      }
      expiring.clear();
    } else if (kind < 90 && !all.empty()) {
      // Admin revocation: decide, hold, then commit or fail.
      const std::string c = all[pick(all.size())];
      const Model& m = model.at(c);
      CardDecision d = decide(RevokeCode{kCard, c}, s);
      if (m.status != CodeStatus::available || m.held) {
        BOOST_REQUIRE(d.error == Errc::code_not_available);
        BOOST_REQUIRE(!hold(s, c));
      } else {
        BOOST_REQUIRE(d.ok());
        BOOST_REQUIRE(hold(s, c));
        model.at(c).held = true;
        held_other.push_back(c);
      }
    } else if (kind < 95 && !held_other.empty()) {
      std::string c = take(held_other);
      if (pick(3) == 0) {
        release(s, c);
        model.at(c).held = false;
      } else {
        s = evolve(s, revoked(c));
        model.at(c) = Model{CodeStatus::revoked, false, {}};
      }
    } else if (kind < 98) {
      for (const auto& c : sweep_expired(s, now)) {
        Model& m = model.at(c);
        BOOST_REQUIRE(m.status == CodeStatus::available && !m.held);
        BOOST_REQUIRE(is_expired(m.expires_at, now));
        m.held = true;
        expiring.push_back(c);
      }
    } else {
      // Noise that must not change anything.
      const std::string before = dump(s);
      s = evolve(s, assigned("NO-SUCH-CODE"));
      release(s, "NO-SUCH-CODE");
      BOOST_REQUIRE(dump(s) == before);
    }

    const std::string bad = pool_violation(s);
    BOOST_REQUIRE_MESSAGE(bad.empty(), "after op " << op << ": " << bad);
    // The state agrees with the model code by code.
    if (op % 100 == 0 || op == 9999) {
      BOOST_REQUIRE(s.slots.size() == model.size());
      for (const auto& [code, m] : model) {
        const CodeSlot& sl = slot_of(s, code);
        BOOST_REQUIRE_MESSAGE(sl.status == m.status && sl.held == m.held,
                              "op " << op << " code " << code << " diverged from the model");
      }
    }
  }
  // The run exercised every path.
  BOOST_TEST(reservations > 1000);
  BOOST_TEST(outs > 0);
  BOOST_TEST(expired_seen > 0);
  BOOST_TEST(s.assigned > 0);
  BOOST_TEST(s.revoked > 0);
  BOOST_TEST(s.expired > 0);
}

// A hold that never took the code out of the queue (a revocation in flight)
// must not move the code when released: FIFO import order is kept and the
// queue does not grow.
BOOST_AUTO_TEST_CASE(release_after_hold_keeps_fifo_order) {
  CardState s = evolve(CardState{}, CardCreated{"c", "Card", 10, 10});
  s = evolve(std::move(s), CodesAdded{"c", {{"AAAA-1", 0}, {"AAAA-2", 0}, {"AAAA-3", 0}}});
  size_t queue_before = s.queue.size();
  for (int i = 0; i < 5; ++i) {
    BOOST_TEST(hold(s, "AAAA-3"));
    release(s, "AAAA-3");
  }
  BOOST_TEST(s.queue.size() == queue_before);
  BOOST_TEST(reserve(s, 0).code == "AAAA-1");
  // A reserved-then-released code goes back to the front.
  release(s, "AAAA-1");
  BOOST_TEST(reserve(s, 0).code == "AAAA-1");
  BOOST_TEST(reserve(s, 0).code == "AAAA-2");
  BOOST_TEST(reserve(s, 0).code == "AAAA-3");
  BOOST_TEST(reserve(s, 0).error == Errc::out_of_stock);
}

BOOST_AUTO_TEST_CASE(duplicate_codes_are_reported_once) {
  CardState s = evolve(CardState{}, CardCreated{"c", "Card", 10, 10});
  s = evolve(std::move(s), CodesAdded{"c", {{"OLD-1", 0}}});
  CardDecision d = decide(
      AddCodes{"c", {{"AAAA", 0}, {"AAAA", 0}, {"AAAA", 0}, {"OLD-1", 0}, {"OLD-1", 0}}, 0}, s);
  BOOST_TEST(d.error == Errc::duplicate_codes);
  BOOST_TEST(d.conflicts == (std::vector<std::string>{"AAAA", "OLD-1"}));
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace giftcard
