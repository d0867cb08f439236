// Tests of the Wallet aggregate (events/wallet.h): decisions against the
// projected balance, and folding committed events.
#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "events/wallet.h"

namespace giftcard {
namespace {

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();

WalletState given(const std::vector<WalletEvent>& events) {
  WalletState s;
  for (const auto& e : events) s = evolve(std::move(s), e);
  return s;
}

void check_rejected(const WalletDecision& d, Errc want) {
  BOOST_TEST(!d.ok());
  BOOST_TEST(to_string(d.error) == to_string(want));
  BOOST_TEST(d.events.empty());
  BOOST_TEST(!d.detail.empty());
}

WalletCredited only_credit(const WalletDecision& d) {
  BOOST_REQUIRE(d.ok());
  BOOST_REQUIRE(d.events.size() == 1u);
  BOOST_REQUIRE(std::holds_alternative<WalletCredited>(d.events[0]));
  return std::get<WalletCredited>(d.events[0]);
}

WalletDebited only_debit(const WalletDecision& d) {
  BOOST_REQUIRE(d.ok());
  BOOST_REQUIRE(d.events.size() == 1u);
  BOOST_REQUIRE(std::holds_alternative<WalletDebited>(d.events[0]));
  return std::get<WalletDebited>(d.events[0]);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(wallet)

BOOST_AUTO_TEST_CASE(credit_carries_balance_after) {
  WalletDecision d = decide(CreditWallet{"alice", 2500, "key-1"}, 1000);
  const WalletCredited& e = only_credit(d);
  BOOST_TEST((e == WalletCredited{"alice", 2500, 3500, "key-1"}));
  BOOST_TEST(d.conflicts.empty());

  BOOST_TEST(only_credit(decide(CreditWallet{"alice", 1, "k"}, 0)).balance_after == 1);
}

BOOST_AUTO_TEST_CASE(debit_carries_balance_after) {
  WalletDecision d = decide(DebitWallet{"alice", 1500, "p-1", "steam-50"}, 10000);
  const WalletDebited e = only_debit(d);
  BOOST_TEST((e == WalletDebited{"alice", 1500, 8500, "p-1", "steam-50"}));
}

BOOST_AUTO_TEST_CASE(debit_of_exact_balance_is_allowed) {
  const WalletDebited e = only_debit(decide(DebitWallet{"alice", 4999, "p-1", "c"}, 4999));
  BOOST_TEST(e.balance_after == 0);
  BOOST_TEST(only_debit(decide(DebitWallet{"alice", kMax, "p-2", "c"}, kMax)).balance_after == 0);
}

BOOST_AUTO_TEST_CASE(debit_above_projected_balance_is_insufficient) {
  check_rejected(decide(DebitWallet{"alice", 5000, "p-1", "c"}, 4999), Errc::insufficient_funds);
  check_rejected(decide(DebitWallet{"alice", 1, "p-1", "c"}, 0), Errc::insufficient_funds);
  check_rejected(decide(DebitWallet{"alice", kMax, "p-1", "c"}, kMax - 1),
                 Errc::insufficient_funds);
}

BOOST_AUTO_TEST_CASE(decisions_use_the_projected_balance) {
  // Committed balance 100, a pending credit of 50: a debit of 150 fits the
  // projection, and a debit of 151 does not.
  WalletState s = given({WalletCredited{"alice", 100, 100, "k1"}});
  int64_t projected = s.balance;
  projected = only_credit(decide(CreditWallet{"alice", 50, "k2"}, projected)).balance_after;
  BOOST_TEST(projected == 150);
  check_rejected(decide(DebitWallet{"alice", 151, "p-1", "c"}, projected),
                 Errc::insufficient_funds);
  const WalletDebited d = only_debit(decide(DebitWallet{"alice", 150, "p-1", "c"}, projected));
  BOOST_TEST(d.balance_after == 0);
  // Two pipelined debits: the second sees the first.
  projected = 100;
  projected = only_debit(decide(DebitWallet{"alice", 60, "p-2", "c"}, projected)).balance_after;
  check_rejected(decide(DebitWallet{"alice", 60, "p-3", "c"}, projected), Errc::insufficient_funds);
}

BOOST_AUTO_TEST_CASE(invalid_amounts_rejected) {
  for (int64_t bad : {int64_t{0}, int64_t{-1}, std::numeric_limits<int64_t>::min()}) {
    BOOST_TEST_INFO("amount " << bad);
    check_rejected(decide(CreditWallet{"alice", bad, "k"}, 100), Errc::invalid_request);
    check_rejected(decide(DebitWallet{"alice", bad, "p", "c"}, 100), Errc::invalid_request);
  }
}

BOOST_AUTO_TEST_CASE(credit_overflow_rejected) {
  check_rejected(decide(CreditWallet{"alice", 1, "k"}, kMax), Errc::balance_overflow);
  check_rejected(decide(CreditWallet{"alice", kMax, "k"}, 1), Errc::balance_overflow);
  check_rejected(decide(CreditWallet{"alice", 11, "k"}, kMax - 10), Errc::balance_overflow);
  check_rejected(decide(CreditWallet{"alice", kMax, "k"}, kMax), Errc::balance_overflow);
  // Exactly reaching INT64_MAX is fine.
  BOOST_TEST(only_credit(decide(CreditWallet{"alice", 10, "k"}, kMax - 10)).balance_after == kMax);
  BOOST_TEST(only_credit(decide(CreditWallet{"alice", kMax, "k"}, 0)).balance_after == kMax);
}

BOOST_AUTO_TEST_CASE(evolve_folds_credits_and_debits) {
  WalletState s;
  BOOST_TEST(s.balance == 0);
  s = evolve(s, WalletCredited{"alice", 10000, 10000, "k1"});
  BOOST_TEST(s.user_id == "alice");
  BOOST_TEST(s.balance == 10000);
  s = evolve(s, WalletDebited{"alice", 4999, 5001, "p-1", "steam-50"});
  BOOST_TEST(s.balance == 5001);
  s = evolve(s, WalletCredited{"alice", 99, 5100, "k2"});
  s = evolve(s, WalletDebited{"alice", 5100, 0, "p-2", "steam-50"});
  BOOST_TEST(s.balance == 0);
  BOOST_TEST(s.version == 4);  // one stream version per folded event

  WalletState t;
  evolve_in_place(t, WalletCredited{"alice", 7, 7, "k"});
  BOOST_TEST(t.balance == 7);
}

BOOST_AUTO_TEST_CASE(evolve_matches_decided_balance_after) {
  // Deciding and folding a sequence keeps balance == last balance_after.
  WalletState s;
  const int64_t amounts[] = {500, -200, 1000, -1300, 1, -1, 42};
  for (int64_t a : amounts) {
    WalletDecision d = a > 0 ? decide(CreditWallet{"bob", a, "k"}, s.balance)
                             : decide(DebitWallet{"bob", -a, "p", "c"}, s.balance);
    BOOST_REQUIRE(d.ok());
    for (const auto& e : d.events) s = evolve(s, e);
    const int64_t after = a > 0 ? std::get<WalletCredited>(d.events[0]).balance_after
                                : std::get<WalletDebited>(d.events[0]).balance_after;
    BOOST_TEST(s.balance == after);
    BOOST_TEST(s.balance >= 0);
  }
  BOOST_TEST(s.balance == 42);
}

BOOST_AUTO_TEST_CASE(evolve_ignores_other_wallets_and_other_events) {
  WalletState s = given({WalletCredited{"alice", 100, 100, "k"}});
  s = evolve(s, WalletCredited{"bob", 1000, 1000, "k"});
  s = evolve(s, WalletDebited{"bob", 50, 950, "p", "c"});
  s = evolve(s, WalletDebited{"alice@x", 50, 50, "p", "c"});
  BOOST_TEST(s.user_id == "alice");
  BOOST_TEST(s.balance == 100);

  BOOST_TEST(s.version == 1);  // another wallet's events are not this stream's versions
}

BOOST_AUTO_TEST_CASE(fold_refuses_a_card_event_in_a_wallet_stream) {
  WalletState s = given({WalletCredited{"alice", 100, 100, "k"}});
  const std::vector<Event> others = {
      CardCreated{"c", "n", 1, 1},
      CodesAdded{"c", {CodeSpec{"AAAA"}}},
      CodeAssigned{"c", "AAAA", "p", "alice", 100, "k"},
      CodeRevoked{"c", "AAAA"},
      CodesExpired{"c", {"AAAA"}},
  };
  for (const auto& e : others) {
    Status st = fold(s, e);
    BOOST_TEST(st.IsCorruption());
    BOOST_TEST(st.message().find(type_name(type_of(e))) != std::string::npos);
  }
  BOOST_TEST(s.user_id == "alice");
  BOOST_TEST(s.balance == 100);
  BOOST_TEST(s.version == 1);
  BOOST_TEST(fold(s, Event{WalletDebited{"alice", 40, 60, "p", "c"}}).ok());
  BOOST_TEST(s.balance == 60);
  BOOST_TEST(s.version == 2);
}

BOOST_AUTO_TEST_CASE(fold_reports_a_log_that_overdraws) {
  // The live path aborts (GIFTCARD_CHECK) on a negative balance; a log read
  // back that holds one is Corruption and changes nothing.
  WalletState s = given({WalletCredited{"alice", 100, 100, "k"}});
  Status st = fold(s, Event{WalletDebited{"alice", 101, -1, "p", "c"}});
  BOOST_TEST(st.IsCorruption());
  BOOST_TEST(s.balance == 100);
  BOOST_TEST(s.version == 1);
}

BOOST_AUTO_TEST_CASE(evolve_on_named_empty_wallet_ignores_others) {
  WalletState s;
  s.user_id = "alice";
  s = evolve(s, WalletCredited{"bob", 1000, 1000, "k"});
  BOOST_TEST(s.user_id == "alice");
  BOOST_TEST(s.balance == 0);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace giftcard
