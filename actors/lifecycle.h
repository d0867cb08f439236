// The life cycle every card and wallet actor shares: counting work units,
// asking the shop for passivation when idle, and draining on shutdown (see
// shop_actor.h for the protocol). The actor's state embeds an ActorLife named
// `life` and a `ShopContext* ctx` and a `shop` handle.
#pragma once

#include <vector>

#include "actors/internal.h"
#include "store/crash_point.h"

namespace giftcard {

struct ActorLife {
  uint64_t received = 0;  // work units received from the shop (or leased through it)
  Micros last_active = 0;
  bool asked = false;  // a PassivateReq is outstanding
  std::vector<caf::typed_response_promise<bool>> drains;
};

inline int64_t micros_of(std::chrono::milliseconds d) {
  return std::chrono::duration_cast<std::chrono::microseconds>(d).count();
}

// A work unit arrived.
template <class Self>
void touch(Self self) {
  ++self->state.life.received;
  self->state.life.last_active = self->state.ctx->now();
}

// On a tick: if the actor is `idle` (nothing in flight) and either idle for
// long or `useless` (nothing worth keeping), ask the shop; else tick again.
template <class Self>
void ask_passivation_or_tick(Self self, bool card, const std::string& id, bool idle, bool useless) {
  auto& st = self->state;
  bool idle_long = st.ctx->now() - st.life.last_active >= micros_of(st.ctx->config.passivate_after);
  if (!st.life.asked && idle && (idle_long || useless)) {
    st.life.asked = true;
    self->send(st.shop, PassivateReq{card, id, st.life.received});
    return;  // the reply re-arms the tick if denied
  }
  self->delayed_send(self, st.ctx->tick(), TickMsg{});
}

// `finish` snapshots and quits (it must also deliver the drains, via finish_drains).
template <class Self, class Finish>
void on_passivate_reply(Self self, const PassivateReply& r, Finish finish) {
  self->state.life.asked = false;
  if (r.approved) {
    ++self->state.ctx->metrics.passivations;
    finish();
  } else {
    self->delayed_send(self, self->state.ctx->tick(), TickMsg{});
  }
}

template <class Self>
void finish_drains_and_quit(Self self) {
  for (auto& rp : self->state.life.drains) rp.deliver(true);
  self->state.life.drains.clear();
  // Its snapshot is queued (snapshot_and_quit) and the actor not yet gone.
  GIFTCARD_CRASH_POINT("passivation.before_quit");
  self->quit();
}

// Registers a drain; `finish` runs at once if `idle`, else when the actor
// calls its own drain check after in-flight work completes.
template <class Self, class Finish>
caf::result<bool> on_drain(Self self, bool idle, Finish finish) {
  auto rp = self->template make_response_promise<bool>();
  self->state.life.drains.push_back(rp);
  if (idle) finish();
  return rp;
}

}  // namespace giftcard
