// The projections under real concurrency, through the shop: rebuilds while
// buyers buy, snapshots recorded during a random workload equal a replay of
// the log to their position, a rebuild equals the live models.
#include <boost/test/unit_test.hpp>
#include <condition_variable>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "tests/actors/projection_query_fixture.h"

namespace giftcard::test {
namespace {

// A random workload from real threads: credits, purchases (some repeated
// with the same key) and revocations over shared users and cards.
struct Workload {
  int threads = 8;
  int ops = 60;  // per thread
  int users = 40;
  int cards = 4;
  int codes = 400;  // per card
  uint64_t seed = 1;
};

struct WorkloadResult {
  int64_t purchases = 0, replays = 0, credits = 0, revokes = 0;
  std::map<std::string, int> errors;  // expected domain refusals, by code
  std::vector<std::string> unexpected;
};

std::string card_of(int c) { return "wc" + std::to_string(c); }
std::string user_of(int u) { return "wu" + std::to_string(u); }

void setup_cards(ShopFixture& f, const Workload& w) {
  for (int c = 0; c < w.cards; ++c) {
    BOOST_REQUIRE(f.create_card(card_of(c), 10 + 7 * c));
    BOOST_REQUIRE(f.add_codes(card_of(c), ShopFixture::codes("WC" + std::to_string(c), w.codes)));
  }
}

WorkloadResult run_workload(ShopFixture& f, const Workload& w) {
  std::mutex mu;
  WorkloadResult total;
  std::vector<std::thread> threads;
  for (int t = 0; t < w.threads; ++t)
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(w.seed * 1000 + static_cast<uint64_t>(t));
      auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<uint64_t>(n)); };
      WorkloadResult r;
      std::vector<std::tuple<std::string, std::string, std::string>> done;  // card, user, key
      for (int i = 0; i < w.ops; ++i) {
        const std::string key = "s" + std::to_string(w.seed) + "t" + std::to_string(t) + "-" +
                                std::to_string(i);
        const std::string user = user_of(pick(w.users));
        const int kind = pick(100);
        caf::error e;
        if (kind < 30) {
          auto c = f.credit(user, 1 + pick(200), key);
          if (c) ++r.credits;
          else e = c.error();
        } else if (kind < 90 || done.empty()) {
          const std::string card = card_of(pick(w.cards));
          auto p = f.purchase(card, user, key);
          if (p) {
            ++r.purchases;
            done.emplace_back(card, user, key);
          } else {
            e = p.error();
          }
        } else if (kind < 96) {
          auto& [card, u, k] = done[static_cast<size_t>(pick(static_cast<int>(done.size())))];
          auto p = f.purchase(card, u, k);
          if (p && p->replayed) ++r.replays;
          else if (p) r.unexpected.push_back("repeat of " + k + " was not a replay");
          else e = p.error();
        } else {
          const int c = pick(w.cards);
          char buf[16];
          std::snprintf(buf, sizeof buf, "-%06d", 1 + pick(w.codes));
          auto v = f.revoke(card_of(c), "WC" + std::to_string(c) + buf);
          if (v) ++r.revokes;
          else e = v.error();
        }
        if (e) {
          Errc code = errc_of(e);
          if (code == Errc::insufficient_funds || code == Errc::out_of_stock ||
              code == Errc::code_not_available)
            ++r.errors[std::string(to_string(code))];
          else r.unexpected.push_back(std::string(to_string(code)) + ": " + detail_of(e));
        }
      }
      std::lock_guard l(mu);
      total.purchases += r.purchases;
      total.replays += r.replays;
      total.credits += r.credits;
      total.revokes += r.revokes;
      for (auto& [k, n] : r.errors) total.errors[k] += n;
      for (auto& u : r.unexpected) total.unexpected.push_back(u);
    });
  for (auto& t : threads) t.join();
  return total;
}

void check_workload(const WorkloadResult& r) {
  for (const auto& u : r.unexpected) BOOST_ERROR("unexpected: " << u);
  BOOST_TEST(r.purchases > 0);
  BOOST_TEST(r.credits > 0);
  std::ostringstream o;
  o << r.purchases << " purchases, " << r.replays << " replays, " << r.credits << " credits, "
    << r.revokes << " revocations";
  for (auto& [k, n] : r.errors) o << ", " << n << " " << k;
  BOOST_TEST_MESSAGE("workload: " << o.str());
}

}  // namespace

BOOST_AUTO_TEST_SUITE(projection_rebuild)

