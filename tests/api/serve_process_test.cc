// `giftcard serve` as a real child process (SPEC §3, §5): a CAF remote client
// in this process talks to it over the wire; it is stopped with SIGTERM (clean
// drain, exit 0) or SIGKILL (crash) and restarted on the same data directory;
// the `purchase`/`credit` CLI clients and the serve flag checks run as
// subprocesses too.
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "actors/errors.h"
#include "actors/messages.h"
#include "api/node_config.h"
#include "tests/support/process.h"
#include "tests/support/serve_child.h"

namespace giftcard::test {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// ---------------------------------------------------------------------------
// Processes

using namespace giftcard::test;  // processes: tests/support/process.h

// True if this build's `serve` has an HTTP listener (then the tests must ask
// for a free port instead of the fixed default).
// A `giftcard serve` child: started on 127.0.0.1 with a free CAF port; its
// stderr goes to a log file in the data directory's parent.
// `giftcard serve` as a child (tests/support/serve_child.h); these tests talk
// to it over CAF, so port() is its CAF port.
class ServeProcess : public ServeChild {
 public:
  ServeProcess(const std::string& data_dir, const std::string& log_path, bool demo = false)
      : ServeChild(data_dir, log_path, args(demo)) {}
  uint16_t port() const { return caf_port(); }

 private:
  static ServeArgs args(bool demo) {
    ServeArgs a;
    if (demo) a.flags = {"--demo"};
    return a;
  }
};

// Asserts a clean SIGTERM shutdown: exit status 0 within `timeout`.
void require_clean_stop(ServeProcess& serve, std::chrono::milliseconds timeout = 10s) {
  auto start = Clock::now();
  serve.signal(SIGTERM);
  auto status = serve.wait(timeout);
  if (!status)
    BOOST_FAIL("serve did not exit within " << timeout.count() << " ms of SIGTERM; stderr:\n"
                                            << serve.log());
  BOOST_TEST_MESSAGE("serve stopped in "
                     << std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start)
                            .count()
                     << " ms");
  if (!(WIFEXITED(*status) && WEXITSTATUS(*status) == 0))
    BOOST_ERROR("serve after SIGTERM: " << describe_status(*status) << "; stderr:\n"
                                        << serve.log());
}

// A port on 127.0.0.1 that nothing listens on (bound, then closed).
uint16_t closed_port() {
  int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  BOOST_REQUIRE(s >= 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  BOOST_REQUIRE(::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  socklen_t len = sizeof a;
  BOOST_REQUIRE(::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len) == 0);
  ::close(s);
  return ntohs(a.sin_port);
}

// ---------------------------------------------------------------------------
// The CAF remote client, in this process

class Client {
 public:
  explicit Client(uint16_t port) {
    auto shop = connect_shop(sys_, HostPort{"127.0.0.1", port}, false);
    if (!shop)
      BOOST_FAIL("cannot connect to 127.0.0.1:" << port << ": error code "
                                                 << static_cast<int>(shop.error().code())
                                                 << " category " << caf::to_string(shop.error().category()));
    shop_ = *shop;
  }

  std::chrono::seconds timeout{60};  // per request

  caf::actor_system& system() { return sys_; }
  const shop_actor& shop() const { return shop_; }

  // One request, its reply or its error.
  template <class Reply, class... Ts>
  caf::expected<Reply> ask(Ts&&... xs) {
    caf::expected<Reply> result{caf::make_error(caf::sec::request_timeout)};
    caf::scoped_actor self{sys_};
    self->request(shop_, timeout, std::forward<Ts>(xs)...)
        .receive([&](Reply& r) { result = std::move(r); },
                 [&](caf::error& e) { result = std::move(e); });
    return result;
  }

  caf::expected<CardInfo> create_card(const std::string& id, int64_t price) {
    return ask<CardInfo>(create_atom::value, CardSpec{id, "Card " + id, price, price});
  }
  caf::expected<AddCodesReply> add_codes(const std::string& card, std::vector<std::string> codes) {
    std::vector<CodeSpec> specs;
    for (auto& c : codes) specs.push_back(CodeSpec{std::move(c), 0});
    return ask<AddCodesReply>(add_codes_atom::value, card, std::move(specs));
  }
  caf::expected<int64_t> revoke(const std::string& card, const std::string& code) {
    return ask<int64_t>(revoke_atom::value, card, code);
  }
  // Queries read the projections as of the log's head: read-your-writes.
  int64_t head() {
    auto st = ask<ShopStatus>(status_atom::value);
    return st ? st->log_position : 0;
  }
  caf::expected<CardInfo> card(const std::string& id) {
    return ask<CardInfo>(card_atom::value, id, head());
  }
  caf::expected<CreditReply> credit(const std::string& user, int64_t amount,
                                    const std::string& key) {
    return ask<CreditReply>(credit_atom::value, user, amount, key);
  }
  caf::expected<Purchase> purchase(const std::string& card, const std::string& user,
                                   const std::string& key) {
    return ask<Purchase>(purchase_atom::value, card, user, key);
  }
  caf::expected<WalletView> wallet(const std::string& user) {
    return ask<WalletView>(wallet_atom::value, user, head());
  }

 private:
  NodeConfig cfg_{TlsOptions{}};
  caf::actor_system sys_{cfg_};
  shop_actor shop_;
};

template <class T>
Errc err(const caf::expected<T>& x) {
  return x ? Errc::ok : errc_of(x.error());
}

template <class T>
std::string why(Client& c, const caf::expected<T>& x) {
  return x ? std::string("ok") : c.system().render(x.error());
}

std::vector<std::string> numbered_codes(const std::string& prefix, int n) {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%04d", i);
    out.push_back(prefix + "-" + buf);
  }
  return out;
}

