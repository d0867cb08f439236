// The CAF side of the projection crash tests (projection_crash_test.cc): a
// client of `giftcard serve`'s shop, a workload of client actors that keep
// credits and purchases in flight and record every acknowledged reply, the
// server's answers collected and checked against the log, and a rebuild
// request that can be left in flight.
#pragma once

#include <atomic>
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "actors/errors.h"
#include "actors/messages.h"
#include "api/node_config.h"
#include "events/time_util.h"
#include "tests/api/projection_crash_disk.h"
#include "tests/support/replies.h"  // same_purchase()
#include "tests/support/shop_client.h"

namespace giftcard::crash_test {

// ---------------------------------------------------------------------------
// CAF clients

class Client : public ShopClient {
 public:
  explicit Client(uint16_t port) : ShopClient(port, std::chrono::seconds(60 * kSlow)) {}

  ShopStatus status() {
    auto st = ask<ShopStatus>(status_atom::value);
    BOOST_REQUIRE_MESSAGE(st, "status: " << why(st));
    return *st;
  }
  // Polls status until the projections include the whole log.
  ShopStatus wait_caught_up(std::chrono::milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    for (;;) {
      ShopStatus st = status();
      if (st.projection_position == st.log_position) return st;
      if (Clock::now() >= deadline)
        BOOST_FAIL("projections at " << st.projection_position << ", log at " << st.log_position
                                     << " after " << timeout.count() << " ms");
      std::this_thread::sleep_for(5ms);
    }
  }
};

inline std::vector<CodeSpec> numbered_codes(const std::string& prefix, int n) {
  std::vector<CodeSpec> out;
  for (int i = 0; i < n; ++i) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%05d", i);
    out.push_back(CodeSpec{prefix + "-" + buf, 0});
  }
  return out;
}

struct Catalog {
  std::vector<std::pair<std::string, int64_t>> cards;  // id, price
  std::vector<std::string> users;
};

// Creates the cards with `codes` codes each and funds every user.
inline void set_up_shop(Client& c, const Catalog& cat, int codes, int64_t funds) {
  for (size_t i = 0; i < cat.cards.size(); ++i) {
    const auto& [id, price] = cat.cards[i];
    auto card = c.ask<CardInfo>(create_atom::value, CardSpec{id, "Card " + id, price, price * 2});
    BOOST_REQUIRE_MESSAGE(card, "create " << id << ": " << c.why(card));
    auto added = c.ask<AddCodesReply>(add_codes_atom::value, id,
                                      numbered_codes("K" + std::to_string(i), codes));
    BOOST_REQUIRE_MESSAGE(added, "codes for " << id << ": " << c.why(added));
  }
  for (const auto& u : cat.users) {
    auto r = c.ask<CreditReply>(credit_atom::value, u, funds, std::string("initial-funds"));
    BOOST_REQUIRE_MESSAGE(r, "fund " << u << ": " << c.why(r));
  }
}

// ---------------------------------------------------------------------------
// The workload: client actors, each keeping `window` credits and purchases in
// flight with unique idempotency keys; every acknowledged reply is recorded.

struct AckedPurchase {
  std::string key;
  Purchase p;
};
struct AckedCredit {
  std::string user, key;
  int64_t amount = 0;
  CreditReply r;
};

struct Load {
  std::mutex mu;
  std::vector<AckedPurchase> purchases;
  std::vector<AckedCredit> credits;
  std::map<std::string, int> refused;   // expected domain refusals, by code
  std::vector<std::string> unexpected;  // anything else
  int lost = 0;                         // failed by the crash (connection lost)
  int64_t unanswered = 0;               // still in flight when the server was killed
  std::atomic<int64_t> acks{0};         // successful replies
  std::atomic<int> in_flight{0};
  std::atomic<bool> stop{false};    // issue nothing more
  std::atomic<bool> killed{false};  // failures from now on are the crash's

