#include "actors/projection_driver.h"

#include <map>

#include "actors/errors.h"
#include "store/crash_point.h"

namespace giftcard {
namespace {

struct Waiter {
  int64_t position = 0;
  caf::typed_response_promise<int64_t> rp;
};

struct DriverState {
  static inline const char* name = "giftcard.projections";
  ShopContext* ctx = nullptr;
  uint64_t subscription = 0;
  bool subscribed = false;
  uint64_t next_waiter = 0;
  std::map<uint64_t, Waiter> waiters;  // by id
  Status failed;                       // last catch-up error, if any
  bool continuing = false;             // a kContinue is in the mailbox
};

// Events folded per catch-up step. Between steps the driver serves its
// mailbox, so a long catch-up (a restart far behind the log, a bulk import)
// cannot hold an AwaitMsg or an AwaitExpired beyond projection_wait.
constexpr int64_t kStep = 4096;
// LogAdvanced position of the driver's own "go on catching up" message.
constexpr int64_t kContinue = -1;

using Self = projection_driver_actor::stateful_pointer<DriverState>;

void answer_waiters(Self self) {
  auto& st = self->state;
  const int64_t pos = st.ctx->projections->position();
  for (auto it = st.waiters.begin(); it != st.waiters.end();) {
    if (it->second.position <= pos) {
      it->second.rp.deliver(pos);
      it = st.waiters.erase(it);
    } else if (!st.failed.ok()) {
      it->second.rp.deliver(
          make_error(errc_for(st.failed),
                     "projections stopped at " + std::to_string(pos) + ": " + st.failed.message()));
      it = st.waiters.erase(it);
    } else {
      ++it;
    }
  }
}

// A step that would end on a purchase's CodeAssigned also takes its
// WalletDebited (always the next position: they are one append), so that a
// client who reads its wallet with after = the purchase's position sees the
// debit too.
int64_t step_end(EventStore* store, int64_t end) {
  StoredEvent e;
  if (store->ReadEvent(end, &e).ok() && e.type == EventType::CodeAssigned) return end + 1;
  return end;
}

// Folds at most kStep events and answers the waiters; true if it folded any.
bool step(Self self) {
  auto& st = self->state;
  ProjectionDb* db = st.ctx->projections;
  const int64_t before = db->position();
  if (before >= st.ctx->store->LastPosition()) {
    answer_waiters(self);
    return false;
  }
  // Lag as the oldest newly applied event saw it: commit time to visibility.
  Micros oldest = 0;
  {
    StoredEvent first;
    if (st.ctx->store->ReadEvent(before + 1, &first).ok()) oldest = first.recorded_at;
  }
  GIFTCARD_CRASH_POINT("projection.before_apply");
  st.failed = db->CatchUp(static_cast<size_t>(kStep), step_end(st.ctx->store, before + kStep));
  if (db->position() > before) {
    ++st.ctx->metrics.projection_batches;
    if (oldest) {
      int64_t lag = now_micros() - oldest;
      st.ctx->metrics.projection_lag_micros = lag;
      if (st.ctx->metrics.on_projection_lag) st.ctx->metrics.on_projection_lag(lag);
    }
  }
  answer_waiters(self);
  // The time-travel checkpoints come after the readers: they are not what a
  // waiting query needs.
  if (st.failed.ok() && st.ctx->history) st.failed = st.ctx->history->CatchUp();
  return db->position() > before;
}

// One step; if the log is still ahead, the rest after the mailbox.
void catch_up(Self self) {
  auto& st = self->state;
  if (step(self) && st.failed.ok() && !st.continuing &&
      st.ctx->projections->position() < st.ctx->store->LastPosition()) {
    st.continuing = true;
    self->send(self, LogAdvanced{kContinue});
  }
}

// Every step up to the log's head, now (drain).
void catch_up_all(Self self) {
  while (step(self)) {
  }
}

void unsubscribe(DriverState& st) {
  if (st.subscribed) st.ctx->store->Unsubscribe(st.subscription);
  st.subscribed = false;
}

}  // namespace

projection_driver_actor::behavior_type driver_behavior(Self self, ShopContext* ctx) {
  self->state.ctx = ctx;
  auto hdl = projection_driver_actor{self};
  self->state.subscription = ctx->store->Subscribe([hdl](const std::vector<StoredEvent>& batch) {
    if (!batch.empty()) caf::anon_send(hdl, LogAdvanced{batch.back().position});
  });
  self->state.subscribed = true;
  self->attach_functor([st = &self->state] { unsubscribe(*st); });
  // Resume from the checkpoint (events committed before the subscription).
  self->send(self, LogAdvanced{ctx->store->LastPosition()});
  return {
      [=](LogAdvanced& m) {
        if (m.position == kContinue) self->state.continuing = false;
        if (m.position == kContinue || m.position > self->state.ctx->projections->position())
          catch_up(self);
      },
      [=](AwaitMsg& m) -> caf::result<int64_t> {
        auto& st = self->state;
        int64_t pos = st.ctx->projections->position();
        if (m.position <= pos) return pos;
        catch_up(self);  // the hint may still be in the mailbox (one step)
        pos = st.ctx->projections->position();
        if (m.position <= pos) return pos;
        if (!st.failed.ok())
          return make_error(errc_for(st.failed), "projections stopped at " + std::to_string(pos) +
                                                     ": " + st.failed.message());
        uint64_t id = ++st.next_waiter;
        auto rp = self->make_response_promise<int64_t>();
        st.waiters.emplace(id, Waiter{m.position, rp});
        self->delayed_send(self, st.ctx->config.projection_wait, AwaitExpired{id});
        return rp;
      },
      [=](AwaitExpired& m) {
        auto& st = self->state;
        auto it = st.waiters.find(m.id);
        if (it == st.waiters.end()) return;
        it->second.rp.deliver(make_error(
            Errc::projection_lagging, "projections are at position " +
                                          std::to_string(st.ctx->projections->position()) +
                                          ", not yet at " + std::to_string(it->second.position)));
        st.waiters.erase(it);
      },
      [=](DrainMsg&) -> caf::result<bool> {
        catch_up_all(self);
        unsubscribe(self->state);
        catch_up_all(self);  // anything committed while unsubscribing
        return self->state.failed.ok();
      },
  };
}

projection_driver_actor spawn_projection_driver(caf::actor_system& sys, ShopContext* ctx) {
  return sys.spawn<caf::detached>(driver_behavior, ctx);
}

}  // namespace giftcard
