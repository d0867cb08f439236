#include "actors/shop_actor.h"

#include <functional>
#include <memory>
#include <optional>
#include <unordered_map>

#include "actors/card_actor.h"
#include "actors/errors.h"
#include "actors/projection_driver.h"
#include "actors/wallet_actor.h"
#include "events/validate.h"

namespace giftcard {
namespace {

template <class Handle>
struct Entry {
  Handle handle;
  uint64_t sent = 0;  // work units routed to it
};

caf::error closing() { return make_error(Errc::unavailable, "the shop is shutting down"); }

struct ShopState {
  static inline const char* name = "giftcard.shop";
  ShopContext* ctx = nullptr;
  std::unordered_map<std::string, Entry<card_actor>> cards;
  std::unordered_map<std::string, Entry<wallet_actor>> wallets;
  projection_driver_actor driver;
  bool draining = false;
  // Queries on the query pool, by id, until their QueryDone: each answers
  // its caller (true: with the result the job left; false: "shutting down",
  // without looking at the result, which a job may still be writing).
  std::unordered_map<uint64_t, std::function<void(bool)>> queries;
  uint64_t last_query = 0;
  std::unique_ptr<QueryPool> own_pool;  // when ctx->queries is null

  // Runs when the shop exits (stateful_actor::on_exit, on the shop's own
  // thread): no job of our own pool runs any more, and every query not yet
  // answered hears "shutting down" instead of nothing.
  ~ShopState() {
    if (own_pool) own_pool->stop();
    auto left = std::move(queries);
    for (auto& [id, answer] : left) answer(false);
  }
};

using Self = shop_internal_actor::stateful_pointer<ShopState>;

card_actor route_card(Self self, const std::string& id) {
  auto& st = self->state;
  auto it = st.cards.find(id);
  if (it == st.cards.end())
    it = st.cards
             .emplace(id, Entry<card_actor>{spawn_card_actor(self->system(), st.ctx, id,
                                                             shop_internal_actor{self})})
             .first;
  ++it->second.sent;
  return it->second.handle;
}

wallet_actor route_wallet(Self self, const std::string& user) {
  auto& st = self->state;
  auto it = st.wallets.find(user);
  if (it == st.wallets.end())
    it = st.wallets
             .emplace(user, Entry<wallet_actor>{spawn_wallet_actor(self->system(), st.ctx, user,
                                                                   shop_internal_actor{self})})
             .first;
  ++it->second.sent;
  return it->second.handle;
}

caf::error invalid(const std::string& why) { return make_error(Errc::invalid_request, why); }

// Drains every live actor, at most kDrainWindow at a time, and replies once
// all have answered. The window matters: making 100k+ actors runnable at once
// sends CAF 0.17.6's work-stealing queues into quadratic stealing.
constexpr size_t kDrainWindow = 256;

struct DrainJob {
  std::vector<card_actor> cards;
  std::vector<wallet_actor> wallets;
  size_t outstanding = 0;
  caf::typed_response_promise<bool> rp;
};

void drain_next(Self self, const std::shared_ptr<DrainJob>& job) {
  while (job->outstanding < kDrainWindow && (!job->cards.empty() || !job->wallets.empty())) {
    ++job->outstanding;
    auto done = [self, job](auto&&...) {
      --job->outstanding;
      drain_next(self, job);
    };
    if (!job->cards.empty()) {
      auto h = std::move(job->cards.back());
      job->cards.pop_back();
      self->request(h, caf::infinite, DrainMsg{})
          .then([=](bool) { done(); }, [=](caf::error&) { done(); });
    } else {
      auto h = std::move(job->wallets.back());
      job->wallets.pop_back();
      self->request(h, caf::infinite, DrainMsg{})
          .then([=](bool) { done(); }, [=](caf::error&) { done(); });
    }
  }
  if (job->outstanding == 0 && job->cards.empty() && job->wallets.empty() && job->rp.pending()) {
    // Every command is committed; let the projections take in the last of it.
    auto rp = job->rp;
    self->request(self->state.driver, caf::infinite, DrainMsg{})
        .then([rp](bool ok) mutable { rp.deliver(ok); },
              [rp](caf::error& e) mutable { rp.deliver(std::move(e)); });
  }
}

caf::result<bool> drain(Self self) {
  auto& st = self->state;
  st.draining = true;
  auto job = std::make_shared<DrainJob>();
  job->rp = self->make_response_promise<bool>();
  for (auto& [id, e] : st.cards) job->cards.push_back(e.handle);
  for (auto& [id, e] : st.wallets) job->wallets.push_back(e.handle);
  st.cards.clear();
  st.wallets.clear();
  auto rp = job->rp;
  drain_next(self, std::move(job));
  return rp;
}

QueryPool* query_pool(Self self) {
  auto& st = self->state;
  if (st.ctx->queries) return st.ctx->queries;
  if (!st.own_pool)
    st.own_pool = std::make_unique<QueryPool>(st.ctx->config.query_threads,
                                              st.ctx->config.max_queued_queries);
  return st.own_pool.get();
}

// Runs `query` (-> caf::expected<T>) on the query pool and answers `rp` with
// its result. The job leaves the result in a slot shared with the shop and
// sends the shop a QueryDone; the shop delivers. A pool thread never calls
// deliver(): CAF 0.17.6's response_promise::deliver_impl sends through
// self->context(), the execution unit of whichever scheduler thread runs the
// shop at that moment (libcaf_core/src/response_promise.cpp). A full pool
// answers busy at once.
template <class T, class Query>
void run_query(Self self, caf::typed_response_promise<T> rp, Query query) {
  auto& st = self->state;
  QueryPool* pool = query_pool(self);
  const uint64_t id = ++st.last_query;
  auto slot = std::make_shared<std::optional<caf::expected<T>>>();
  caf::actor_addr shop = self->address();  // weak: a queued job keeps no shop alive
  bool posted = pool->try_post([slot, shop, id, query = std::move(query)]() mutable {
    try {
      slot->emplace(query());
    } catch (const std::exception& e) {
      slot->emplace(make_error(Errc::unavailable, std::string("query failed: ") + e.what()));
    }
    if (auto strong = caf::actor_cast<caf::strong_actor_ptr>(shop))
      caf::anon_send(caf::actor_cast<shop_internal_actor>(strong), QueryDone{id});
  });
  if (!posted) {
    if (pool->stopped()) rp.deliver(closing());
    else rp.deliver(make_error(Errc::busy, "too many queries in progress; retry later"));
    return;
  }
  st.queries.emplace(id, [rp, slot](bool done) mutable {
    if (!done || !*slot) {
      rp.deliver(closing());
    } else if (auto& x = **slot) {
      rp.deliver(std::move(*x));
    } else {
      rp.deliver(std::move(x.error()));
    }
  });
}

// Answers `query` (-> caf::expected<T>) from the projections, on the query
// pool, once they include log position `after`: at once if they do, else
// when the driver says so, or projection_lagging after
// config.projection_wait. The query never runs on the shop actor.
template <class T, class Query>
caf::result<T> projected(Self self, int64_t after, Query query) {
  auto& st = self->state;
  if (st.draining) return closing();
  if (after < 0) return invalid("after must be a log position >= 0");
  const int64_t head = st.ctx->store->LastPosition();
  if (after > head)
    return invalid("position " + std::to_string(after) + " is not in the log (last position " +
                   std::to_string(head) + ")");
  auto rp = self->template make_response_promise<T>();
  if (st.ctx->projections->position() >= after) {
    run_query<T>(self, rp, std::move(query));
    return rp;
  }
  self->request(st.driver, caf::infinite, AwaitMsg{after})
      .then([self, rp, query](int64_t) mutable { run_query<T>(self, rp, std::move(query)); },
            [rp](caf::error& e) mutable { rp.deliver(std::move(e)); });
  return rp;
}

std::string check_limit(int64_t limit) {
  if (limit < 1 || limit > kMaxPageLimit)
    return "limit must be 1.." + std::to_string(kMaxPageLimit);
  return {};
}

caf::error storage_error(const Status& s) { return make_error(errc_for(s), s.message()); }

CardInfo card_info(const CardView& c, int64_t position) {
  return CardInfo{c.id,       c.name,    c.price,   c.value, c.available,
                  c.assigned, c.expired, c.revoked, position};
}

Purchase purchase_of(const PurchaseView& p) {
  return Purchase{p.purchase_id, p.card_id,      p.user_id,  p.code,
                  p.price,       p.purchased_at, p.position, false};
}

// A one-shot detached worker: a rebuild reads the whole log and must not
// occupy a scheduler thread.
using rebuild_worker_actor = caf::typed_actor<caf::replies_to<rebuild_atom>::with<RebuildInfo>>;

rebuild_worker_actor::behavior_type rebuild_worker(rebuild_worker_actor::pointer self,
                                                   ProjectionDb* db) {
  return {
      [=](rebuild_atom) -> caf::result<RebuildInfo> {
        self->quit();
        RebuildReport r;
        Status s = db->Rebuild(&r);
        if (s.IsBusy()) return make_error(Errc::unavailable, s.message());
        if (!s.ok()) return storage_error(s);
        return RebuildInfo{r.events, r.position, static_cast<int64_t>(r.generation),
                           static_cast<int64_t>(r.seconds * 1000)};
      },
  };
}

// --- Commands: validated here, decided by the card or wallet actor ---------

caf::result<CreditReply> on_credit(Self self, const std::string& user, int64_t amount,
                                   std::string& key) {
  if (self->state.draining) return closing();
  if (auto e = check_user_id(user); !e.empty()) return invalid(e);
  if (key.empty())
    return make_error(Errc::missing_idempotency_key, "an idempotency key is required");
  if (auto e = check_idempotency_key(key); !e.empty()) return invalid(e);
  if (auto e = check_amount(amount, "amount"); !e.empty()) return invalid(e);
  return self->delegate(route_wallet(self, user), CreditCmd{amount, std::move(key)});
}

caf::result<Purchase> on_purchase(Self self, std::string& card_id, const std::string& user,
                                  std::string& key) {
  if (self->state.draining) return closing();
  if (auto e = check_card_id(card_id); !e.empty()) return invalid(e);
  if (auto e = check_user_id(user); !e.empty()) return invalid(e);
  if (key.empty())
    return make_error(Errc::missing_idempotency_key, "an idempotency key is required");
  if (auto e = check_idempotency_key(key); !e.empty()) return invalid(e);
  card_actor card = route_card(self, card_id);  // leased: counted as one unit
  return self->delegate(route_wallet(self, user),
                        PurchaseCmd{std::move(card_id), std::move(key), std::move(card)});
}

// --- Queries: run on the query pool, against the projections -------------

caf::expected<CardInfo> card_query(ProjectionDb* db, const std::string& id) {
  CardView c;
  int64_t pos = db->position();
  Status s = db->Card(id, &c);
  if (s.IsNotFound()) return make_error(Errc::card_not_found, "no card " + id);
  if (!s.ok()) return storage_error(s);
  return card_info(c, pos);
}

caf::expected<CardPage> cards_query(ProjectionDb* db, const std::string& from, int64_t limit) {
  const auto n = static_cast<size_t>(limit);
  std::vector<CardView> cs;
  CardPage page;
  page.position = db->position();
  if (Status s = db->Cards(from, n + 1, &cs); !s.ok()) return storage_error(s);
  if (cs.size() > n) {
    page.next = cs[n].id;
    cs.resize(n);
  }
  page.cards.reserve(cs.size());
  for (const auto& c : cs) page.cards.push_back(card_info(c, page.position));
  return page;
}

caf::expected<WalletView> wallet_query(ProjectionDb* db, const std::string& user) {
  int64_t pos = db->position();
  int64_t balance = 0;
  if (Status s = db->Balance(user, &balance); !s.ok()) return storage_error(s);
  return WalletView{user, balance, pos};
}

caf::expected<Purchase> lookup_query(ProjectionDb* db, const std::string& purchase_id) {
  PurchaseView p;
  Status s = db->Purchase(purchase_id, &p);
  if (s.IsNotFound()) return make_error(Errc::purchase_not_found, "no purchase " + purchase_id);
  if (!s.ok()) return storage_error(s);
  return purchase_of(p);
}

caf::expected<PurchasePage> history_query(ProjectionDb* db, const std::string& user, int64_t from,
                                          int64_t limit) {
  const auto n = static_cast<size_t>(limit);
  std::vector<PurchaseView> ps;
  PurchasePage page;
  page.position = db->position();
  if (Status s = db->UserPurchases(user, from, n + 1, &ps); !s.ok()) return storage_error(s);
  if (ps.size() > n) {
    page.next = ps[n].position;
    ps.resize(n);
  }
  page.purchases.reserve(ps.size());
  for (const auto& p : ps) page.purchases.push_back(purchase_of(p));
  return page;
}

// An idle actor asks to stop: approved (and forgotten) only if every unit the
// shop routed to it has arrived.
void on_passivate(Self self, const PassivateReq& req) {
  auto& st = self->state;
  auto answer = [&](auto& map) {
    auto it = map.find(req.id);
    if (it == map.end()) return;  // already drained
    bool ok = it->second.sent == req.received;
    auto handle = it->second.handle;
    if (ok) map.erase(it);
    self->send(handle, PassivateReply{ok});
  };
  if (req.card) answer(st.cards);
  else answer(st.wallets);
}

void on_query_done(Self self, const QueryDone& done) {
  auto& queries = self->state.queries;
  auto it = queries.find(done.id);
  if (it == queries.end()) return;
  auto answer = std::move(it->second);
  queries.erase(it);
  answer(true);
}

}  // namespace

shop_internal_actor::behavior_type shop_behavior(Self self, ShopContext* ctx) {
  self->state.ctx = ctx;
  self->state.driver = spawn_projection_driver(self->system(), ctx);
  self->link_to(self->state.driver);
  ProjectionDb* db = ctx->projections;
  return {
      [=](create_atom, CardSpec& spec) -> caf::result<CardInfo> {
        if (self->state.draining) return closing();
        if (auto e = check_card_id(spec.id); !e.empty()) return invalid(e);
        return self->delegate(route_card(self, spec.id), create_atom::value, std::move(spec));
      },
      [=](add_codes_atom, std::string& card_id,
          std::vector<CodeSpec>& codes) -> caf::result<AddCodesReply> {
        if (self->state.draining) return closing();
        if (auto e = check_card_id(card_id); !e.empty()) return invalid(e);
        return self->delegate(route_card(self, card_id), add_codes_atom::value, card_id,
                              std::move(codes));
      },
      [=](revoke_atom, std::string& card_id, std::string& code) -> caf::result<int64_t> {
        if (self->state.draining) return closing();
        if (auto e = check_card_id(card_id); !e.empty()) return invalid(e);
        if (auto e = check_code(code); !e.empty()) return invalid(e);
        return self->delegate(route_card(self, card_id), revoke_atom::value, card_id, code);
      },
      [=](credit_atom, std::string& user, int64_t amount, std::string& key)
          -> caf::result<CreditReply> { return on_credit(self, user, amount, key); },
      [=](purchase_atom, std::string& card_id, std::string& user, std::string& key)
          -> caf::result<Purchase> { return on_purchase(self, card_id, user, key); },
      [=](card_atom, std::string& id, int64_t after) -> caf::result<CardInfo> {
        if (auto e = check_card_id(id); !e.empty()) return invalid(e);
        return projected<CardInfo>(self, after,
                                   [db, id = std::move(id)] { return card_query(db, id); });
      },
      [=](cards_atom, std::string& from, int64_t limit, int64_t after) -> caf::result<CardPage> {
        if (!from.empty())
          if (auto e = check_card_id(from); !e.empty()) return invalid("from: " + e);
        if (auto e = check_limit(limit); !e.empty()) return invalid(e);
        return projected<CardPage>(self, after, [db, from = std::move(from), limit] {
          return cards_query(db, from, limit);
        });
      },
      [=](wallet_atom, std::string& user, int64_t after) -> caf::result<WalletView> {
        if (auto e = check_user_id(user); !e.empty()) return invalid(e);
        return projected<WalletView>(
            self, after, [db, user = std::move(user)] { return wallet_query(db, user); });
      },
      [=](lookup_atom, std::string& purchase_id, int64_t after) -> caf::result<Purchase> {
        if (purchase_id.empty() || purchase_id.size() > 128)
          return invalid("purchase_id must be 1..128 characters");
        return projected<Purchase>(
            self, after, [db, id = std::move(purchase_id)] { return lookup_query(db, id); });
      },
      [=](history_atom, std::string& user, int64_t from, int64_t limit,
          int64_t after) -> caf::result<PurchasePage> {
        if (auto e = check_user_id(user); !e.empty()) return invalid(e);
        if (from < 0) return invalid("from must be a log position >= 0");
        if (auto e = check_limit(limit); !e.empty()) return invalid(e);
        return projected<PurchasePage>(self, after, [db, user = std::move(user), from, limit] {
          return history_query(db, user, from, limit);
        });
      },
      [=](status_atom) -> caf::result<ShopStatus> {
        return ShopStatus{self->state.ctx->store->LastPosition(), db->position(),
                          static_cast<int64_t>(db->generation())};
      },
      [=](rebuild_atom) -> caf::result<RebuildInfo> {
        if (self->state.draining) return closing();
        auto worker = self->system().spawn<caf::detached>(rebuild_worker, db);
        return self->delegate(worker, rebuild_atom::value);
      },
      [=](PassivateReq& req) { on_passivate(self, req); },
      [=](DrainMsg&) -> caf::result<bool> { return drain(self); },
      [=](QueryDone& done) { on_query_done(self, done); },
  };
}

shop_internal_actor spawn_shop(caf::actor_system& sys, ShopContext* ctx) {
  return sys.spawn(shop_behavior, ctx);
}

}  // namespace giftcard
