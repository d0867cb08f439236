// The projection driver: one detached actor (its RocksDB reads and writes
// never block CAF's scheduler threads) that keeps ctx->projections up with the
// log.
//
// It subscribes to the store; every committed batch posts a LogAdvanced hint
// and the driver folds everything from its checkpoint to the log's head in one
// ProjectionDb::CatchUp (hints that arrive while it works coalesce into one
// pass). On start it catches up from the persisted checkpoint, not from
// position 1.
//
// AwaitMsg{P} answers with the projections' position as soon as it is >= P,
// or with projection_lagging after config.projection_wait. DrainMsg catches
// up to the head and unsubscribes. Exits with the shop (linked).
#pragma once

#include "actors/internal.h"

namespace giftcard {

projection_driver_actor spawn_projection_driver(caf::actor_system& sys, ShopContext* ctx);

}  // namespace giftcard
