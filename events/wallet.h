// The Wallet aggregate: state, evolve and decide (pure; no CAF, no I/O).
//
// WalletState is the committed balance. A wallet actor pipelines appends with
// exact expected versions, so an append commits only if every earlier one of
// the same wallet did; decisions are therefore taken against the *projected*
// balance (committed balance plus all pending changes), which is exact.
// Thread-compatible: owned by one wallet actor.
#pragma once

#include <cstdint>
#include <string>
#include <variant>

#include "events/decision.h"
#include "events/events.h"
#include "events/status.h"

namespace giftcard {

struct WalletState {
  std::string user_id;
  int64_t balance = 0;
  int64_t version = 0;  // stream version of the last folded event
};

struct CreditWallet {
  std::string user_id;
  int64_t amount = 0;
  std::string idempotency_key;
};
struct DebitWallet {
  std::string user_id;
  int64_t amount = 0;
  std::string purchase_id;
  std::string card_id;
};
using WalletCommand = std::variant<CreditWallet, DebitWallet>;

// Folds the wallet's next committed event: the balance moves by its amount and
// the version by one (a wallet's stream holds only its own events, versions
// 1, 2, ...). Events of another user are ignored (version unchanged).
WalletState evolve(WalletState s, const WalletEvent& e);
void evolve_in_place(WalletState& s, const WalletEvent& e);
// Folds an event read back from the wallet's stream: Corruption if it is a
// card's event.
Status fold(WalletState& s, Event e);

// Decides against `projected_balance` (see above). Rejects amounts <= 0
// (invalid_request), credits that would overflow int64 (balance_overflow) and
// debits above the projected balance (insufficient_funds). The event carries
// balance_after = projected_balance +/- amount.
WalletDecision decide(const WalletCommand& cmd, int64_t projected_balance);

}  // namespace giftcard
