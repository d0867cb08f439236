// Queries through the shop's front door (card, cards, wallet, lookup,
// history, status, rebuild), answered from the persisted projections with a
// minimum log position `after`; and the projections under real concurrency:
// rebuilds while buyers buy, snapshots recorded during a random workload equal
// a replay of the log to their position, a rebuild equals the live models.
#include <boost/test/unit_test.hpp>
#include <condition_variable>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "tests/support/log_oracle.h"
#include "projections/audit.h"
#include "projections/read_models.h"
#include "shop_fixture.h"

namespace giftcard::test {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;
using Backend = ShopFixture::Backend;


// A request with arguments exactly as given (the fixture's query helpers
// turn a negative `after` into the log head).
template <class R, class... Ts>
caf::expected<R> ask(ShopFixture& f, Ts&&... xs) {
  caf::scoped_actor self{f.sys()};
  caf::expected<R> out{make_error(Errc::unavailable, "no reply")};
  self->request(f.shop(), std::chrono::seconds(60), std::forward<Ts>(xs)...)
      .receive([&](R& r) { out = std::move(r); }, [&](caf::error& e) { out = std::move(e); });
  return out;
}

caf::expected<ShopStatus> status(ShopFixture& f) { return ask<ShopStatus>(f, status_atom::value); }
caf::expected<RebuildInfo> rebuild(ShopFixture& f) { return ask<RebuildInfo>(f, rebuild_atom::value); }
// Every card, page by page, each page asked with exactly this `after`.
caf::expected<std::vector<CardInfo>> cards(ShopFixture& f, int64_t after) {
  std::vector<CardInfo> out;
  for (std::string from;;) {
    auto page = ask<CardPage>(f, cards_atom::value, from, kMaxPageLimit, after);
    if (!page) return std::move(page.error());
    for (auto& c : page->cards) out.push_back(std::move(c));
    if (page->next.empty()) return out;
    from = page->next;
  }
}
caf::expected<PurchasePage> history(ShopFixture& f, const std::string& user, int64_t after) {
  return ask<PurchasePage>(f, history_atom::value, user, int64_t{0}, kMaxPageLimit, after);
}

std::string show(const Purchase& p) {
  std::ostringstream o;
  o << "{" << p.purchase_id << " card=" << p.card_id << " user=" << p.user_id << " code=" << p.code
    << " price=" << p.price << " at=" << p.purchased_at << " pos=" << p.position << "}";
  return o.str();
}
std::string show(const CardInfo& c) {
  std::ostringstream o;
  o << "{" << c.id << " '" << c.name << "' price=" << c.price << " value=" << c.value
    << " available=" << c.available << " assigned=" << c.assigned << " expired=" << c.expired
    << " revoked=" << c.revoked << "}";
  return o.str();
}
std::string show(const CardView& c) {
  return show(CardInfo{c.id, c.name, c.price, c.value, c.available, c.assigned, c.expired, c.revoked, 0}) +
         " sold=" + std::to_string(c.sold) + " revenue=" + std::to_string(c.revenue);
}
std::string show(const PurchaseView& p) {
  return show(Purchase{p.purchase_id, p.card_id, p.user_id, p.code, p.price, p.purchased_at, p.position, false});
}

// The pure fold of the log up to `up_to`.
ReadModels fold_log(EventStore* s, int64_t up_to = INT64_MAX) {
  ReadModels m;
  std::vector<StoredEvent> batch;
  while (m.position < up_to) {
    size_t want = static_cast<size_t>(std::min<int64_t>(8192, up_to - m.position));
    Status st = s->ReadAll(m.position + 1, want, &batch);
    BOOST_REQUIRE_MESSAGE(st.ok(), st.ToString());
    if (batch.empty()) break;
    for (const auto& e : batch) BOOST_REQUIRE(apply(m, e).ok());
  }
  return m;
}

ReadModels load(ProjectionDb& db) {
  ReadModels m;
  Status st = db.LoadAll(&m);
  BOOST_REQUIRE_MESSAGE(st.ok(), st.ToString());
  return m;
}

// The first difference between two model sets, for failure messages.
std::string diff(const ReadModels& a, const ReadModels& b) {
  std::ostringstream o;
  if (a.position != b.position) o << "position " << a.position << " != " << b.position << "; ";
  if (a.recorded_at != b.recorded_at) o << "recorded_at differs; ";
  auto keys_diff = [&](const char* name, const auto& x, const auto& y, auto&& fmt) {
    for (const auto& [k, v] : x) {
      auto it = y.find(k);
      if (it == y.end()) {
        o << name << " " << k << " only on the left; ";
        return;
      }
      if (!(it->second == v)) {
        o << name << " " << k << ": " << fmt(v) << " != " << fmt(it->second) << "; ";
        return;
      }
    }
    for (const auto& [k, v] : y)
      if (!x.count(k)) {
        o << name << " " << k << " only on the right; ";
        return;
      }
  };
  keys_diff("balance", a.balances, b.balances, [](int64_t v) { return std::to_string(v); });
  keys_diff("card", a.cards, b.cards, [](const CardView& c) { return show(c); });
  keys_diff("purchase", a.purchases, b.purchases, [](const PurchaseView& p) { return show(p); });
  keys_diff("user_purchases", a.user_purchases, b.user_purchases,
            [](const std::vector<std::string>& v) { return std::to_string(v.size()) + " ids"; });
  std::string s = o.str();
  return s.empty() ? "equal" : s;
}

#define CHECK_MODELS_EQUAL(a, b) BOOST_TEST(((a) == (b)), "models differ: " << diff((a), (b)))

// Waits (really: ProjectionDb::WaitFor) until the projections include the
// log's head.
void await_head(ShopFixture& f) {
  const int64_t head = f.store()->LastPosition();
  BOOST_REQUIRE_MESSAGE(f.projections().WaitFor(head, milliseconds(60000)),
                        "projections stuck at " << f.projections().position() << " of " << head);
}

void check_oracle(ShopFixture& f) {
  OracleReport r = check_log(f.store());
  BOOST_TEST(r.clean(), r.summary());
  VerifyReport v = verify_log(f.store());
  BOOST_TEST(v.ok(), (v.problems.empty() ? "" : v.problems.front()));
}

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
        const std::string key =
            "s" + std::to_string(w.seed) + "t" + std::to_string(t) + "-" + std::to_string(i);
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
          else
            r.unexpected.push_back(std::string(to_string(code)) + ": " + detail_of(e));
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

bool same(const Purchase& a, const Purchase& b) {
  return a.purchase_id == b.purchase_id && a.card_id == b.card_id && a.user_id == b.user_id &&
         a.code == b.code && a.price == b.price && a.purchased_at == b.purchased_at &&
         a.position == b.position;
}

}  // namespace

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
  for (auto [card, user, key] : std::vector<std::tuple<const char*, const char*, const char*>>{
           {"c1", "alice", "k1"}, {"c2", "bob", "k1"}, {"c2", "alice", "k2"},
           {"c1", "alice", "k3"}, {"c1", "bob", "k2"}}) {
    auto p = f.purchase(card, user, key);
    BOOST_REQUIRE_MESSAGE(p, what(p));
    BOOST_TEST(!p->replayed);
    bought.push_back(*p);
  }
  auto again = f.purchase("c1", "alice", "k1");
  BOOST_REQUIRE(again);
  BOOST_TEST(again->replayed);
  BOOST_TEST(same(*again, bought[0]));
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
BOOST_AUTO_TEST_CASE(queries_answer_what_was_done_memory) { queries_answer_what_was_done(Backend::memory); }
BOOST_AUTO_TEST_CASE(queries_answer_what_was_done_rocks) { queries_answer_what_was_done(Backend::rocks); }

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
      BOOST_REQUIRE(same(*l, *p));
      auto h = history(f, "ryw", p->position + 1);
      BOOST_REQUIRE(h);
      BOOST_REQUIRE(!h->purchases.empty());
      BOOST_REQUIRE(same(h->purchases.back(), *p));
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
      BOOST_TEST(err(ask<Purchase>(f, lookup_atom::value, std::string("p_x"), bad)) == Errc::invalid_request);
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
    bulk.events.push_back(PendingEvent::of(wallet_stream(user), WalletCredited{user, 1, 1 + i / kUsers, "b"}));
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
                                             << "; the whole catch-up took " << full.count() << " ms");
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

