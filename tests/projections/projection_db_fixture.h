// What the ProjectionDb tests share (projection_db_test.cc, the reads, the
// exactly-once and checkpoint cases; projection_db_rebuild_test.cc, the
// generations): a store of either backend, a random consistent shop, the
// small hand-checked shop, the generation key space, and thread helpers.
#pragma once

#include <unistd.h>

#include <atomic>
#include <boost/test/unit_test.hpp>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <map>
#include <mutex>
#include <random>
#include <sstream>

#include "projections/projection_db.h"
#include "projections/read_models.h"
#include "store/keys.h"
#include "store/memory_event_store.h"
#include "store/rocks_event_store.h"
#include "tests/support/be.h"
#include "tests/support/models.h"

namespace giftcard::test {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

inline std::string fresh_dir() {
  static std::atomic<int> n{0};
  auto p = fs::temp_directory_path() /
           ("gc-projdb-" + std::to_string(::getpid()) + "-" + std::to_string(++n));
  fs::remove_all(p);
  return p.string();
}

// A store of either backend; a RocksDB one can be closed and reopened.
struct TestStore {
  bool rocks;
  std::string dir;
  std::unique_ptr<EventStore> store;

  explicit TestStore(bool rocks_backend) : rocks(rocks_backend) {
    if (rocks) {
      dir = fresh_dir();
      open();
    } else {
      store = NewMemoryEventStore();
    }
  }
  ~TestStore() {
    if (store) store->Close();
    store.reset();
    if (rocks) fs::remove_all(dir);
  }
  void open() {
    StoreOptions so;
    so.path = dir;
    Status s = OpenRocksEventStore(so, &store);
    BOOST_REQUIRE_MESSAGE(s.ok(), s.ToString());
  }
  // Closes and reopens (RocksDB only). Every ProjectionDb on it must be gone.
  void reopen() {
    BOOST_REQUIRE(rocks);
    store->Close();
    store.reset();
    open();
  }
  EventStore* get() const { return store.get(); }
  EventStore* operator->() const { return store.get(); }
};

inline std::unique_ptr<ProjectionDb> open_db(EventStore* s) {
  std::unique_ptr<ProjectionDb> db;
  Status st = ProjectionDb::Open(s, &db);
  BOOST_REQUIRE_MESSAGE(st.ok(), st.ToString());
  return db;
}

inline std::vector<StoredEvent> read(EventStore* s, int64_t from, size_t n) {
  std::vector<StoredEvent> out;
  Status st = s->ReadAll(from, n, &out);
  BOOST_REQUIRE_MESSAGE(st.ok(), st.ToString());
  return out;
}

inline std::string show(const CardView& c) {
  std::ostringstream o;
  o << "{" << c.id << " '" << c.name << "' price=" << c.price << " value=" << c.value
    << " available=" << c.available << " assigned=" << c.assigned << " expired=" << c.expired
    << " revoked=" << c.revoked << " sold=" << c.sold << " revenue=" << c.revenue << "}";
  return o.str();
}
inline std::string show(const PurchaseView& p) {
  std::ostringstream o;
  o << "{" << p.purchase_id << " card=" << p.card_id << " user=" << p.user_id << " code=" << p.code
    << " price=" << p.price << " at=" << p.purchased_at << " pos=" << p.position << "}";
  return o.str();
}

// Generates a consistent random shop: cards, code batches, credits, purchases
// (CodeAssigned + WalletDebited in one request), revocations and expiries.
class ShopGen {
 public:
  // `tag` prefixes every card, code, purchase and key it makes (two
  // generators on one log must not make the same purchase id); users are
  // shared.
  explicit ShopGen(uint64_t seed, std::string tag = "", int users = 24, int max_cards = 5)
      : rng_(seed), tag_(std::move(tag)), max_cards_(max_cards) {
    for (int u = 0; u < users; ++u) users_.push_back("u" + std::to_string(u));
  }

  // One logical operation: one or two events.
  std::vector<std::pair<std::string, Event>> op() {
    if (cards_.empty() || (static_cast<int>(cards_.size()) < max_cards_ && pick(25) == 0)) {
      Card c{
          tag_ + "card" + std::to_string(cards_.size()), 10 + static_cast<int64_t>(pick(90)), {}};
      cards_.push_back(c);
      return {{"card-" + c.id, CardCreated{c.id, "Card " + c.id, c.price, c.price + 5}}};
    }
    Card& card = cards_[pick(cards_.size())];
    const std::string& user = users_[pick(users_.size())];
    int r = static_cast<int>(pick(100));
    if (r < 12 || card.avail.empty()) {
      CodesAdded a{card.id, {}};
      for (size_t i = 0, n = 1 + pick(12); i < n; ++i) {
        std::string code = tag_ + "K" + std::to_string(++codes_);
        a.codes.push_back({code, 0});
        card.avail.push_back(code);
      }
      return {{"card-" + card.id, a}};
    }
    if (r < 40 || balance_[user] < card.price) {
      int64_t amount = 1 + static_cast<int64_t>(pick(300));
      balance_[user] += amount;
      return {{"wallet-" + user, WalletCredited{user, amount, balance_[user],
                                                tag_ + "c" + std::to_string(++credits_)}}};
    }
    if (r < 88) {
      std::string code = card.avail.front();
      card.avail.pop_front();
      balance_[user] -= card.price;
      std::string pid = tag_ + "p" + std::to_string(++purchases_);
      return {{"card-" + card.id, CodeAssigned{card.id, code, pid, user, card.price, "k" + pid}},
              {"wallet-" + user, WalletDebited{user, card.price, balance_[user], pid, card.id}}};
    }
    if (r < 94) {
      std::string code = card.avail.back();
      card.avail.pop_back();
      return {{"card-" + card.id, CodeRevoked{card.id, code}}};
    }
    CodesExpired x{card.id, {}};
    for (size_t i = 0, n = 1 + pick(3); i < n && !card.avail.empty(); ++i) {
      x.codes.push_back(card.avail.front());
      card.avail.pop_front();
    }
    return {{"card-" + card.id, x}};
  }

