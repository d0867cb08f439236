// The shop's front door (docs/CONTRACT.md, "CAF remote API"): one typed actor that validates every
// command and routes it to the card or wallet actor that owns it, activating
// that actor on first use. It is the only actor published to remote clients.
//
// Passivation without losing a message: the shop counts the work units it
// routes to each actor (a delegated command, or a card handle leased to a
// wallet for one purchase); each actor counts the units it receives. An idle
// actor sends PassivateReq with its count; the shop approves (and forgets the
// actor) only if the counts match, i.e. nothing is still on its way to it.
// CAF keeps per-sender order, so approval is race-free; a denied actor keeps
// serving. An approved actor snapshots and quits; the next command for that
// id activates a fresh actor that recovers from snapshot + tail. Two actors
// never own one stream at once.
//
// Drain (SIGTERM): DrainMsg makes the shop refuse new commands (unavailable),
// wait for every live actor to finish its in-flight work and snapshot, and
// then reply true.
#pragma once

#include "actors/internal.h"

namespace giftcard {

shop_internal_actor spawn_shop(caf::actor_system& sys, ShopContext* ctx);

}  // namespace giftcard
