// ProjectionDb (projections/projection_db.h) on both store backends: the
// persisted fold equals the pure in-memory fold, every query answers from it,
// events are applied exactly once (overlaps skipped, gaps refused, the
// checkpoint survives a reopen and a crash between append and apply), and a
// rebuild swaps in an equal generation and leaves nothing of the old one, also
// while other threads append and apply.
#include <unistd.h>

#include <atomic>
#include <boost/test/unit_test.hpp>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "projections/projection_db.h"
#include "projections/read_models.h"
#include "store/memory_event_store.h"
#include "store/rocks_event_store.h"

namespace giftcard {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

std::string fresh_dir() {
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

std::unique_ptr<ProjectionDb> open_db(EventStore* s) {
  std::unique_ptr<ProjectionDb> db;
  Status st = ProjectionDb::Open(s, &db);
  BOOST_REQUIRE_MESSAGE(st.ok(), st.ToString());
  return db;
}

AppendResult append(EventStore* s, const std::vector<std::pair<std::string, Event>>& evs) {
  AppendRequest r;
  for (const auto& [stream, e] : evs) r.events.push_back(PendingEvent::of(stream, e));
  AppendResult res;
  Status st = s->AppendAndWait(std::move(r), &res);
  BOOST_REQUIRE_MESSAGE(st.ok(), st.ToString());
  return res;
}

// The pure fold (read_models.h) of the log up to `up_to`.
ReadModels fold_log(EventStore* s, int64_t up_to = INT64_MAX) {
  ReadModels m;
  std::vector<StoredEvent> batch;
  int64_t next = 1;
  while (next <= up_to) {
    size_t want = static_cast<size_t>(std::min<int64_t>(4096, up_to - next + 1));
    Status st = s->ReadAll(next, want, &batch);
    BOOST_REQUIRE_MESSAGE(st.ok(), st.ToString());
    if (batch.empty()) break;
    for (const auto& e : batch) {
      Status a = apply(m, e);
      BOOST_REQUIRE_MESSAGE(a.ok(), a.ToString());
    }
    next = batch.back().position + 1;
  }
  return m;
}

ReadModels load(const ProjectionDb& db) {
  ReadModels m;
  Status st = db.LoadAll(&m);
  BOOST_REQUIRE_MESSAGE(st.ok(), st.ToString());
  return m;
}

std::vector<StoredEvent> read(EventStore* s, int64_t from, size_t n) {
  std::vector<StoredEvent> out;
  Status st = s->ReadAll(from, n, &out);
  BOOST_REQUIRE_MESSAGE(st.ok(), st.ToString());
  return out;
}

std::string show(const CardView& c) {
  std::ostringstream o;
  o << "{" << c.id << " '" << c.name << "' price=" << c.price << " value=" << c.value
    << " available=" << c.available << " assigned=" << c.assigned << " expired=" << c.expired
    << " revoked=" << c.revoked << " sold=" << c.sold << " revenue=" << c.revenue << "}";
  return o.str();
}
std::string show(const PurchaseView& p) {
  std::ostringstream o;
  o << "{" << p.purchase_id << " card=" << p.card_id << " user=" << p.user_id << " code=" << p.code
    << " price=" << p.price << " at=" << p.purchased_at << " pos=" << p.position << "}";
  return o.str();
}

// The first difference between two model sets, for failure messages.
std::string diff(const ReadModels& a, const ReadModels& b) {
  std::ostringstream o;
  if (a.position != b.position) o << "position " << a.position << " != " << b.position << "; ";
  if (a.recorded_at != b.recorded_at) o << "recorded_at " << a.recorded_at << " != " << b.recorded_at << "; ";
  auto keys_diff = [&](const char* what, const auto& x, const auto& y, auto&& fmt) {
    for (const auto& [k, v] : x) {
      auto it = y.find(k);
      if (it == y.end()) {
        o << what << " " << k << " only on the left; ";
        return;
      }
      if (!(it->second == v)) {
        o << what << " " << k << ": " << fmt(v) << " != " << fmt(it->second) << "; ";
        return;
      }
    }
    for (const auto& [k, v] : y)
      if (!x.count(k)) {
        o << what << " " << k << " only on the right; ";
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
      Card c{tag_ + "card" + std::to_string(cards_.size()), 10 + static_cast<int64_t>(pick(90)), {}};
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
      return {{"wallet-" + user,
               WalletCredited{user, amount, balance_[user], tag_ + "c" + std::to_string(++credits_)}}};
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
std::map<std::string, AppendResult> write_small_shop(EventStore* s) {
  std::map<std::string, AppendResult> p;
  append(s, {{"card-c", CardCreated{"c", "Card C", 100, 120}}});
  append(s, {{"card-d", CardCreated{"d", "Card D", 50, 50}}});
  append(s, {{"card-c", CodesAdded{"c", {{"C-1", 0}, {"C-2", 0}, {"C-3", 0}, {"C-4", 0}, {"C-5", 0}}}}});
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

std::vector<std::string> ids(const std::vector<PurchaseView>& ps) {
  std::vector<std::string> out;
  for (const auto& p : ps) out.push_back(p.purchase_id);
  return out;
}
std::vector<std::string> names(const std::vector<std::pair<std::string, int64_t>>& ws) {
  std::vector<std::string> out;
  for (const auto& w : ws) out.push_back(w.first);
  return out;
}
using Strings = std::vector<std::string>;

uint32_t be32(std::string_view s) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<unsigned char>(s[static_cast<size_t>(i)]);
  return v;
}
std::string gen_prefix(uint32_t gen) {
  std::string k(1, 'g');
  for (int i = 3; i >= 0; --i) k.push_back(static_cast<char>((gen >> (8 * i)) & 0xff));
  return k;
}
std::string be64(uint64_t v) {
  std::string s;
  for (int i = 7; i >= 0; --i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  return s;
}

// Generation -> number of keys, over the whole generation space "g...".
std::map<uint32_t, int> keys_by_generation(EventStore* s) {
  std::map<uint32_t, int> out;
  Status st = s->KvScan("g", "", [&](std::string_view k, std::string_view) {
    BOOST_REQUIRE_MESSAGE(k.size() >= 6, "short projection key");
    ++out[be32(k.substr(1, 4))];
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

#define BOTH_BACKENDS(name)                              \
  BOOST_AUTO_TEST_CASE(name##_memory) { name(false); } \
  BOOST_AUTO_TEST_CASE(name##_rocks) { name(true); }

}  // namespace

BOOST_AUTO_TEST_SUITE(projection_db)

// Applying the log in chunks of every size gives exactly the pure fold after
// every chunk; CatchUp from zero gives it too.
void fold_equals_pure_fold(bool rocks) {
  TestStore s(rocks);
  ShopGen gen(7);
  gen.append_ops(s.get(), 1500, 16);
  const int64_t last = s->LastPosition();
  BOOST_REQUIRE_GT(last, 1500);
  BOOST_REQUIRE_GT(gen.purchases(), 100);

  auto db = open_db(s.get());
  BOOST_TEST(db->position() == 0);
  BOOST_TEST(db->generation() == 1u);
  std::mt19937 rng(11);
  ReadModels expect;
  int64_t next = 1;
  int checks = 0;
  while (next <= last) {
    auto chunk = read(s.get(), next, 1 + rng() % 97);
    BOOST_REQUIRE_MESSAGE(db->Apply(chunk).ok(), "apply at " << next);
    for (const auto& e : chunk) BOOST_REQUIRE(apply(expect, e).ok());
    next = chunk.back().position + 1;
    BOOST_REQUIRE_EQUAL(db->position(), chunk.back().position);
    BOOST_REQUIRE_EQUAL(db->recorded_at(), chunk.back().recorded_at);
    if (rng() % 4 == 0 || next > last) {
      ++checks;
      ReadModels got = load(*db);
      CHECK_MODELS_EQUAL(got, expect);
      if (got != expect) break;
    }
  }
  BOOST_TEST(checks > 10);
  CHECK_MODELS_EQUAL(load(*db), fold_log(s.get()));

  // The same through CatchUp, on a second ProjectionDb after dropping the
  // models: progress reports every chunk.
  KvBatch wipe;
  wipe.delete_prefixes.push_back("");
  BOOST_REQUIRE(s->KvWrite(wipe).ok());
  db.reset();
  db = open_db(s.get());
  BOOST_TEST(db->position() == 0);
  std::vector<int64_t> progress;
  BOOST_REQUIRE(db->CatchUp(500, INT64_MAX, [&](int64_t p) { progress.push_back(p); }).ok());
  BOOST_TEST(db->position() == last);
  BOOST_TEST(progress.size() == static_cast<size_t>((last + 499) / 500));
  BOOST_TEST(progress.back() == last);
  CHECK_MODELS_EQUAL(load(*db), expect);
  // CatchUp with up_to stops there.
  wipe.delete_prefixes = {""};
  BOOST_REQUIRE(s->KvWrite(wipe).ok());
  db.reset();
  db = open_db(s.get());
  BOOST_REQUIRE(db->CatchUp(64, last / 2).ok());
  BOOST_TEST(db->position() == last / 2);
  CHECK_MODELS_EQUAL(load(*db), fold_log(s.get(), last / 2));
}
BOTH_BACKENDS(fold_equals_pure_fold)

// Every query on a small shop whose answers are known by hand.
void queries_answer_from_the_models(bool rocks) {
  TestStore s(rocks);
  auto results = write_small_shop(s.get());
  auto db = open_db(s.get());
  BOOST_REQUIRE(db->CatchUp().ok());
  BOOST_TEST(db->position() == 19);
  CHECK_MODELS_EQUAL(load(*db), fold_log(s.get()));

  CardView c, d;
  BOOST_REQUIRE(db->Card("c", &c).ok());
  BOOST_REQUIRE(db->Card("d", &d).ok());
  BOOST_TEST(show(c) == show(CardView{"c", "Card C", 100, 120, 1, 3, 0, 1, 3, 300}));
  BOOST_TEST(show(d) == show(CardView{"d", "Card D", 50, 50, 0, 2, 1, 0, 2, 100}));
  CardView none;
  BOOST_TEST(db->Card("nope", &none).IsNotFound());
  BOOST_TEST(db->Card("", &none).IsNotFound());
  std::vector<CardView> cards;
  BOOST_REQUIRE(db->Cards(&cards).ok());
  BOOST_REQUIRE_EQUAL(cards.size(), 2u);
  BOOST_TEST((cards[0] == c));
  BOOST_TEST((cards[1] == d));

  int64_t bal = -1;
  BOOST_REQUIRE(db->Balance("alice", &bal).ok());
  BOOST_TEST(bal == 250);
  BOOST_REQUIRE(db->Balance("alfred", &bal).ok());
  BOOST_TEST(bal == 50);
  BOOST_REQUIRE(db->Balance("bob", &bal).ok());
  BOOST_TEST(bal == 0);
  bal = -1;
  BOOST_REQUIRE(db->Balance("nobody", &bal).ok());
  BOOST_TEST(bal == 0);

  std::vector<std::pair<std::string, int64_t>> ws;
  BOOST_REQUIRE(db->Wallets("", "", 100, &ws).ok());
  BOOST_TEST(ws == (std::vector<std::pair<std::string, int64_t>>{{"alfred", 50}, {"alice", 250}, {"bob", 0}}));
  BOOST_REQUIRE(db->Wallets("al", "", 100, &ws).ok());
  BOOST_TEST(names(ws) == (Strings{"alfred", "alice"}));
  BOOST_REQUIRE(db->Wallets("al", "alfreda", 100, &ws).ok());
  BOOST_TEST(names(ws) == (Strings{"alice"}));
  BOOST_REQUIRE(db->Wallets("", "alice", 100, &ws).ok());
  BOOST_TEST(names(ws) == (Strings{"alice", "bob"}));
  BOOST_REQUIRE(db->Wallets("", "", 2, &ws).ok());
  BOOST_TEST(names(ws) == (Strings{"alfred", "alice"}));
  BOOST_REQUIRE(db->Wallets("", "b", 1, &ws).ok());
  BOOST_TEST(names(ws) == (Strings{"bob"}));
  BOOST_REQUIRE(db->Wallets("", "", 0, &ws).ok());
  BOOST_TEST(ws.empty());
  BOOST_REQUIRE(db->Wallets("z", "", 10, &ws).ok());
  BOOST_TEST(ws.empty());
  BOOST_REQUIRE(db->Wallets("bob", "", 10, &ws).ok());
  BOOST_TEST(names(ws) == (Strings{"bob"}));

  for (const auto& [pid, r] : results) {
    PurchaseView p;
    BOOST_REQUIRE_MESSAGE(db->Purchase(pid, &p).ok(), pid);
    BOOST_TEST(p.purchase_id == pid);
    BOOST_TEST(p.position == r.first_position);
    BOOST_TEST(p.purchased_at == r.recorded_at);
  }
  PurchaseView p1;
  BOOST_REQUIRE(db->Purchase("p1", &p1).ok());
  BOOST_TEST(show(p1) == show(PurchaseView{"p1", "c", "alice", "C-1", 100, results["p1"].recorded_at,
                                           results["p1"].first_position}));
  PurchaseView missing;
  BOOST_TEST(db->Purchase("p9", &missing).IsNotFound());

  std::vector<PurchaseView> ps;
  BOOST_REQUIRE(db->UserPurchases("alice", 100, &ps).ok());
  BOOST_TEST(ids(ps) == (Strings{"p1", "p3", "p4"}));
  BOOST_TEST(ps[1].card_id == "d");
  BOOST_TEST(ps[1].price == 50);
  BOOST_REQUIRE(db->UserPurchases("alice", 2, &ps).ok());
  BOOST_TEST(ids(ps) == (Strings{"p1", "p3"}));
  BOOST_REQUIRE(db->UserPurchases("al", 100, &ps).ok());  // a prefix of two users: neither
  BOOST_TEST(ps.empty());
  BOOST_REQUIRE(db->UserPurchases("bob", 100, &ps).ok());
  BOOST_TEST(ids(ps) == (Strings{"p2"}));
  BOOST_REQUIRE(db->UserPurchases("nobody", 100, &ps).ok());
  BOOST_TEST(ps.empty());
  BOOST_REQUIRE(db->RecentPurchases(3, &ps).ok());
  BOOST_TEST(ids(ps) == (Strings{"p5", "p4", "p3"}));
  BOOST_REQUIRE(db->RecentPurchases(100, &ps).ok());
  BOOST_TEST(ids(ps) == (Strings{"p5", "p4", "p3", "p2", "p1"}));
  BOOST_REQUIRE(db->RecentPurchases(0, &ps).ok());
  BOOST_TEST(ps.empty());
}
BOTH_BACKENDS(queries_answer_from_the_models)

// Pages: Cards(from, limit) and UserPurchases(user, from, limit) start at
// their cursor (an id, a log position), stop at `limit`, and pages chained by
// "the first one not returned" give every item exactly once, in order.
void pages_start_at_their_cursor(bool rocks) {
  TestStore s(rocks);
  auto results = write_small_shop(s.get());
  auto db = open_db(s.get());
  BOOST_REQUIRE(db->CatchUp().ok());
  auto card_ids = [](const std::vector<CardView>& cs) {
    Strings out;
    for (const auto& c : cs) out.push_back(c.id);
    return out;
  };
  std::vector<CardView> cs;
  BOOST_REQUIRE(db->Cards("", 1, &cs).ok());
  BOOST_TEST(card_ids(cs) == (Strings{"c"}));
  BOOST_REQUIRE(db->Cards("", 100, &cs).ok());
  BOOST_TEST(card_ids(cs) == (Strings{"c", "d"}));
  BOOST_REQUIRE(db->Cards("c", 100, &cs).ok());  // inclusive
  BOOST_TEST(card_ids(cs) == (Strings{"c", "d"}));
  BOOST_REQUIRE(db->Cards("c0", 100, &cs).ok());  // between two ids: the next one
  BOOST_TEST(card_ids(cs) == (Strings{"d"}));
  BOOST_REQUIRE(db->Cards("d", 1, &cs).ok());
  BOOST_TEST(card_ids(cs) == (Strings{"d"}));
  BOOST_REQUIRE(db->Cards("e", 100, &cs).ok());
  BOOST_TEST(cs.empty());
  BOOST_REQUIRE(db->Cards("", 0, &cs).ok());
  BOOST_TEST(cs.empty());

  const int64_t p1 = results["p1"].first_position, p3 = results["p3"].first_position,
                p4 = results["p4"].first_position;
  std::vector<PurchaseView> ps;
  BOOST_REQUIRE(db->UserPurchases("alice", 0, 100, &ps).ok());
  BOOST_TEST(ids(ps) == (Strings{"p1", "p3", "p4"}));
  BOOST_REQUIRE(db->UserPurchases("alice", -7, 100, &ps).ok());  // before the start: the start
  BOOST_TEST(ids(ps) == (Strings{"p1", "p3", "p4"}));
  BOOST_REQUIRE(db->UserPurchases("alice", p1, 1, &ps).ok());
  BOOST_TEST(ids(ps) == (Strings{"p1"}));
  BOOST_REQUIRE(db->UserPurchases("alice", p1 + 1, 100, &ps).ok());
  BOOST_TEST(ids(ps) == (Strings{"p3", "p4"}));
  BOOST_REQUIRE(db->UserPurchases("alice", p3, 100, &ps).ok());  // inclusive
  BOOST_TEST(ids(ps) == (Strings{"p3", "p4"}));
  BOOST_REQUIRE(db->UserPurchases("alice", p4, 100, &ps).ok());
  BOOST_TEST(ids(ps) == (Strings{"p4"}));
  BOOST_REQUIRE(db->UserPurchases("alice", p4 + 1, 100, &ps).ok());
  BOOST_TEST(ps.empty());
  BOOST_REQUIRE(db->UserPurchases("alice", INT64_MAX, 100, &ps).ok());
  BOOST_TEST(ps.empty());
  BOOST_REQUIRE(db->UserPurchases("alice", 0, 0, &ps).ok());
  BOOST_TEST(ps.empty());
  BOOST_REQUIRE(db->UserPurchases("al", 0, 100, &ps).ok());  // a prefix of two users: neither
  BOOST_TEST(ps.empty());
  BOOST_REQUIRE(db->UserPurchases("alfred", p1, 100, &ps).ok());
  BOOST_TEST(ids(ps) == (Strings{"p5"}));

  // A long history interleaved with a neighbour's ("whale" and "whale1"
  // share a prefix), walked in pages of several sizes.
  append(s.get(), {{"card-w", CardCreated{"w", "Card W", 1, 1}}});
  constexpr int kCodes = 2600;
  std::vector<CodeSpec> codes;
  for (int i = 0; i < kCodes; ++i) codes.push_back({"W-" + std::to_string(i), 0});
  append(s.get(), {{"card-w", CodesAdded{"w", codes}}});
  append(s.get(), {{"wallet-whale", WalletCredited{"whale", kCodes, kCodes, "k"}},
                   {"wallet-whale1", WalletCredited{"whale1", kCodes, kCodes, "k"}}});
  Strings whale;
  std::vector<int64_t> whale_at;
  int64_t left = kCodes, left1 = kCodes;
  for (int i = 0; i < kCodes;) {
    std::vector<std::pair<std::string, Event>> evs;
    for (int j = 0; j < 200 && i < kCodes; ++j, ++i) {
      const bool mine = i % 5 != 0;  // 4 of 5 to the whale
      const std::string user = mine ? "whale" : "whale1";
      const std::string pid = "pw" + std::to_string(i);
      int64_t& bal = mine ? left : left1;
      --bal;
      evs.push_back({"card-w", CodeAssigned{"w", "W-" + std::to_string(i), pid, user, 1, "x" + pid}});
      evs.push_back({"wallet-" + user, WalletDebited{user, 1, bal, pid, "w"}});
      if (mine) whale.push_back(pid);
    }
    AppendResult r = append(s.get(), evs);
    // This batch's purchases are at r.first_position + 2k (CodeAssigned first).
    for (size_t k = 0; k < evs.size() / 2; ++k)
      if (std::get<CodeAssigned>(evs[2 * k].second).user_id == "whale")
        whale_at.push_back(r.first_position + 2 * static_cast<int64_t>(k));
  }
  BOOST_REQUIRE(db->CatchUp().ok());
  BOOST_REQUIRE_EQUAL(whale.size(), whale_at.size());
  for (size_t limit : {size_t{1}, size_t{7}, size_t{1000}, whale.size() - 1, whale.size(),
                       whale.size() + 1}) {
    BOOST_TEST_CONTEXT("limit " << limit) {
      Strings got;
      int64_t from = 0;
      size_t pages = 0;
      for (;;) {
        // limit + 1, as the shop reads: the extra one is the next cursor.
        BOOST_REQUIRE(db->UserPurchases("whale", from, limit + 1, &ps).ok());
        ++pages;
        BOOST_REQUIRE(!ps.empty() || from == 0);
        const size_t take = std::min(limit, ps.size());
        for (size_t k = 0; k < take; ++k) {
          BOOST_REQUIRE_EQUAL(ps[k].user_id, "whale");
          BOOST_REQUIRE_EQUAL(ps[k].position, whale_at[got.size()]);
          got.push_back(ps[k].purchase_id);
        }
        if (ps.size() <= limit) break;
        BOOST_REQUIRE_GT(ps[limit].position, ps[limit - 1].position);
        from = ps[limit].position;
      }
      BOOST_TEST((got == whale));
      BOOST_TEST(pages == (whale.size() + limit - 1) / limit);
    }
  }
  BOOST_REQUIRE(db->UserPurchases("whale1", whale_at[5], 3, &ps).ok());
  BOOST_REQUIRE_EQUAL(ps.size(), 3u);
  for (const auto& p : ps) {
    BOOST_TEST(p.user_id == "whale1");
    BOOST_TEST(p.position > whale_at[5]);
  }
}
BOTH_BACKENDS(pages_start_at_their_cursor)

// Overlapping ranges are skipped; a gap is refused and changes nothing, also
// when the batch starts with events that would fit.
void exactly_once(bool rocks) {
  TestStore s(rocks);
  ShopGen gen(3);
  gen.append_ops(s.get(), 300, 8);
  const int64_t last = s->LastPosition();
  auto db = open_db(s.get());
  auto all = read(s.get(), 1, 100000);
  BOOST_REQUIRE_EQUAL(static_cast<int64_t>(all.size()), last);
  auto range = [&](int64_t from, int64_t to) {  // positions [from, to]
    return std::vector<StoredEvent>(all.begin() + (from - 1), all.begin() + to);
  };
  BOOST_REQUIRE(db->Apply(range(1, 100)).ok());
  const ReadModels at100 = load(*db);
  CHECK_MODELS_EQUAL(at100, fold_log(s.get(), 100));

  // Again, and every sub-range of it: nothing changes.
  BOOST_REQUIRE(db->Apply(range(1, 100)).ok());
  BOOST_REQUIRE(db->Apply(range(40, 60)).ok());
  BOOST_REQUIRE(db->Apply(range(100, 100)).ok());
  BOOST_REQUIRE(db->Apply({}).ok());
  BOOST_TEST(db->position() == 100);
  CHECK_MODELS_EQUAL(load(*db), at100);

  // An overlap that reaches further applies only the new part.
  BOOST_REQUIRE(db->Apply(range(50, 150)).ok());
  BOOST_TEST(db->position() == 150);
  const ReadModels at150 = load(*db);
  CHECK_MODELS_EQUAL(at150, fold_log(s.get(), 150));

  // Gaps: entirely ahead, or ahead after a part that would fit.
  Status g1 = db->Apply(range(152, 160));
  BOOST_TEST(g1.IsInvalidArgument(), g1.ToString());
  Status g2 = db->Apply(range(140, 155));
  BOOST_TEST(g2.ok());  // contiguous overlap: fine
  BOOST_TEST(db->position() == 155);
  auto gapped = range(150, 158);
  gapped.erase(gapped.begin() + 7);  // drop position 157
  Status g3 = db->Apply(gapped);
  BOOST_TEST(g3.IsInvalidArgument(), g3.ToString());
  BOOST_TEST(g3.message().find("157") != std::string::npos, g3.message());
  BOOST_TEST(db->position() == 155);  // 156 fitted, but the batch is all or nothing
  CHECK_MODELS_EQUAL(load(*db), fold_log(s.get(), 155));

  // And the rest applies once.
  BOOST_REQUIRE(db->Apply(range(1, last)).ok());
  BOOST_REQUIRE(db->CatchUp().ok());
  BOOST_REQUIRE(db->Apply(range(1, last)).ok());
  BOOST_TEST(db->position() == last);
  CHECK_MODELS_EQUAL(load(*db), fold_log(s.get()));
}
BOTH_BACKENDS(exactly_once)

// The checkpoint (and the active generation) survive a reopen: the models
// resume where they were, and catching up gives the full fold.
BOOST_AUTO_TEST_CASE(checkpoint_survives_reopen) {
  TestStore s(true);
  ShopGen gen(5);
  gen.append_ops(s.get(), 400, 16);
  int64_t applied = 0;
  Micros applied_at = 0;
  ReadModels before;
  {
    auto db = open_db(s.get());
    BOOST_REQUIRE(db->CatchUp(128).ok());
    BOOST_REQUIRE(db->Rebuild(nullptr).ok());  // generation 2 from now on
    BOOST_TEST(db->generation() == 2u);
    gen.append_ops(s.get(), 100, 16);
    BOOST_REQUIRE(db->CatchUp(128, s->LastPosition() - 37).ok());
    applied = db->position();
    applied_at = db->recorded_at();
    before = load(*db);
    BOOST_TEST(before.position == applied);
  }
  BOOST_REQUIRE_GT(applied, 0);
  s.reopen();
  {
    auto db = open_db(s.get());
    BOOST_TEST(db->position() == applied);
    BOOST_TEST(db->recorded_at() == applied_at);
    BOOST_TEST(db->generation() == 2u);
    CHECK_MODELS_EQUAL(load(*db), before);
    gen.append_ops(s.get(), 200, 16);
    BOOST_REQUIRE(db->CatchUp().ok());
    BOOST_TEST(db->position() == s->LastPosition());
    CHECK_MODELS_EQUAL(load(*db), fold_log(s.get()));
    before = load(*db);
  }
  s.reopen();
  auto db = open_db(s.get());
  BOOST_TEST(db->position() == s->LastPosition());
  CHECK_MODELS_EQUAL(load(*db), before);
  BOOST_TEST(keys_by_generation(s.get()).size() == 1u);
}

// A crash between an append and its projection update: the events are in the
// log, the models are still at the old checkpoint. After reopening, CatchUp
// applies exactly the missing events: nothing lost, nothing twice.
BOOST_AUTO_TEST_CASE(crash_between_append_and_projection_update) {
  TestStore s(true);
  ShopGen gen(9);
  gen.append_ops(s.get(), 250, 8);
  int64_t checkpoint = 0;
  {
    auto db = open_db(s.get());
    BOOST_REQUIRE(db->CatchUp().ok());
    checkpoint = db->position();
    // These commit, but the process dies before the driver applies them.
    gen.append_ops(s.get(), 100, 4);
    append(s.get(), {{"wallet-u1", WalletCredited{"u1", 1000000, 0, "late"}}});
  }
  const int64_t last = s->LastPosition();
  BOOST_REQUIRE_GT(last, checkpoint);
  s.reopen();
  BOOST_TEST(s->LastPosition() == last);
  auto db = open_db(s.get());
  BOOST_TEST(db->position() == checkpoint);
  CHECK_MODELS_EQUAL(load(*db), fold_log(s.get(), checkpoint));
  // The driver would first try the whole log again (e.g. a subscription batch
  // it saw before the crash): skipped up to the checkpoint.
  BOOST_REQUIRE(db->Apply(read(s.get(), 1, 100000)).ok());
  BOOST_REQUIRE(db->CatchUp().ok());
  BOOST_TEST(db->position() == last);
  ReadModels got = load(*db);
  ReadModels want = fold_log(s.get());
  CHECK_MODELS_EQUAL(got, want);
  int64_t u1_before = fold_log(s.get(), last - 1).balances["u1"];
  BOOST_TEST(got.balances["u1"] == u1_before + 1000000);  // the late credit, once
  // Nothing counted twice: every purchase of the log is there once.
  BOOST_TEST(static_cast<int64_t>(got.purchases.size()) == gen.purchases());
  size_t listed = 0;
  for (const auto& [u, v] : got.user_purchases) listed += v.size();
  BOOST_TEST(listed == got.purchases.size());
}

// Rebuild gives the live models in a new generation, drops every key of the
// old one, and ignores the leftovers of an interrupted rebuild.
void rebuild_swaps_generations(bool rocks) {
  TestStore s(rocks);
  ShopGen gen(13);
  gen.append_ops(s.get(), 600, 16);
  auto db = open_db(s.get());
  BOOST_REQUIRE(db->CatchUp().ok());
  const ReadModels live = load(*db);
  CHECK_MODELS_EQUAL(live, fold_log(s.get()));
  BOOST_TEST(keys_by_generation(s.get()).size() == 1u);
  BOOST_TEST(keys_by_generation(s.get()).count(1) == 1u);

  // Leftovers of a rebuild into generation 2 that died half way: a ghost
  // wallet and purchase, an undecodable card and a checkpoint far ahead.
  KvBatch junk;
  const std::string g2 = gen_prefix(2);
  junk.puts.emplace_back(g2 + "bghost", be64(777));
  junk.puts.emplace_back(g2 + "bu1", be64(123456789));
  junk.puts.emplace_back(g2 + "ccard0", "not a card view");
  junk.puts.emplace_back(g2 + "pghost-purchase", "junk");
  junk.puts.emplace_back(g2 + "k", be64(999999) + be64(1));
  BOOST_REQUIRE(s->KvWrite(junk).ok());

  RebuildReport r;
  std::vector<int64_t> progress;
  Status st = db->Rebuild(&r, [&](int64_t p) { progress.push_back(p); });
  BOOST_REQUIRE_MESSAGE(st.ok(), st.ToString());
  BOOST_TEST(r.generation == 2u);
  BOOST_TEST(db->generation() == 2u);
  BOOST_TEST(r.position == s->LastPosition());
  BOOST_TEST(r.events == s->LastPosition());
  BOOST_TEST(r.seconds >= 0);
  BOOST_REQUIRE(!progress.empty());
  BOOST_TEST(progress.back() == s->LastPosition());
  BOOST_TEST(db->position() == live.position);
  CHECK_MODELS_EQUAL(load(*db), live);
  auto gens = keys_by_generation(s.get());
  BOOST_TEST(gens.size() == 1u);
  BOOST_TEST(gens.count(2) == 1u);
  // The queries read the new generation.
  int64_t bal = -1;
  BOOST_REQUIRE(db->Balance("ghost", &bal).ok());
  BOOST_TEST(bal == 0);
  PurchaseView pv;
  BOOST_TEST(db->Purchase("ghost-purchase", &pv).IsNotFound());
  std::vector<CardView> cards;
  BOOST_REQUIRE(db->Cards(&cards).ok());
  BOOST_TEST(cards.size() == live.cards.size());

  // Live applies go on in generation 2; a second rebuild makes generation 3.
  gen.append_ops(s.get(), 50, 4);
  BOOST_REQUIRE(db->CatchUp().ok());
  const ReadModels live2 = load(*db);
  CHECK_MODELS_EQUAL(live2, fold_log(s.get()));
  BOOST_REQUIRE(db->Rebuild(&r).ok());
  BOOST_TEST(r.generation == 3u);
  CHECK_MODELS_EQUAL(load(*db), live2);
  gens = keys_by_generation(s.get());
  BOOST_TEST(gens.size() == 1u);
  BOOST_TEST(gens.count(3) == 1u);

  // The active generation survives a reopen.
  if (rocks) {
    db.reset();
    s.reopen();
    db = open_db(s.get());
    BOOST_TEST(db->generation() == 3u);
    CHECK_MODELS_EQUAL(load(*db), live2);
  }
}
BOTH_BACKENDS(rebuild_swaps_generations)

// The live models trail the log by a little (the driver applies after the
// commit): a rebuild then folds further than live and takes over there.
void rebuild_when_live_trails_the_log(bool rocks) {
  TestStore s(rocks);
  ShopGen gen(37);
  gen.append_ops(s.get(), 300, 8);
  auto db = open_db(s.get());
  const int64_t last = s->LastPosition();
  BOOST_REQUIRE(db->CatchUp(64, last / 2).ok());
  BOOST_REQUIRE_EQUAL(db->position(), last / 2);
  RebuildReport r;
  Status st = db->Rebuild(&r);
  BOOST_REQUIRE_MESSAGE(st.ok(), st.ToString());
  BOOST_TEST(r.position == last);
  BOOST_TEST(db->position() == last);
  BOOST_TEST(db->WaitFor(last, milliseconds(0)));
  CHECK_MODELS_EQUAL(load(*db), fold_log(s.get()));
  // Live applies continue from there, once.
  gen.append_ops(s.get(), 40, 4);
  BOOST_REQUIRE(db->Apply(read(s.get(), 1, 100000)).ok());
  CHECK_MODELS_EQUAL(load(*db), fold_log(s.get()));
  auto gens = keys_by_generation(s.get());
  BOOST_TEST(gens.size() == 1u);
  BOOST_TEST(gens.count(2) == 1u);
}
BOTH_BACKENDS(rebuild_when_live_trails_the_log)

// A rebuild of an empty log is an empty generation.
BOOST_AUTO_TEST_CASE(rebuild_of_an_empty_log) {
  TestStore s(false);
  auto db = open_db(s.get());
  RebuildReport r;
  BOOST_REQUIRE(db->Rebuild(&r).ok());
  BOOST_TEST(r.generation == 2u);
  BOOST_TEST(r.position == 0);
  CHECK_MODELS_EQUAL(load(*db), ReadModels{});
  append(s.get(), {{"wallet-a", WalletCredited{"a", 5, 5, "k"}}});
  BOOST_REQUIRE(db->CatchUp().ok());
  CHECK_MODELS_EQUAL(load(*db), fold_log(s.get()));
}

// While one rebuild runs (held in its progress callback), a second one is
// Busy; live applies and queries go on beside it.
void second_rebuild_is_busy(bool rocks) {
  TestStore s(rocks);
  ShopGen gen(17);
  gen.append_ops(s.get(), 200, 8);
  auto db = open_db(s.get());
  BOOST_REQUIRE(db->CatchUp().ok());
  Gate started, release;
  std::atomic<bool> first_call{true};
  Status first;
  RebuildReport r;
  std::thread t([&] {
    first = db->Rebuild(&r, [&](int64_t) {
      if (first_call.exchange(false)) {
        started.open();
        release.wait();
      }
    });
  });
  BOOST_REQUIRE(started.wait());
  RebuildReport r2;
  Status second = db->Rebuild(&r2);
  BOOST_TEST(second.IsBusy(), second.ToString());
  BOOST_TEST(db->generation() == 1u);
  // Beside the paused rebuild: appends, applies and queries.
  gen.append_ops(s.get(), 60, 4);
  BOOST_TEST(db->CatchUp().ok());
  BOOST_TEST(db->position() == s->LastPosition());
  CHECK_MODELS_EQUAL(load(*db), fold_log(s.get()));
  release.open();
  t.join();
  BOOST_REQUIRE_MESSAGE(first.ok(), first.ToString());
  BOOST_TEST(r.generation == 2u);
  BOOST_TEST(r.position == s->LastPosition());  // caught up with the live applies
  CHECK_MODELS_EQUAL(load(*db), fold_log(s.get()));
  auto gens = keys_by_generation(s.get());
  BOOST_TEST(gens.size() == 1u);
  BOOST_TEST(gens.count(2) == 1u);
  // Once it is done, the next rebuild is allowed.
  BOOST_TEST(db->Rebuild(&r2).ok());
  BOOST_TEST(r2.generation == 3u);
}
BOTH_BACKENDS(second_rebuild_is_busy)

// Rebuilds while real threads append and apply: every rebuild swaps in
// models equal to the full fold, and a reader never sees a snapshot that
// differs from the fold at its own position.
void rebuild_beside_live_appends(bool rocks) {
  TestStore s(rocks);
  ShopGen seed_gen(19);
  seed_gen.append_ops(s.get(), 3000, 64);  // enough for the rebuild to take a while
  auto db = open_db(s.get());
  BOOST_REQUIRE(db->CatchUp().ok());

  std::atomic<bool> stop{false};
  std::atomic<int64_t> appends{0}, applies{0};
  Status writer_status, applier_status;
  std::thread writer([&] {
    ShopGen gen(23, "w");
    std::mt19937 rng(41);
    while (!stop.load()) {
      AppendRequest r;
      for (int i = 0, n = 1 + static_cast<int>(rng() % (rocks ? 8 : 2)); i < n; ++i)
        for (auto& [stream, e] : gen.op()) r.events.push_back(PendingEvent::of(stream, e));
      AppendResult res;
      Status st = s->AppendAndWait(std::move(r), &res);
      if (!st.ok()) {
        writer_status = st;
        return;
      }
      ++appends;
    }
  });
  LogSignal signal(s.get());
  std::thread applier([&] {
    while (!stop.load()) {
      Status st = db->CatchUp(7);
      if (!st.ok()) {
        applier_status = st;
        return;
      }
      ++applies;
      signal.wait([&] { return stop.load() || s->LastPosition() > db->position(); });
    }
  });
  // A reader takes snapshots throughout.
  std::map<int64_t, ReadModels> seen;
  std::mutex seen_mu;
  std::thread reader([&] {
    while (!stop.load()) {
      ReadModels m;
      if (!db->LoadAll(&m).ok()) continue;
      std::lock_guard l(seen_mu);
      if (seen.size() < 40 || (seen.size() < 150 && m.position % 7 == 0))
        seen.emplace(m.position, std::move(m));
    }
  });

  // At least 3 rebuilds, and on until the log grew by 300 events while
  // rebuilds ran (a bounded number of them).
  int rebuilds = 0, grew = 0;
  int64_t grown = 0;
  while (rebuilds < 3 || (grown < 300 && rebuilds < 200)) {
    const int64_t before = s->LastPosition();
    RebuildReport r;
    Status st = db->Rebuild(&r);
    BOOST_REQUIRE_MESSAGE(st.ok(), st.ToString());
    ++rebuilds;
    BOOST_REQUIRE_EQUAL(r.generation, static_cast<uint32_t>(rebuilds + 1));
    BOOST_REQUIRE_GE(r.position, before);
    grown += s->LastPosition() - before;
    grew += s->LastPosition() > before;
  }
  const int kRebuilds = rebuilds;
  // Let the workload go on past the last swap.
  const int64_t target = s->LastPosition() + 20;
  BOOST_TEST(db->WaitFor(target, milliseconds(30000)));
  signal.stop(stop);
  writer.join();
  applier.join();
  reader.join();
  BOOST_REQUIRE_MESSAGE(writer_status.ok(), writer_status.ToString());
  BOOST_REQUIRE_MESSAGE(applier_status.ok(), applier_status.ToString());
  BOOST_REQUIRE(db->CatchUp().ok());

  // The log grew while rebuilds ran: they really ran beside the writes.
  BOOST_TEST(grew >= 1);
  BOOST_TEST(grown >= 300);
  BOOST_TEST(appends.load() > 0);
  BOOST_TEST_MESSAGE((rocks ? "rocks" : "memory")
                     << ": " << appends.load() << " appends, " << applies.load()
                     << " catch-ups beside " << kRebuilds << " rebuilds (" << grown
                     << " events appended during them); " << seen.size() << " snapshots");
  BOOST_TEST(db->generation() == static_cast<uint32_t>(kRebuilds + 1));
  BOOST_TEST(db->position() == s->LastPosition());
  CHECK_MODELS_EQUAL(load(*db), fold_log(s.get()));
  auto gens = keys_by_generation(s.get());
  BOOST_TEST(gens.size() == 1u);
  BOOST_TEST(gens.count(static_cast<uint32_t>(kRebuilds + 1)) == 1u);

  // Every snapshot equals the fold at its position (one incremental fold).
  BOOST_REQUIRE_GT(seen.size(), 1u);
  ReadModels m;
  std::vector<StoredEvent> batch;
  for (const auto& [pos, snap] : seen) {
    if (m.position < pos) {
      batch = read(s.get(), m.position + 1, static_cast<size_t>(pos - m.position));
      for (const auto& e : batch) BOOST_REQUIRE(apply(m, e).ok());
    }
    BOOST_REQUIRE_EQUAL(m.position, pos);
    BOOST_TEST((snap == m), "snapshot at " << pos << ": " << diff(snap, m));
  }
}
BOTH_BACKENDS(rebuild_beside_live_appends)

// WaitFor wakes when another thread's CatchUp passes the position, and gives
// up after the timeout otherwise.
void wait_for(bool rocks) {
  TestStore s(rocks);
  ShopGen gen(29);
  gen.append_ops(s.get(), 20, 4);
  auto db = open_db(s.get());
  BOOST_REQUIRE(db->CatchUp().ok());
  const int64_t pos = db->position();
  BOOST_TEST(db->WaitFor(pos, milliseconds(0)));
  BOOST_TEST(db->WaitFor(1, milliseconds(0)));

  // Nobody applies: the wait times out, not sooner.
  gen.append_ops(s.get(), 5, 1);
  const int64_t last = s->LastPosition();
  auto t0 = Clock::now();
  BOOST_TEST(!db->WaitFor(pos + 1, milliseconds(150)));
  auto waited = Clock::now() - t0;
  BOOST_TEST(waited >= milliseconds(150));
  BOOST_TEST(waited < milliseconds(5000));
  BOOST_TEST(db->position() == pos);

  // Waiters on several positions; another thread catches up one event at a
  // time: each wakes well before its generous timeout.
  std::vector<std::thread> waiters;
  std::vector<int> reached(static_cast<size_t>(last - pos), -1);
  std::vector<Clock::duration> took(reached.size());
  Gate all_started;
  std::atomic<int> started{0};
  for (int64_t p = pos + 1; p <= last; ++p)
    waiters.emplace_back([&, p] {
      size_t i = static_cast<size_t>(p - pos - 1);
      if (++started == static_cast<int>(reached.size())) all_started.open();
      auto w0 = Clock::now();
      reached[i] = db->WaitFor(p, milliseconds(20000)) ? 1 : 0;
      took[i] = Clock::now() - w0;
    });
  BOOST_REQUIRE(all_started.wait());
  Status caught;
  std::thread applier([&] { caught = db->CatchUp(1); });
  applier.join();
  BOOST_TEST(caught.ok(), caught.ToString());
  for (auto& w : waiters) w.join();
  for (size_t i = 0; i < reached.size(); ++i) {
    BOOST_TEST(reached[i] == 1, "waiter " << i);
    BOOST_TEST(took[i] < milliseconds(10000), "waiter " << i << " was not woken");
  }
  BOOST_TEST(db->position() == last);
  // A position beyond the log: false after the timeout.
  BOOST_TEST(!db->WaitFor(last + 1, milliseconds(50)));
  // NotifyAll wakes waiters without changing the answer.
  std::atomic<int> answer{-1};
  std::thread w([&] { answer = db->WaitFor(last + 1, milliseconds(300)) ? 1 : 0; });
  db->NotifyAll();
  w.join();
  BOOST_TEST(answer.load() == 0);
}
BOTH_BACKENDS(wait_for)

// A checkpoint ahead of the log is refused, naming both positions.
void open_refuses_checkpoint_ahead_of_log(bool rocks) {
  TestStore s(rocks);
  ShopGen gen(31);
  gen.append_ops(s.get(), 10, 10);
  const int64_t last = s->LastPosition();
  {
    auto db = open_db(s.get());
    BOOST_REQUIRE(db->CatchUp().ok());
  }
  KvBatch b;
  b.puts.emplace_back(gen_prefix(1) + "k", be64(static_cast<uint64_t>(last + 5)) + be64(0));
  BOOST_REQUIRE(s->KvWrite(b).ok());
  if (rocks) s.reopen();
  std::unique_ptr<ProjectionDb> db;
  Status st = ProjectionDb::Open(s.get(), &db);
  BOOST_TEST(st.IsCorruption(), st.ToString());
  BOOST_TEST(st.message().find("ahead of the log") != std::string::npos, st.message());
  BOOST_TEST(st.message().find(std::to_string(last + 5)) != std::string::npos, st.message());
  BOOST_TEST(st.message().find("(" + std::to_string(last) + ")") != std::string::npos, st.message());
  BOOST_TEST(!db);

  // A damaged checkpoint or generation marker is not refused: the projections
  // are a cache of the log, so they are dropped and refolded from position 1.
  b.puts = {{gen_prefix(1) + "k", "short"}};
  BOOST_REQUIRE(s->KvWrite(b).ok());
  st = ProjectionDb::Open(s.get(), &db);
  BOOST_REQUIRE_MESSAGE(st.ok(), st.ToString());
  BOOST_TEST(db->position() == 0);
  BOOST_TEST(db->reset_reason().find("checkpoint damaged") != std::string::npos, db->reset_reason());
  BOOST_REQUIRE(db->CatchUp().ok());
  BOOST_TEST(db->position() == last);
  db.reset();
  b.puts = {{"A", "xx"}};
  BOOST_REQUIRE(s->KvWrite(b).ok());
  st = ProjectionDb::Open(s.get(), &db);
  BOOST_REQUIRE_MESSAGE(st.ok(), st.ToString());
  BOOST_TEST(db->reset_reason().find("marker damaged") != std::string::npos, db->reset_reason());
  BOOST_REQUIRE(db->CatchUp().ok());
  BOOST_TEST(db->position() == last);
  db.reset();
  // An undamaged store opens at its checkpoint, without a reset.
  db = open_db(s.get());
  BOOST_TEST(db->position() == last);
  BOOST_TEST(db->reset_reason().empty());
}
BOTH_BACKENDS(open_refuses_checkpoint_ahead_of_log)

BOOST_AUTO_TEST_SUITE_END()

}  // namespace giftcard
