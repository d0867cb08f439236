// ProjectionHistory: the shop as of any position equals a fold of the log up
// to that position, and is answered from a checkpoint plus fewer than kEvery
// events; a wallet's balance as of a position by binary search.
#include <boost/test/unit_test.hpp>
#include <functional>
#include <limits>
#include <random>

#include "projections/history.h"
#include "store/memory_event_store.h"
#include "tests/support/models.h"

namespace giftcard {
namespace {

using test::append;  // tests/support/models.h

// ~150k events: 3 cards, 40 users, credits and purchases interleaved, in
// requests of up to 512 events. `after_append` (optional) runs after each.
void write_log(EventStore* s, const std::function<void()>& after_append = {}) {
  std::mt19937 rng(7);
  const int kCards = 3, kUsers = 40;
  std::vector<int64_t> balance(kUsers, 0);
  for (int c = 0; c < kCards; ++c)
    append(s, {{"card-c" + std::to_string(c),
                CardCreated{"c" + std::to_string(c), "Card", 10 + c, 10}}});
  int code = 0, purchase = 0;
  std::vector<int> stock(kCards, 0), next_code(kCards, 0);
  std::vector<std::vector<std::string>> codes(kCards);
  while (s->LastPosition() < 150000) {
    std::vector<std::pair<std::string, Event>> req;
    for (int i = 0; i < 256; ++i) {
      int c = static_cast<int>(rng() % kCards);
      int u = static_cast<int>(rng() % kUsers);
      std::string card = "c" + std::to_string(c), user = "u" + std::to_string(u);
      int64_t price = 10 + c;
      if (stock[c] == 0) {
        CodesAdded add{card, {}};
        for (int k = 0; k < 64; ++k) {
          std::string cd = "CODE-" + std::to_string(++code);
          add.codes.push_back({cd, 0});
          codes[c].push_back(cd);
        }
        stock[c] += 64;
        req.emplace_back("card-" + card, std::move(add));
      } else if (balance[u] < price) {
        balance[u] += 100;
        req.emplace_back("wallet-" + user,
                         WalletCredited{user, 100, balance[u], "k" + std::to_string(code)});
      } else {
        std::string pid = "p" + std::to_string(++purchase);
        balance[u] -= price;
        --stock[c];
        req.emplace_back("card-" + card,
                         CodeAssigned{card, codes[c][static_cast<size_t>(next_code[c]++)], pid,
                                      user, price, "x"});
        req.emplace_back("wallet-" + user, WalletDebited{user, price, balance[u], pid, card});
      }
    }
    append(s, std::move(req));
    if (after_append) after_append();
  }
}

// `incremental`: CatchUp runs while the log is written (as the projection
// driver calls it after every step), every few appends, so its calls end at
// arbitrary positions; otherwise once over the whole log.
void check_as_of_equals_the_fold(bool incremental) {
  auto store = NewMemoryEventStore();
  std::unique_ptr<ProjectionHistory> h;
  BOOST_REQUIRE(ProjectionHistory::Open(store.get(), &h).ok());
  int appends = 0;
  write_log(store.get(), [&] {
    if (incremental && ++appends % 3 == 0) BOOST_REQUIRE(h->CatchUp().ok());
  });
  BOOST_REQUIRE(h->CatchUp().ok());
  // Checkpoints were written at 65536 and 131072; reopening resumes from them.
  std::unique_ptr<ProjectionHistory> h2;
  BOOST_REQUIRE(ProjectionHistory::Open(store.get(), &h2).ok());

  const int64_t head = store->LastPosition();
  std::mt19937_64 rng(11);
  std::vector<int64_t> probes = {0, 1, 65535, 65536, 65537, 131072, head};
  for (int i = 0; i < 30; ++i)
    probes.push_back(static_cast<int64_t>(rng() % static_cast<uint64_t>(head + 1)));
  std::sort(probes.begin(), probes.end());
  // One forward fold of the whole log, compared at every probe.
  ReadModels m;
  std::vector<StoredEvent> evs;
  size_t next = 0;
  auto compare_at = [&](int64_t p) {
    ProjectionHistory::AsOf a;
    BOOST_REQUIRE(h2->At(p, &a).ok());
    BOOST_TEST(a.position == p);
    BOOST_TEST(a.replayed < ProjectionHistory::kEvery, "replayed " << a.replayed << " at " << p);
    BOOST_REQUIRE_EQUAL(a.cards.size(), m.cards.size());
    for (const auto& c : a.cards)
      BOOST_TEST((c == m.cards.at(c.id)), "card " << c.id << " at " << p);
    int64_t fl = 0;
    for (const auto& [u, b] : m.balances) fl += b;
    BOOST_TEST(a.wallet_float == fl, "float at " << p);
    for (const auto& [u, b] : m.balances) {
      int64_t got = -1;
      bool existed = false;
      BOOST_REQUIRE(h2->BalanceAt(u, p, &got, &existed).ok());
      BOOST_TEST(existed);
      BOOST_TEST(got == b, "balance of " << u << " at " << p);
    }
    int64_t none = -1;
    bool existed = true;
    BOOST_REQUIRE(h2->BalanceAt("nobody", p, &none, &existed).ok());
    BOOST_TEST((!existed && none == 0));
  };
  int64_t pos = 0;
  while (next < probes.size()) {
    while (next < probes.size() && probes[next] == pos) compare_at(probes[next++]);
    BOOST_REQUIRE(store->ReadAll(pos + 1, 1, &evs).ok());
    if (evs.empty()) break;
    BOOST_REQUIRE(apply(m, evs.front()).ok());
    pos = evs.front().position;
  }
  BOOST_TEST(next == probes.size());
  ProjectionHistory::AsOf bad;
  BOOST_TEST(h2->At(head + 1, &bad).IsInvalidArgument());
}

}  // namespace

BOOST_AUTO_TEST_SUITE(projection_history)

BOOST_AUTO_TEST_CASE(as_of_any_position_equals_the_fold) { check_as_of_equals_the_fold(false); }

BOOST_AUTO_TEST_CASE(incremental_catch_up_gives_the_same_checkpoints) {
  check_as_of_equals_the_fold(true);
}

BOOST_AUTO_TEST_CASE(the_wallet_float_saturates_instead_of_overflowing) {
  // Two wallets at 2^63-1 each: their sum does not fit an int64.
  auto store = NewMemoryEventStore();
  std::unique_ptr<ProjectionHistory> h;
  BOOST_REQUIRE(ProjectionHistory::Open(store.get(), &h).ok());
  const int64_t max = std::numeric_limits<int64_t>::max();
  append(store.get(), {{"wallet-a", WalletCredited{"a", max, max, "ka"}}});
  BOOST_REQUIRE(h->CatchUp().ok());
  append(store.get(), {{"wallet-b", WalletCredited{"b", max, max, "kb"}}});
  BOOST_REQUIRE(h->CatchUp().ok());
  ProjectionHistory::AsOf a;
  BOOST_REQUIRE(h->At(2, &a).ok());
  BOOST_TEST(a.wallet_float == max);
  BOOST_REQUIRE(h->At(1, &a).ok());
  BOOST_TEST(a.wallet_float == max);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace giftcard