bool same_purchase(const Purchase& a, const Purchase& b) {
  return a.purchase_id == b.purchase_id && a.card_id == b.card_id && a.user_id == b.user_id &&
         a.code == b.code && a.price == b.price && a.purchased_at == b.purchased_at &&
         a.position == b.position;
}

nlohmann::json parse_json(const RunResult& r) {
  auto line = r.out.substr(0, r.out.find('\n'));
  auto j = nlohmann::json::parse(line, nullptr, false);
  BOOST_REQUIRE_MESSAGE(!j.is_discarded() && j.is_object(), "not a JSON object: " << r.describe());
  return j;
}


// Many purchases in flight at once from one event-based actor (all sent
// before the first reply is handled); the replies are collected by index.
struct PurchaseRequest {
  std::string card;
  std::string user;
  std::string key;
};

struct Volley {
  std::mutex mu;
  std::condition_variable cv;
  std::map<size_t, caf::expected<Purchase>> replies;
};

caf::actor fire_purchases(caf::actor_system& sys, const shop_actor& shop,
                          std::vector<PurchaseRequest> reqs, std::shared_ptr<Volley> v,
                          std::chrono::seconds timeout) {
  return sys.spawn([shop, reqs = std::move(reqs), v, timeout](caf::event_based_actor* self, int) {
    auto record = [v](size_t i, caf::expected<Purchase> r) {
      std::lock_guard<std::mutex> lock(v->mu);
      v->replies.emplace(i, std::move(r));
      v->cv.notify_all();
    };
    for (size_t i = 0; i < reqs.size(); ++i)
      self->request(shop, timeout, purchase_atom::value, reqs[i].card, reqs[i].user, reqs[i].key)
          .then([=](Purchase& p) { record(i, std::move(p)); },
                [=](caf::error& e) { record(i, std::move(e)); });
    return caf::behavior{[](const std::string&) {}};  // lives until its exit
  }, 0);  // the dummy int: CAF 0.17.6 dereferences a null args tuple for arg-less spawns (UBSan)
}

}  // namespace
}  // namespace giftcard::test

using namespace giftcard;
using namespace giftcard::test;

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
    BOOST_TEST_MESSAGE("request to the stopped server failed after "
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
      BOOST_REQUIRE(volley->cv.wait_for(lock, 30s, [&] { return volley->replies.size() == reqs.size(); }));
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
        BOOST_TEST(errc_of(r.error()) == Errc::unavailable, "request " << i << ": "
                                                                     << c.system().render(r.error()));
      }
    }
    BOOST_TEST_MESSAGE(acked.size() << " of " << reqs.size()
                                    << " purchases acknowledged before kill -9");
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
  auto unreachable = run_giftcard({"purchase", "--node", "127.0.0.1:" + std::to_string(closed_port()),
                                   "--card", "steam-50", "--user", "alice", "--key", "cli-6",
                                   "--timeout", "5"});
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
  auto bad_node = run_giftcard({"purchase", "--node", "localhost", "--card", "steam-50", "--user",
                                "alice", "--key", "k"});
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
  auto on_file = run_giftcard({"serve", "--data", file, "--caf", "127.0.0.1:0", "--http", "127.0.0.1:0"}, 30s);
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
            record(Attempt{user, false, {}, errc_of(e), self->system().render(e)});
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
  c.system().spawn([shop, sh](caf::event_based_actor* self, int) -> caf::behavior {
    for (int u = 0; u < kUsers; ++u) next_attempt(self, shop, sh, u, 0);
    return {[](const std::string&) {}};  // stays alive until quit()
  }, 0);  // dummy int, see above
  {
    std::unique_lock<std::mutex> lock(sh->mu);
    bool done = sh->cv.wait_for(lock, 100s, [&] { return sh->users_done == kUsers; });
    BOOST_REQUIRE_MESSAGE(done, "only " << sh->users_done << " of " << kUsers
                                        << " buyers finished; " << sh->attempts.size()
                                        << " replies");
  }
  BOOST_TEST_MESSAGE(kUsers * kAttempts << " purchases in "
                                        << std::chrono::duration_cast<std::chrono::milliseconds>(
                                               Clock::now() - start)
                                               .count()
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