  void failed(Errc code, std::string rendered) {
    std::lock_guard lock(mu);
    if (code == Errc::insufficient_funds || code == Errc::out_of_stock)
      ++refused[std::string(to_string(code))];
    else if (code == Errc::unavailable && killed) ++lost;
    else unexpected.push_back(std::move(rendered));
  }
  std::string summary() {
    std::lock_guard lock(mu);
    std::ostringstream os;
    os << purchases.size() << " purchases and " << credits.size() << " credits acknowledged";
    for (const auto& [k, n] : refused) os << ", " << n << " " << k;
    os << ", " << lost + unanswered << " without reply (server killed)";
    return os.str();
  }
};

struct Worker {
  shop_actor shop;
  std::shared_ptr<Load> load;
  Catalog catalog;
  std::string key_prefix;
  std::mt19937_64 rng;
  int64_t next_key = 0;
};

inline void issue(caf::event_based_actor* self, std::shared_ptr<Worker> w) {
  if (w->load->stop) return;
  ++w->load->in_flight;
  std::string key = w->key_prefix + std::to_string(w->next_key++);
  std::string user = w->catalog.users[w->rng() % w->catalog.users.size()];
  const auto timeout = std::chrono::seconds(120 * kSlow);
  auto fail = [self, w](caf::error& e) {
    --w->load->in_flight;
    w->load->failed(errc_of(e), self->system().render(e));
    issue(self, w);
  };
  if (w->rng() % 100 < 30) {
    int64_t amount = 200 + static_cast<int64_t>(w->rng() % 801);
    self->request(w->shop, timeout, credit_atom::value, user, amount, key)
        .then(
            [self, w, user, key, amount](CreditReply& r) {
              --w->load->in_flight;
              ++w->load->acks;
              {
                std::lock_guard lock(w->load->mu);
                w->load->credits.push_back(AckedCredit{user, key, amount, r});
              }
              issue(self, w);
            },
            fail);
  } else {
    std::string card = w->catalog.cards[w->rng() % w->catalog.cards.size()].first;
    self->request(w->shop, timeout, purchase_atom::value, card, user, key)
        .then(
            [self, w, key](Purchase& p) {
              --w->load->in_flight;
              ++w->load->acks;
              {
                std::lock_guard lock(w->load->mu);
                w->load->purchases.push_back(AckedPurchase{key, p});
              }
              issue(self, w);
            },
            fail);
  }
}

// One connection (its own actor system) and one worker actor on it.
class LoadClient {
 public:
  LoadClient(uint16_t port, std::shared_ptr<Load> load, const Catalog& cat, std::string key_prefix,
             uint64_t seed, int window) {
    auto shop = connect_shop(sys_, HostPort{"127.0.0.1", port}, false);
    if (!shop) BOOST_FAIL("load client cannot connect: " << sys_.render(shop.error()));
    auto w = std::make_shared<Worker>(
        Worker{*shop, std::move(load), cat, std::move(key_prefix), std::mt19937_64(seed), 0});
    worker_ = sys_.spawn(
        [w, window](caf::event_based_actor* self, int) -> caf::behavior {
          for (int i = 0; i < window; ++i) issue(self, w);
          return {[](const std::string&) {}};  // lives until killed
        },
        0);  // dummy int: CAF 0.17.6 dereferences a null args tuple for arg-less spawns (UBSan)
  }
  ~LoadClient() { halt(); }
  // Kills the worker (pending requests are dropped) and waits for it.
  void halt() {
    if (!worker_) return;
    caf::anon_send_exit(worker_, caf::exit_reason::kill);
    caf::scoped_actor self{sys_};
    self->wait_for(worker_);
    worker_ = caf::actor{};
  }

 private:
  NodeConfig cfg_{TlsOptions{}};
  caf::actor_system sys_{cfg_};
  caf::actor worker_;
};

