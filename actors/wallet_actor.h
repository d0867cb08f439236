// The Wallet actor: one per user, the single writer of "wallet-<user>". It
// serializes the user's credits and purchases, so no update is lost and no
// balance goes negative, and it owns the user's idempotency keys:
//
//  * a key in flight: repeats (same card) wait for the first outcome;
//  * a key committed (claim "idem/p/<user>/<key>" in the store, written in
//    the same batch as the purchase): the stored result is returned again,
//    also after a restart; the same key on another card -> idempotency_key_reused;
//  * a key whose first attempt was rejected (out_of_stock, insufficient_funds)
//    is not remembered: nothing was charged, so a retry runs anew.
//
// Purchase: PurchaseCmd (card handle leased by the shop) -> ReserveMsg to the
// card -> decide the debit against the projected balance -> ONE append of
// CodeAssigned (card stream) + WalletDebited (wallet stream, exact expected
// version) + idempotency claim -> on commit: AssignedMsg to the card, reply.
// Appends are pipelined with exact expected versions, so a later append can
// only commit if every earlier one did; after any failed append the wallet
// refuses new work (storage_unavailable) until its pipeline drains, then
// resets its projection from the committed state.
#pragma once

#include "actors/internal.h"

namespace giftcard {

wallet_actor spawn_wallet_actor(caf::actor_system& sys, ShopContext* ctx, std::string user_id,
                                shop_internal_actor shop);

}  // namespace giftcard
