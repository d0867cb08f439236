// The query pool (actors/query_pool.h) on its own, the shop's queries on it
// (never on the shop actor: a blocked pool leaves commands and status
// answering; a full pool answers busy at once; a query the shop has not
// answered when it exits hears "shutting down"), and paged queries through
// the shop's front door (cards_atom, history_atom: cursors, boundaries, limit
// errors).
#include <algorithm>
#include <atomic>
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <future>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "actors/query_pool.h"
#include "projections/projection_db.h"
#include "shop_fixture.h"
#include "store/memory_event_store.h"

namespace giftcard::test {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using Backend = ShopFixture::Backend;

// Polls `cond` every millisecond for up to `limit`.
template <class F>
bool eventually(F cond, std::chrono::milliseconds limit = 10s) {
  auto deadline = Clock::now() + limit;
  while (!cond()) {
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

// A gate a pool job can be parked on until the test opens it.
class Gate {
 public:
  void wait() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return open_; });
  }
  void open() {
    {
      std::lock_guard lock(mu_);
      open_ = true;
    }
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
};

// Occupies every thread of `pool` with a job parked on `gate`; true once
// all of them run.
bool occupy(QueryPool& pool, Gate& gate) {
  for (size_t i = 0; i < pool.threads(); ++i)
    if (!pool.try_post([&gate] { gate.wait(); })) return false;
  return eventually([&] { return pool.running() == pool.threads() && pool.queued() == 0; });
}

}  // namespace

BOOST_AUTO_TEST_SUITE(query_pool)

// Every job runs, on the pool's own threads, at most `threads` at a time.
BOOST_AUTO_TEST_CASE(runs_every_job_on_its_threads) {
  QueryPool pool(3, 10000);
  BOOST_TEST(pool.threads() == 3u);
  std::mutex mu;
  std::set<std::thread::id> ran_on;
  std::atomic<int> done{0}, now{0}, most{0};
  for (int i = 0; i < 2000; ++i)
    BOOST_REQUIRE(pool.try_post([&] {
      int n = ++now;
      for (int m = most.load(); n > m && !most.compare_exchange_weak(m, n);) {
      }
      {
        std::lock_guard lock(mu);
        ran_on.insert(std::this_thread::get_id());
      }
      --now;
      ++done;
    }));
  BOOST_REQUIRE(eventually([&] { return done.load() == 2000; }));
  BOOST_TEST(most.load() <= 3);
  BOOST_TEST(ran_on.size() <= 3u);
  BOOST_TEST(!ran_on.count(std::this_thread::get_id()));
  BOOST_REQUIRE(eventually([&] { return pool.completed() == 2000u; }));
  BOOST_TEST(pool.refused() == 0u);
  BOOST_TEST(pool.queued() == 0u);
}

// Bounded: with every thread busy, max_queued jobs wait and the next is
// refused (and counted) at once; as the threads free up, jobs are taken again.
BOOST_AUTO_TEST_CASE(refuses_beyond_max_queued) {
  QueryPool pool(1, 2);
  Gate gate;
  BOOST_REQUIRE(occupy(pool, gate));
  std::atomic<int> ran{0};
  BOOST_TEST(pool.try_post([&] { ++ran; }));
  BOOST_TEST(pool.try_post([&] { ++ran; }));
  BOOST_TEST(pool.queued() == 2u);
  auto t0 = Clock::now();
  BOOST_TEST(!pool.try_post([&] { ++ran; }));
  BOOST_TEST(!pool.try_post([&] { ++ran; }));
  BOOST_TEST((Clock::now() - t0 < 1s));
  BOOST_TEST(pool.refused() == 2u);
  BOOST_TEST(pool.queued() == 2u);
  gate.open();
  BOOST_REQUIRE(eventually([&] { return ran.load() == 2; }));
  BOOST_TEST(pool.try_post([&] { ++ran; }));
  BOOST_REQUIRE(eventually([&] { return ran.load() == 3; }));
  BOOST_TEST(pool.refused() == 2u);
  // Degenerate sizes are taken as 1.
  QueryPool tiny(0, 0);
  BOOST_TEST(tiny.threads() == 1u);
  BOOST_TEST(tiny.max_queued() == 1u);
}

