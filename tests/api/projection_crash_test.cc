// Crashes of the persisted projections (issue #3, SPEC §2 invariants 4-6), with
// real processes: `giftcard serve` runs as a child, a concurrent workload talks
// to it over CAF, and it is killed with SIGKILL at chosen moments.
//
// The moment "between the append and the projection update" is caught, not
// hoped for: the server is frozen with SIGSTOP, the store is read through a
// RocksDB secondary instance in this process (log head and the projections'
// checkpoint), and only if the log is ahead of the checkpoint is the frozen
// server killed — so the disk is exactly in the state that was read. After the
// restart the server must report that state ("open at position L",
// "projections at position C"), catch up, and its read models must equal a
// fresh fold of the log: nothing lost, nothing applied twice.
//
// Cases: (1) kill -9 between append and projection update, several rounds
// under concurrent load, then every answer checked against `giftcard events`,
// `giftcard replay` and `giftcard verify`; (2) a clean SIGTERM restart resumes
// at the checkpoint with nothing to catch up and every model unchanged;
// (3) kill -9 while rebuild_atom folds a new generation (caught on disk the
// same way): the old generation stays active and whole, the next rebuild works.
// Under ASan+UBSan (__SANITIZE_ADDRESS__) the workload shrinks and deadlines grow.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <boost/test/unit_test.hpp>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "actors/errors.h"
#include "actors/messages.h"
#include "api/node_config.h"
#include "events/events.h"
#include "events/time_util.h"
#include "projections/projection_db.h"
#include "projections/read_models.h"
#include "store/rocks_event_store.h"
#include "tests/support/process.h"
#include "tests/support/serve_child.h"

namespace giftcard::crash_test {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

using namespace giftcard::test;  // processes: tests/support/process.h
constexpr int kSlow = kSanitized ? 5 : 1;  // multiplier for deadlines

// `giftcard serve --data DIR --caf 127.0.0.1:0`, stderr to a log file.
// `giftcard serve` as a child (tests/support/serve_child.h); port() is its
// CAF port, and a clean stop may take up to 30 s (x5 under sanitizers).
class ServeProcess : public ServeChild {
 public:
  ServeProcess(const std::string& data, const std::string& log_path) : ServeChild(data, log_path) {}
  uint16_t port() const { return caf_port(); }
  void stop_clean() { ServeChild::stop_clean(std::chrono::milliseconds(30000 * kSlow)); }
};

// What serve said about its store when it started: "store DIR open at
// position L" and, if behind, "projections at position C, N events to catch up".
struct StartupReport {
  int64_t log = -1;
  std::optional<int64_t> projections;  // only if it was behind
  std::optional<int64_t> behind;
};

StartupReport startup_report(const std::string& log) {
  StartupReport r;
  auto num_after = [&](const std::string& marker) -> std::optional<int64_t> {
    auto at = log.find(marker);
    if (at == std::string::npos) return std::nullopt;
    return std::stoll(log.substr(at + marker.size()));
  };
  r.log = num_after(" open at position ").value_or(-1);
  r.projections = num_after("projections at position ");
  if (r.projections) {
    auto at = log.find("projections at position ");
    auto comma = log.find(", ", at);
    if (comma != std::string::npos) r.behind = std::stoll(log.substr(comma + 2));
  }
  return r;
}

// ---------------------------------------------------------------------------
// The store as this process sees it: a RocksDB secondary instance.

class Secondary {
 public:
  Secondary(const std::string& data, const std::string& scratch) {
    StoreOptions so;
    so.path = data;
    so.mode = StoreOptions::Mode::secondary;
    so.create_if_missing = false;
    so.secondary_path = scratch;
    so.block_cache_bytes = 16u << 20;
    Status s = OpenRocksEventStore(so, &store_);
    BOOST_REQUIRE_MESSAGE(s.ok(), "secondary open of " << data << ": " << s.ToString());
  }
  EventStore* get() { return store_.get(); }
  void refresh() {
    Status s = CatchUpWithPrimary(store_.get());
    BOOST_REQUIRE_MESSAGE(s.ok(), "secondary catch-up: " << s.ToString());
  }

