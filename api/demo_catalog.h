// The demo catalog `serve --demo` seeds into an empty store: a few cards with
// random codes and some funded wallets, created through the shop like any
// client would.
#pragma once

#include <caf/all.hpp>

#include "actors/messages.h"

namespace giftcard {

// Blocks until seeded. Returns an error message, or empty on success.
std::string seed_demo_catalog(caf::actor_system& sys, const shop_actor& shop);

}  // namespace giftcard