  // Appends `ops` operations, at most `per_request` per append request.
  void append_ops(EventStore* s, int ops, int per_request = 64) {
    while (ops > 0) {
      std::vector<std::pair<std::string, Event>> evs;
      for (int i = 0; i < per_request && ops > 0; ++i, --ops)
        for (auto& e : op()) evs.push_back(std::move(e));
      append(s, evs);
    }
  }

  int64_t purchases() const { return purchases_; }

 private:
  struct Card {
    std::string id;
    int64_t price;
    std::deque<std::string> avail;
  };
  size_t pick(size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng_); }

  std::mt19937_64 rng_;
  std::string tag_;
  int max_cards_;
  std::vector<std::string> users_;
  std::vector<Card> cards_;
  std::map<std::string, int64_t> balance_;
  int64_t codes_ = 0, credits_ = 0, purchases_ = 0;
};

// The small, hand-checked shop of the view tests. Returns the purchase
// results by purchase id.
inline std::map<std::string, AppendResult> write_small_shop(EventStore* s) {
  std::map<std::string, AppendResult> p;
  append(s, {{"card-c", CardCreated{"c", "Card C", 100, 120}}});
  append(s, {{"card-d", CardCreated{"d", "Card D", 50, 50}}});
  append(s, {{"card-c",
              CodesAdded{"c", {{"C-1", 0}, {"C-2", 0}, {"C-3", 0}, {"C-4", 0}, {"C-5", 0}}}}});
  append(s, {{"card-d", CodesAdded{"d", {{"D-1", 0}, {"D-2", 0}, {"D-3", 0}}}}});
  append(s, {{"wallet-alice", WalletCredited{"alice", 500, 500, "k"}}});
  append(s, {{"wallet-alfred", WalletCredited{"alfred", 100, 100, "k"}}});
  append(s, {{"wallet-bob", WalletCredited{"bob", 100, 100, "k"}}});
  auto buy = [&](const std::string& pid, const std::string& card, const std::string& code,
                 const std::string& user, int64_t price, int64_t after) {
    p[pid] = append(s, {{"card-" + card, CodeAssigned{card, code, pid, user, price, "x" + pid}},
                        {"wallet-" + user, WalletDebited{user, price, after, pid, card}}});
  };
  buy("p1", "c", "C-1", "alice", 100, 400);
  buy("p2", "c", "C-2", "bob", 100, 0);
  buy("p3", "d", "D-1", "alice", 50, 350);
  buy("p4", "c", "C-3", "alice", 100, 250);
  buy("p5", "d", "D-2", "alfred", 50, 50);
  append(s, {{"card-c", CodeRevoked{"c", "C-5"}}});
  append(s, {{"card-d", CodesExpired{"d", {"D-3"}}}});
  return p;
}

inline std::vector<std::string> ids(const std::vector<PurchaseView>& ps) {
  std::vector<std::string> out;
  for (const auto& p : ps) out.push_back(p.purchase_id);
  return out;
}
inline std::vector<std::string> names(const std::vector<std::pair<std::string, int64_t>>& ws) {
  std::vector<std::string> out;
  for (const auto& w : ws) out.push_back(w.first);
  return out;
}
using Strings = std::vector<std::string>;

// The generation prefix 'g' gen:be32 of projections/projection_db.cc.
inline std::string gen_prefix(uint32_t gen) {
  std::string be;
  keys::put_be64(be, gen);
  return "g" + be.substr(4);
}

// Generation -> number of keys, over the whole generation space "g...".
inline std::map<uint32_t, int> keys_by_generation(EventStore* s) {
  std::map<uint32_t, int> out;
  Status st = s->KvScan("g", "", [&](std::string_view k, std::string_view) {
    BOOST_REQUIRE_MESSAGE(k.size() >= 6, "short projection key");
    ++out[keys::get_be32(k.substr(1, 4))];
    return true;
  });
  BOOST_REQUIRE_MESSAGE(st.ok(), st.ToString());
  return out;
}

// A one-shot gate between threads.
class Gate {
 public:
  void open() {
    {
      std::lock_guard l(mu_);
      open_ = true;
    }
    cv_.notify_all();
  }
  bool wait(milliseconds timeout = milliseconds(30000)) {
    std::unique_lock l(mu_);
    return cv_.wait_for(l, timeout, [&] { return open_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
};

// Wakes a waiter whenever the store commits a batch (its subscription).
class LogSignal {
 public:
  explicit LogSignal(EventStore* s) : s_(s) {
    id_ = s_->Subscribe([this](const std::vector<StoredEvent>&) {
      { std::lock_guard l(mu_); }
      cv_.notify_all();
    });
  }
  ~LogSignal() { s_->Unsubscribe(id_); }
  // Blocks until pred() holds; pred is checked under the signal's lock, so a
  // commit between the check and the wait is not missed.
  template <class Pred>
  void wait(Pred pred) {
    std::unique_lock l(mu_);
    cv_.wait(l, pred);
  }
  void stop(std::atomic<bool>& flag) {
    {
      std::lock_guard l(mu_);
      flag = true;
    }
    cv_.notify_all();
  }

 private:
  EventStore* s_;
  uint64_t id_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
};

#define BOTH_BACKENDS(name)                            \
  BOOST_AUTO_TEST_CASE(name##_memory) { name(false); } \
  BOOST_AUTO_TEST_CASE(name##_rocks) { name(true); }

}  // namespace giftcard::test
