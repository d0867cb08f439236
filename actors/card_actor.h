// The GiftCard actor: one per card, the single owner of that card's code pool.
// It serializes the card's commands, so concurrent buyers are handed distinct
// codes up front: a ReserveMsg holds the next code and replies at once,
// without waiting for earlier purchases to commit (pipelining). The wallet
// that asked commits CodeAssigned+WalletDebited in one batch and then tells
// the card AssignedMsg (or ReleaseMsg if it did not commit).
//
// Life cycle (activated by the shop on first message, see shop_actor.h):
//
//   recover (snapshot + tail) --> serving --(idle, no holds, no appends)--> asks shop
//        |                          ^   |                                   |
//        | store error              |   +---------- denied -----------------+
//        v                          |                                       | approved
//     broken: every command fails   +-- work arrives                       v
//     with storage_* and it asks                                  snapshot, quit
//     to passivate at once
#pragma once

#include "actors/internal.h"

namespace giftcard {

card_actor spawn_card_actor(caf::actor_system& sys, ShopContext* ctx, std::string card_id,
                            shop_internal_actor shop);

}  // namespace giftcard
