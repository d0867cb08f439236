// Snapshot encodings of aggregate state (cereal, bounded decode). Snapshots
// are caches: the store checksums them and a damaged one is rebuilt from the
// stream. Holds are never part of a snapshot. Pure; thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "events/gift_card.h"
#include "events/status.h"
#include "events/wallet.h"

namespace giftcard {

std::string encode_snapshot(const CardState& s);
Status decode_snapshot(std::string_view bytes, CardState* out);

std::string encode_snapshot(const WalletState& s);
Status decode_snapshot(std::string_view bytes, WalletState* out);

}  // namespace giftcard