// Rebuilds through the front door while 40 buyer threads purchase: every
// buyer reads its own writes across the swaps, and afterwards the models
// equal a fold of the whole log and status reports the last generation.
BOOST_AUTO_TEST_CASE(rebuild_while_buyers_buy) {
  ShopFixture f(Backend::rocks);
  constexpr int kBuyers = 40, kPurchases = 25, kCards = 4;
  for (int c = 0; c < kCards; ++c) {
    BOOST_REQUIRE(f.create_card("rc" + std::to_string(c), 5 + c));
    BOOST_REQUIRE(f.add_codes("rc" + std::to_string(c),
                              ShopFixture::codes("RC" + std::to_string(c), kBuyers * kPurchases)));
  }
  for (int b = 0; b < kBuyers; ++b)
    BOOST_REQUIRE(f.credit("rb" + std::to_string(b), 100000, "fund"));

  std::atomic<int> running{kBuyers};
  std::vector<std::vector<std::string>> problems(kBuyers);
  std::vector<std::vector<Purchase>> bought(kBuyers);
  std::vector<std::thread> buyers;
  for (int b = 0; b < kBuyers; ++b)
    buyers.emplace_back([&, b] {
      const std::string user = "rb" + std::to_string(b);
      int64_t balance = 100000;
      for (int i = 0; i < kPurchases; ++i) {
        auto p = f.purchase("rc" + std::to_string((b + i) % kCards), user, "k" + std::to_string(i));
        if (!p) {
          problems[b].push_back("purchase: " + what(p));
          continue;
        }
        balance -= p->price;
        bought[b].push_back(*p);
        // Read-your-writes across generation swaps.
        auto w = f.wallet(user, p->position + 1);
        if (!w) problems[b].push_back("wallet: " + what(w));
        else if (w->balance != balance)
          problems[b].push_back("balance " + std::to_string(w->balance) +
                                " != " + std::to_string(balance));
        auto l = f.lookup(p->purchase_id, p->position);
        if (!l || !same_purchase(*l, *p))
          problems[b].push_back("lookup of " + p->purchase_id + ": " + what(l));
      }
      --running;
    });

  // Rebuild again and again while they buy.
  std::vector<RebuildInfo> rebuilds;
  int during = 0;
  while (running.load() > 0 || rebuilds.size() < 2) {
    const int64_t before = f.store()->LastPosition();
    const bool buying = running.load() > 0;
    auto r = rebuild(f);
    BOOST_REQUIRE_MESSAGE(r, what(r));
    BOOST_REQUIRE_EQUAL(r->generation, static_cast<int64_t>(rebuilds.size()) + 2);
    BOOST_REQUIRE_GE(r->position, before);
    if (buying && running.load() > 0 && f.store()->LastPosition() > before) ++during;
    rebuilds.push_back(*r);
  }
  for (auto& t : buyers) t.join();
  for (int b = 0; b < kBuyers; ++b)
    for (const auto& p : problems[b]) BOOST_ERROR("buyer " << b << ": " << p);
  BOOST_TEST_MESSAGE(rebuilds.size() << " rebuilds, " << during << " of them while the log grew");
  BOOST_TEST(during >= 1);

  await_head(f);
  const ReadModels live = load(f.projections());
  CHECK_MODELS_EQUAL(live, fold_log(f.store()));
  int64_t total = 0;
  for (const auto& v : bought) total += static_cast<int64_t>(v.size());
  BOOST_TEST(total == kBuyers * kPurchases);
  BOOST_TEST(static_cast<int64_t>(live.purchases.size()) == total);
  auto st = status(f);
  BOOST_REQUIRE(st);
  BOOST_TEST(st->generation == static_cast<int64_t>(rebuilds.size()) + 1);
  BOOST_TEST(st->generation == static_cast<int64_t>(f.projections().generation()));
  BOOST_TEST(st->log_position == f.store()->LastPosition());
  BOOST_TEST(st->projection_position == st->log_position);
  check_oracle(f);
}

