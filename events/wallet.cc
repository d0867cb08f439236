#include "events/wallet.h"

#include <limits>

#include "events/validate.h"

namespace giftcard {

void evolve_in_place(WalletState& s, const Event& e) {
  if (auto* c = std::get_if<WalletCredited>(&e)) {
    if (!s.user_id.empty() && c->user_id != s.user_id) return;
    s.user_id = c->user_id;
    s.balance += c->amount;
  } else if (auto* d = std::get_if<WalletDebited>(&e)) {
    if (!s.user_id.empty() && d->user_id != s.user_id) return;
    s.user_id = d->user_id;
    s.balance -= d->amount;
  }
}

WalletState evolve(WalletState s, const Event& e) {
  evolve_in_place(s, e);
  return s;
}

Decision decide(const WalletCommand& cmd, int64_t projected) {
  if (auto* c = std::get_if<CreditWallet>(&cmd)) {
    if (auto err = check_amount(c->amount, "amount"); !err.empty())
      return Decision::reject(Errc::invalid_request, err);
    if (projected > std::numeric_limits<int64_t>::max() - c->amount)
      return Decision::reject(Errc::balance_overflow, "credit would overflow the balance");
    return Decision::accept(
        {WalletCredited{c->user_id, c->amount, projected + c->amount, c->idempotency_key}});
  }
  const auto& d = std::get<DebitWallet>(cmd);
  if (auto err = check_amount(d.amount, "amount"); !err.empty())
    return Decision::reject(Errc::invalid_request, err);
  if (d.amount > projected)
    return Decision::reject(Errc::insufficient_funds,
                            "balance " + std::to_string(projected) + " is below the price " +
                                std::to_string(d.amount));
  return Decision::accept(
      {WalletDebited{d.user_id, d.amount, projected - d.amount, d.purchase_id, d.card_id}});
}

}  // namespace giftcard