BOOST_AUTO_TEST_SUITE(projection_rebuild)

// Rebuilds through the front door while 40 buyer threads purchase: every
// buyer reads its own writes across the swaps, and afterwards the models
// equal a fold of the whole log and status reports the last generation.
BOOST_AUTO_TEST_CASE(rebuild_while_buyers_buy) {
  ShopFixture f(Backend::rocks);
  constexpr int kBuyers = 40, kPurchases = 25, kCards = 4;
  for (int c = 0; c < kCards; ++c) {
    BOOST_REQUIRE(f.create_card("rc" + std::to_string(c), 5 + c));
    BOOST_REQUIRE(f.add_codes("rc" + std::to_string(c), ShopFixture::codes("RC" + std::to_string(c), kBuyers * kPurchases)));
  }
  for (int b = 0; b < kBuyers; ++b) BOOST_REQUIRE(f.credit("rb" + std::to_string(b), 100000, "fund"));

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
          problems[b].push_back("balance " + std::to_string(w->balance) + " != " + std::to_string(balance));
        auto l = f.lookup(p->purchase_id, p->position);
        if (!l || !same(*l, *p)) problems[b].push_back("lookup of " + p->purchase_id + ": " + what(l));
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
  BOOST_TEST_MESSAGE(loads << " snapshots taken, " << positions.size() << " distinct positions kept, log at "
                           << f.store()->LastPosition());
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
      BOOST_REQUIRE(f.store()->ReadAll(m.position + 1, static_cast<size_t>(p - m.position), &batch).ok());
      BOOST_REQUIRE(!batch.empty());
      for (const auto& e : batch) BOOST_REQUIRE(apply(m, e).ok());
    }
    BOOST_REQUIRE_EQUAL(m.position, p);
    BOOST_TEST((recorded.at(p) == m), "at position " << p << ": " << diff(recorded.at(p), m));
  }
  CHECK_MODELS_EQUAL(load(f.projections()), fold_log(f.store()));
  check_oracle(f);
}
BOOST_AUTO_TEST_CASE(replay_to_random_positions_memory) { replay_to_random_positions(Backend::memory); }
BOOST_AUTO_TEST_CASE(replay_to_random_positions_rocks) { replay_to_random_positions(Backend::rocks); }

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