// stop(): the running job finishes, queued jobs are dropped (destroyed, not
// run), later posts are refused, the threads are joined; stop() again is a
// no-op. A job that throws does not take its thread down.
BOOST_AUTO_TEST_CASE(stop_finishes_running_and_drops_queued) {
  auto pool = std::make_unique<QueryPool>(1, 8);
  BOOST_TEST(pool->try_post([] { throw std::runtime_error("a bad job"); }));
  std::atomic<bool> after_throw{false};
  BOOST_TEST(pool->try_post([&] { after_throw = true; }));
  BOOST_REQUIRE(eventually([&] { return after_throw.load(); }));

  Gate gate;
  std::atomic<bool> running_finished{false};
  BOOST_REQUIRE(pool->try_post([&] {
    gate.wait();
    running_finished = true;
  }));
  BOOST_REQUIRE(eventually([&] { return pool->running() == 1u; }));
  auto token = std::make_shared<int>(0);
  std::weak_ptr<int> dropped_capture = token;
  std::atomic<int> queued_ran{0};
  for (int i = 0; i < 5; ++i) BOOST_REQUIRE(pool->try_post([&queued_ran, token] { ++queued_ran; }));
  token.reset();
  BOOST_TEST(pool->queued() == 5u);
  auto stopper = std::async(std::launch::async, [&] { pool->stop(); });
  BOOST_REQUIRE(eventually([&] { return pool->stopped(); }));
  // The queued jobs are gone (their captures destroyed) before the running one ends.
  BOOST_REQUIRE(eventually([&] { return dropped_capture.expired(); }));
  BOOST_TEST(pool->queued() == 0u);
  BOOST_TEST(!pool->try_post([] {}));
  BOOST_TEST((stopper.wait_for(50ms) == std::future_status::timeout));  // joining the running job
  gate.open();
  BOOST_REQUIRE((stopper.wait_for(10s) == std::future_status::ready));
  BOOST_TEST(running_finished.load());
  BOOST_TEST(queued_ran.load() == 0);
  pool->stop();
  pool.reset();
}

// The shop's queries run on the pool: with its only thread parked, a query
// waits there while the shop goes on answering commands and status; once the
// thread is free the query answers, with what the commands did before it.
BOOST_AUTO_TEST_CASE(queries_wait_on_the_pool_not_on_the_shop) {
  ShopConfig cfg;
  cfg.query_threads = 1;
  cfg.max_queued_queries = 16;
  ShopFixture f(Backend::memory, {}, cfg);
  BOOST_REQUIRE(f.credit("ann", 500, "k0"));
  Gate gate;
  BOOST_REQUIRE(occupy(f.queries(), gate));
  const int64_t at = f.store()->LastPosition();
  auto wallet = std::async(std::launch::async, [&] { return f.wallet("ann", at); });
  BOOST_REQUIRE(eventually([&] { return f.queries().queued() == 1u; }));
  // The shop itself is free: commands go through while the query waits.
  for (int i = 1; i <= 20; ++i) BOOST_REQUIRE(f.credit("ann", 1, "k" + std::to_string(i)));
  BOOST_REQUIRE(f.create_card("gc", 10));
  caf::scoped_actor self{f.sys()};
  bool status_ok = false;
  self->request(f.shop(), 10s, status_atom::value)
      .receive([&](ShopStatus&) { status_ok = true; }, [&](caf::error&) {});
  BOOST_TEST(status_ok);
  BOOST_TEST((wallet.wait_for(0ms) == std::future_status::timeout));
  gate.open();
  auto w = wallet.get();
  BOOST_REQUIRE_MESSAGE(w, what(w));
  BOOST_TEST(w->balance >= 500);
  BOOST_TEST(w->position >= at);
  auto now = f.wallet("ann");
  BOOST_REQUIRE(now);
  BOOST_TEST(now->balance == 520);
}

