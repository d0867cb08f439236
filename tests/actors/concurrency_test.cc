// Real-thread concurrency: 256 buyers (event-based actors on CAF's worker
// threads, all requests in flight at once) on one hot card, plus std::threads
// hammering wallets. The oracle checks invariants 1-3 (docs/CONTRACT.md, "Invariants") on the raw
// log.
#include <boost/test/unit_test.hpp>
#include <map>
#include <set>
#include <thread>

#include "projections/audit.h"
#include "shop_fixture.h"
#include "tests/support/log_oracle.h"

namespace giftcard::test {
namespace {

struct BuyerResult {
  std::vector<std::string> codes;
  std::map<Errc, int> errors;
};

struct BuyerDone {
  int id;
  BuyerResult result;
};

}  // namespace
}  // namespace giftcard::test

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(giftcard::test::BuyerDone)

namespace giftcard::test {
namespace {

// A buyer makes `attempts` purchases one after another and reports.
caf::behavior buyer(caf::event_based_actor* self, shop_actor shop, caf::actor report, int id,
                    std::string card, int attempts) {
  auto result = std::make_shared<BuyerResult>();
  // The behavior below owns the step function; the step refers to itself by a
  // raw pointer, so there is no reference cycle (LeakSanitizer would see one).
  auto owner = std::make_shared<std::function<void(int)>>();
  auto* next = owner.get();
  *next = [=](int i) {
    if (i == attempts) {
      self->send(report, BuyerDone{id, *result});
      self->quit();
      return;
    }
    self->request(shop, caf::infinite, purchase_atom::value, card, "buyer-" + std::to_string(id),
                  "key-" + std::to_string(i))
        .then(
            [=](Purchase& p) {
              result->codes.push_back(p.code);
              (*next)(i + 1);
            },
            [=](caf::error& e) {
              ++result->errors[errc_of(e)];
              (*next)(i + 1);
            });
  };
  (*next)(0);
  return {[owner](int) {}};  // stays alive until quit(); no other input
}

struct Outcome {
  std::set<std::string> codes;
  int64_t successes = 0;
  std::map<Errc, int> errors;
  std::map<int, int64_t> per_buyer;
};

Outcome run_buyers(ShopFixture& f, int buyers, int attempts, const std::string& card) {
  caf::scoped_actor self{f.sys()};
  Outcome out;
  for (int b = 0; b < buyers; ++b)
    f.sys().spawn(buyer, f.shop(), caf::actor{self}, b, card, attempts);
  for (int b = 0; b < buyers; ++b) {
    self->receive(
        [&](BuyerDone& d) {
          for (auto& c : d.result.codes) {
            BOOST_CHECK_MESSAGE(out.codes.insert(c).second, "code handed out twice: " << c);
          }
          out.successes += static_cast<int64_t>(d.result.codes.size());
          out.per_buyer[d.id] = static_cast<int64_t>(d.result.codes.size());
          for (auto& [e, n] : d.result.errors) out.errors[e] += n;
        },
        caf::after(std::chrono::seconds(120)) >> [&] { BOOST_FAIL("buyers did not finish"); });
  }
  return out;
}

void hot_card(ShopFixture::Backend backend, int codes, int64_t funded_purchases) {
  constexpr int kBuyers = 256;
  constexpr int kAttempts = 50;
  constexpr int64_t kPrice = 7;
  ShopFixture f(backend);
  BOOST_REQUIRE(f.create_card("hot", kPrice));
  for (int added = 0; added < codes; added += 5000)
    BOOST_REQUIRE(f.add_codes(
        "hot", ShopFixture::codes("H" + std::to_string(added), std::min(5000, codes - added))));
  for (int b = 0; b < kBuyers; ++b)
    BOOST_REQUIRE(f.credit("buyer-" + std::to_string(b), funded_purchases * kPrice, "fund"));

  Outcome out = run_buyers(f, kBuyers, kAttempts, "hot");

  int64_t affordable = kBuyers * funded_purchases;
  int64_t expected = std::min<int64_t>({codes, affordable, int64_t{kBuyers} * kAttempts});
  BOOST_TEST(out.successes == expected);
  BOOST_TEST(static_cast<int64_t>(out.codes.size()) == out.successes);
  for (auto& [e, n] : out.errors)
    BOOST_TEST((e == Errc::out_of_stock || e == Errc::insufficient_funds),
               "unexpected error " << to_string(e) << " x" << n);
  // Every balance exact, none negative.
  for (int b = 0; b < kBuyers; ++b) {
    auto w = f.wallet("buyer-" + std::to_string(b));
    BOOST_REQUIRE(w);
    BOOST_TEST(w->balance == (funded_purchases - out.per_buyer[b]) * kPrice);
    BOOST_TEST(w->balance >= 0);
  }
  auto view = f.card("hot");
  BOOST_TEST(view->assigned == out.successes);
  BOOST_TEST(view->available == codes - out.successes);
  auto report = check_log(f.store());
  BOOST_TEST(report.clean(), report.summary());
  BOOST_TEST(report.purchases == out.successes);
  // The product's own auditor agrees with the test's independent oracle.
  VerifyReport verified = verify_log(f.store());
  BOOST_TEST(verified.ok(), (verified.problems.empty() ? "" : verified.problems.front()));
  BOOST_TEST(verified.purchases == out.successes);
  for (auto& [code, owner] : report.code_owner) BOOST_TEST(out.codes.count(code) == 1u);
  BOOST_TEST_MESSAGE("hot card: " << out.successes << " purchases, store batches "
                                  << f.store()->Stats().batches << ", max requests per batch "
                                  << f.store()->Stats().max_batch_requests);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(concurrency)

// 256 buyers x 50 attempts on 10,000 codes, wallets funded for 30 each:
// affordable (7,680) < codes, so successes == affordable.
BOOST_AUTO_TEST_CASE(hot_card_limited_by_funds_rocks) {
  hot_card(ShopFixture::Backend::rocks, 10000, 30);
}

// Funded for 50 each (12,800 affordable) > 10,000 codes: out of stock wins.
BOOST_AUTO_TEST_CASE(hot_card_limited_by_codes_rocks) {
  hot_card(ShopFixture::Backend::rocks, 10000, 50);
}

BOOST_AUTO_TEST_CASE(hot_card_memory) { hot_card(ShopFixture::Backend::memory, 10000, 30); }

// std::threads crediting and buying on the same wallets at once: no lost
// update, no overdraft, balance_after always matches the fold.
BOOST_AUTO_TEST_CASE(wallet_credits_and_debits_race) {
  ShopFixture f(ShopFixture::Backend::rocks);
  BOOST_REQUIRE(f.create_card("gc", 3));
  BOOST_REQUIRE(f.add_codes("gc", ShopFixture::codes("W", 5000)));
  constexpr int kUsers = 4, kThreads = 8, kOps = 200;
  std::atomic<int64_t> credited{0}, bought{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < kOps; ++i) {
        std::string user = "w" + std::to_string((t + i) % kUsers);
        std::string key = "t" + std::to_string(t) + "-" + std::to_string(i);
        if (i % 3 == 0) {
          if (f.credit(user, 5, key)) credited += 5;
        } else if (f.purchase("gc", user, key)) {
          bought += 3;
        }
      }
    });
  for (auto& t : threads) t.join();
  int64_t total = 0;
  for (int u = 0; u < kUsers; ++u) {
    auto w = f.wallet("w" + std::to_string(u));
    BOOST_REQUIRE(w);
    BOOST_TEST(w->balance >= 0);
    total += w->balance;
  }
  BOOST_TEST(total == credited - bought);
  auto report = check_log(f.store());
  BOOST_TEST(report.clean(), report.summary());
  BOOST_TEST(verify_log(f.store()).ok());
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace giftcard::test
