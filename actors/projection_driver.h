// The projection driver: one detached actor (its RocksDB reads and writes
// never block CAF's scheduler threads) that keeps ctx->projections up with the
// log.
//
// It subscribes to the store; every committed batch posts a LogAdvanced hint
// and the driver folds from its checkpoint towards the log's head in steps of
// a few thousand events, serving its mailbox between steps (hints that
// arrive meanwhile coalesce; a waiting query is answered or times out on
// time even during a long catch-up). On start it catches up from the
// persisted checkpoint, not from position 1. It also keeps ctx->history's
// time-travel checkpoints up, if there is one.
//
// AwaitMsg{P} answers with the projections' position as soon as it is >= P,
// or with projection_lagging after config.projection_wait. DrainMsg catches
// up to the head and unsubscribes. Exits with the shop (linked).
#pragma once

#include "actors/internal.h"

namespace giftcard {

projection_driver_actor spawn_projection_driver(caf::actor_system& sys, ShopContext* ctx);

}  // namespace giftcard
