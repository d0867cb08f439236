#include "actors/card_actor.h"

#include <set>
#include <unordered_map>
#include <variant>

#include "actors/errors.h"
#include "actors/lifecycle.h"
#include "actors/recovery.h"
#include "events/check.h"
#include "events/envelope.h"
#include "events/gift_card.h"

namespace giftcard {
namespace {

struct PendingCreate {
  caf::typed_response_promise<CardInfo> rp;
  CardCreated event;
};
struct PendingAdd {
  caf::typed_response_promise<AddCodesReply> rp;
  CodesAdded event;
};
struct PendingRevoke {
  caf::typed_response_promise<int64_t> rp;
  std::string code;
};
struct PendingExpire {
  std::vector<std::string> codes;
};
using PendingOp = std::variant<PendingCreate, PendingAdd, PendingRevoke, PendingExpire>;

struct CardActorState {
  static inline const char* name = "giftcard.card";
  ShopContext* ctx = nullptr;
  std::string id;
  std::string stream;
  shop_internal_actor shop;
  CardState card;
  Status broken;                 // recovery or sticky store failure
  int64_t snapshot_version = 0;  // stream version of the last snapshot loaded/saved
  // The parts of the card's snapshot (events/snapshot.h) as last written, and
  // those whose slots changed since: a save writes only these, then the head.
  std::vector<CardPartRef> parts;
  std::set<uint32_t> dirty;
  // Committed stream versions folded into `card`. They arrive out of order
  // (a purchase's CodeAssigned comes back through its wallet), so `card` is
  // the state as of `folded` only while `folded_above` is empty.
  int64_t folded = 0;              // every version <= folded is in `card`
  std::set<int64_t> folded_above;  // versions > folded + 1 already in `card`
  uint64_t next_token = 1;
  std::unordered_map<uint64_t, PendingOp> pending;
  Micros last_sweep = 0;
  ActorLife life;
};

using Self = card_actor::stateful_pointer<CardActorState>;

CardInfo info_of(const CardState& c, int64_t position = 0) {
  return CardInfo{c.id,       c.name,    c.price,   c.value, c.available,
                  c.assigned, c.expired, c.revoked, position};
}

// True if `code` is on this card and held by this activation.
bool held_here(const CardState& c, const std::string& code) {
  auto it = c.index.find(code);
  return it != c.index.end() && c.slots[it->second].held;
}

bool idle(const CardActorState& st) {
  return st.pending.empty() && (st.card.held == 0 || st.ctx->config.TEST_passivate_with_holds);
}

uint64_t append(Self self, AppendRequest req, PendingOp op) {
  uint64_t token = self->state.next_token++;
  self->state.pending.emplace(token, std::move(op));
  self->state.ctx->store->Append(std::move(req), commit_to(card_actor{self}, token));
  return token;
}

// Folds a committed event and marks the snapshot parts it changed.
void evolve_committed(CardActorState& st, const CardEvent& e) {
  const size_t before = st.card.slots.size();
  evolve_in_place(st.card, e);
  card_parts_changed(st.card, before, e, &st.dirty);
}

// Parts written per save while purchases run: a big pool's first snapshot
// (every part new) is spread over that many events' group commits.
constexpr size_t kPartsPerSave = 8;

// Writes the changed parts (at most `max_parts`), then, once none is left,
// the head naming every part: a snapshot as of `folded`. A head is written
// only when every part it names is stored, and a part rewritten after the
// last head no longer matches it (another version), so a crash between them
// costs a refold, never a wrong pool.
void save_snapshot(CardActorState& st, size_t max_parts = SIZE_MAX) {
  if (!st.broken.ok() || !st.card.exists || !st.folded_above.empty() ||
      st.folded == st.snapshot_version)
    return;
  const uint32_t n = card_parts(st.card);
  for (auto p = static_cast<uint32_t>(st.parts.size()); p < n; ++p) st.dirty.insert(p);
  st.parts.resize(n);
  for (size_t written = 0; !st.dirty.empty() && written < max_parts; ++written) {
    const uint32_t p = *st.dirty.begin();
    st.dirty.erase(st.dirty.begin());
    std::string bytes = encode_card_part(st.card, p);
    st.parts[p] = CardPartRef{st.folded, crc32c(bytes)};
    st.ctx->store->SaveSnapshot(card_part_name(st.stream, p), Snapshot{st.folded, std::move(bytes)})
        .PermitUncheckedError();  // a cache: a failed save costs a longer recovery only
  }
  if (!st.dirty.empty()) return;  // the head follows the last part
  st.ctx->store->SaveSnapshot(st.stream, Snapshot{st.folded, encode_card_head(st.card, st.parts)})
      .PermitUncheckedError();
  st.snapshot_version = st.folded;
}

// Version `v` of the stream is now folded into `card`.
void folded(Self self, int64_t v) {
  auto& st = self->state;
  if (v <= st.folded) return;
  st.folded_above.insert(v);
  while (!st.folded_above.empty() && *st.folded_above.begin() == st.folded + 1) {
    ++st.folded;
    st.folded_above.erase(st.folded_above.begin());
  }
  // A save writes the parts that changed and a head of 12 bytes per 4,096
  // codes, so a big pool can afford one every 65,536 events at most.
  const int64_t every = std::max<int64_t>(
      st.ctx->config.snapshot_every,
      std::min<int64_t>(static_cast<int64_t>(st.card.slots.size() / 4), 65536));
  if (st.folded - st.snapshot_version >= every) save_snapshot(st, kPartsPerSave);
}

void snapshot_and_quit(Self self) {
  save_snapshot(self->state);
  finish_drains_and_quit(self);
}

void maybe_finish_drain(Self self) {
  if (!self->state.life.drains.empty() && idle(self->state)) snapshot_and_quit(self);
}

void expire(Self self, std::vector<std::string> codes) {
  if (codes.empty()) return;
  auto& st = self->state;
  AppendRequest req;
  req.events.push_back(PendingEvent::of(st.stream, Event{CodesExpired{st.id, codes}}));
  append(self, std::move(req), PendingExpire{std::move(codes)});
}

// A commit came back: evolve on success, undo holds on failure, answer.
void on_commit(Self self, CommitMsg& msg) {
  auto& st = self->state;
  auto it = st.pending.find(msg.token);
  if (it == st.pending.end()) return;
  PendingOp op = std::move(it->second);
  st.pending.erase(it);
  const Status& s = msg.status;
  if (!s.ok() && (s.IsIOError() || s.IsCorruption())) st.broken = s;
  std::visit(
      [&](auto& p) {
        using T = std::decay_t<decltype(p)>;
        if constexpr (std::is_same_v<T, PendingCreate>) {
          if (s.ok()) {
            evolve_committed(st, p.event);
            p.rp.deliver(info_of(st.card, msg.result.first_position));
          } else if (s.IsConflict()) {
            p.rp.deliver(make_error(Errc::card_exists, "card " + st.id + " exists"));
          } else {
            p.rp.deliver(make_error(errc_for(s), s.message()));
          }
        } else if constexpr (std::is_same_v<T, PendingAdd>) {
          if (s.ok()) {
            auto n = static_cast<int64_t>(p.event.codes.size());
            evolve_committed(st, p.event);
            p.rp.deliver(AddCodesReply{n, msg.result.first_position});
          } else if (s.IsConflict()) {
            std::vector<std::string> codes;
            for (auto& k : msg.result.conflicts) codes.push_back(k.substr(5));  // "code/"
            // Counted before `codes` is moved: the order in which a call's
            // arguments are evaluated is unspecified.
            std::string detail = std::to_string(codes.size()) +
                                 " code(s) already exist in the shop; nothing was added";
            p.rp.deliver(make_error(Errc::duplicate_codes, std::move(detail), std::move(codes)));
          } else {
            p.rp.deliver(make_error(errc_for(s), s.message()));
          }
        } else if constexpr (std::is_same_v<T, PendingRevoke>) {
          if (s.ok()) {
            evolve_committed(st, CodeRevoked{st.id, p.code});
            p.rp.deliver(msg.result.first_position);
          } else {
            release(st.card, p.code);
            p.rp.deliver(make_error(errc_for(s), s.message()));
          }
        } else {
          if (s.ok()) {
            evolve_committed(st, CodesExpired{st.id, p.codes});
          } else {
            for (auto& c : p.codes) release(st.card, c);
          }
        }
      },
      op);
  if (s.ok())
    for (int64_t v : msg.result.versions) folded(self, v);  // after evolving
  maybe_finish_drain(self);
}

void on_tick(Self self) {
  auto& st = self->state;
  Micros now = st.ctx->now();
  const auto& cfg = st.ctx->config;
  if (st.broken.ok() && st.card.exists && now - st.last_sweep >= micros_of(cfg.expiry_sweep)) {
    st.last_sweep = now;
    expire(self, sweep_expired(st.card, now));
  }
  bool useless = !st.card.exists || !st.broken.ok();  // nothing worth keeping in memory
  // The negative control (ShopConfig): a card holding codes asks at once.
  if (st.ctx->config.TEST_passivate_with_holds && st.card.held > 0) useless = true;
  ask_passivation_or_tick(self, true, st.id, idle(st), useless);
}

// --- Commands: decide, hold what the append will change, append ----------

caf::error refusal(const CardActorState& st) {
  if (!st.broken.ok()) return make_error(errc_for(st.broken), st.broken.message());
  return {};
}

caf::result<CardInfo> on_create(Self self, const CardSpec& spec) {
  auto& st = self->state;
  if (auto e = refusal(st)) return e;
  CardDecision d = decide(CreateCard{spec.id, spec.name, spec.price, spec.value}, st.card);
  if (!d.ok()) return make_error(d.error, d.detail);
  AppendRequest req;
  req.events.push_back(PendingEvent::of(st.stream, to_event(d.events.front())));
  req.expected.emplace_back(st.stream, kNoStream);
  auto rp = self->make_response_promise<CardInfo>();
  append(self, std::move(req), PendingCreate{rp, std::get<CardCreated>(d.events.front())});
  return rp;
}

caf::result<AddCodesReply> on_add_codes(Self self, const std::string& card_id,
                                        std::vector<CodeSpec> codes) {
  auto& st = self->state;
  if (auto e = refusal(st)) return e;
  CardDecision d = decide(AddCodes{card_id, std::move(codes), st.ctx->now()}, st.card);
  if (!d.ok()) return make_error(d.error, d.detail, std::move(d.conflicts));
  auto& ev = std::get<CodesAdded>(d.events.front());
  AppendRequest req;
  req.claims.reserve(ev.codes.size());
  for (const auto& c : ev.codes) req.claims.push_back(Claim{code_claim(c.code), st.id, false});
  req.events.push_back(PendingEvent::of(st.stream, Event{ev}));
  auto rp = self->make_response_promise<AddCodesReply>();
  append(self, std::move(req), PendingAdd{rp, std::move(ev)});
  return rp;
}

caf::result<int64_t> on_revoke(Self self, const std::string& card_id, const std::string& code) {
  auto& st = self->state;
  if (auto e = refusal(st)) return e;
  CardDecision d = decide(RevokeCode{card_id, code}, st.card);
  if (!d.ok()) return make_error(d.error, d.detail);
  hold(st.card, code);
  AppendRequest req;
  req.events.push_back(PendingEvent::of(st.stream, to_event(d.events.front())));
  auto rp = self->make_response_promise<int64_t>();
  append(self, std::move(req), PendingRevoke{rp, code});
  return rp;
}

// A wallet asks for the next code of a purchase: the card decides which, and
// holds it until the wallet reports the commit (AssignedMsg) or the release.
caf::result<Reserved> on_reserve(Self self, const ReserveMsg& m) {
  auto& st = self->state;
  if (auto e = refusal(st)) return e;
  if (!st.card.exists) return make_error(Errc::card_not_found, "no card " + st.id);
  if (st.card.price > m.budget)
    return make_error(Errc::insufficient_funds, "balance " + std::to_string(m.budget) +
                                                    " is below the price " +
                                                    std::to_string(st.card.price));
  Reservation r = reserve(st.card, st.ctx->now());
  expire(self, std::move(r.expired));
  if (r.error != Errc::ok) return make_error(r.error, "card " + st.id + " is out of stock");
  return Reserved{std::move(r.code), st.card.price};
}

}  // namespace

card_actor::behavior_type card_behavior(Self self, ShopContext* ctx, std::string id,
                                        shop_internal_actor shop) {
  auto& st = self->state;
  st.ctx = ctx;
  st.id = std::move(id);
  st.stream = card_stream(st.id);
  st.shop = std::move(shop);
  st.life.last_active = st.last_sweep = ctx->now();
  int64_t version = 0, tail = 0;
  CardSnapshotTrack track{&st.parts, &st.dirty};
  st.broken = recover(ctx->store, st.stream, &st.card, &version, &tail, &track);
  st.snapshot_version = version - tail;
  st.folded = version;
  ++ctx->metrics.live_cards;
  self->attach_functor([ctx] { --ctx->metrics.live_cards; });
  self->delayed_send(self, ctx->tick(), TickMsg{});
  return {
      [=](create_atom, CardSpec& spec) -> caf::result<CardInfo> {
        touch(self);
        return on_create(self, spec);
      },
      [=](add_codes_atom, std::string& card_id,
          std::vector<CodeSpec>& codes) -> caf::result<AddCodesReply> {
        touch(self);
        return on_add_codes(self, card_id, std::move(codes));
      },
      [=](revoke_atom, std::string& card_id, std::string& code) -> caf::result<int64_t> {
        touch(self);
        return on_revoke(self, card_id, code);
      },
      [=](ReserveMsg& m) -> caf::result<Reserved> {
        touch(self);
        return on_reserve(self, m);
      },
      [=](ReleaseMsg& m) {
        // Paired with reserve(): only a code this activation holds comes back.
        GIFTCARD_CHECK(held_here(self->state.card, m.code));
        release(self->state.card, m.code);
        maybe_finish_drain(self);
      },
      [=](AssignedMsg& m) {
        // Paired with reserve(): the card decided this CodeAssigned (its code
        // came from this activation's hold); the wallet only carried it to the
        // log. A code not held here would mean a second decider.
        GIFTCARD_CHECK(held_here(self->state.card, m.code));
        evolve_committed(self->state, CodeAssigned{self->state.id, m.code, {}, {}, 0, {}});
        folded(self, m.version);
        maybe_finish_drain(self);
      },
      [=](LeaseDoneMsg&) { ++self->state.life.received; },
      [=](CommitMsg& m) { on_commit(self, m); },
      [=](TickMsg&) { on_tick(self); },
      [=](PassivateReply& r) { on_passivate_reply(self, r, [=] { snapshot_and_quit(self); }); },
      [=](DrainMsg&) -> caf::result<bool> {
        return on_drain(self, idle(self->state), [=] { snapshot_and_quit(self); });
      },
  };
}

card_actor spawn_card_actor(caf::actor_system& sys, ShopContext* ctx, std::string card_id,
                            shop_internal_actor shop) {
  return sys.spawn(card_behavior, ctx, std::move(card_id), std::move(shop));
}

}  // namespace giftcard