// Starts `clients` connections with `window` requests in flight each.
inline std::vector<std::unique_ptr<LoadClient>> start_load(uint16_t port,
                                                           std::shared_ptr<Load> load,
                                                           const Catalog& cat,
                                                           const std::string& tag, int clients,
                                                           int window, std::mt19937_64& rng) {
  std::vector<std::unique_ptr<LoadClient>> out;
  for (int i = 0; i < clients; ++i)
    out.push_back(std::make_unique<LoadClient>(
        port, load, cat, tag + "-c" + std::to_string(i) + "-", rng(), window));
  return out;
}

inline void wait_acks(Load& load, int64_t target, std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (load.acks < target) {
    if (Clock::now() >= deadline) BOOST_FAIL("only " << load.acks << " of " << target << " acks");
    std::this_thread::sleep_for(1ms);
  }
}

// ---------------------------------------------------------------------------
// The server's answers, collected over CAF.

struct Views {
  ShopStatus status;
  std::map<std::string, int64_t> wallets;
  std::map<std::string, CardInfo> cards;                      // card_atom, one by one
  std::vector<CardInfo> card_list;                            // cards_atom
  std::map<std::string, Purchase> purchases;                  // from every user's history
  std::map<std::string, std::vector<std::string>> histories;  // user -> purchase ids
};

inline Views capture(Client& c, const std::set<std::string>& users,
                     const std::set<std::string>& cards) {
  Views v;
  v.status = c.status();
  const int64_t at = v.status.log_position;
  for (const auto& u : users) {
    auto w = c.ask<WalletView>(wallet_atom::value, u, at);
    BOOST_REQUIRE_MESSAGE(w, "wallet " << u << ": " << c.why(w));
    v.wallets[u] = w->balance;
    // Every page of the user's history, following the cursor.
    for (int64_t from = 0;;) {
      auto h = c.ask<PurchasePage>(history_atom::value, u, from, kMaxPageLimit, at);
      BOOST_REQUIRE_MESSAGE(h, "history " << u << ": " << c.why(h));
      for (auto& p : h->purchases) {
        v.histories[u].push_back(p.purchase_id);
        BOOST_TEST(v.purchases.emplace(p.purchase_id, p).second,
                   "purchase listed twice " << p.purchase_id);
      }
      if (h->next == 0) break;
      from = h->next;
    }
  }
  for (const auto& id : cards) {
    auto ci = c.ask<CardInfo>(card_atom::value, id, at);
    BOOST_REQUIRE_MESSAGE(ci, "card " << id << ": " << c.why(ci));
    v.cards[id] = *ci;
  }
  for (std::string from;;) {
    auto page = c.ask<CardPage>(cards_atom::value, from, kMaxPageLimit, at);
    BOOST_REQUIRE_MESSAGE(page, "cards: " << c.why(page));
    v.card_list.insert(v.card_list.end(), page->cards.begin(), page->cards.end());
    if (page->next.empty()) break;
    from = page->next;
  }
  return v;
}

inline bool same_card(const CardInfo& a, const CardInfo& b) {
  return a.id == b.id && a.name == b.name && a.price == b.price && a.value == b.value &&
         a.available == b.available && a.assigned == b.assigned && a.expired == b.expired &&
         a.revoked == b.revoked;
}

