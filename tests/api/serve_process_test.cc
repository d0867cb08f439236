// `giftcard serve` as a real child process (docs/CONTRACT.md, "Command line" and "CAF remote API"):
// a CAF remote client in this process talks to it over the wire; it is stopped with SIGTERM (clean
// drain, exit 0) or SIGKILL (crash) and restarted on the same data directory.
// The `purchase`/`credit` CLI clients, the serve flag checks and 64 concurrent
// remote buyers: serve_clients_test.cc.
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/api/serve_process_fixture.h"

using namespace giftcard;
using namespace giftcard::test;
using namespace giftcard::serve_test;

// ---------------------------------------------------------------------------
BOOST_AUTO_TEST_SUITE(serve_process)

BOOST_AUTO_TEST_CASE(remote_commands_errors_and_sigterm) {
  TempDir dir;
  ServeProcess serve(dir.str("data"), dir.str("serve.log"));
  {
    Client c(serve.port());

    // Cards.
    auto card = c.create_card("gc-1", 500);
    BOOST_REQUIRE_MESSAGE(card, why(c, card));
    BOOST_TEST(card->id == "gc-1");
    BOOST_TEST(card->price == 500);
    BOOST_TEST(card->available == 0);
    BOOST_TEST(card->position > 0);
    BOOST_TEST(err(c.create_card("gc-1", 500)) == Errc::card_exists);
    BOOST_TEST(err(c.create_card("bad/id", 500)) == Errc::invalid_request);
    BOOST_TEST(err(c.create_card("gc-zero", 0)) == Errc::invalid_request);
    BOOST_REQUIRE(c.create_card("gc-2", 100));

    // Codes: all or nothing, duplicates listed.
    auto added = c.add_codes("gc-1", {"AAAA-0001", "AAAA-0002", "AAAA-0003", "AAAA-0004"});
    BOOST_REQUIRE_MESSAGE(added, why(c, added));
    BOOST_TEST(added->added == 4);
    BOOST_TEST(added->position > card->position);
    auto dup = c.add_codes("gc-1", {"AAAA-0001", "NEW-00001", "AAAA-0003"});
    BOOST_REQUIRE(!dup);
    BOOST_TEST(err(dup) == Errc::duplicate_codes);
    auto dup_codes = codes_of(dup.error());
    std::sort(dup_codes.begin(), dup_codes.end());
    BOOST_TEST(dup_codes == (std::vector<std::string>{"AAAA-0001", "AAAA-0003"}),
               boost::test_tools::per_element());
    auto cross = c.add_codes("gc-2", {"AAAA-0002", "BBBB-0001"});  // system-wide uniqueness
    BOOST_TEST(err(cross) == Errc::duplicate_codes);
    if (!cross) BOOST_TEST(codes_of(cross.error()) == std::vector<std::string>{"AAAA-0002"});
    BOOST_TEST(err(c.add_codes("nope", {"CCCC-0001"})) == Errc::card_not_found);
    auto view = c.card("gc-1");
    BOOST_REQUIRE_MESSAGE(view, why(c, view));
    BOOST_TEST(view->available == 4);  // nothing of the rejected batch was added
    BOOST_TEST(c.card("gc-2")->available == 0);
    BOOST_TEST(err(c.card("nope")) == Errc::card_not_found);
    BOOST_TEST(err(c.card("bad/id")) == Errc::invalid_request);

    // Revoke: an available code once; then it is not available; unknown codes.
    auto revoked = c.revoke("gc-1", "AAAA-0004");
    BOOST_REQUIRE_MESSAGE(revoked, why(c, revoked));
    BOOST_TEST(*revoked > added->position);
    BOOST_TEST(err(c.revoke("gc-1", "AAAA-0004")) == Errc::code_not_available);
    BOOST_TEST(err(c.revoke("gc-1", "ZZZZ-9999")) == Errc::code_not_found);
    BOOST_TEST(err(c.revoke("nope", "AAAA-0001")) != Errc::ok);

    // Credits, idempotent per user.
    auto credited = c.credit("alice", 1200, "fund-1");
    BOOST_REQUIRE_MESSAGE(credited, why(c, credited));
    BOOST_TEST(credited->user_id == "alice");
    BOOST_TEST(credited->balance == 1200);
    BOOST_TEST(!credited->replayed);
    auto credit_again = c.credit("alice", 1200, "fund-1");
    BOOST_REQUIRE_MESSAGE(credit_again, why(c, credit_again));
    BOOST_TEST(credit_again->replayed);
    BOOST_TEST(credit_again->balance == 1200);
    BOOST_TEST(credit_again->position == credited->position);
    BOOST_TEST(err(c.credit("alice", 1300, "fund-1")) == Errc::idempotency_key_reused);
    BOOST_TEST(err(c.credit("alice", 0, "fund-0")) == Errc::invalid_request);
    BOOST_TEST(err(c.credit("alice", -5, "fund-neg")) == Errc::invalid_request);
    BOOST_TEST(err(c.credit("alice", 10, "")) == Errc::missing_idempotency_key);
    BOOST_TEST(err(c.credit("bad user!", 10, "k")) == Errc::invalid_request);
    BOOST_TEST(c.wallet("alice")->balance == 1200);
    BOOST_TEST(c.wallet("nobody")->balance == 0);

    // Purchases: distinct codes, idempotent replays.
    auto p1 = c.purchase("gc-1", "alice", "buy-1");
    BOOST_REQUIRE_MESSAGE(p1, why(c, p1));
    auto p2 = c.purchase("gc-1", "alice", "buy-2");
    BOOST_REQUIRE_MESSAGE(p2, why(c, p2));
    BOOST_TEST(!p1->replayed);
    BOOST_TEST(!p2->replayed);
    BOOST_TEST(p1->code != p2->code);
    BOOST_TEST(p1->purchase_id != p2->purchase_id);
    BOOST_TEST(p1->card_id == "gc-1");
    BOOST_TEST(p1->user_id == "alice");
    BOOST_TEST(p1->price == 500);
    BOOST_TEST(p1->purchased_at > 0);
    BOOST_TEST(p2->position > p1->position);
    for (const auto* p : {&*p1, &*p2}) {
      BOOST_TEST(p->code != "AAAA-0004");  // revoked
      BOOST_TEST(p->code.rfind("AAAA-000", 0) == 0);
    }
    BOOST_TEST(c.wallet("alice")->balance == 200);

    auto replay = c.purchase("gc-1", "alice", "buy-1");
    BOOST_REQUIRE_MESSAGE(replay, why(c, replay));
    BOOST_TEST(replay->replayed);
    BOOST_TEST(same_purchase(*replay, *p1));
    BOOST_TEST(replay->code == p1->code);
    BOOST_TEST(replay->purchase_id == p1->purchase_id);
    BOOST_TEST(replay->position == p1->position);
    BOOST_TEST(err(c.purchase("gc-2", "alice", "buy-1")) == Errc::idempotency_key_reused);
    BOOST_TEST(c.wallet("alice")->balance == 200);  // replays charge nothing

    BOOST_TEST(err(c.purchase("nope", "alice", "buy-nope")) == Errc::card_not_found);
    BOOST_TEST(err(c.purchase("bad/id", "alice", "buy-bad")) == Errc::invalid_request);
    BOOST_TEST(err(c.purchase("gc-1", "bad user!", "buy-bad")) == Errc::invalid_request);
    BOOST_TEST(err(c.purchase("gc-1", "alice", "")) == Errc::missing_idempotency_key);
    BOOST_TEST(err(c.purchase("gc-1", "alice", std::string(129, 'k'))) == Errc::invalid_request);

    // One code left, 200 in the wallet: insufficient funds, and the code is
    // not lost by the rejected attempt.
    BOOST_TEST(err(c.purchase("gc-1", "alice", "buy-3")) == Errc::insufficient_funds);
    BOOST_TEST(c.card("gc-1")->available == 1);
    BOOST_TEST(c.wallet("alice")->balance == 200);
    BOOST_REQUIRE(c.credit("alice", 1000, "fund-2"));
    auto p3 = c.purchase("gc-1", "alice", "buy-3b");
    BOOST_REQUIRE_MESSAGE(p3, why(c, p3));
    BOOST_TEST(p3->code != p1->code);
    BOOST_TEST(p3->code != p2->code);
    BOOST_TEST(p3->code != "AAAA-0004");
    BOOST_TEST(err(c.purchase("gc-1", "alice", "buy-4")) == Errc::out_of_stock);
    BOOST_TEST(c.wallet("alice")->balance == 700);

    // A sold code cannot be revoked.
    BOOST_TEST(err(c.revoke("gc-1", p1->code)) == Errc::code_not_available);

    view = c.card("gc-1");
    BOOST_REQUIRE(view);
    BOOST_TEST(view->available == 0);
    BOOST_TEST(view->assigned == 3);
    BOOST_TEST(view->revoked == 1);
    BOOST_TEST(view->expired == 0);

    // SIGTERM with a connected client: drain and exit 0.
    require_clean_stop(serve);
    // The server is gone: requests fail (CAF's error, mapped to unavailable).
    // CAF 0.17's client does not fail them fast (the proxy is not killed when
    // the peer closes the connection): they time out, hence a short timeout.
    c.timeout = std::chrono::seconds(3);
    auto t0 = Clock::now();
    auto gone = c.wallet("alice");
    BOOST_TEST(err(gone) == Errc::unavailable);
    BOOST_TEST_MESSAGE(
        "request to the stopped server failed after "
        << std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count()
        << " ms: " << why(c, gone));
  }
}