// Snapshots of the projections recorded while a random concurrent workload
// runs each equal a replay of the log to exactly their position (100 of
// them, picked at random).
void replay_to_random_positions(Backend backend) {
  ShopFixture f(backend);
  Workload w;
  w.threads = 16;
  w.ops = 300;
  w.codes = 3000;
  setup_cards(f, w);

  std::atomic<bool> stop{false};
  std::mutex mu;
  std::map<int64_t, ReadModels> recorded;  // GUARDED_BY(mu)
  int64_t loads = 0, mismatched_repeats = 0, ahead_of_log = 0;
  std::thread recorder([&] {
    std::mt19937_64 rng(99);
    constexpr size_t kKeep = 120;
    while (!stop.load()) {
      ReadModels m;
      if (!f.projections().LoadAll(&m).ok()) continue;
      ++loads;
      if (m.position > f.store()->LastPosition()) ++ahead_of_log;
      std::lock_guard l(mu);
      auto it = recorded.find(m.position);
      if (it != recorded.end()) {
        if (!(it->second == m)) ++mismatched_repeats;  // same position, other models
        continue;
      }
      if (recorded.size() >= kKeep) {  // keep a random sample of bounded size
        if (rng() % 4 != 0) continue;
        auto victim = recorded.begin();
        std::advance(victim, static_cast<long>(rng() % recorded.size()));
        recorded.erase(victim);
      }
      recorded.emplace(m.position, std::move(m));
    }
  });
  // Phases of the workload until 100 distinct positions are recorded (the
  // recorder shares 2 cores with 16 client threads and the actors).
  WorkloadResult r;
  for (int phase = 0; phase < 4; ++phase) {
    w.seed = (backend == Backend::rocks ? 17 : 5) + static_cast<uint64_t>(phase);
    WorkloadResult p = run_workload(f, w);
    for (auto& u : p.unexpected) r.unexpected.push_back(u);
    r.purchases += p.purchases;
    r.credits += p.credits;
    r.replays += p.replays;
    r.revokes += p.revokes;
    for (auto& [k, n] : p.errors) r.errors[k] += n;
    std::lock_guard l(mu);
    if (recorded.size() >= 100) break;
  }
  await_head(f);
  stop = true;
  recorder.join();
  check_workload(r);
  BOOST_TEST(mismatched_repeats == 0);
  BOOST_TEST(ahead_of_log == 0);

  std::vector<int64_t> positions;
  for (const auto& [p, m] : recorded) positions.push_back(p);
  BOOST_TEST_MESSAGE(loads << " snapshots taken, " << positions.size()
                           << " distinct positions kept, log at " << f.store()->LastPosition());
  BOOST_REQUIRE_GE(positions.size(), 50u);
  std::mt19937_64 rng(backend == Backend::rocks ? 3 : 4);
  std::shuffle(positions.begin(), positions.end(), rng);
  positions.resize(std::min<size_t>(positions.size(), 100));
  std::sort(positions.begin(), positions.end());
  // One incremental replay, compared at each picked position.
  ReadModels m;
  std::vector<StoredEvent> batch;
  for (int64_t p : positions) {
    while (m.position < p) {
      BOOST_REQUIRE(
          f.store()->ReadAll(m.position + 1, static_cast<size_t>(p - m.position), &batch).ok());
      BOOST_REQUIRE(!batch.empty());
      for (const auto& e : batch) BOOST_REQUIRE(apply(m, e).ok());
    }
    BOOST_REQUIRE_EQUAL(m.position, p);
    BOOST_TEST((recorded.at(p) == m),
               "at position " << p << ": " << first_difference(recorded.at(p), m));
  }
  CHECK_MODELS_EQUAL(load(f.projections()), fold_log(f.store()));
  check_oracle(f);
}
BOOST_AUTO_TEST_CASE(replay_to_random_positions_memory) {
  replay_to_random_positions(Backend::memory);
}
BOOST_AUTO_TEST_CASE(replay_to_random_positions_rocks) {
  replay_to_random_positions(Backend::rocks);
}

// After a random concurrent workload, a rebuild equals the live projections
// exactly, and both equal the fold of the log; the queries answer the same.
void rebuild_equals_live(Backend backend) {
  ShopFixture f(backend);
  Workload w;
  w.seed = backend == Backend::rocks ? 23 : 29;
  w.threads = 16;
  w.ops = 80;
  setup_cards(f, w);
  WorkloadResult r = run_workload(f, w);
  check_workload(r);
  await_head(f);
  const ReadModels live = load(f.projections());
  const int64_t head = f.store()->LastPosition();
  BOOST_REQUIRE_EQUAL(live.position, head);
  auto cards_before = cards(f, head);
  BOOST_REQUIRE(cards_before);

  auto info = rebuild(f);
  BOOST_REQUIRE_MESSAGE(info, what(info));
  BOOST_TEST(info->generation == 2);
  BOOST_TEST(info->position == head);
  BOOST_TEST(info->events == head);
  const ReadModels rebuilt = load(f.projections());
  CHECK_MODELS_EQUAL(rebuilt, live);
  CHECK_MODELS_EQUAL(rebuilt, fold_log(f.store()));
  auto st = status(f);
  BOOST_REQUIRE(st);
  BOOST_TEST(st->generation == 2);

  // The front door answers from the new generation, the same as before.
  auto cards_after = cards(f, head);
  BOOST_REQUIRE(cards_after);
  BOOST_REQUIRE_EQUAL(cards_after->size(), cards_before->size());
  for (size_t i = 0; i < cards_after->size(); ++i)
    BOOST_TEST(show((*cards_after)[i]) == show((*cards_before)[i]));
  for (const auto& [user, balance] : live.balances) {
    auto wv = f.wallet(user, head);
    BOOST_REQUIRE(wv);
    BOOST_TEST(wv->balance == balance, user);
  }
  for (const auto& [user, ids] : live.user_purchases) {
    auto h = f.history(user, head);
    BOOST_REQUIRE(h);
    BOOST_REQUIRE_EQUAL(h->size(), ids.size());
    for (size_t i = 0; i < ids.size(); ++i) BOOST_TEST((*h)[i].purchase_id == ids[i]);
  }
  BOOST_TEST(static_cast<int64_t>(live.purchases.size()) == r.purchases);
  check_oracle(f);
}
BOOST_AUTO_TEST_CASE(rebuild_equals_live_memory) { rebuild_equals_live(Backend::memory); }
BOOST_AUTO_TEST_CASE(rebuild_equals_live_rocks) { rebuild_equals_live(Backend::rocks); }

BOOST_AUTO_TEST_SUITE_END()

}  // namespace giftcard::test