// A full pool: every query kind answers busy at once (not after a wait), the
// refusals are counted, commands still work, and once the pool drains the
// same queries answer.
BOOST_AUTO_TEST_CASE(a_full_pool_answers_busy) {
  ShopConfig cfg;
  cfg.query_threads = 1;
  cfg.max_queued_queries = 1;
  ShopFixture f(Backend::memory, {}, cfg);
  BOOST_REQUIRE(f.create_card("gc", 10));
  BOOST_REQUIRE(f.add_codes("gc", ShopFixture::codes("GC", 5)));
  BOOST_REQUIRE(f.credit("ann", 100, "k"));
  auto p = f.purchase("gc", "ann", "p1");
  BOOST_REQUIRE_MESSAGE(p, what(p));
  Gate gate;
  BOOST_REQUIRE(occupy(f.queries(), gate));
  BOOST_REQUIRE(f.queries().try_post([] {}));  // the one waiting place taken
  BOOST_REQUIRE(f.queries().queued() == 1u);
  const uint64_t refused0 = f.queries().refused();
  auto t0 = Clock::now();
  auto c = f.card("gc");
  BOOST_TEST(err(c) == Errc::busy, what(c));
  if (!c) BOOST_TEST(detail_of(c.error()) == "too many queries in progress; retry later");
  BOOST_TEST(err(f.cards_page("", 10)) == Errc::busy);
  BOOST_TEST(err(f.wallet("ann")) == Errc::busy);
  BOOST_TEST(err(f.lookup(p->purchase_id)) == Errc::busy);
  BOOST_TEST(err(f.history_page("ann", 0, 10)) == Errc::busy);
  BOOST_TEST((Clock::now() - t0 < 5s));
  BOOST_TEST(f.queries().refused() == refused0 + 5);
  // Bad arguments are still refused as such, before the pool is asked.
  BOOST_TEST(err(f.history_page("ann", 0, 0)) == Errc::invalid_request);
  BOOST_TEST(f.queries().refused() == refused0 + 5);
  // Commands do not need the pool.
  BOOST_REQUIRE(f.credit("ann", 5, "k2"));
  gate.open();
  BOOST_REQUIRE(
      eventually([&] { return f.queries().queued() == 0u && f.queries().running() == 0u; }));
  auto c2 = f.card("gc");
  BOOST_REQUIRE_MESSAGE(c2, what(c2));
  BOOST_TEST(c2->assigned == 1);
  auto h = f.history_page("ann", 0, 10);
  BOOST_REQUIRE_MESSAGE(h, what(h));
  BOOST_REQUIRE_EQUAL(h->purchases.size(), 1u);
  BOOST_TEST(h->purchases[0].purchase_id == p->purchase_id);
}

// A query still on the pool when the shop exits is answered "shutting down"
// (not left to time out), and stopping the fixture's pool drops it.
//
// stop() runs on this thread: CAF 0.17.6's ~actor_system waits for its
// logger, which every live thread that made a scoped_actor holds a reference
// to (a thread-local), so the system must go on the thread that used it.
BOOST_AUTO_TEST_CASE(exit_answers_queries_in_flight) {
  ShopConfig cfg;
  cfg.query_threads = 1;
  cfg.max_queued_queries = 4;
  ShopFixture f(Backend::memory, std::string{}, cfg);
  BOOST_REQUIRE(f.credit("ann", 7, "k"));
  Gate gate;
  BOOST_REQUIRE(occupy(f.queries(), gate));
  auto wallet = std::async(std::launch::async, [&] { return f.wallet("ann"); });
  if (!eventually([&] { return f.queries().queued() == 1u; })) {
    gate.open();
    BOOST_FAIL("the query never reached the pool");
  }
  // Opens the gate once the query is answered (or after 20 s), so that
  // stop() below can join the pool.
  std::atomic<int64_t> answered_ms{-1};
  auto opener = std::async(std::launch::async, [&] {
    auto t0 = Clock::now();
    if (wallet.wait_for(20s) == std::future_status::ready)
      answered_ms =
          std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
    gate.open();
  });
  f.stop();  // drain, exit (the shop answers what it has not), stop the pool
  opener.get();
  BOOST_REQUIRE_MESSAGE(answered_ms.load() >= 0, "the query was not answered within 20 s");
  BOOST_TEST(answered_ms.load() < 9000);  // not the fixture's 10 s request timeout
  auto w = wallet.get();
  BOOST_TEST(err(w) == Errc::unavailable, what(w));
  if (!w) BOOST_TEST(detail_of(w.error()) == "the shop is shutting down");
}

