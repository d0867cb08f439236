#include "events/wallet.h"

#include <limits>

#include "events/check.h"
#include "events/validate.h"

namespace giftcard {
namespace {

WalletDecision decide_credit(const CreditWallet& c, int64_t projected) {
  if (auto err = check_amount(c.amount, "amount"); !err.empty())
    return WalletDecision::reject(Errc::invalid_request, err);
  if (projected > std::numeric_limits<int64_t>::max() - c.amount)
    return WalletDecision::reject(Errc::balance_overflow, "credit would overflow the balance");
  return WalletDecision::accept(
      {WalletCredited{c.user_id, c.amount, projected + c.amount, c.idempotency_key}});
}

WalletDecision decide_debit(const DebitWallet& d, int64_t projected) {
  if (auto err = check_amount(d.amount, "amount"); !err.empty())
    return WalletDecision::reject(Errc::invalid_request, err);
  if (d.amount > projected)
    return WalletDecision::reject(
        Errc::insufficient_funds,
        "balance " + std::to_string(projected) + " is below the price " + std::to_string(d.amount));
  return WalletDecision::accept(
      {WalletDebited{d.user_id, d.amount, projected - d.amount, d.purchase_id, d.card_id}});
}

void apply_event(WalletState& s, const WalletEvent& e) {
  std::visit(overloaded{
                 [&](const WalletCredited& c) {
                   if (!s.user_id.empty() && c.user_id != s.user_id) return;
                   s.user_id = c.user_id;
                   s.balance += c.amount;
                   ++s.version;
                 },
                 [&](const WalletDebited& d) {
                   if (!s.user_id.empty() && d.user_id != s.user_id) return;
                   s.user_id = d.user_id;
                   s.balance -= d.amount;
                   ++s.version;
                 },
             },
             e);
}

}  // namespace

void evolve_in_place(WalletState& s, const WalletEvent& e) {
  apply_event(s, e);
  // Invariant 2: a committed balance is never negative. The live path decided
  // this event against the balance; a negative one means the log holds
  // something the wallet did not decide (a broken writer, a second writer).
  GIFTCARD_CHECK(s.balance >= 0);
}

WalletState evolve(WalletState s, const WalletEvent& e) {
  evolve_in_place(s, e);
  return s;
}

Status fold(WalletState& s, Event e) {
  const EventType type = type_of(e);
  auto wallet_event = to_wallet_event(std::move(e));
  if (!wallet_event)
    return Status::Corruption("a wallet stream holds a " + std::string(type_name(type)) + " event");
  // The live path aborts on a negative balance (it decided the event); a log
  // read back that holds one is reported, as verify reports it.
  WalletState next = s;
  apply_event(next, *wallet_event);
  if (next.balance < 0) return Status::Corruption("the wallet's balance goes below zero");
  s = std::move(next);
  return Status::OK();
}

WalletDecision decide(const WalletCommand& cmd, int64_t projected) {
  return std::visit(overloaded{
                        [&](const CreditWallet& c) { return decide_credit(c, projected); },
                        [&](const DebitWallet& d) { return decide_debit(d, projected); },
                    },
                    cmd);
}

}  // namespace giftcard