 private:
  std::unique_ptr<EventStore> store_;
};

// Projection-space key of a generation's checkpoint ('g' gen:be32 'k'; see
// projections/projection_db.cc): present once a (re)build wrote its first batch.
std::string checkpoint_key(uint32_t gen) {
  std::string k(1, 'g');
  for (int i = 3; i >= 0; --i) k.push_back(static_cast<char>((gen >> (8 * i)) & 0xff));
  k.push_back('k');
  return k;
}

struct DiskState {
  int64_t log = 0;         // last committed event
  int64_t checkpoint = 0;  // projections' checkpoint (active generation)
  uint32_t generation = 0;
  std::optional<int64_t> next_generation_checkpoint;  // a rebuild's partial generation
};

DiskState read_disk_state(Secondary& sec) {
  sec.refresh();
  DiskState d;
  d.log = sec.get()->LastPosition();
  std::unique_ptr<ProjectionDb> db;
  Status s = ProjectionDb::Open(sec.get(), &db);
  BOOST_REQUIRE_MESSAGE(s.ok(), "projections on the secondary: " << s.ToString());
  d.checkpoint = db->position();
  d.generation = db->generation();
  std::string v;
  if (sec.get()->KvGet(checkpoint_key(d.generation + 1), &v).ok() && v.size() == 16) {
    int64_t pos = 0;
    for (int i = 0; i < 8; ++i) pos = (pos << 8) | static_cast<unsigned char>(v[static_cast<size_t>(i)]);
    d.next_generation_checkpoint = pos;
  }
  return d;
}

// The read models folded from position 1 (the definition of "correct").
ReadModels fold_log(EventStore* store) {
  ReadModels m;
  std::vector<StoredEvent> page;
  for (int64_t next = 1;;) {
    Status s = store->ReadAll(next, 8192, &page);
    BOOST_REQUIRE_MESSAGE(s.ok(), "reading the log: " << s.ToString());
    if (page.empty()) break;
    for (const auto& e : page) {
      Status a = apply(m, e);
      BOOST_REQUIRE_MESSAGE(a.ok(), "fold at " << e.position << ": " << a.ToString());
    }
    next = page.back().position + 1;
  }
  return m;
}

std::string diff_models(const ReadModels& live, const ReadModels& fold) {
  std::ostringstream os;
  int shown = 0;
  if (live.position != fold.position)
    os << " position live " << live.position << " fold " << fold.position << ";";
  for (const auto& [u, b] : fold.balances) {
    auto it = live.balances.find(u);
    if ((it == live.balances.end() || it->second != b) && shown++ < 10)
      os << " balance " << u << " live "
         << (it == live.balances.end() ? std::string("none") : std::to_string(it->second))
         << " fold " << b << ";";
  }
  if (live.balances.size() != fold.balances.size())
    os << " wallets live " << live.balances.size() << " fold " << fold.balances.size() << ";";
  for (const auto& [id, c] : fold.cards) {
    auto it = live.cards.find(id);
    if (it == live.cards.end() || !(it->second == c))
      os << " card " << id << " differs (live assigned "
         << (it == live.cards.end() ? -1 : it->second.assigned) << " available "
         << (it == live.cards.end() ? -1 : it->second.available) << ", fold assigned "
         << c.assigned << " available " << c.available << ");";
  }
  if (live.purchases.size() != fold.purchases.size() || live.purchases != fold.purchases)
    os << " purchases live " << live.purchases.size() << " fold " << fold.purchases.size() << ";";
  if (live.user_purchases != fold.user_purchases) os << " user purchase indexes differ;";
  return os.str();
}

// The server's persisted models (active generation) equal a fresh fold of the
// whole log. Only meaningful while the server is idle and caught up.
void require_models_equal_fold(const std::string& data, const std::string& scratch,
                               const std::string& when) {
  Secondary sec(data, scratch);
  sec.refresh();
  std::unique_ptr<ProjectionDb> db;
  Status s = ProjectionDb::Open(sec.get(), &db);
  BOOST_REQUIRE_MESSAGE(s.ok(), when << ": " << s.ToString());
  ReadModels live;
  s = db->LoadAll(&live);
  BOOST_REQUIRE_MESSAGE(s.ok(), when << ": LoadAll: " << s.ToString());
  ReadModels fold = fold_log(sec.get());
  BOOST_TEST(live.position == sec.get()->LastPosition(), when);
  BOOST_TEST((live == fold), when << ": persisted projections differ from the fold of the log:"
                                  << diff_models(live, fold));
}

// ---------------------------------------------------------------------------
// The log as `giftcard events` prints it: the auditor's independent view.

struct CardFacts {
  std::string name;
  int64_t price = 0, value = 0;
  int64_t added = 0, assigned = 0, revoked = 0, expired = 0, revenue = 0;
};

struct LogFacts {
  int64_t last = 0;
  bool gapless = true;
  std::map<std::string, int64_t> credited, debited;  // per user
  std::map<std::string, CardFacts> cards;
  std::map<int64_t, nlohmann::json> events;  // by position
  std::map<std::string, int> code_sales;     // code -> times assigned
  int64_t purchases = 0;
};

// `known` holds the facts of a prefix of the log already (default: none);
// only the events after it are read.
LogFacts read_log(const std::string& data, LogFacts known = {}) {
  auto r = run_giftcard({"events", "--data", data, "--from", std::to_string(known.last + 1)},
                        std::chrono::milliseconds(60000 * kSlow));
  BOOST_REQUIRE_MESSAGE(r.code() == 0, "giftcard events: " << r.describe());
  LogFacts f = std::move(known);
  std::istringstream in(r.out);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    auto j = nlohmann::json::parse(line, nullptr, false);
    BOOST_REQUIRE_MESSAGE(!j.is_discarded() && j.contains("data"), "bad event line: " << line);
    int64_t pos = j.at("position").get<int64_t>();
    if (pos != f.last + 1) f.gapless = false;
    f.last = pos;
    const std::string type = j.at("type").get<std::string>();
    const auto& d = j.at("data");
    if (type == "WalletCredited") {
      f.credited[d.at("user_id").get<std::string>()] += d.at("amount").get<int64_t>();
    } else if (type == "WalletDebited") {
      f.debited[d.at("user_id").get<std::string>()] += d.at("amount").get<int64_t>();
    } else if (type == "CardCreated") {
      auto& c = f.cards[d.at("card_id").get<std::string>()];
      c.name = d.at("name").get<std::string>();
      c.price = d.at("price").get<int64_t>();
      c.value = d.at("value").get<int64_t>();
    } else if (type == "CodesAdded") {
      f.cards[d.at("card_id").get<std::string>()].added += static_cast<int64_t>(d.at("codes").size());
    } else if (type == "CodeAssigned") {
      auto& c = f.cards[d.at("card_id").get<std::string>()];
      ++c.assigned;
      c.revenue += d.at("price").get<int64_t>();
      ++f.code_sales[d.at("code").get<std::string>()];
      ++f.purchases;
    } else if (type == "CodeRevoked") {
      ++f.cards[d.at("card_id").get<std::string>()].revoked;
    } else if (type == "CodesExpired") {
      f.cards[d.at("card_id").get<std::string>()].expired += static_cast<int64_t>(d.at("codes").size());
    }
    if (type != "CodesAdded") f.events.emplace(pos, std::move(j));  // keep the small ones
  }
  return f;
}

