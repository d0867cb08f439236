#include "actors/shop_actor.h"

#include <unordered_map>

#include "actors/card_actor.h"
#include "actors/errors.h"
#include "actors/wallet_actor.h"
#include "events/validate.h"

namespace giftcard {
namespace {

template <class Handle>
struct Entry {
  Handle handle;
  uint64_t sent = 0;  // work units routed to it
};

struct ShopState {
  static inline const char* name = "giftcard.shop";
  ShopContext* ctx = nullptr;
  std::unordered_map<std::string, Entry<card_actor>> cards;
  std::unordered_map<std::string, Entry<wallet_actor>> wallets;
  bool draining = false;
};

using Self = shop_internal_actor::stateful_pointer<ShopState>;

card_actor route_card(Self self, const std::string& id) {
  auto& st = self->state;
  auto it = st.cards.find(id);
  if (it == st.cards.end())
    it = st.cards.emplace(id, Entry<card_actor>{spawn_card_actor(self->system(), st.ctx, id,
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

caf::error closing() { return make_error(Errc::unavailable, "the shop is shutting down"); }

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

void drain_next(Self self, std::shared_ptr<DrainJob> job) {
  while (job->outstanding < kDrainWindow && (!job->cards.empty() || !job->wallets.empty())) {
    ++job->outstanding;
    auto done = [self, job](auto&&...) {
      --job->outstanding;
      drain_next(self, job);
    };
    if (!job->cards.empty()) {
      auto h = std::move(job->cards.back());
      job->cards.pop_back();
      self->request(h, caf::infinite, DrainMsg{}).then([=](bool) { done(); }, [=](caf::error&) { done(); });
    } else {
      auto h = std::move(job->wallets.back());
      job->wallets.pop_back();
      self->request(h, caf::infinite, DrainMsg{}).then([=](bool) { done(); }, [=](caf::error&) { done(); });
    }
  }
  if (job->outstanding == 0 && job->cards.empty() && job->wallets.empty() && job->rp.pending()) job->rp.deliver(true);
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

}  // namespace

shop_internal_actor::behavior_type shop_behavior(Self self, ShopContext* ctx) {
  self->state.ctx = ctx;
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
      [=](card_atom, std::string& card_id) -> caf::result<CardInfo> {
        if (self->state.draining) return closing();
        if (auto e = check_card_id(card_id); !e.empty()) return invalid(e);
        return self->delegate(route_card(self, card_id), card_atom::value, card_id);
      },
      [=](credit_atom, std::string& user, int64_t amount,
          std::string& key) -> caf::result<CreditReply> {
        if (self->state.draining) return closing();
        if (auto e = check_user_id(user); !e.empty()) return invalid(e);
        if (key.empty()) return make_error(Errc::missing_idempotency_key, "an idempotency key is required");
        if (auto e = check_idempotency_key(key); !e.empty()) return invalid(e);
        if (auto e = check_amount(amount, "amount"); !e.empty()) return invalid(e);
        return self->delegate(route_wallet(self, user), CreditCmd{amount, std::move(key)});
      },
      [=](purchase_atom, std::string& card_id, std::string& user,
          std::string& key) -> caf::result<Purchase> {
        if (self->state.draining) return closing();
        if (auto e = check_card_id(card_id); !e.empty()) return invalid(e);
        if (auto e = check_user_id(user); !e.empty()) return invalid(e);
        if (key.empty()) return make_error(Errc::missing_idempotency_key, "an idempotency key is required");
        if (auto e = check_idempotency_key(key); !e.empty()) return invalid(e);
        card_actor card = route_card(self, card_id);  // leased: counted as one unit
        return self->delegate(route_wallet(self, user),
                              PurchaseCmd{std::move(card_id), std::move(key), std::move(card)});
      },
      [=](wallet_atom, std::string& user) -> caf::result<WalletView> {
        if (self->state.draining) return closing();
        if (auto e = check_user_id(user); !e.empty()) return invalid(e);
        return self->delegate(route_wallet(self, user), WalletQuery{});
      },
      [=](PassivateReq& req) {
        auto& st = self->state;
        auto answer = [&](auto& map) {
          auto it = map.find(req.id);
          if (it == map.end()) return;  // already drained
          bool ok = it->second.sent == req.received;
          auto handle = it->second.handle;
          if (ok) map.erase(it);
          self->send(handle, PassivateReply{ok});
        };
        if (req.card)
          answer(st.cards);
        else
          answer(st.wallets);
      },
      [=](DrainMsg&) -> caf::result<bool> { return drain(self); },
  };
}

shop_internal_actor spawn_shop(caf::actor_system& sys, ShopContext* ctx) {
  return sys.spawn(shop_behavior, ctx);
}

}  // namespace giftcard