// SIGTERM while purchases are in flight: the server stops accepting, finishes
// what it accepted, exits 0; every acknowledged purchase is there after a
// restart and nothing is half-done.
BOOST_AUTO_TEST_CASE(sigterm_drains_in_flight_purchases) {
  constexpr int kUsers = 8;
  constexpr int kPerUser = 40;
  constexpr int64_t kPrice = 100;
  TempDir dir;
  std::vector<PurchaseRequest> reqs;
  for (int i = 0; i < kPerUser; ++i)
    for (int u = 0; u < kUsers; ++u)
      reqs.push_back({"dc", "user-" + std::to_string(u), "key-" + std::to_string(i)});
  std::map<size_t, Purchase> acked;
  size_t refused = 0, lost = 0;
  {
    ServeProcess serve(dir.str("data"), dir.str("serve-1.log"));
    Client c(serve.port());
    BOOST_REQUIRE(c.create_card("dc", kPrice));
    BOOST_REQUIRE(c.add_codes("dc", numbered_codes("DC", kUsers * kPerUser)));
    for (int u = 0; u < kUsers; ++u)
      BOOST_REQUIRE(c.credit("user-" + std::to_string(u), kPrice * kPerUser, "fund"));
    auto volley = std::make_shared<Volley>();
    auto driver = fire_purchases(c.system(), c.shop(), reqs, volley, std::chrono::seconds(8));
    {
      std::unique_lock<std::mutex> lock(volley->mu);
      BOOST_REQUIRE(volley->cv.wait_for(lock, 30s, [&] { return !volley->replies.empty(); }));
    }
    require_clean_stop(serve);
    {
      std::unique_lock<std::mutex> lock(volley->mu);
      BOOST_REQUIRE(
          volley->cv.wait_for(lock, 30s, [&] { return volley->replies.size() == reqs.size(); }));
      for (auto& [i, r] : volley->replies) {
        if (r) {
          acked.emplace(i, *r);
        } else if (r.error().category() == kErrorCategory) {
          BOOST_TEST(errc_of(r.error()) == Errc::unavailable, c.system().render(r.error()));
          ++refused;
        } else {
          ++lost;  // no reply before the process exited (CAF: request_timeout)
        }
      }
    }
    caf::anon_send_exit(driver, caf::exit_reason::user_shutdown);
  }
  BOOST_TEST_MESSAGE("SIGTERM during a volley: " << acked.size() << " acknowledged, " << refused
                                                 << " refused (unavailable), " << lost
                                                 << " without reply");

  ServeProcess serve(dir.str("data"), dir.str("serve-2.log"));
  Client c(serve.port());
  std::set<std::string> codes;
  size_t committed_without_reply = 0;
  std::map<std::string, int64_t> bought;
  for (size_t i = 0; i < reqs.size(); ++i) {
    auto p = c.purchase(reqs[i].card, reqs[i].user, reqs[i].key);
    BOOST_REQUIRE_MESSAGE(p, reqs[i].user << "/" << reqs[i].key << ": " << why(c, p));
    BOOST_TEST(codes.insert(p->code).second, "code assigned twice: " << p->code);
    ++bought[reqs[i].user];
    if (auto it = acked.find(i); it != acked.end()) {
      BOOST_TEST(p->replayed, reqs[i].user << "/" << reqs[i].key);
      BOOST_TEST(same_purchase(*p, it->second), reqs[i].user << "/" << reqs[i].key);
    } else if (p->replayed) {
      ++committed_without_reply;
    }
  }
  // A drained command is finished, reply included: a purchase that committed
  // during the drain must not leave its client without an answer.
  BOOST_TEST(committed_without_reply == 0u,
             committed_without_reply
                 << " purchases committed during the drain but their reply never arrived");
  for (int u = 0; u < kUsers; ++u) {
    auto w = c.wallet("user-" + std::to_string(u));
    BOOST_REQUIRE_MESSAGE(w, why(c, w));
    BOOST_TEST(w->balance == 0, "user-" << u);
  }
  auto view = c.card("dc");
  BOOST_REQUIRE(view);
  BOOST_TEST(view->assigned == kUsers * kPerUser);
  BOOST_TEST(view->available == 0);
  require_clean_stop(serve);
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------
BOOST_AUTO_TEST_SUITE(serve_restart)

BOOST_AUTO_TEST_CASE(acked_purchases_survive_kill_9) {
  constexpr int kPurchases = 50;
  constexpr int64_t kPrice = 100;
  constexpr int64_t kCredit = 10000;
  TempDir dir;
  std::vector<Purchase> acked;
  {
    ServeProcess serve(dir.str("data"), dir.str("serve-1.log"));
    Client c(serve.port());
    BOOST_REQUIRE(c.create_card("rc", kPrice));
    auto added = c.add_codes("rc", numbered_codes("RC", 200));
    BOOST_REQUIRE_MESSAGE(added, why(c, added));
    BOOST_REQUIRE(c.credit("ursula", kCredit, "fund"));
    for (int i = 0; i < kPurchases; ++i) {
      auto p = c.purchase("rc", "ursula", "key-" + std::to_string(i));
      BOOST_REQUIRE_MESSAGE(p, "purchase " << i << ": " << why(c, p));
      BOOST_REQUIRE(!p->replayed);
      acked.push_back(*p);
    }
    serve.kill_hard();  // kill -9 right after the last ack
  }
  std::set<std::string> codes;
  std::set<int64_t> positions;
  for (const auto& p : acked) {
    codes.insert(p.code);
    positions.insert(p.position);
  }
  BOOST_REQUIRE(codes.size() == acked.size());
  BOOST_REQUIRE(positions.size() == acked.size());

  ServeProcess serve(dir.str("data"), dir.str("serve-2.log"));
  {
    Client c(serve.port());
    for (int i = 0; i < kPurchases; ++i) {
      auto p = c.purchase("rc", "ursula", "key-" + std::to_string(i));
      BOOST_REQUIRE_MESSAGE(p, "replay " << i << ": " << why(c, p));
      BOOST_TEST(p->replayed, "key-" << i);
      BOOST_TEST(same_purchase(*p, acked[static_cast<size_t>(i)]), "key-" << i);
      BOOST_TEST(p->purchase_id == acked[static_cast<size_t>(i)].purchase_id);
      BOOST_TEST(p->code == acked[static_cast<size_t>(i)].code);
      BOOST_TEST(p->position == acked[static_cast<size_t>(i)].position);
    }
    auto fresh = c.purchase("rc", "ursula", "key-new");
    BOOST_REQUIRE_MESSAGE(fresh, why(c, fresh));
    BOOST_TEST(!fresh->replayed);
    BOOST_TEST(codes.count(fresh->code) == 0u, "reassigned code " << fresh->code);
    BOOST_TEST(fresh->position > *positions.rbegin());
    BOOST_TEST(err(c.purchase("rc", "ursula", "key-0")) == Errc::ok);

    auto w = c.wallet("ursula");
    BOOST_REQUIRE_MESSAGE(w, why(c, w));
    BOOST_TEST(w->balance == kCredit - kPrice * (kPurchases + 1));
    auto view = c.card("rc");
    BOOST_REQUIRE_MESSAGE(view, why(c, view));
    BOOST_TEST(view->assigned == kPurchases + 1);
    BOOST_TEST(view->available == 200 - (kPurchases + 1));
    // The credit key is durable too.
    auto credit_again = c.credit("ursula", kCredit, "fund");
    BOOST_REQUIRE_MESSAGE(credit_again, why(c, credit_again));
    BOOST_TEST(credit_again->replayed);
    BOOST_TEST(c.wallet("ursula")->balance == kCredit - kPrice * (kPurchases + 1));
    require_clean_stop(serve);
  }
}

// kill -9 while purchases are in flight: every acknowledged purchase is
// durable; every unacknowledged one is either fully there or fully absent,
// and repeating its key after the restart completes it exactly once.
BOOST_AUTO_TEST_CASE(kill_9_with_purchases_in_flight) {
  constexpr int kUsers = 8;
  constexpr int kPerUser = 40;
  constexpr int64_t kPrice = 100;
  constexpr int64_t kCredit = kPrice * kPerUser;
  TempDir dir;
  std::vector<PurchaseRequest> reqs;
  for (int u = 0; u < kUsers; ++u)
    for (int i = 0; i < kPerUser; ++i)
      reqs.push_back({"fc", "user-" + std::to_string(u), "key-" + std::to_string(i)});
  std::map<size_t, Purchase> acked;
  {
    ServeProcess serve(dir.str("data"), dir.str("serve-1.log"));
    Client c(serve.port());
    BOOST_REQUIRE(c.create_card("fc", kPrice));
    auto added = c.add_codes("fc", numbered_codes("FC", kUsers * kPerUser + 10));
    BOOST_REQUIRE_MESSAGE(added, why(c, added));
    for (int u = 0; u < kUsers; ++u)
      BOOST_REQUIRE(c.credit("user-" + std::to_string(u), kCredit, "fund"));
    auto volley = std::make_shared<Volley>();
    auto driver = fire_purchases(c.system(), c.shop(), reqs, volley, std::chrono::seconds(30));
    {
      std::unique_lock<std::mutex> lock(volley->mu);
      bool some = volley->cv.wait_for(lock, 30s, [&] { return volley->replies.size() >= 5; });
      BOOST_REQUIRE_MESSAGE(some, "no purchase acknowledged in 30 s");
    }
    serve.kill_hard();
    caf::anon_send_exit(driver, caf::exit_reason::user_shutdown);
    std::lock_guard<std::mutex> lock(volley->mu);
    for (auto& [i, r] : volley->replies) {
      if (r) {
        acked.emplace(i, *r);
      } else {
        // Only the crash may fail a purchase here (funds and stock suffice).
        BOOST_TEST(errc_of(r.error()) == Errc::unavailable,
                   "request " << i << ": " << c.system().render(r.error()));
      }
    }
    BOOST_TEST_MESSAGE(acked.size()
                       << " of " << reqs.size() << " purchases acknowledged before kill -9");
  }
  BOOST_REQUIRE(!acked.empty());

  ServeProcess serve(dir.str("data"), dir.str("serve-2.log"));
  Client c(serve.port());
  std::set<std::string> codes;
  size_t replayed_unacked = 0;
  for (size_t i = 0; i < reqs.size(); ++i) {
    auto p = c.purchase(reqs[i].card, reqs[i].user, reqs[i].key);
    BOOST_REQUIRE_MESSAGE(p, reqs[i].user << "/" << reqs[i].key << ": " << why(c, p));
    BOOST_TEST(codes.insert(p->code).second, "code assigned twice: " << p->code);
    if (auto it = acked.find(i); it != acked.end()) {
      BOOST_TEST(p->replayed, reqs[i].user << "/" << reqs[i].key);
      BOOST_TEST(same_purchase(*p, it->second), reqs[i].user << "/" << reqs[i].key);
    } else if (p->replayed) {
      ++replayed_unacked;  // committed, but the ack was lost with the process
    }
  }
  BOOST_TEST_MESSAGE(replayed_unacked << " unacknowledged purchases had committed");
  // Every key now bought exactly once: each wallet paid for all of its keys.
  for (int u = 0; u < kUsers; ++u) {
    auto w = c.wallet("user-" + std::to_string(u));
    BOOST_REQUIRE_MESSAGE(w, why(c, w));
    BOOST_TEST(w->balance == 0, "user-" << u);
  }
  auto view = c.card("fc");
  BOOST_REQUIRE_MESSAGE(view, why(c, view));
  BOOST_TEST(view->assigned == kUsers * kPerUser);
  BOOST_TEST(view->available == 10);
  // One more purchase per user is refused: nothing was charged twice, nothing lost.
  BOOST_TEST(err(c.purchase("fc", "user-0", "one-more")) == Errc::insufficient_funds);
  require_clean_stop(serve);
}

BOOST_AUTO_TEST_SUITE_END()
