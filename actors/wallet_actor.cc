#include "actors/wallet_actor.h"

#include <deque>
#include <unordered_map>

#include "actors/errors.h"
#include "actors/lifecycle.h"
#include "actors/recovery.h"
#include "events/check.h"
#include "events/wallet.h"
#include "store/keys.h"

namespace giftcard {
namespace {

struct InflightPurchase {
  caf::typed_response_promise<Purchase> rp;
  std::vector<caf::typed_response_promise<Purchase>> repeats;
  std::string card_id;
  std::string purchase_id;
  card_actor card;
  std::string code;  // once reserved
  int64_t price = 0;
  WalletEvent debit;  // once decided: folded when it commits
};

struct InflightCredit {
  caf::typed_response_promise<CreditReply> rp;
  std::vector<caf::typed_response_promise<CreditReply>> repeats;
  int64_t amount = 0;
  WalletEvent credit;  // folded when it commits
};

struct WalletActorState {
  static inline const char* name = "giftcard.wallet";
  ShopContext* ctx = nullptr;
  std::string user;
  std::string stream;
  shop_internal_actor shop;
  WalletState wallet;   // committed
  Status broken;        // recovery failure (permanent for this activation)
  bool failed = false;  // an append failed: refuse work until the pipeline drains
  int64_t snapshot_version = 0;
  int64_t projected = 0;     // committed balance + every pending change
  int64_t next_version = 0;  // stream head once every pending append commits
  int pending_appends = 0;
  uint64_t next_token = 1;
  std::unordered_map<std::string, InflightPurchase> purchases;        // by idempotency key
  std::unordered_map<std::string, InflightCredit> credits;            // by idempotency key
  std::unordered_map<uint64_t, std::pair<bool, std::string>> tokens;  // token -> (purchase?, key)
  // The purchases this activation committed last, by idempotency key: a
  // client's retry is answered from here without touching the store. Older
  // keys (and keys of earlier activations) are found by their claim.
  std::unordered_map<std::string, Purchase> recent;
  std::deque<std::string> recent_order;  // oldest first
  ActorLife life;
};

// Per wallet: retries come within seconds of the original, from one client.
constexpr size_t kRecentPurchases = 32;

void remember(WalletActorState& st, const std::string& key, const Purchase& p) {
  if (st.recent.size() >= kRecentPurchases) {
    st.recent.erase(st.recent_order.front());
    st.recent_order.pop_front();
  }
  if (st.recent.emplace(key, p).second) st.recent_order.push_back(key);
}

using Self = wallet_actor::stateful_pointer<WalletActorState>;

bool idle(const WalletActorState& st) {
  return st.purchases.empty() && st.credits.empty() && st.pending_appends == 0;
}

// Refuse new work while broken or while a failed pipeline drains.
caf::error refusal(const WalletActorState& st) {
  if (!st.broken.ok()) return make_error(errc_for(st.broken), st.broken.message());
  if (st.failed) return make_error(Errc::storage_unavailable, "a write failed; retry later");
  return {};
}

// Commits arrive in stream order (exact expected versions), so `wallet` is
// always the state as of wallet.version.
void save_snapshot(WalletActorState& st) {
  if (st.broken.ok() && !st.failed && st.wallet.version != st.snapshot_version &&
      st.wallet.version > 0) {
    st.ctx->store->SaveSnapshot(st.stream, Snapshot{st.wallet.version, encode_snapshot(st.wallet)})
        .PermitUncheckedError();  // a cache
    st.snapshot_version = st.wallet.version;
  }
}

void maybe_snapshot(Self self) {
  auto& st = self->state;
  if (st.wallet.version - st.snapshot_version >= st.ctx->config.snapshot_every) save_snapshot(st);
}

void snapshot_and_quit(Self self) {
  save_snapshot(self->state);
  finish_drains_and_quit(self);
}

void after_append(Self self) {
  auto& st = self->state;
  if (st.pending_appends == 0 && st.failed && st.ctx->store->Health().ok()) {
    st.failed = false;  // pipeline drained: restart the projection from what committed
    st.projected = st.wallet.balance;
    st.next_version = st.wallet.version;
  }
  if (!st.life.drains.empty() && idle(st)) snapshot_and_quit(self);
}

uint64_t append(Self self, AppendRequest req, bool purchase, const std::string& key) {
  auto& st = self->state;
  uint64_t token = st.next_token++;
  req.expected.emplace_back(st.stream, st.next_version);
  ++st.next_version;
  ++st.pending_appends;
  st.tokens.emplace(token, std::make_pair(purchase, key));
  st.ctx->store->Append(std::move(req), commit_to(wallet_actor{self}, token));
  return token;
}

template <class Inflight, class Value>
void finish(Inflight& f, const Value& v) {
  f.rp.deliver(v);
  if constexpr (!std::is_same_v<Value, caf::error>) {
    Value repeat = v;
    repeat.replayed = true;
    for (auto& r : f.repeats) r.deliver(repeat);
  } else {
    for (auto& r : f.repeats) r.deliver(v);
  }
}

// Looks up a committed idempotency claim; returns false if there is none.
// The claim value is <card id or amount> followed by the 8-byte position.
bool committed_claim(Self self, const std::string& claim, std::string* subject, int64_t* position,
                     Status* error) {
  std::string value;
  Status s = self->state.ctx->store->GetClaim(claim, &value);
  if (s.IsNotFound()) return false;
  if (!s.ok() || value.size() < kFixed64Bytes) {
    *error = s.ok() ? Status::Corruption("malformed idempotency record") : s;
    return true;
  }
  *subject = value.substr(0, value.size() - kFixed64Bytes);
  *position = static_cast<int64_t>(
      keys::get_be64(std::string_view(value).substr(value.size() - kFixed64Bytes)));
  return true;
}

Status read_event(Self self, int64_t position, StoredEvent* se, Event* ev) {
  Status s = self->state.ctx->store->ReadEvent(position, se);
  if (s.IsNotFound()) return Status::Corruption("idempotency record points at a missing event");
  if (!s.ok()) return s;
  return se->decode(ev);
}

caf::result<Purchase> replay_purchase(Self self, const std::string& card_id, const std::string& key,
                                      const std::string& stored_card, int64_t position) {
  if (stored_card != card_id)
    return make_error(Errc::idempotency_key_reused,
                      "this idempotency key was used for another card");
  StoredEvent se;
  Event ev;
  if (Status s = read_event(self, position, &se, &ev); !s.ok())
    return make_error(errc_for(s), s.message());
  auto* a = std::get_if<CodeAssigned>(&ev);
  if (!a || a->user_id != self->state.user || a->idempotency_key != key)
    return make_error(Errc::storage_corruption, "idempotency record does not match its event");
  ++self->state.ctx->metrics.purchases_replayed;
  return Purchase{a->purchase_id, a->card_id,     a->user_id,  a->code,
                  a->price,       se.recorded_at, se.position, true};
}

void on_reserved(Self self, const std::string& key, Reserved& r) {
  auto& st = self->state;
  auto it = st.purchases.find(key);
  if (it == st.purchases.end()) return;
  InflightPurchase& p = it->second;
  if (st.failed || !st.broken.ok()) {
    self->send(p.card, ReleaseMsg{r.code});
    finish(p, refusal(st));
    st.purchases.erase(it);
    after_append(self);  // it may have been the last work a drain waits for
    return;
  }
  WalletDecision d = decide(DebitWallet{st.user, r.price, p.purchase_id, p.card_id}, st.projected);
  if (!d.ok()) {
    self->send(p.card, ReleaseMsg{r.code});
    ++st.ctx->metrics.purchases_rejected;
    finish(p, make_error(d.error, d.detail));
    st.purchases.erase(it);
    after_append(self);
    return;
  }
  p.code = std::move(r.code);
  p.price = r.price;
  p.debit = std::move(d.events.front());
  st.projected -= r.price;
  // The card decided the CodeAssigned (its code is the card's hold); the
  // wallet carries it to the log in one batch with its debit (invariant 3).
  AppendRequest req;
  req.events.push_back(PendingEvent::of(
      card_stream(p.card_id),
      Event{CodeAssigned{p.card_id, p.code, p.purchase_id, st.user, p.price, key}}));
  req.events.push_back(PendingEvent::of(st.stream, to_event(p.debit)));
  req.claims.push_back(Claim{purchase_idem_claim(st.user, key), p.card_id, true});
  append(self, std::move(req), true, key);
}

void on_purchase_commit(Self self, const std::string& key, CommitMsg& m) {
  auto& st = self->state;
  auto it = st.purchases.find(key);
  if (it == st.purchases.end()) return;
  InflightPurchase& p = it->second;
  if (m.status.ok()) {
    evolve_in_place(st.wallet, p.debit);
    // Paired with append(): the writer's version is the one the fold counts.
    GIFTCARD_CHECK(st.wallet.version == m.result.versions.at(1));
    self->send(p.card, AssignedMsg{p.code, m.result.versions.at(0)});
    maybe_snapshot(self);
    ++st.ctx->metrics.purchases_ok;
    Purchase done{
        p.purchase_id,           p.card_id, st.user, p.code, p.price, m.result.recorded_at,
        m.result.first_position, false};
    finish(p, done);
    done.replayed = true;
    remember(st, key, done);
  } else {
    self->send(p.card, ReleaseMsg{p.code});
    st.projected += p.price;
    st.failed = true;
    finish(p, make_error(errc_for(m.status), "purchase not committed: " + m.status.message()));
  }
  st.purchases.erase(it);
}

void on_credit_commit(Self self, const std::string& key, CommitMsg& m) {
  auto& st = self->state;
  auto it = st.credits.find(key);
  if (it == st.credits.end()) return;
  InflightCredit& c = it->second;
  if (m.status.ok()) {
    evolve_in_place(st.wallet, c.credit);
    GIFTCARD_CHECK(st.wallet.version == m.result.versions.at(0));
    maybe_snapshot(self);
    finish(c, CreditReply{st.user, std::get<WalletCredited>(c.credit).balance_after,
                          m.result.first_position, false});
  } else {
    st.projected -= c.amount;
    st.failed = true;
    finish(c, make_error(errc_for(m.status), "credit not committed: " + m.status.message()));
  }
  st.credits.erase(it);
}

void on_tick(Self self) {
  auto& st = self->state;
  ask_passivation_or_tick(self, false, st.user, idle(st), !st.broken.ok());
}

caf::result<Purchase> on_purchase(Self self, PurchaseCmd& cmd) {
  auto& st = self->state;
  auto lease_unused = [&] { self->send(cmd.card, LeaseDoneMsg{}); };
  if (auto e = refusal(st)) {
    lease_unused();
    return e;
  }
  if (auto it = st.purchases.find(cmd.key); it != st.purchases.end()) {
    lease_unused();
    if (it->second.card_id != cmd.card_id)
      return make_error(Errc::idempotency_key_reused,
                        "this idempotency key is in use for another card");
    auto rp = self->make_response_promise<Purchase>();
    it->second.repeats.push_back(rp);
    ++st.ctx->metrics.purchases_replayed;  // joins the first attempt
    return rp;
  }
  if (auto it = st.recent.find(cmd.key); it != st.recent.end()) {
    lease_unused();
    if (it->second.card_id != cmd.card_id)
      return make_error(Errc::idempotency_key_reused,
                        "this idempotency key was used for another card");
    ++st.ctx->metrics.purchases_replayed;
    return it->second;
  }
  std::string stored_card;
  int64_t position = 0;
  Status err;
  if (committed_claim(self, purchase_idem_claim(st.user, cmd.key), &stored_card, &position, &err)) {
    lease_unused();
    if (!err.ok()) return make_error(errc_for(err), err.message());
    return replay_purchase(self, cmd.card_id, cmd.key, stored_card, position);
  }
  auto rp = self->make_response_promise<Purchase>();
  InflightPurchase p{rp, {}, cmd.card_id, new_purchase_id(), cmd.card, {}, 0, {}};
  std::string key = cmd.key;
  st.purchases.emplace(key, std::move(p));
  self->request(cmd.card, caf::infinite, ReserveMsg{st.projected})
      .then([=](Reserved& r) { on_reserved(self, key, r); },
            [=](caf::error& e) {
              auto& st = self->state;
              auto it = st.purchases.find(key);
              if (it == st.purchases.end()) return;
              ++st.ctx->metrics.purchases_rejected;
              finish(it->second, e.category() == kErrorCategory
                                     ? e
                                     : make_error(Errc::unavailable, caf::to_string(e)));
              st.purchases.erase(it);
              after_append(self);
            });
  return rp;
}

caf::result<CreditReply> on_credit(Self self, CreditCmd& cmd) {
  auto& st = self->state;
  if (auto e = refusal(st)) return e;
  if (auto it = st.credits.find(cmd.key); it != st.credits.end()) {
    if (it->second.amount != cmd.amount)
      return make_error(Errc::idempotency_key_reused,
                        "this idempotency key is in use for another amount");
    auto rp = self->make_response_promise<CreditReply>();
    it->second.repeats.push_back(rp);
    return rp;
  }
  std::string stored_amount;
  int64_t position = 0;
  Status err;
  if (committed_claim(self, credit_idem_claim(st.user, cmd.key), &stored_amount, &position, &err)) {
    if (!err.ok()) return make_error(errc_for(err), err.message());
    if (stored_amount != std::to_string(cmd.amount))
      return make_error(Errc::idempotency_key_reused,
                        "this idempotency key was used for another amount");
    StoredEvent se;
    Event ev;
    if (Status s = read_event(self, position, &se, &ev); !s.ok())
      return make_error(errc_for(s), s.message());
    auto* c = std::get_if<WalletCredited>(&ev);
    if (!c || c->user_id != st.user)
      return make_error(Errc::storage_corruption, "bad idempotency record");
    return CreditReply{st.user, c->balance_after, se.position, true};
  }
  WalletDecision d = decide(CreditWallet{st.user, cmd.amount, cmd.key}, st.projected);
  if (!d.ok()) return make_error(d.error, d.detail);
  auto rp = self->make_response_promise<CreditReply>();
  AppendRequest req;
  req.events.push_back(PendingEvent::of(st.stream, to_event(d.events.front())));
  st.credits.emplace(cmd.key, InflightCredit{rp, {}, cmd.amount, std::move(d.events.front())});
  st.projected += cmd.amount;
  req.claims.push_back(
      Claim{credit_idem_claim(st.user, cmd.key), std::to_string(cmd.amount), true});
  append(self, std::move(req), false, cmd.key);
  return rp;
}

}  // namespace

wallet_actor::behavior_type wallet_behavior(Self self, ShopContext* ctx, std::string user,
                                            shop_internal_actor shop) {
  auto& st = self->state;
  st.ctx = ctx;
  st.user = std::move(user);
  st.stream = wallet_stream(st.user);
  st.shop = std::move(shop);
  st.life.last_active = ctx->now();
  int64_t version = 0, tail = 0;
  st.broken = recover(ctx->store, st.stream, &st.wallet, &version, &tail);
  st.wallet.user_id = st.user;
  st.wallet.version = version;
  st.snapshot_version = version - tail;
  st.projected = st.wallet.balance;
  st.next_version = st.wallet.version;
  ++ctx->metrics.live_wallets;
  self->attach_functor([ctx] { --ctx->metrics.live_wallets; });
  self->delayed_send(self, ctx->tick(), TickMsg{});
  return {
      [=](PurchaseCmd& cmd) -> caf::result<Purchase> {
        touch(self);
        return on_purchase(self, cmd);
      },
      [=](CreditCmd& cmd) -> caf::result<CreditReply> {
        touch(self);
        return on_credit(self, cmd);
      },
      [=](CommitMsg& m) {
        auto& st = self->state;
        auto it = st.tokens.find(m.token);
        if (it == st.tokens.end()) return;
        auto [purchase, key] = std::move(it->second);
        st.tokens.erase(it);
        --st.pending_appends;
        if (purchase) on_purchase_commit(self, key, m);
        else on_credit_commit(self, key, m);
        after_append(self);
      },
      [=](TickMsg&) { on_tick(self); },
      [=](PassivateReply& r) { on_passivate_reply(self, r, [=] { snapshot_and_quit(self); }); },
      [=](DrainMsg&) -> caf::result<bool> {
        return on_drain(self, idle(self->state), [=] { snapshot_and_quit(self); });
      },
  };
}

wallet_actor spawn_wallet_actor(caf::actor_system& sys, ShopContext* ctx, std::string user_id,
                                shop_internal_actor shop) {
  return sys.spawn(wallet_behavior, ctx, std::move(user_id), std::move(shop));
}

}  // namespace giftcard
