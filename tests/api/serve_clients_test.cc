// The `purchase`/`credit` CLI clients and the serve flag checks as
// subprocesses, and 64 remote buyers in flight at once against a real
// `giftcard serve` child (docs/CONTRACT.md, "Command line" and "CAF remote API").
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/api/serve_process_fixture.h"

using namespace giftcard;
using namespace giftcard::test;
using namespace giftcard::serve_test;

// ---------------------------------------------------------------------------
BOOST_AUTO_TEST_SUITE(cli_clients)

BOOST_AUTO_TEST_CASE(purchase_and_credit_subcommands) {
  TempDir dir;
  ServeProcess serve(dir.str("data"), dir.str("serve.log"), /*demo=*/true);
  const std::string node = "127.0.0.1:" + std::to_string(serve.port());
  auto purchase = [&](const std::string& card, const std::string& user, const std::string& key) {
    return run_giftcard({"purchase", "--node", node, "--card", card, "--user", user, "--key", key,
                         "--timeout", "20"});
  };

  auto first = purchase("steam-50", "alice", "cli-1");
  BOOST_REQUIRE_MESSAGE(first.code() == 0, first.describe());
  auto j1 = parse_json(first);
  BOOST_TEST(j1.contains("code"));
  BOOST_TEST(j1.contains("purchase_id"));
  BOOST_TEST(j1.value("card_id", "") == "steam-50");
  BOOST_TEST(j1.value("user_id", "") == "alice");
  BOOST_TEST(j1.value("price", int64_t{0}) == 5000);
  BOOST_TEST(j1.value("replayed", false) == false);
  BOOST_TEST(j1.value("code", "").rfind("STM-", 0) == 0u);

  auto again = purchase("steam-50", "alice", "cli-1");
  BOOST_REQUIRE_MESSAGE(again.code() == 0, again.describe());
  auto j2 = parse_json(again);
  BOOST_TEST(j2.value("replayed", false) == true);
  BOOST_TEST(j2.value("purchase_id", "x") == j1.value("purchase_id", "y"));
  BOOST_TEST(j2.value("code", "x") == j1.value("code", "y"));
  BOOST_TEST(j2.value("position", -1) == j1.value("position", -2));

  auto other = purchase("netflix-25", "bob", "cli-2");
  BOOST_REQUIRE_MESSAGE(other.code() == 0, other.describe());
  BOOST_TEST(parse_json(other).value("code", "").rfind("NFX-", 0) == 0u);

  auto nope = purchase("nope", "alice", "cli-3");
  BOOST_TEST(nope.code() == 1, nope.describe());
  BOOST_TEST(parse_json(nope).value("code", "") == "card_not_found");
  BOOST_TEST(!nope.err.empty());

  auto poor = purchase("steam-50", "carol", "cli-4");
  BOOST_TEST(poor.code() == 1, poor.describe());
  BOOST_TEST(parse_json(poor).value("code", "") == "insufficient_funds");

  auto reused = purchase("netflix-25", "alice", "cli-1");
  BOOST_TEST(reused.code() == 1, reused.describe());
  BOOST_TEST(parse_json(reused).value("code", "") == "idempotency_key_reused");

  // Credits.
  auto credit = run_giftcard(
      {"credit", "--node", node, "--user", "dave", "--amount", "700", "--key", "c-1"});
  BOOST_REQUIRE_MESSAGE(credit.code() == 0, credit.describe());
  auto jc = parse_json(credit);
  BOOST_TEST(jc.value("user_id", "") == "dave");
  BOOST_TEST(jc.value("balance", int64_t{-1}) == 700);
  BOOST_TEST(jc.value("replayed", false) == false);
  auto credit_again = run_giftcard(
      {"credit", "--node", node, "--user", "dave", "--amount", "700", "--key", "c-1"});
  BOOST_REQUIRE_MESSAGE(credit_again.code() == 0, credit_again.describe());
  BOOST_TEST(parse_json(credit_again).value("replayed", false) == true);
  BOOST_TEST(parse_json(credit_again).value("balance", int64_t{-1}) == 700);
  auto topped = run_giftcard(
      {"credit", "--node", node, "--user", "carol", "--amount", "3000", "--key", "c-2"});
  BOOST_REQUIRE_MESSAGE(topped.code() == 0, topped.describe());
  BOOST_TEST(parse_json(topped).value("balance", int64_t{-1}) == 5000);
  auto rich = purchase("steam-50", "carol", "cli-5");
  BOOST_TEST(rich.code() == 0, rich.describe());
  auto zero = run_giftcard(
      {"credit", "--node", node, "--user", "dave", "--amount", "0", "--key", "c-3"});
  BOOST_TEST(zero.code() != 0, zero.describe());
  BOOST_TEST(!zero.err.empty());

  // The node is unreachable: exit 3.
  auto unreachable = run_giftcard(
      {"purchase", "--node", "127.0.0.1:" + std::to_string(closed_port()), "--card", "steam-50",
       "--user", "alice", "--key", "cli-6", "--timeout", "5"});
  BOOST_TEST(unreachable.code() == 3, unreachable.describe());
  BOOST_TEST(!unreachable.err.empty());
  auto unreachable_credit = run_giftcard({"credit", "--node",
                                          "127.0.0.1:" + std::to_string(closed_port()), "--user",
                                          "alice", "--amount", "1", "--key", "c-4"});
  BOOST_TEST(unreachable_credit.code() == 3, unreachable_credit.describe());

  // Bad flags: a message on stderr, a non-zero exit, no crash.
  auto no_key = run_giftcard({"purchase", "--node", node, "--card", "steam-50", "--user", "alice"});
  BOOST_TEST(no_key.exited(), no_key.describe());
  BOOST_TEST(no_key.code() != 0, no_key.describe());
  BOOST_TEST(!no_key.err.empty(), no_key.describe());
  auto bad_node = run_giftcard(
      {"purchase", "--node", "localhost", "--card", "steam-50", "--user", "alice", "--key", "k"});
  BOOST_TEST(bad_node.exited(), bad_node.describe());
  BOOST_TEST(bad_node.code() != 0, bad_node.describe());
  BOOST_TEST(!bad_node.err.empty(), bad_node.describe());
  auto help = run_giftcard({"purchase", "--help"});
  BOOST_TEST(help.code() == 0, help.describe());
  BOOST_TEST(help.out.find("--key") != std::string::npos, help.describe());

  // serve refuses a non-loopback address without TLS, before binding anything.
  auto open_net = run_giftcard({"serve", "--data", dir.str("x"), "--caf", "10.1.2.3:0"}, 20s);
  BOOST_TEST(!open_net.timed_out, "serve on 10.1.2.3 did not exit: " << open_net.describe());
  BOOST_TEST(open_net.exited(), open_net.describe());
  BOOST_TEST(open_net.code() != 0, open_net.describe());
  BOOST_TEST(!open_net.err.empty(), open_net.describe());
  BOOST_TEST(open_net.out.find("ready") == std::string::npos, open_net.describe());
  BOOST_TEST(open_net.elapsed < 10s);

  // serve on a data "directory" that is a regular file.
  const std::string file = dir.str("plain-file");
  {
    std::ofstream f(file);
    f << "not a store\n";
  }
  auto on_file = run_giftcard(
      {"serve", "--data", file, "--caf", "127.0.0.1:0", "--http", "127.0.0.1:0"}, 30s);
  BOOST_TEST(!on_file.timed_out, "serve on a file did not exit: " << on_file.describe());
  BOOST_TEST(on_file.exited(), on_file.describe());  // no crash (signal)
  BOOST_TEST(on_file.code() != 0, on_file.describe());
  BOOST_TEST(!on_file.err.empty(), on_file.describe());
  BOOST_TEST(on_file.out.find("ready") == std::string::npos, on_file.describe());
  BOOST_TEST(read_file_text(file) == "not a store\n");  // untouched

  // The demo server is still fine, and stops cleanly.
  auto after = purchase("spotify-10", "bob", "cli-7");
  BOOST_TEST(after.code() == 0, after.describe());
  require_clean_stop(serve);
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------
BOOST_AUTO_TEST_SUITE(concurrent_remote)

namespace {

struct Attempt {
  int user = 0;
  bool ok = false;
  Purchase purchase;
  Errc error = Errc::ok;
  std::string rendered;
};

struct Shared {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<Attempt> attempts;
  int users_done = 0;
  int in_flight = 0;
  int max_in_flight = 0;
};

constexpr int kUsers = 64;
constexpr int kAttempts = 5;
constexpr int kCodes = 100;
constexpr int64_t kHotPrice = 100;
constexpr int64_t kFunds = 3 * kHotPrice;

std::string user_name(int u) { return "buyer-" + std::to_string(u); }

// One user's attempts run one after the other; all users run at once, so
// kUsers requests are in flight at any time.
void next_attempt(caf::event_based_actor* self, shop_actor shop, std::shared_ptr<Shared> sh,
                  int user, int attempt) {
  if (attempt == kAttempts) {
    std::lock_guard<std::mutex> lock(sh->mu);
    if (++sh->users_done == kUsers) {
      sh->cv.notify_all();
      self->quit();
    }
    return;
  }
  {
    std::lock_guard<std::mutex> lock(sh->mu);
    sh->max_in_flight = std::max(sh->max_in_flight, ++sh->in_flight);
  }
  std::string key = "k-" + std::to_string(user) + "-" + std::to_string(attempt);
  auto record = [sh, user](Attempt a) {
    std::lock_guard<std::mutex> lock(sh->mu);
    --sh->in_flight;
    a.user = user;
    sh->attempts.push_back(std::move(a));
  };
  self->request(shop, std::chrono::seconds(90), purchase_atom::value, std::string("hot"),
                user_name(user), key)
      .then(
          [=](Purchase& p) {
            record(Attempt{user, true, p, Errc::ok, {}});
            next_attempt(self, shop, sh, user, attempt + 1);
          },
          [=](caf::error& e) {
            record(Attempt{user, false, Purchase{}, errc_of(e), self->system().render(e)});
            next_attempt(self, shop, sh, user, attempt + 1);
          });
}

}  // namespace

BOOST_AUTO_TEST_CASE(sixty_four_buyers_in_flight) {
  TempDir dir;
  ServeProcess serve(dir.str("data"), dir.str("serve.log"));
  Client c(serve.port());
  BOOST_REQUIRE(c.create_card("hot", kHotPrice));
  auto added = c.add_codes("hot", numbered_codes("HOT", kCodes));
  BOOST_REQUIRE_MESSAGE(added, why(c, added));
  for (int u = 0; u < kUsers; ++u) {
    auto r = c.credit(user_name(u), kFunds, "fund");
    BOOST_REQUIRE_MESSAGE(r, why(c, r));
  }

  auto sh = std::make_shared<Shared>();
  auto start = Clock::now();
  auto shop = c.shop();
  c.system().spawn(
      [shop, sh](caf::event_based_actor* self, int) -> caf::behavior {
        for (int u = 0; u < kUsers; ++u) next_attempt(self, shop, sh, u, 0);
        return {[](const std::string&) {}};  // stays alive until quit()
      },
      0);  // dummy int, see above
  {
    std::unique_lock<std::mutex> lock(sh->mu);
    bool done = sh->cv.wait_for(lock, 100s, [&] { return sh->users_done == kUsers; });
    BOOST_REQUIRE_MESSAGE(done, "only " << sh->users_done << " of " << kUsers
                                        << " buyers finished; " << sh->attempts.size()
                                        << " replies");
  }
  BOOST_TEST_MESSAGE(
      kUsers * kAttempts
      << " purchases in "
      << std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count()
      << " ms");
  std::lock_guard<std::mutex> lock(sh->mu);
  BOOST_TEST(sh->max_in_flight == kUsers);
  BOOST_REQUIRE(sh->attempts.size() == static_cast<size_t>(kUsers * kAttempts));

  std::set<std::string> codes;
  std::map<int, int> successes;
  std::map<int, int> poor;
  int total = 0;
  for (const auto& a : sh->attempts) {
    if (a.ok) {
      ++total;
      ++successes[a.user];
      BOOST_TEST(codes.insert(a.purchase.code).second, "code assigned twice: " << a.purchase.code);
      BOOST_TEST(a.purchase.price == kHotPrice);
      BOOST_TEST(a.purchase.user_id == user_name(a.user));
      BOOST_TEST(!a.purchase.replayed);
    } else {
      BOOST_TEST((a.error == Errc::out_of_stock || a.error == Errc::insufficient_funds),
                 user_name(a.user) << ": " << a.rendered);
      if (a.error == Errc::insufficient_funds) ++poor[a.user];
    }
  }
  BOOST_TEST(total == std::min(kCodes, kUsers * 3));
  BOOST_TEST(codes.size() == static_cast<size_t>(total));
  for (int u = 0; u < kUsers; ++u) {
    BOOST_TEST(successes[u] <= 3, user_name(u));
    // A user's attempts are sequential: funds run out only after 3 purchases.
    if (poor[u] > 0) BOOST_TEST(successes[u] == 3, user_name(u));
    auto w = c.wallet(user_name(u));
    BOOST_REQUIRE_MESSAGE(w, why(c, w));
    BOOST_TEST(w->balance >= 0, user_name(u));
    BOOST_TEST(w->balance == kFunds - kHotPrice * successes[u], user_name(u));
  }
  auto view = c.card("hot");
  BOOST_REQUIRE_MESSAGE(view, why(c, view));
  BOOST_TEST(view->assigned == total);
  BOOST_TEST(view->available == kCodes - total);
  require_clean_stop(serve);
}

BOOST_AUTO_TEST_SUITE_END()
