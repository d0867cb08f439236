// Tests of the GiftCard aggregate (events/gift_card.h), given/when/then:
// given committed events folded with evolve, when a command is decided or a
// pool operation runs, then the events (or the rejection) and the state.
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cstdint>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "events/gift_card.h"
#include "events/snapshot.h"
#include "events/time_util.h"
#include "events/validate.h"

namespace giftcard {
namespace {

const std::string kCard = "steam-50";

CardState given(const std::vector<CardEvent>& events) {
  CardState s;
  for (const auto& e : events) s = evolve(std::move(s), e);
  return s;
}

CardEvent created(const std::string& id = kCard) { return CardCreated{id, "Steam 50", 4999, 5000}; }

// Codes with one expiry each; std::nullopt: never expire.
std::vector<CodeSpec> specs(std::vector<std::string> codes, Expiry expires_at = std::nullopt) {
  std::vector<CodeSpec> out;
  for (auto& c : codes) {
    CodeSpec spec{std::move(c)};
    spec.expires_at = expires_at;
    out.push_back(std::move(spec));
  }
  return out;
}

CardEvent added(std::vector<std::string> codes, Expiry expires_at = std::nullopt) {
  return CodesAdded{kCard, specs(std::move(codes), expires_at)};
}

CardEvent assigned(const std::string& code, const std::string& purchase = "p-1") {
  return CodeAssigned{kCard, code, purchase, "alice", 4999, "key-" + purchase};
}

CardEvent revoked(const std::string& code) { return CodeRevoked{kCard, code}; }

CardEvent expired(std::vector<std::string> codes) { return CodesExpired{kCard, std::move(codes)}; }

// A card with codes C1..Cn in import order, none expiring.
CardState card_with(int n) {
  std::vector<std::string> codes;
  for (int i = 1; i <= n; ++i) codes.push_back("CODE-" + std::to_string(i));
  return given({created(), added(codes)});
}

const CodeSlot& slot_of(const CardState& s, const std::string& code) {
  auto it = s.index.find(code);
  BOOST_REQUIRE_MESSAGE(it != s.index.end(), "no slot for " << code);
  return s.slots[it->second];
}

// A printable dump of everything in CardState, to compare states.
std::string dump(const CardState& s) {
  std::ostringstream o;
  o << s.exists << '|' << s.id << '|' << s.name << '|' << s.price << '|' << s.value << '|'
    << s.available << ',' << s.assigned << ',' << s.revoked << ',' << s.expired << ',' << s.held
    << "|slots:";
  for (const auto& sl : s.slots)
    o << sl.code << '/' << (sl.expires_at ? std::to_string(*sl.expires_at) : "never") << '/' << static_cast<int>(sl.status) << '/' << sl.held
      << ';';
  std::map<std::string, uint32_t> sorted(s.index.begin(), s.index.end());
  o << "|index:";
  for (const auto& [k, v] : sorted) o << k << '=' << v << ';';
  o << "|queue:";
  for (auto q : s.queue) o << q << ';';
  return o.str();
}

void check_counters(const CardState& s, int64_t available, int64_t assigned_n, int64_t revoked_n,
                    int64_t expired_n, int64_t held) {
  BOOST_TEST(s.available == available);
  BOOST_TEST(s.assigned == assigned_n);
  BOOST_TEST(s.revoked == revoked_n);
  BOOST_TEST(s.expired == expired_n);
  BOOST_TEST(s.held == held);
  BOOST_TEST(pool_violation(s) == "");
}

void check_rejected(const CardDecision& d, Errc want) {
  BOOST_TEST(!d.ok());
  BOOST_TEST(to_string(d.error) == to_string(want));
  BOOST_TEST(d.events.empty());
  BOOST_TEST(!d.detail.empty());
}

}  // namespace

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
  CardState s =
      given({created(), added({"ASSIGNED", "REVOKED", "EXPIRED", "HELD", "RESERVED", "FREE"}),
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

// ---------------------------------------------------------------- reserve()

BOOST_AUTO_TEST_CASE(reserve_is_fifo_in_import_order) {
  CardState s =
      given({created(), added({"B1-1", "B1-2"}), added({"B2-1"}), added({"B3-1", "B3-2"})});
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
          BOOST_REQUIRE_MESSAGE(!(m.status == CodeStatus::available && !m.held &&
                                  !is_expired(m.expires_at, now)),
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
  CardDecision d = decide(AddCodes{"c", {{"AAAA", 0}, {"AAAA", 0}, {"AAAA", 0}, {"OLD-1", 0}, {"OLD-1", 0}}, 0}, s);
  BOOST_TEST(d.error == Errc::duplicate_codes);
  BOOST_TEST(d.conflicts == (std::vector<std::string>{"AAAA", "OLD-1"}));
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
  CardState t = given({created(), added({"EPOCH"}, Micros{0}), added({"PRE-EPOCH"}, -1),
                       added({"NEVER"})});
  BOOST_TEST(sweep_expired(t, 1'700'000'000'000'000) ==
                 (std::vector<std::string>{"EPOCH", "PRE-EPOCH"}),
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
  BOOST_TEST(r.expired == (std::vector<std::string>{"SOON-0001"}), boost::test_tools::per_element());
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
