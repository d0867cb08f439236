// What the serve process tests share (serve_process_test.cc: SIGTERM and
// kill -9 of `giftcard serve`; serve_clients_test.cc: the CLI clients and
// concurrent remote buyers): the serve child seen through its CAF port, the
// CAF remote client in this process, and volleys of purchases in flight.
#pragma once

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "actors/errors.h"
#include "actors/messages.h"
#include "api/node_config.h"
#include "tests/support/process.h"
#include "tests/support/replies.h"  // err(), same_purchase()
#include "tests/support/serve_child.h"
#include "tests/support/shop_client.h"

namespace giftcard::serve_test {

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
inline void require_clean_stop(ServeProcess& serve, std::chrono::milliseconds timeout = 10s) {
  auto start = Clock::now();
  serve.signal(SIGTERM);
  auto status = serve.wait(timeout);
  if (!status)
    BOOST_FAIL("serve did not exit within " << timeout.count() << " ms of SIGTERM; stderr:\n"
                                            << serve.log());
  BOOST_TEST_MESSAGE(
      "serve stopped in "
      << std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count()
      << " ms");
  if (!(WIFEXITED(*status) && WEXITSTATUS(*status) == 0))
    BOOST_ERROR("serve after SIGTERM: " << describe_status(*status) << "; stderr:\n"
                                        << serve.log());
}

// A port on 127.0.0.1 that nothing listens on (bound, then closed).
inline uint16_t closed_port() {
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

class Client : public ShopClient {
 public:
  explicit Client(uint16_t port) : ShopClient(port) {}

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
};

template <class T>
std::string why(Client& c, const caf::expected<T>& x) {
  return c.why(x);
}

inline std::vector<std::string> numbered_codes(const std::string& prefix, int n) {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%04d", i);
    out.push_back(prefix + "-" + buf);
  }
  return out;
}

inline nlohmann::json parse_json(const RunResult& r) {
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

inline caf::actor fire_purchases(caf::actor_system& sys, const shop_actor& shop,
                                 std::vector<PurchaseRequest> reqs, std::shared_ptr<Volley> v,
                                 std::chrono::seconds timeout) {
  return sys.spawn(
      [shop, reqs = std::move(reqs), v, timeout](caf::event_based_actor* self, int) {
        auto record = [v](size_t i, caf::expected<Purchase> r) {
          std::lock_guard<std::mutex> lock(v->mu);
          v->replies.emplace(i, std::move(r));
          v->cv.notify_all();
        };
        for (size_t i = 0; i < reqs.size(); ++i)
          self->request(shop, timeout, purchase_atom::value, reqs[i].card, reqs[i].user,
                        reqs[i].key)
              .then([=](Purchase& p) { record(i, std::move(p)); },
                    [=](caf::error& e) { record(i, std::move(e)); });
        return caf::behavior{[](const std::string&) {}};  // lives until its exit
      },
      0);  // the dummy int: CAF 0.17.6 dereferences a null args tuple for arg-less spawns (UBSan)
}

}  // namespace giftcard::serve_test
