// Tests of the GiftCard aggregate (events/gift_card.h), given/when/then:
// given committed events folded with evolve, when a command is decided, then
// the events (or the rejection) and the state. The pool operations (reserve,
// release, hold, sweep) and the property test: card_pool_test.cc.
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

// ---------------------------------------------------------------- CreateCard

BOOST_AUTO_TEST_CASE(create_card_accepted) {
  CardState s;  // given: nothing
  CardDecision d = decide(CreateCard{kCard,
                                     "Steam \xE2\x82\xAC"
                                     "50",
                                     4999, 5000},
                          s);
  BOOST_TEST(d.ok());
  BOOST_TEST(d.conflicts.empty());
  BOOST_REQUIRE(d.events.size() == 1u);
  BOOST_TEST((d.events[0] == CardEvent(CardCreated{kCard,
                                                   "Steam \xE2\x82\xAC"
                                                   "50",
                                                   4999, 5000})));

  s = evolve(s, d.events[0]);
  BOOST_TEST(s.exists);
  BOOST_TEST(s.id == kCard);
  BOOST_TEST(s.name ==
             "Steam \xE2\x82\xAC"
             "50");
  BOOST_TEST(s.price == 4999);
  BOOST_TEST(s.value == 5000);
  check_counters(s, 0, 0, 0, 0, 0);
}

BOOST_AUTO_TEST_CASE(create_card_boundaries_accepted) {
  CardState s;
  BOOST_TEST(decide(CreateCard{std::string(64, 'a'), "n", 1, 1}, s).ok());
  BOOST_TEST(decide(CreateCard{"A", std::string(200, 'x'), INT64_MAX, INT64_MAX}, s).ok());
  BOOST_TEST(decide(CreateCard{"a_b-C9", "x", 1, 1}, s).ok());
}

BOOST_AUTO_TEST_CASE(create_card_rejects_invalid_id) {
  CardState s;
  for (std::string id : {std::string(), std::string(65, 'a'), std::string("a/b"),
                         std::string("a b"), std::string("a.b"), std::string("a%20"),
                         std::string("caf\xC3\xA9"), std::string("a\0b", 3)}) {
    BOOST_TEST_INFO("id '" << id << "'");
    check_rejected(decide(CreateCard{id, "name", 1, 1}, s), Errc::invalid_request);
  }
}

BOOST_AUTO_TEST_CASE(create_card_rejects_invalid_name) {
  CardState s;
  for (std::string name :
       {std::string(), std::string(201, 'x'), std::string("bad\xC3"), std::string("\xC0\xAF"),
        std::string("tab\there"), std::string("nl\n"), std::string("del\x7f")}) {
    BOOST_TEST_INFO("name '" << name << "'");
    check_rejected(decide(CreateCard{kCard, name, 1, 1}, s), Errc::invalid_request);
  }
}

BOOST_AUTO_TEST_CASE(create_card_rejects_invalid_price_and_value) {
  CardState s;
  for (int64_t bad : {int64_t{0}, int64_t{-1}, INT64_MIN}) {
    BOOST_TEST_INFO("amount " << bad);
    check_rejected(decide(CreateCard{kCard, "name", bad, 1}, s), Errc::invalid_request);
    check_rejected(decide(CreateCard{kCard, "name", 1, bad}, s), Errc::invalid_request);
  }
}

BOOST_AUTO_TEST_CASE(create_card_rejects_existing_card) {
  CardState s = given({created()});
  check_rejected(decide(CreateCard{kCard, "Steam 50", 4999, 5000}, s), Errc::card_exists);
  check_rejected(decide(CreateCard{kCard, "Other", 1, 2}, s), Errc::card_exists);
  // Validation comes first: a bad command is invalid even when the card exists.
  check_rejected(decide(CreateCard{kCard, "", 1, 2}, s), Errc::invalid_request);
}

// ------------------------------------------------------------------ AddCodes