// Everything the server answers equals what the log says (auditor's view),
// and equals `giftcard replay`.
inline void check_views_against_log(const Views& v, const LogFacts& f,
                                    const nlohmann::json& replay) {
  BOOST_TEST(f.gapless);
  BOOST_TEST(v.status.log_position == f.last);
  BOOST_TEST(v.status.projection_position == f.last);
  // Wallets: balance = credited - debited, for every user the log knows.
  std::set<std::string> users;
  for (const auto& [u, _] : f.credited) users.insert(u);
  for (const auto& [u, _] : f.debited) users.insert(u);
  BOOST_TEST(v.wallets.size() == users.size());
  for (const auto& u : users) {
    int64_t expect = (f.credited.count(u) ? f.credited.at(u) : 0) -
                     (f.debited.count(u) ? f.debited.at(u) : 0);
    auto it = v.wallets.find(u);
    BOOST_TEST((it != v.wallets.end() && it->second == expect),
               "wallet " << u << ": server " << (it == v.wallets.end() ? -1 : it->second)
                         << ", log " << expect);
    BOOST_TEST(expect >= 0, u);
  }
  // Cards: counts derived from the log.
  BOOST_TEST(v.cards.size() == f.cards.size());
  for (const auto& [id, c] : f.cards) {
    auto it = v.cards.find(id);
    BOOST_REQUIRE_MESSAGE(it != v.cards.end(), "server has no card " << id);
    const CardInfo& s = it->second;
    BOOST_TEST(s.name == c.name, id);
    BOOST_TEST(s.price == c.price, id);
    BOOST_TEST(s.value == c.value, id);
    BOOST_TEST(s.assigned == c.assigned, id);
    BOOST_TEST(s.revoked == c.revoked, id);
    BOOST_TEST(s.expired == c.expired, id);
    BOOST_TEST(s.available == c.added - c.assigned - c.revoked - c.expired, id);
  }
  BOOST_TEST(v.card_list.size() == v.cards.size());
  for (const auto& c : v.card_list)
    BOOST_TEST((v.cards.count(c.id) && same_card(c, v.cards.at(c.id))), "cards_atom " << c.id);
  // Purchases: one per CodeAssigned, no code sold twice.
  BOOST_TEST(static_cast<int64_t>(v.purchases.size()) == f.purchases);
  for (const auto& [code, n] : f.code_sales)
    BOOST_TEST(n == 1, "code " << code << " sold " << n << " times");

  // giftcard replay (the whole log) says the same as the live server.
  BOOST_TEST(replay.at("position").get<int64_t>() == v.status.log_position);
  std::map<std::string, int64_t> replay_wallets;
  for (const auto& w : replay.at("wallets"))
    replay_wallets[w.at("user_id").get<std::string>()] = w.at("balance").get<int64_t>();
  BOOST_TEST((replay_wallets == v.wallets), "replay wallets differ from the server's");
  BOOST_TEST(replay.at("cards").size() == v.cards.size());
  for (const auto& rc : replay.at("cards")) {
    const std::string id = rc.at("id").get<std::string>();
    CardInfo r{id,
               rc.at("name").get<std::string>(),
               rc.at("price").get<int64_t>(),
               rc.at("value").get<int64_t>(),
               rc.at("available").get<int64_t>(),
               rc.at("assigned").get<int64_t>(),
               rc.at("expired").get<int64_t>(),
               rc.at("revoked").get<int64_t>(),
               0};
    BOOST_TEST((v.cards.count(id) && same_card(r, v.cards.at(id))), "replay card " << id);
    if (f.cards.count(id)) {
      BOOST_TEST(rc.at("sold").get<int64_t>() == f.cards.at(id).assigned, id);
      BOOST_TEST(rc.at("revenue").get<int64_t>() == f.cards.at(id).revenue, id);
    }
  }
  BOOST_TEST(replay.at("purchases").size() == v.purchases.size());
  for (const auto& rp : replay.at("purchases")) {
    const std::string id = rp.at("purchase_id").get<std::string>();
    auto it = v.purchases.find(id);
    BOOST_REQUIRE_MESSAGE(it != v.purchases.end(),
                          "replay has a purchase the server lacks: " << id);
    const Purchase& p = it->second;
    BOOST_TEST(rp.at("card_id").get<std::string>() == p.card_id, id);
    BOOST_TEST(rp.at("user_id").get<std::string>() == p.user_id, id);
    BOOST_TEST(rp.at("code").get<std::string>() == p.code, id);
    BOOST_TEST(rp.at("price").get<int64_t>() == p.price, id);
    BOOST_TEST(rp.at("position").get<int64_t>() == p.position, id);
    BOOST_TEST(rp.at("purchased_at").get<std::string>() == format_rfc3339(p.purchased_at), id);
  }
}