// ---------------------------------------------------------------------------
// CAF clients

class Client {
 public:
  explicit Client(uint16_t port) {
    auto shop = connect_shop(sys_, HostPort{"127.0.0.1", port}, false);
    if (!shop) BOOST_FAIL("cannot connect to 127.0.0.1:" << port << ": " << sys_.render(shop.error()));
    shop_ = *shop;
  }
  caf::actor_system& system() { return sys_; }
  const shop_actor& shop() const { return shop_; }

  template <class Reply, class... Ts>
  caf::expected<Reply> ask(Ts&&... xs) {
    caf::expected<Reply> result{caf::make_error(caf::sec::request_timeout)};
    caf::scoped_actor self{sys_};
    self->request(shop_, std::chrono::seconds(60 * kSlow), std::forward<Ts>(xs)...)
        .receive([&](Reply& r) { result = std::move(r); },
                 [&](caf::error& e) { result = std::move(e); });
    return result;
  }
  template <class T>
  std::string why(const caf::expected<T>& x) {
    return x ? std::string("ok") : sys_.render(x.error());
  }
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

 private:
  NodeConfig cfg_{TlsOptions{}};
  caf::actor_system sys_{cfg_};
  shop_actor shop_;
};

std::vector<CodeSpec> numbered_codes(const std::string& prefix, int n) {
  std::vector<CodeSpec> out;
  for (int i = 0; i < n; ++i) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%05d", i);
    out.push_back(CodeSpec{prefix + "-" + buf, 0});
  }
  return out;
}

bool same_purchase(const Purchase& a, const Purchase& b) {
  return a.purchase_id == b.purchase_id && a.card_id == b.card_id && a.user_id == b.user_id &&
         a.code == b.code && a.price == b.price && a.purchased_at == b.purchased_at &&
         a.position == b.position;
}

struct Catalog {
  std::vector<std::pair<std::string, int64_t>> cards;  // id, price
  std::vector<std::string> users;
};