BOOST_AUTO_TEST_CASE(add_codes_accepted) {
  CardState s = given({created()});
  auto codes = specs({"AAAA-1", "BBBB-2"});
  codes.push_back({"CCCC-3", 1767225600000000});
  CardDecision d = decide(AddCodes{kCard, codes, 1}, s);
  BOOST_TEST(d.ok());
  BOOST_REQUIRE(d.events.size() == 1u);
  BOOST_TEST((d.events[0] == CardEvent(CodesAdded{kCard, codes})));

  s = evolve(s, d.events[0]);
  check_counters(s, 3, 0, 0, 0, 0);
  BOOST_TEST(s.slots.size() == 3u);
  BOOST_TEST(s.slots[0].code == "AAAA-1");
  BOOST_TEST(s.slots[2].code == "CCCC-3");
  BOOST_TEST((slot_of(s, "CCCC-3").expires_at == Expiry{1767225600000000}));
  BOOST_TEST(!slot_of(s, "AAAA-1").expires_at.has_value());
  BOOST_TEST((slot_of(s, "BBBB-2").status == CodeStatus::available));
}

BOOST_AUTO_TEST_CASE(add_codes_card_not_found) {
  CardState s;
  check_rejected(decide(AddCodes{kCard, specs({"AAAA"}), 0}, s), Errc::card_not_found);
  // Even a batch that is invalid otherwise: no card, nothing to validate against.
  check_rejected(decide(AddCodes{kCard, {}, 0}, s), Errc::card_not_found);
}

BOOST_AUTO_TEST_CASE(add_codes_batch_size_limits) {
  CardState s = given({created()});
  check_rejected(decide(AddCodes{kCard, {}, 0}, s), Errc::invalid_request);

  std::vector<CodeSpec> many;
  for (size_t i = 0; i < kMaxCodesPerBatch; ++i) many.push_back({"CODE-" + std::to_string(i), 0});
  CardDecision ok = decide(AddCodes{kCard, many, 0}, s);
  BOOST_TEST(ok.ok());
  BOOST_REQUIRE(ok.events.size() == 1u);
  BOOST_TEST(std::get<CodesAdded>(ok.events[0]).codes.size() == kMaxCodesPerBatch);

  many.push_back({"CODE-ONE-TOO-MANY", 0});
  check_rejected(decide(AddCodes{kCard, many, 0}, s), Errc::invalid_request);
}

BOOST_AUTO_TEST_CASE(add_codes_rejects_invalid_code) {
  CardState s = given({created(), added({"AAAA"})});
  for (std::string bad :
       {std::string("ABC"), std::string(65, 'A'), std::string("AB_CD"), std::string("AB CD"),
        std::string("AB/CD"), std::string("ABC\0", 4), std::string(), std::string("ABC\xC3\xA9")}) {
    BOOST_TEST_INFO("code '" << bad << "'");
    // The bad code is not first, and the batch also has a duplicate: format
    // errors win, nothing is added.
    CardDecision d = decide(AddCodes{kCard, {{"GOOD-1", 0}, {bad, 0}, {"AAAA", 0}}, 0}, s);
    check_rejected(d, Errc::invalid_request);
  }
  BOOST_TEST(decide(AddCodes{kCard, specs({"ABCD", std::string(64, 'z')}), 0}, s).ok());
  check_rejected(decide(AddCodes{kCard, {{"GOOD", -1}}, 0}, s), Errc::invalid_request);
}

