// Decision: what decide() returns — a rejection (error code + message) or the
// events to append. Each aggregate decides only its own events: a card
// returns a CardDecision, a wallet a WalletDecision. Plain struct.
#pragma once

#include <string>
#include <vector>

#include "events/errc.h"
#include "events/events.h"

namespace giftcard {

template <class E>
struct BasicDecision {
  Errc error = Errc::ok;
  std::string detail;                  // human-readable; never contains a secret
  std::vector<std::string> conflicts;  // e.g. the duplicate codes of AddCodes
  std::vector<E> events;

  bool ok() const { return error == Errc::ok; }
  static BasicDecision reject(Errc e, std::string detail) {
    return BasicDecision{e, std::move(detail), {}, {}};
  }
  static BasicDecision accept(std::vector<E> events) {
    BasicDecision d;
    d.events = std::move(events);
    return d;
  }
};

using CardDecision = BasicDecision<CardEvent>;
using WalletDecision = BasicDecision<WalletEvent>;

}  // namespace giftcard