// Every acknowledged write is in the log, exactly as acknowledged, and every
// acknowledged purchase is found by lookup with identical fields.
inline void check_acked(Client& c, Load& load, const LogFacts& f) {
  std::lock_guard lock(load.mu);
  std::set<std::string> ids;
  for (const auto& a : load.purchases) {
    const Purchase& p = a.p;
    BOOST_TEST(ids.insert(p.purchase_id).second, "acknowledged twice: " << p.purchase_id);
    auto got = c.ask<Purchase>(lookup_atom::value, p.purchase_id, int64_t{0});
    BOOST_REQUIRE_MESSAGE(got,
                          "lookup " << p.purchase_id << " (key " << a.key << "): " << c.why(got));
    BOOST_TEST(same_purchase(*got, p), "lookup " << p.purchase_id << " differs");
    auto ev = f.events.find(p.position);
    BOOST_REQUIRE_MESSAGE(ev != f.events.end(), "no event at " << p.position);
    const auto& d = ev->second.at("data");
    BOOST_TEST(ev->second.at("type").get<std::string>() == "CodeAssigned", p.position);
    BOOST_TEST(d.value("purchase_id", "") == p.purchase_id, p.position);
    BOOST_TEST(d.value("code", "") == p.code, p.position);
    BOOST_TEST(d.value("idempotency_key", "") == a.key, p.position);
    auto debit = f.events.find(p.position + 1);
    BOOST_REQUIRE(debit != f.events.end());
    BOOST_TEST(debit->second.at("type").get<std::string>() == "WalletDebited", p.position + 1);
    BOOST_TEST(debit->second.at("data").value("amount", int64_t{-1}) == p.price, p.position + 1);
  }
  for (const auto& a : load.credits) {
    auto ev = f.events.find(a.r.position);
    BOOST_REQUIRE_MESSAGE(ev != f.events.end(), "no event at " << a.r.position);
    const auto& d = ev->second.at("data");
    BOOST_TEST(ev->second.at("type").get<std::string>() == "WalletCredited", a.r.position);
    BOOST_TEST(d.value("user_id", "") == a.user, a.r.position);
    BOOST_TEST(d.value("amount", int64_t{-1}) == a.amount, a.r.position);
    BOOST_TEST(d.value("balance_after", int64_t{-1}) == a.r.balance, a.r.position);
    BOOST_TEST(d.value("idempotency_key", "") == a.key, a.r.position);
  }
  BOOST_TEST(load.unexpected.empty(), load.unexpected.size()
                                          << " unexpected failures, first: "
                                          << (load.unexpected.empty() ? "" : load.unexpected[0]));
}

// Sends rebuild_atom and records the outcome; killed with exit_reason::kill.
struct RebuildCall {
  std::atomic<bool> done{false};
  std::mutex mu;
  caf::expected<RebuildInfo> result{caf::make_error(caf::sec::request_timeout)};
};

inline caf::actor start_rebuild(Client& c, std::shared_ptr<RebuildCall> call) {
  return c.system().spawn(
      [shop = c.shop(), call](caf::event_based_actor* self, int) -> caf::behavior {
        self->request(shop, std::chrono::seconds(300), rebuild_atom::value)
            .then(
                [call](RebuildInfo& r) {
                  std::lock_guard lock(call->mu);
                  call->result = r;
                  call->done = true;
                },
                [call](caf::error& e) {
                  std::lock_guard lock(call->mu);
                  call->result = e;
                  call->done = true;
                });
        return {[](const std::string&) {}};
      },
      0);
}

inline void stop_load(Load& load) {
  load.stop = true;
  auto deadline = Clock::now() + std::chrono::milliseconds(60000 * kSlow);
  while (load.in_flight > 0 && Clock::now() < deadline) std::this_thread::sleep_for(2ms);
  BOOST_REQUIRE_MESSAGE(load.in_flight == 0, load.in_flight << " requests never answered");
}

}  // namespace giftcard::crash_test