BOOST_AUTO_TEST_CASE(add_codes_rejects_duplicates_within_batch) {
  CardState s = given({created()});
  CardDecision d = decide(AddCodes{kCard, specs({"AAAA", "BBBB", "AAAA", "CCCC", "BBBB"}), 0}, s);
  check_rejected(d, Errc::duplicate_codes);
  BOOST_TEST(d.conflicts == (std::vector<std::string>{"AAAA", "BBBB"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(add_codes_rejects_duplicates_against_existing) {
  // AAAA available, BBBB assigned, CCCC revoked, DDDD expired: all still taken.
  CardState s = given({created(), added({"AAAA", "BBBB", "CCCC", "DDDD"}), assigned("BBBB"),
                       revoked("CCCC"), expired({"DDDD"})});
  const std::string before = dump(s);
  CardDecision d = decide(
      AddCodes{kCard, specs({"NEW-1", "BBBB", "NEW-2", "AAAA", "CCCC", "DDDD", "NEW-3"}), 0}, s);
  check_rejected(d, Errc::duplicate_codes);
  BOOST_TEST(d.conflicts == (std::vector<std::string>{"BBBB", "AAAA", "CCCC", "DDDD"}),
             boost::test_tools::per_element());
  BOOST_TEST(dump(s) == before);  // decide is pure
}

BOOST_AUTO_TEST_CASE(add_codes_duplicates_name_only_conflicting_codes) {
  CardState s = given({created(), added({"AAAA"})});
  // AAAA exists and repeats; BBBB repeats; CCCC is fine.
  CardDecision d = decide(AddCodes{kCard, specs({"AAAA", "BBBB", "CCCC", "BBBB", "AAAA"}), 0}, s);
  check_rejected(d, Errc::duplicate_codes);
  std::set<std::string> named(d.conflicts.begin(), d.conflicts.end());
  BOOST_TEST(named == (std::set<std::string>{"AAAA", "BBBB"}), boost::test_tools::per_element());
}

// ---------------------------------------------------------------- RevokeCode

BOOST_AUTO_TEST_CASE(revoke_code_accepted) {
  CardState s = given({created(), added({"AAAA", "BBBB"})});
  CardDecision d = decide(RevokeCode{kCard, "BBBB"}, s);
  BOOST_TEST(d.ok());
  BOOST_REQUIRE(d.events.size() == 1u);
  BOOST_TEST((d.events[0] == revoked("BBBB")));
  s = evolve(s, d.events[0]);
  check_counters(s, 1, 0, 1, 0, 0);
  BOOST_TEST((slot_of(s, "BBBB").status == CodeStatus::revoked));
}

BOOST_AUTO_TEST_CASE(revoke_code_card_not_found) {
  check_rejected(decide(RevokeCode{kCard, "AAAA"}, CardState{}), Errc::card_not_found);
}

BOOST_AUTO_TEST_CASE(revoke_code_not_found) {
  CardState s = given({created(), added({"AAAA"})});
  check_rejected(decide(RevokeCode{kCard, "ZZZZ"}, s), Errc::code_not_found);
  check_rejected(decide(RevokeCode{kCard, ""}, s), Errc::code_not_found);
  check_rejected(decide(RevokeCode{kCard, "aaaa"}, s), Errc::code_not_found);
}

BOOST_AUTO_TEST_CASE(revoke_code_not_available) {
  CardState s = given({created(),
                       added({"ASSIGNED", "REVOKED", "EXPIRED", "HELD", "RESERVED", "FREE"}),
                       assigned("ASSIGNED"), revoked("REVOKED"), expired({"EXPIRED"})});
  BOOST_REQUIRE(hold(s, "HELD"));
  // reserve takes the first available unheld code in import order.
  Reservation r = reserve(s, 0);
  BOOST_REQUIRE(r.error == Errc::ok);
  BOOST_REQUIRE(r.code == "RESERVED");
  for (const char* code : {"ASSIGNED", "REVOKED", "EXPIRED", "HELD", "RESERVED"}) {
    BOOST_TEST_INFO("code " << code);
    check_rejected(decide(RevokeCode{kCard, code}, s), Errc::code_not_available);
  }
  BOOST_TEST(decide(RevokeCode{kCard, "FREE"}, s).ok());
}

// ------------------------------------------------------------------- evolve

BOOST_AUTO_TEST_CASE(evolve_counters_follow_status_changes) {
  CardState s = card_with(6);
  check_counters(s, 6, 0, 0, 0, 0);
  s = evolve(s, assigned("CODE-1"));
  check_counters(s, 5, 1, 0, 0, 0);
  s = evolve(s, revoked("CODE-2"));
  check_counters(s, 4, 1, 1, 0, 0);
  s = evolve(s, expired({"CODE-3", "CODE-4"}));
  check_counters(s, 2, 1, 1, 2, 0);
  // Final states are final: later events for the same codes change nothing.
  const std::string before = dump(s);
  s = evolve(s, assigned("CODE-2"));
  s = evolve(s, revoked("CODE-1"));
  s = evolve(s, expired({"CODE-1", "CODE-2"}));
  s = evolve(s, assigned("CODE-1", "p-2"));
  BOOST_TEST(dump(s) == before);
}

BOOST_AUTO_TEST_CASE(evolve_is_total) {
  CardState s = card_with(2);
  BOOST_REQUIRE(hold(s, "CODE-2"));
  const std::string before = dump(s);
  const std::vector<CardEvent> inert = {
      assigned("UNKNOWN"),
      revoked("UNKNOWN"),
      expired({"UNKNOWN", "ALSO-UNKNOWN"}),
      expired({}),
      CardCreated{kCard, "Another name", 1, 1},  // a card is created once
      CodesAdded{kCard, {}},
      CodesAdded{kCard, {{"CODE-1", 0}, {"CODE-2", 99}}},  // already present
  };
  for (const auto& e : inert) {
    BOOST_TEST_INFO("event " << type_name(type_of(e)));
    s = evolve(s, e);
    BOOST_TEST(dump(s) == before);
  }
}

BOOST_AUTO_TEST_CASE(evolve_ignores_codes_before_card_created) {
  CardState s = given({added({"AAAA", "BBBB"}), assigned("AAAA")});
  BOOST_TEST(!s.exists);
  BOOST_TEST(dump(s) == dump(CardState{}));
  s = evolve(s, created());
  BOOST_TEST(s.exists);
  check_counters(s, 0, 0, 0, 0, 0);
  BOOST_TEST(to_string(reserve(s, 1).error) == to_string(Errc::out_of_stock));
}

BOOST_AUTO_TEST_CASE(evolve_skips_codes_already_in_pool) {
  CardState s = given({created(), added({"AAAA", "BBBB"}), added({"BBBB", "CCCC"})});
  BOOST_TEST(s.slots.size() == 3u);
  check_counters(s, 3, 0, 0, 0, 0);
  BOOST_TEST(reserve(s, 1).code == "AAAA");
  BOOST_TEST(reserve(s, 1).code == "BBBB");
  BOOST_TEST(reserve(s, 1).code == "CCCC");
  BOOST_TEST(to_string(reserve(s, 1).error) == to_string(Errc::out_of_stock));
}

BOOST_AUTO_TEST_CASE(fold_refuses_a_wallet_event_in_a_card_stream) {
  CardState s = card_with(2);
  const std::string before = dump(s);
  for (const Event& e : {Event{WalletCredited{"alice", 100, 100, "k"}},
                         Event{WalletDebited{"alice", 100, 0, "p-1", kCard}}}) {
    Status st = fold(s, e);
    BOOST_TEST(st.IsCorruption());
    BOOST_TEST(st.message().find(type_name(type_of(e))) != std::string::npos);
    BOOST_TEST(dump(s) == before);
  }
  BOOST_TEST(fold(s, to_event(assigned("CODE-1"))).ok());
  BOOST_TEST(s.assigned == 1);
}

// The header promises "an event that does not apply (another card, unknown
// code) leaves the state unchanged".
BOOST_AUTO_TEST_CASE(evolve_ignores_events_of_another_card) {
  const CardState s = card_with(1);
  const std::string before = dump(s);
  const std::vector<CardEvent> foreign = {
      CodesAdded{"other-card", {{"OTHER-1", 0}}},
      CodeAssigned{"other-card", "CODE-1", "p-9", "bob", 1, "k"},
      CodeRevoked{"other-card", "CODE-1"},
      CodesExpired{"other-card", {"CODE-1"}},
  };
  for (const auto& e : foreign) {
    BOOST_TEST_INFO("event " << type_name(type_of(e)) << " of card other-card");
    BOOST_TEST(dump(evolve(s, e)) == before);
  }
}

BOOST_AUTO_TEST_CASE(reserved_code_assigned_is_no_longer_held) {
  CardState s = card_with(3);
  Reservation r = reserve(s, 1);
  BOOST_REQUIRE(r.code == "CODE-1");
  check_counters(s, 3, 0, 0, 0, 1);
  s = evolve(s, assigned(r.code));
  BOOST_TEST(!slot_of(s, "CODE-1").held);
  BOOST_TEST((slot_of(s, "CODE-1").status == CodeStatus::assigned));
  check_counters(s, 2, 1, 0, 0, 0);
  BOOST_TEST(!hold(s, "CODE-1"));
  check_rejected(decide(RevokeCode{kCard, "CODE-1"}, s), Errc::code_not_available);
  BOOST_TEST(reserve(s, 1).code == "CODE-2");
}

BOOST_AUTO_TEST_CASE(evolve_returns_a_copy) {
  const CardState s = card_with(1);
  const std::string before = dump(s);
  CardState t = evolve(s, assigned("CODE-1"));
  BOOST_TEST(dump(s) == before);
  BOOST_TEST(t.assigned == 1);
  CardState u = s;
  evolve_in_place(u, assigned("CODE-1"));
  BOOST_TEST(dump(u) == dump(t));
}

// ------------------------------------------- expiry at or before the epoch
// (issue #14 §6). An absent expiry is "never"; every instant is an expiry,
// the epoch (0) and earlier included: 0 no longer means "never".

BOOST_AUTO_TEST_CASE(epoch_and_pre_epoch_expiries_are_expired) {
  CardState s = given({created(), added({"EPOCH"}, Micros{0}), added({"PRE-EPOCH"}, -1'000'000),
                       added({"NEVER"}), added({"FAR-PAST"}, INT64_MIN)});
  BOOST_TEST((slot_of(s, "EPOCH").expires_at == Expiry{0}));
  BOOST_TEST(!slot_of(s, "NEVER").expires_at.has_value());
  // At the epoch itself the epoch code is already expired (expires_at <= now).
  Reservation r = reserve(s, 0);
  BOOST_TEST(to_string(r.error) == to_string(Errc::ok));
  BOOST_TEST(r.code == "NEVER");
  BOOST_TEST(r.expired == (std::vector<std::string>{"EPOCH", "PRE-EPOCH"}),
             boost::test_tools::per_element());
  // Nothing else is sellable: the far-past code is found expired too.
  r = reserve(s, 0);
  BOOST_TEST(to_string(r.error) == to_string(Errc::out_of_stock));
  BOOST_TEST(r.expired == (std::vector<std::string>{"FAR-PAST"}), boost::test_tools::per_element());
  check_counters(s, 4, 0, 0, 0, 4);

  // The sweep finds them the same way, at any later time.
  CardState t = given(
      {created(), added({"EPOCH"}, Micros{0}), added({"PRE-EPOCH"}, -1), added({"NEVER"})});
  BOOST_TEST(
      sweep_expired(t, 1'700'000'000'000'000) == (std::vector<std::string>{"EPOCH", "PRE-EPOCH"}),
      boost::test_tools::per_element());
  // Before the epoch, the epoch code is not yet expired.
  CardState u = given({created(), added({"EPOCH"}, Micros{0})});
  BOOST_TEST(sweep_expired(u, -1).empty());
  BOOST_TEST(reserve(u, -1).code == "EPOCH");
}

BOOST_AUTO_TEST_CASE(is_expired_absent_is_never) {
  BOOST_TEST(!is_expired(std::nullopt, INT64_MAX));
  BOOST_TEST(is_expired(Expiry{0}, 0));
  BOOST_TEST(is_expired(Expiry{0}, 1));
  BOOST_TEST(!is_expired(Expiry{0}, -1));
  BOOST_TEST(is_expired(Expiry{-1}, 0));
  BOOST_TEST(is_expired(Expiry{INT64_MIN}, INT64_MIN));
  BOOST_TEST(!is_expired(Expiry{INT64_MAX}, INT64_MAX - 1));
}

// The positional constructor kept for in-process callers written before the
// presence flag: 0 there still means "never"; an explicit Expiry{0} does not.
BOOST_AUTO_TEST_CASE(code_spec_constructors) {
  BOOST_TEST(!CodeSpec{"A"}.expires_at.has_value());
  BOOST_TEST(!(CodeSpec{"A", 0}.expires_at.has_value()));
  BOOST_TEST((CodeSpec{"A", 5}.expires_at == Expiry{5}));
  BOOST_TEST((CodeSpec{"A", -5}.expires_at == Expiry{-5}));
  BOOST_TEST((CodeSpec::expiring("A", 0).expires_at == Expiry{0}));
  BOOST_TEST(!(CodeSpec{"A"} == CodeSpec::expiring("A", 0)));
}

// Importing an already expired code is refused, the whole batch with it:
// stored, it could never be sold, and its system-wide claim would block a
// corrected import of the same code for good.
BOOST_AUTO_TEST_CASE(add_codes_refuses_already_expired_codes) {
  CardState s = given({created()});
  const Micros now = 1'800'000'000'000'000;
  for (Micros bad : {Micros{0}, Micros{-1}, Micros{-1'000'000}, INT64_MIN, now - 1, now}) {
    BOOST_TEST_INFO("expires_at " << bad);
    auto batch = specs({"GOOD-0001"}, now + 1'000'000);
    batch.push_back(CodeSpec::expiring("BAD-0001", bad));
    batch.push_back(CodeSpec{"NEVER-0001"});
    CardDecision d = decide(AddCodes{kCard, batch, now}, s);
    check_rejected(d, Errc::invalid_request);
    BOOST_TEST(d.detail.find("codes[1]") == 0u, d.detail);
    BOOST_TEST(d.detail.find("already expired") != std::string::npos, d.detail);
    BOOST_TEST(d.detail.find(format_rfc3339(bad)) != std::string::npos, d.detail);
    BOOST_TEST(d.conflicts.empty());
  }
  // Still in the future: accepted, and expires as any other code.
  auto batch = specs({"SOON-0001"}, now + 1);
  batch.push_back(CodeSpec{"NEVER-0001"});
  CardDecision d = decide(AddCodes{kCard, batch, now}, s);
  BOOST_REQUIRE(d.ok());
  s = evolve(s, d.events[0]);
  BOOST_TEST(reserve(s, now).code == "SOON-0001");
  release(s, "SOON-0001");
  Reservation r = reserve(s, now + 1);
  BOOST_TEST(r.code == "NEVER-0001");
  BOOST_TEST(r.expired == (std::vector<std::string>{"SOON-0001"}),
             boost::test_tools::per_element());
}

// Card snapshots keep "never" and an expiry at or before the epoch apart.
BOOST_AUTO_TEST_CASE(snapshot_keeps_absent_and_epoch_expiry_apart) {
  CardState s = given({created(), added({"NEVER"}), added({"EPOCH"}, Micros{0}),
                       added({"PRE-EPOCH"}, -1), added({"LATER"}, 1'767'225'600'000'000),
                       assigned("LATER")});
  const std::string bytes = encode_snapshot(s);
  CardState back;
  Status st = decode_snapshot(bytes, &back);
  BOOST_REQUIRE_MESSAGE(st.ok(), st.ToString());
  check_counters(back, 3, 1, 0, 0, 0);
  BOOST_TEST(!slot_of(back, "NEVER").expires_at.has_value());
  BOOST_TEST((slot_of(back, "EPOCH").expires_at == Expiry{0}));
  BOOST_TEST((slot_of(back, "PRE-EPOCH").expires_at == Expiry{-1}));
  BOOST_TEST(encode_snapshot(back) == bytes);
  BOOST_TEST(sweep_expired(back, 0) == (std::vector<std::string>{"EPOCH", "PRE-EPOCH"}),
             boost::test_tools::per_element());
  BOOST_TEST(reserve(back, 0).code == "NEVER");

  // Version 1 snapshots (an i64 expiry, 0 = never) are refused: a snapshot is a
  // cache, and the actor refolds its stream, whose v1 events still decode.
  std::string v1 = bytes;
  v1[0] = 1;
  BOOST_TEST(decode_snapshot(v1, &back).IsCorruption());
  // A presence flag other than 0 or 1 is corruption.
  CardState one = given({created(), added({"NEVER"})});
  std::string flag = encode_snapshot(one);
  BOOST_REQUIRE(flag.size() >= 2);
  BOOST_REQUIRE(flag[flag.size() - 2] == 0);  // ... "NEVER", flag 0, status 0
  flag[flag.size() - 2] = 2;
  BOOST_TEST(decode_snapshot(flag, &back).IsCorruption());
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace giftcard