// Creates the cards with `codes` codes each and funds every user.
void set_up_shop(Client& c, const Catalog& cat, int codes, int64_t funds) {
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
    else if (code == Errc::unavailable && killed)
      ++lost;
    else
      unexpected.push_back(std::move(rendered));
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

void issue(caf::event_based_actor* self, std::shared_ptr<Worker> w) {
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
    auto w = std::make_shared<Worker>(Worker{*shop, std::move(load), cat, std::move(key_prefix),
                                             std::mt19937_64(seed), 0});
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
std::vector<std::unique_ptr<LoadClient>> start_load(uint16_t port, std::shared_ptr<Load> load,
                                                    const Catalog& cat, const std::string& tag,
                                                    int clients, int window, std::mt19937_64& rng) {
  std::vector<std::unique_ptr<LoadClient>> out;
  for (int i = 0; i < clients; ++i)
    out.push_back(std::make_unique<LoadClient>(port, load, cat, tag + "-c" + std::to_string(i) + "-",
                                               rng(), window));
  return out;
}

void wait_acks(Load& load, int64_t target, std::chrono::milliseconds timeout) {
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
  std::map<std::string, CardInfo> cards;        // card_atom, one by one
  std::vector<CardInfo> card_list;              // cards_atom
  std::map<std::string, Purchase> purchases;    // from every user's history
  std::map<std::string, std::vector<std::string>> histories;  // user -> purchase ids
};

Views capture(Client& c, const std::set<std::string>& users, const std::set<std::string>& cards) {
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
        BOOST_TEST(v.purchases.emplace(p.purchase_id, p).second, "purchase listed twice " << p.purchase_id);
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

bool same_card(const CardInfo& a, const CardInfo& b) {
  return a.id == b.id && a.name == b.name && a.price == b.price && a.value == b.value &&
         a.available == b.available && a.assigned == b.assigned && a.expired == b.expired &&
         a.revoked == b.revoked;
}

// Everything the server answers equals what the log says (auditor's view),
// and equals `giftcard replay`.
void check_views_against_log(const Views& v, const LogFacts& f, const nlohmann::json& replay) {
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
  for (const auto& [code, n] : f.code_sales) BOOST_TEST(n == 1, "code " << code << " sold " << n << " times");

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
    BOOST_REQUIRE_MESSAGE(it != v.purchases.end(), "replay has a purchase the server lacks: " << id);
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
void check_acked(Client& c, Load& load, const LogFacts& f) {
  std::lock_guard lock(load.mu);
  std::set<std::string> ids;
  for (const auto& a : load.purchases) {
    const Purchase& p = a.p;
    BOOST_TEST(ids.insert(p.purchase_id).second, "acknowledged twice: " << p.purchase_id);
    auto got = c.ask<Purchase>(lookup_atom::value, p.purchase_id, int64_t{0});
    BOOST_REQUIRE_MESSAGE(got, "lookup " << p.purchase_id << " (key " << a.key
                                         << "): " << c.why(got));
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

nlohmann::json run_replay(const std::string& data) {
  auto r = run_giftcard({"replay", "--data", data}, std::chrono::milliseconds(60000 * kSlow));
  BOOST_REQUIRE_MESSAGE(r.code() == 0, "giftcard replay: " << r.describe());
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  BOOST_REQUIRE_MESSAGE(!j.is_discarded() && j.is_object(), "replay output: " << r.describe());
  return j;
}

void require_verify_ok(const std::string& data) {
  auto r = run_giftcard({"verify", "--data", data}, std::chrono::milliseconds(60000 * kSlow));
  BOOST_TEST(r.code() == 0, "giftcard verify: " << r.describe());
}

// Freezes the server until the log is ahead of the projections' checkpoint on
// disk (an append committed, its projection update not yet), then kills it
// there. Returns the state it died in. Gives up after `attempts` freezes and
// kills it wherever it is.
struct CrashPoint {
  DiskState disk;
  int freezes = 0;
  bool between() const { return disk.checkpoint < disk.log; }
};

CrashPoint kill_between_append_and_projection(ServeProcess& serve, const std::string& data,
                                              const std::string& scratch, std::mt19937_64& rng,
                                              int attempts) {
  Secondary sec(data, scratch);
  CrashPoint cp;
  for (int i = 0;; ++i) {
    serve.freeze();
    cp.disk = read_disk_state(sec);
    cp.freezes = i + 1;
    if (cp.between() || cp.freezes >= attempts) break;
    serve.thaw();
    std::this_thread::sleep_for(std::chrono::microseconds(200 + rng() % 3000));
  }
  serve.kill_hard();  // SIGKILL while stopped: the disk is exactly as read
  return cp;
}

// After a restart: serve reported the state the crash left, and caught up.
void check_restart_report(ServeProcess& serve, const CrashPoint& cp, const std::string& what) {
  StartupReport rep = startup_report(serve.log());
  BOOST_TEST(rep.log == cp.disk.log, what << ": serve reopened the log at " << rep.log
                                          << ", it was killed at " << cp.disk.log);
  if (cp.between()) {
    BOOST_TEST((rep.projections && *rep.projections == cp.disk.checkpoint),
               what << ": serve resumed the projections at "
                    << (rep.projections ? *rep.projections : -1) << ", the checkpoint was "
                    << cp.disk.checkpoint);
    BOOST_TEST((rep.behind && *rep.behind == cp.disk.log - cp.disk.checkpoint), what);
  } else {
    BOOST_TEST(!rep.projections, what << ": no catch-up expected");
  }
}

std::set<std::string> keys_of(const std::map<std::string, CardFacts>& m) {
  std::set<std::string> out;
  for (const auto& [k, _] : m) out.insert(k);
  return out;
}

// Appends `events` WalletCredited events (users seed-0..seed-<users-1>) to a
// new store before any server runs: a log long enough that a rebuild can be
// caught half-way. Returns what the log says so far.
LogFacts seed_store(const std::string& data, int events, int users) {
  StoreOptions so;
  so.path = data;
  std::unique_ptr<EventStore> store;
  Status s = OpenRocksEventStore(so, &store);
  BOOST_REQUIRE_MESSAGE(s.ok(), "seed: " << s.ToString());
  std::vector<int64_t> balance(static_cast<size_t>(users), 0);
  constexpr int kPerAppend = 2000;
  for (int first = 0; first < events; first += kPerAppend) {
    AppendRequest req;
    for (int i = first; i < std::min(events, first + kPerAppend); ++i) {
      const int u = i % users;
      WalletCredited ev;
      ev.user_id = "seed-" + std::to_string(u);
      ev.amount = 1 + i % 97;
      ev.balance_after = balance[static_cast<size_t>(u)] += ev.amount;
      ev.idempotency_key = "seed-" + std::to_string(i);
      req.events.push_back(PendingEvent::of(wallet_stream(ev.user_id), ev));
    }
    AppendResult res;
    s = store->AppendAndWait(std::move(req), &res);
    BOOST_REQUIRE_MESSAGE(s.ok(), "seed append: " << s.ToString());
  }
  store->Close();
  LogFacts f;
  f.last = events;
  for (int u = 0; u < users; ++u) f.credited["seed-" + std::to_string(u)] = balance[static_cast<size_t>(u)];
  return f;
}

// Number of projection-space keys of a generation ('g' gen:be32 ...).
int64_t generation_keys(Secondary& sec, uint32_t gen) {
  std::string prefix = checkpoint_key(gen);
  prefix.pop_back();  // 'g' gen:be32
  int64_t n = 0;
  Status s = sec.get()->KvScan(prefix, "", [&](std::string_view, std::string_view) {
    ++n;
    return true;
  });
  BOOST_REQUIRE_MESSAGE(s.ok(), s.ToString());
  return n;
}

// Sends rebuild_atom and records the outcome; killed with exit_reason::kill.
struct RebuildCall {
  std::atomic<bool> done{false};
  std::mutex mu;
  caf::expected<RebuildInfo> result{caf::make_error(caf::sec::request_timeout)};
};

caf::actor start_rebuild(Client& c, std::shared_ptr<RebuildCall> call) {
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

void stop_load(Load& load) {
  load.stop = true;
  auto deadline = Clock::now() + std::chrono::milliseconds(60000 * kSlow);
  while (load.in_flight > 0 && Clock::now() < deadline) std::this_thread::sleep_for(2ms);
  BOOST_REQUIRE_MESSAGE(load.in_flight == 0, load.in_flight << " requests never answered");
}

}  // namespace
}  // namespace giftcard::crash_test

using namespace giftcard;
using namespace giftcard::crash_test;

BOOST_AUTO_TEST_SUITE(projection_crash)

// Several rounds of: concurrent credits and purchases from three connections,
// then kill -9 at a moment when the log is ahead of the projections on disk;
// restart, check the catch-up; more load; ... Finally every acknowledged write
// is there exactly once, and every answer of the server equals the log.
BOOST_AUTO_TEST_CASE(a_crash_between_append_and_projection_update_loses_nothing_and_applies_nothing_twice) {
  const auto t0 = Clock::now();
  const int kRounds = by_build(6, 3);
  const int kClients = 3;
  const int kWindow = 16;
  const int kCodes = by_build(1500, 800);
  std::mt19937_64 rng(std::random_device{}());
  const uint64_t seed = rng();
  rng.seed(seed);
  BOOST_TEST_MESSAGE("seed " << seed);

  TempDir dir;
  const std::string data = dir.str("data");
  Catalog cat;
  cat.cards = {{"alpha", 100}, {"beta", 250}, {"gamma", 399}};
  for (int u = 0; u < 10; ++u) cat.users.push_back("user-" + std::to_string(u));
  auto load = std::make_shared<Load>();

  auto serve = std::make_unique<ServeProcess>(data, dir.str("serve-0.log"));
  {
    Client c(serve->port());
    set_up_shop(c, cat, kCodes, 20000);
  }
  int between = 0;
  for (int round = 0; round < kRounds; ++round) {
    const int64_t before = load->acks;
    const int64_t target = before + by_build(150, 80) + static_cast<int64_t>(rng() % by_build(400, 150));
    {
      auto clients = start_load(serve->port(), load, cat, "r" + std::to_string(round), kClients,
                                kWindow, rng);
      wait_acks(*load, target, std::chrono::milliseconds(60000 * kSlow));
      load->killed = true;  // failures from here on are the crash's
      CrashPoint cp = kill_between_append_and_projection(
          *serve, data, dir.str("sec-kill-" + std::to_string(round)), rng, 40);
      between += cp.between();
      BOOST_TEST_MESSAGE("round " << round << ": killed after " << load->acks - before
                                  << " acks; log " << cp.disk.log << ", projections "
                                  << cp.disk.checkpoint << " (" << cp.freezes << " freezes)");
      clients.clear();  // drops whatever was still in flight
      load->unanswered += load->in_flight.exchange(0);
      load->killed = false;
      // Restart: it must resume exactly from the state the crash left.
      serve = std::make_unique<ServeProcess>(data, dir.str("serve-" + std::to_string(round + 1) + ".log"));
      check_restart_report(*serve, cp, "round " + std::to_string(round));
      Client c(serve->port());
      ShopStatus st = c.wait_caught_up(std::chrono::milliseconds(30000 * kSlow));
      BOOST_TEST(st.log_position == cp.disk.log);
      BOOST_TEST(st.generation == static_cast<int64_t>(cp.disk.generation));
    }
    // Idle and caught up: the persisted models are exactly the fold of the log.
    require_models_equal_fold(data, dir.str("sec-check-" + std::to_string(round)),
                              "after crash " + std::to_string(round));
  }
  BOOST_TEST_MESSAGE(load->summary());
  // The crash landed between an append and its projection update at least
  // once (the freezing makes this all but certain; each round tries 40 times).
  BOOST_TEST(between >= 1, between << " of " << kRounds << " crashes between append and projection");

  // What the server answers now, then a clean stop, then the audit tools.
  Views views;
  {
    Client c(serve->port());
    ShopStatus st = c.wait_caught_up(std::chrono::milliseconds(30000 * kSlow));
    std::set<std::string> users(cat.users.begin(), cat.users.end());
    std::set<std::string> cards;
    for (const auto& [id, _] : cat.cards) cards.insert(id);
    views = capture(c, users, cards);
    BOOST_TEST(views.status.log_position == st.log_position);
    // Acknowledged purchases via lookup; the log is read after the stop.
    LogFacts facts_live = read_log(data);  // secondary instance beside the live server
    BOOST_TEST(facts_live.last == st.log_position);
    check_acked(c, *load, facts_live);
  }
  serve->stop_clean();
  serve.reset();
  LogFacts facts = read_log(data);
  BOOST_TEST(facts.last == views.status.log_position);
  BOOST_TEST((keys_of(facts.cards) == std::set<std::string>{"alpha", "beta", "gamma"}));
  check_views_against_log(views, facts, run_replay(data));
  require_verify_ok(data);
  require_models_equal_fold(data, dir.str("sec-final"), "after the clean stop");
  BOOST_TEST_MESSAGE("crash rounds: " << ms_since(t0) << " ms, " << facts.last << " events");
}

// A clean SIGTERM drains the projections to the log's head and persists the
// checkpoint: the restart resumes there (nothing to catch up, nothing applied
// again), and every model is unchanged.
BOOST_AUTO_TEST_CASE(a_restart_after_sigterm_resumes_from_the_checkpoint) {
  const auto t0 = Clock::now();
  std::mt19937_64 rng(std::random_device{}());
  TempDir dir;
  const std::string data = dir.str("data");
  Catalog cat;
  cat.cards = {{"delta", 120}, {"epsilon", 310}};
  for (int u = 0; u < 6; ++u) cat.users.push_back("shopper-" + std::to_string(u));
  std::set<std::string> users(cat.users.begin(), cat.users.end());
  std::set<std::string> cards{"delta", "epsilon"};
  auto load = std::make_shared<Load>();

  Views before;
  {
    ServeProcess serve(data, dir.str("serve-1.log"));
    {
      Client c(serve.port());
      set_up_shop(c, cat, by_build(1000, 500), 10000);
    }
    {
      auto clients = start_load(serve.port(), load, cat, "clean", 2, 16, rng);
      wait_acks(*load, by_build(600, 250), std::chrono::milliseconds(60000 * kSlow));
      load->stop = true;
      auto deadline = Clock::now() + std::chrono::milliseconds(60000 * kSlow);
      while (load->in_flight > 0 && Clock::now() < deadline) std::this_thread::sleep_for(2ms);
      BOOST_REQUIRE_MESSAGE(load->in_flight == 0, load->in_flight << " requests never answered");
    }
    Client c(serve.port());
    c.wait_caught_up(std::chrono::milliseconds(30000 * kSlow));
    before = capture(c, users, cards);
    serve.stop_clean();
  }
  BOOST_TEST_MESSAGE(load->summary());
  BOOST_TEST(load->unexpected.empty(), load->unexpected.size() << " unexpected failures");
  require_models_equal_fold(data, dir.str("sec-1"), "after SIGTERM");

  for (int restart = 2; restart <= 3; ++restart) {
    const std::string what = "restart " + std::to_string(restart);
    ServeProcess serve(data, dir.str("serve-" + std::to_string(restart) + ".log"));
    StartupReport rep = startup_report(serve.log());
    BOOST_TEST(rep.log == before.status.log_position, what);
    BOOST_TEST(!rep.projections, what << ": serve had to catch up after a clean stop:\n" << serve.log());
    Client c(serve.port());
    // The very first status: the checkpoint is the log's head already.
    ShopStatus st = c.status();
    BOOST_TEST(st.log_position == before.status.log_position, what);
    BOOST_TEST(st.projection_position == st.log_position, what);
    BOOST_TEST(st.generation == before.status.generation, what);
    Views after = capture(c, users, cards);
    BOOST_TEST((after.wallets == before.wallets), what << ": balances changed across the restart");
    BOOST_TEST(after.cards.size() == before.cards.size());
    for (const auto& [id, ci] : before.cards) {
      BOOST_TEST((after.cards.count(id) && same_card(after.cards.at(id), ci)), what << ": card " << id);
      BOOST_TEST(after.cards.at(id).position == ci.position, what << ": card " << id);
    }
    BOOST_TEST((after.histories == before.histories), what << ": purchase histories changed");
    BOOST_TEST(after.purchases.size() == before.purchases.size());
    for (const auto& [id, p] : before.purchases)
      BOOST_TEST((after.purchases.count(id) && same_purchase(after.purchases.at(id), p)), what << ": " << id);
    BOOST_TEST_MESSAGE(what << ": ready in " << serve.ready_ms() << " ms");

    if (restart == 2) {
      // New work after the restart counts once, on top of the unchanged models.
      int64_t last = 0;
      std::map<std::string, int64_t> expect = before.wallets;
      std::map<std::string, int64_t> sold;
      for (size_t u = 0; u < cat.users.size(); ++u) {
        const std::string& user = cat.users[u];
        auto cr = c.ask<CreditReply>(credit_atom::value, user, int64_t{1000}, std::string("after-restart"));
        BOOST_REQUIRE_MESSAGE(cr, c.why(cr));
        expect[user] += 1000;
        BOOST_TEST(cr->balance == expect[user], user);
        const auto& [card, price] = cat.cards[u % cat.cards.size()];
        auto p = c.ask<Purchase>(purchase_atom::value, card, user, std::string("after-restart"));
        BOOST_REQUIRE_MESSAGE(p, c.why(p));
        expect[user] -= price;
        ++sold[card];
        last = p->position + 1;
      }
      for (const auto& user : cat.users) {
        auto w = c.ask<WalletView>(wallet_atom::value, user, last);
        BOOST_REQUIRE_MESSAGE(w, c.why(w));
        BOOST_TEST(w->balance == expect[user], user);
      }
      for (const auto& id : cards) {
        auto ci = c.ask<CardInfo>(card_atom::value, id, last);
        BOOST_REQUIRE_MESSAGE(ci, c.why(ci));
        BOOST_TEST(ci->assigned == before.cards.at(id).assigned + sold[id], id);
        BOOST_TEST(ci->available == before.cards.at(id).available - sold[id], id);
      }
      c.wait_caught_up(std::chrono::milliseconds(30000 * kSlow));
      before = capture(c, users, cards);  // the next restart must keep these
    }
    serve.stop_clean();
  }
  require_models_equal_fold(data, dir.str("sec-3"), "after the last SIGTERM");
  LogFacts facts = read_log(data);
  check_views_against_log(before, facts, run_replay(data));
  require_verify_ok(data);
  BOOST_TEST_MESSAGE("clean restarts: " << ms_since(t0) << " ms");
}

// kill -9 while a rebuild is folding the log into a new generation beside the
// live one (caught on disk: the new generation has a checkpoint, the old one
// is still active). After the restart the old generation is active and whole
// (equal to the fold of the log), the new one is not half-used, and the next
// rebuild succeeds and swaps in a whole new generation.
BOOST_AUTO_TEST_CASE(a_crash_during_a_rebuild_leaves_one_whole_generation) {
  const auto t0 = Clock::now();
  std::mt19937_64 rng(std::random_device{}());
  TempDir dir;
  const std::string data = dir.str("data");
  // More than one rebuild chunk (65536 events), so that a rebuild has a
  // partial new generation on disk for a while.
  const int kSeedEvents = by_build(100000, 80000);
  const int kSeedUsers = 100;
  const LogFacts seeded = seed_store(data, kSeedEvents, kSeedUsers);
  BOOST_TEST_MESSAGE("seeded " << kSeedEvents << " events in " << ms_since(t0) << " ms");
  Catalog cat;
  cat.cards = {{"zeta", 150}, {"eta", 90}};
  for (int u = 0; u < 6; ++u) cat.users.push_back("rb-" + std::to_string(u));
  auto load = std::make_shared<Load>();

  auto serve = std::make_unique<ServeProcess>(data, dir.str("serve-1.log"));
  int64_t full_rebuild_ms = 0;
  uint32_t gen_before = 0;
  CrashPoint cp;
  {
    Client c(serve->port());
    c.wait_caught_up(std::chrono::milliseconds(60000 * kSlow));  // the seeded log, from position 0
    BOOST_TEST_MESSAGE("server up and caught up with the seeded log at " << ms_since(t0) << " ms");
    set_up_shop(c, cat, by_build(3000, 1500), 50000);
    // A whole rebuild under load: generation 2.
    auto clients = start_load(serve->port(), load, cat, "rb1", 1, 8, rng);
    auto info = c.ask<RebuildInfo>(rebuild_atom::value);
    BOOST_REQUIRE_MESSAGE(info, "rebuild: " << c.why(info));
    BOOST_TEST(info->generation == 2);
    BOOST_TEST(info->events >= kSeedEvents);
    BOOST_TEST(c.status().generation == 2);
    full_rebuild_ms = std::max<int64_t>(info->millis, 1);
    BOOST_TEST_MESSAGE("rebuild under load: " << info->events << " events in " << info->millis << " ms");

    // Now rebuilds that are killed half-way: freeze the server at random
    // moments until the disk shows a partial new generation.
    bool caught = false;
    for (int attempt = 0; attempt < 8 && !caught; ++attempt) {
      gen_before = static_cast<uint32_t>(c.status().generation);
      Secondary sec(data, dir.str("sec-rb-" + std::to_string(attempt)));
      auto call = std::make_shared<RebuildCall>();
      auto rebuilder = start_rebuild(c, call);
      while (!call->done) {
        std::this_thread::sleep_for(std::chrono::microseconds(
            rng() % static_cast<uint64_t>(std::max<int64_t>(full_rebuild_ms * 1000 / 6, 1))));
        if (call->done) break;
        serve->freeze();
        DiskState d = read_disk_state(sec);
        if (d.generation == gen_before && d.next_generation_checkpoint) {
          cp.disk = d;
          caught = true;
          load->killed = true;
          serve->kill_hard();
          break;
        }
        serve->thaw();
      }
      caf::anon_send_exit(rebuilder, caf::exit_reason::kill);
      if (!caught) {
        std::lock_guard lock(call->mu);
        BOOST_REQUIRE_MESSAGE(call->result, "rebuild: " << c.why(call->result));
        BOOST_TEST(call->result->generation == gen_before + 1);
      }
    }
    BOOST_REQUIRE_MESSAGE(caught, "no rebuild was caught half-way in 8 attempts");
    BOOST_TEST_MESSAGE("caught a rebuild half-way at " << ms_since(t0) << " ms");
    BOOST_TEST_MESSAGE("killed during the rebuild of generation "
                       << gen_before + 1 << ": it had folded up to " << *cp.disk.next_generation_checkpoint
                       << "; live generation " << cp.disk.generation << " at " << cp.disk.checkpoint
                       << ", log at " << cp.disk.log);
    clients.clear();
    load->unanswered += load->in_flight.exchange(0);
    load->killed = false;
  }

  // Restart: the old generation is active, whole, and catches up.
  serve = std::make_unique<ServeProcess>(data, dir.str("serve-2.log"));
  check_restart_report(*serve, cp, "restart after the crashed rebuild");
  {
    Client c(serve->port());
    ShopStatus st = c.wait_caught_up(std::chrono::milliseconds(30000 * kSlow));
    BOOST_TEST(st.generation == static_cast<int64_t>(gen_before));
    BOOST_TEST(st.log_position == cp.disk.log);
  }
  require_models_equal_fold(data, dir.str("sec-after-crash"), "after the crashed rebuild");
  {
    // The same through the front door, against the log and giftcard replay.
    Client c(serve->port());
    std::set<std::string> users(cat.users.begin(), cat.users.end());
    for (int u = 0; u < kSeedUsers; ++u) users.insert("seed-" + std::to_string(u));
    Views v = capture(c, users, {"zeta", "eta"});
    LogFacts facts = read_log(data, seeded);
    check_views_against_log(v, facts, run_replay(data));
    check_acked(c, *load, facts);
  }

  // The next rebuild (under load again) succeeds and swaps in gen_before + 1.
  {
    Client c(serve->port());
    auto clients = start_load(serve->port(), load, cat, "rb3", 1, 8, rng);
    auto info = c.ask<RebuildInfo>(rebuild_atom::value);
    BOOST_REQUIRE_MESSAGE(info, "rebuild after the crash: " << c.why(info));
    BOOST_TEST(info->generation == static_cast<int64_t>(gen_before + 1));
    stop_load(*load);
    ShopStatus st = c.wait_caught_up(std::chrono::milliseconds(30000 * kSlow));
    BOOST_TEST(st.generation == static_cast<int64_t>(gen_before + 1));
  }
  require_models_equal_fold(data, dir.str("sec-after-rebuild"), "after the rebuild that followed");
  {
    Secondary sec(data, dir.str("sec-keys"));
    sec.refresh();
    BOOST_TEST(generation_keys(sec, gen_before) == 0, "generation " << gen_before << " was not dropped");
    BOOST_TEST(generation_keys(sec, gen_before + 1) > 0);
    BOOST_TEST(generation_keys(sec, gen_before + 2) == 0);
  }
  {
    Client c(serve->port());
    LogFacts facts = read_log(data, seeded);
    check_acked(c, *load, facts);
  }
  serve->stop_clean();
  require_verify_ok(data);
  BOOST_TEST_MESSAGE(load->summary());
  BOOST_TEST_MESSAGE("rebuild crash: " << ms_since(t0) << " ms");
}

BOOST_AUTO_TEST_SUITE_END()