// With no pool in the context the shop makes its own from the config.
BOOST_AUTO_TEST_CASE(the_shop_makes_its_own_pool_if_none_is_given) {
  auto store = NewMemoryEventStore();
  std::unique_ptr<ProjectionDb> db;
  BOOST_REQUIRE(ProjectionDb::Open(store.get(), &db).ok());
  ShopContext ctx;
  ctx.store = store.get();
  ctx.projections = db.get();
  ctx.config.query_threads = 1;
  {
    caf::actor_system_config cfg;
    register_message_types(cfg);
    cfg.set("logger.console", caf::atom("none"));
    caf::actor_system sys{cfg};
    auto shop = spawn_shop(sys, &ctx);
    caf::scoped_actor self{sys};
    bool ok = false;
    self->request(shop, 10s, create_atom::value, CardSpec{"gc", "Card", 5, 5})
        .receive([&](CardInfo&) { ok = true; }, [&](caf::error&) {});
    BOOST_REQUIRE(ok);
    const int64_t at = store->LastPosition();
    CardPage page;
    self->request(shop, 10s, cards_atom::value, std::string(), int64_t{10}, at)
        .receive([&](CardPage& p) { page = std::move(p); },
                 [&](caf::error& e) { BOOST_FAIL("cards: " << to_string(errc_of(e))); });
    BOOST_REQUIRE_EQUAL(page.cards.size(), 1u);
    BOOST_TEST(page.cards[0].id == "gc");
    BOOST_TEST(page.next.empty());
    self->request(shop, 30s, DrainMsg{}).receive([](bool) {}, [](caf::error&) {});
    self->send_exit(shop, caf::exit_reason::user_shutdown);
  }
  store->Close();
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(query_paging)

// GET-style card pages: id order from `from` on, `next` the first id not
// returned ("" at the end), every card exactly once over a chain of pages.
BOOST_AUTO_TEST_CASE(card_pages) {
  ShopFixture f;
  std::vector<std::string> ids;
  for (int i = 0; i < 25; ++i) {
    char id[16];
    std::snprintf(id, sizeof id, "c%02d", i);
    ids.push_back(id);
  }
  ids.push_back("C-upper");  // byte order: 'C' < 'c'
  ids.push_back("c05_b");
  std::sort(ids.begin(), ids.end());
  for (const auto& id : ids) BOOST_REQUIRE(f.create_card(id, 10));
  const int64_t head = f.store()->LastPosition();
  const int64_t n = static_cast<int64_t>(ids.size());

  for (int64_t limit : {int64_t{1}, int64_t{2}, int64_t{10}, n - 1, n, n + 1, kMaxPageLimit}) {
    BOOST_TEST_CONTEXT("limit " << limit) {
      std::vector<std::string> got;
      std::string from;
      int pages = 0;
      for (;;) {
        auto page = f.cards_page(from, limit, head);
        BOOST_REQUIRE_MESSAGE(page, what(page));
        ++pages;
        BOOST_REQUIRE_LE(static_cast<int64_t>(page->cards.size()), limit);
        BOOST_TEST(page->position >= head);
        for (const auto& c : page->cards) {
          BOOST_TEST(c.position == page->position);
          got.push_back(c.id);
        }
        if (page->next.empty()) break;
        BOOST_REQUIRE_EQUAL(static_cast<int64_t>(page->cards.size()),
                            limit);  // only the last is short
        BOOST_REQUIRE(page->next > page->cards.back().id);
        from = page->next;
      }
      BOOST_TEST((got == ids));
      BOOST_TEST(pages == (n + limit - 1) / limit);
    }
  }
  // `next` is exactly the first card not returned.
  auto first = f.cards_page("", 3, head);
  BOOST_REQUIRE(first);
  BOOST_TEST(first->next == ids[3]);
  // A cursor between two ids starts at the next one; past the end is empty.
  auto mid = f.cards_page("c05_a", 2, head);
  BOOST_REQUIRE(mid);
  BOOST_REQUIRE_EQUAL(mid->cards.size(), 2u);
  BOOST_TEST(mid->cards[0].id == "c05_b");
  BOOST_TEST(mid->cards[1].id == "c06");
  BOOST_TEST(mid->next == "c07");
  auto last = f.cards_page("c24", 5, head);
  BOOST_REQUIRE(last);
  BOOST_REQUIRE_EQUAL(last->cards.size(), 1u);
  BOOST_TEST(last->next.empty());
  auto beyond = f.cards_page("zzz", 5, head);
  BOOST_REQUIRE(beyond);
  BOOST_TEST(beyond->cards.empty());
  BOOST_TEST(beyond->next.empty());
  // The full list helper agrees.
  auto all = f.cards();
  BOOST_REQUIRE(all);
  BOOST_TEST(all->size() == ids.size());
  // An empty shop: one empty last page.
  ShopFixture empty;
  auto none = empty.cards_page("", 10, 0);
  BOOST_REQUIRE_MESSAGE(none, what(none));
  BOOST_TEST(none->cards.empty());
  BOOST_TEST(none->next.empty());
}

// A user's purchase pages: log order from position `from` on, `next` the
// position of the first not returned (0 at the end), interleaved with other
// buyers' purchases, with a cursor that is itself a purchase or between two.
BOOST_AUTO_TEST_CASE(history_pages) {
  ShopFixture f(Backend::rocks);
  BOOST_REQUIRE(f.create_card("gc", 10));
  BOOST_REQUIRE(f.add_codes("gc", ShopFixture::codes("GC", 200)));
  BOOST_REQUIRE(f.credit("whale", 100000, "k"));
  BOOST_REQUIRE(f.credit("whale2", 100000, "k"));  // shares a prefix
  std::vector<Purchase> mine;
  for (int i = 0; i < 60; ++i) {
    auto p = f.purchase("gc", "whale", "p" + std::to_string(i));
    BOOST_REQUIRE_MESSAGE(p, what(p));
    mine.push_back(*p);
    if (i % 3 == 0) BOOST_REQUIRE(f.purchase("gc", "whale2", "q" + std::to_string(i)));
  }
  const int64_t head = f.store()->LastPosition();
  const int64_t n = static_cast<int64_t>(mine.size());
  for (int64_t limit : {int64_t{1}, int64_t{7}, int64_t{20}, n - 1, n, n + 1, kMaxPageLimit}) {
    BOOST_TEST_CONTEXT("limit " << limit) {
      std::vector<std::string> got;
      int64_t from = 0;
      int pages = 0;
      for (;;) {
        auto page = f.history_page("whale", from, limit, head);
        BOOST_REQUIRE_MESSAGE(page, what(page));
        ++pages;
        BOOST_TEST(page->position >= head);
        BOOST_REQUIRE_LE(static_cast<int64_t>(page->purchases.size()), limit);
        for (const auto& p : page->purchases) {
          BOOST_REQUIRE_EQUAL(p.user_id, "whale");
          BOOST_REQUIRE_GE(p.position, from);
          got.push_back(p.purchase_id);
        }
        if (page->next == 0) break;
        BOOST_REQUIRE_EQUAL(static_cast<int64_t>(page->purchases.size()), limit);
        BOOST_REQUIRE_GT(page->next, page->purchases.back().position);
        from = page->next;
      }
      BOOST_REQUIRE_EQUAL(got.size(), mine.size());
      for (size_t i = 0; i < got.size(); ++i) BOOST_TEST(got[i] == mine[i].purchase_id);
      BOOST_TEST(pages == (n + limit - 1) / limit);
    }
  }
  // `next` is exactly the position of the first purchase not returned.
  auto first = f.history_page("whale", 0, 5, head);
  BOOST_REQUIRE(first);
  BOOST_TEST(first->next == mine[5].position);
  // From a purchase's own position: it is the first; one past it: the next.
  auto at = f.history_page("whale", mine[10].position, 2, head);
  BOOST_REQUIRE(at);
  BOOST_REQUIRE_EQUAL(at->purchases.size(), 2u);
  BOOST_TEST(at->purchases[0].purchase_id == mine[10].purchase_id);
  BOOST_TEST(at->next == mine[12].position);
  auto past = f.history_page("whale", mine[10].position + 1, 1, head);
  BOOST_REQUIRE(past);
  BOOST_TEST(past->purchases.at(0).purchase_id == mine[11].purchase_id);
  // The last one exactly, and past the end (even past the head): empty, next 0.
  auto tail = f.history_page("whale", mine.back().position, 10, head);
  BOOST_REQUIRE(tail);
  BOOST_REQUIRE_EQUAL(tail->purchases.size(), 1u);
  BOOST_TEST(tail->next == 0);
  for (int64_t beyond : {mine.back().position + 1, head + 1000, INT64_MAX}) {
    auto none = f.history_page("whale", beyond, 10, head);
    BOOST_REQUIRE_MESSAGE(none, what(none));
    BOOST_TEST(none->purchases.empty());
    BOOST_TEST(none->next == 0);
  }
  // The neighbour with the longer id has its own; a user with none, nothing.
  auto other = f.history("whale2");
  BOOST_REQUIRE(other);
  BOOST_TEST(other->size() == 20u);
  auto nobody = f.history_page("whal", 0, 10, head);
  BOOST_REQUIRE(nobody);
  BOOST_TEST(nobody->purchases.empty());
  BOOST_TEST(nobody->next == 0);
  // The full history helper (pages of kMaxPageLimit) agrees.
  auto all = f.history("whale");
  BOOST_REQUIRE(all);
  BOOST_TEST(all->size() == mine.size());
}

// limit must be 1..kMaxPageLimit, `from` a position >= 0 / a card id (or
// empty); bad `after` as for every query.
BOOST_AUTO_TEST_CASE(page_arguments_are_checked) {
  ShopFixture f;
  BOOST_REQUIRE(f.create_card("gc", 10));
  const int64_t head = f.store()->LastPosition();
  for (int64_t bad : {int64_t{0}, int64_t{-1}, kMaxPageLimit + 1, INT64_MAX, INT64_MIN}) {
    BOOST_TEST_CONTEXT("limit " << bad) {
      auto c = f.cards_page("", bad, head);
      BOOST_TEST(err(c) == Errc::invalid_request, what(c));
      if (!c) BOOST_TEST(detail_of(c.error()) == "limit must be 1..1000");
      BOOST_TEST(err(f.history_page("ann", 0, bad, head)) == Errc::invalid_request);
    }
  }
  BOOST_TEST(static_cast<bool>(f.cards_page("", 1, head)));
  BOOST_TEST(static_cast<bool>(f.cards_page("", kMaxPageLimit, head)));
  BOOST_TEST(static_cast<bool>(f.history_page("ann", 0, 1, head)));
  BOOST_TEST(static_cast<bool>(f.history_page("ann", 0, kMaxPageLimit, head)));
  for (int64_t bad : {int64_t{-1}, INT64_MIN})
    BOOST_TEST(err(f.history_page("ann", bad, 10, head)) == Errc::invalid_request);
  for (const std::string& bad : std::vector<std::string>{"bad/id", "a b", std::string(65, 'c')})
    BOOST_TEST(err(f.cards_page(bad, 10, head)) == Errc::invalid_request, bad);
  BOOST_TEST(err(f.history_page("bad/user", 0, 10, head)) == Errc::invalid_request);
  BOOST_TEST(err(f.history_page("", 0, 10, head)) == Errc::invalid_request);
  BOOST_TEST(err(f.cards_page("", 10, head + 1)) == Errc::invalid_request);
  BOOST_TEST(err(f.history_page("ann", 0, 10, head + 1)) == Errc::invalid_request);
  // Nothing was queued for any of them.
  BOOST_TEST(f.queries().refused() == 0u);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace giftcard::test
