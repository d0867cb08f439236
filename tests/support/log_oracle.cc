#include "tests/support/log_oracle.h"

#include <sstream>

namespace giftcard::test {

std::string OracleReport::summary() const {
  std::ostringstream o;
  o << "events=" << events << " purchases=" << purchases << " gaps=" << gaps
    << " bad_hashes=" << bad_hashes << " dup_codes=" << dup_codes << " unmatched=" << unmatched
    << " overdraft=" << overdraft << " bad_balance_after=" << bad_balance_after
    << " double_charge=" << double_charge;
  return o.str();
}

OracleReport check_log(EventStore* store) {
  OracleReport r;
  std::map<std::string, int64_t> versions;
  std::map<std::string, std::string> code_state;  // code -> available/assigned/revoked/expired
  std::map<std::string, std::pair<std::string, int64_t>> assigned;  // purchase -> (user, price)
  std::map<std::string, std::pair<std::string, int64_t>> debited;
  Hash prev{};
  int64_t expect = 1;
  std::vector<StoredEvent> batch;
  for (;;) {
    Status s = store->ReadAll(expect, 10000, &batch);
    if (!s.ok() || batch.empty()) break;
    for (const auto& e : batch) {
      ++r.events;
      if (e.position != expect) ++r.gaps;
      expect = e.position + 1;
      if (e.version != ++versions[e.stream]) ++r.gaps;
      if (e.prev_hash != prev || e.hash != compute_hash(e)) ++r.bad_hashes;
      prev = e.hash;
      Event ev;
      if (!e.decode(&ev).ok()) {
        ++r.bad_hashes;
        continue;
      }
      if (auto* a = std::get_if<CodesAdded>(&ev)) {
        for (auto& c : a->codes) code_state[c.code] = "available";
      } else if (auto* a = std::get_if<CodeAssigned>(&ev)) {
        ++r.purchases;
        if (code_state[a->code] != "available") ++r.dup_codes;
        code_state[a->code] = "assigned";
        r.code_owner[a->code] = a->user_id;
        if (!assigned.emplace(a->purchase_id, std::make_pair(a->user_id, a->price)).second)
          ++r.unmatched;
        r.purchases_by_id[a->purchase_id] = LoggedPurchase{a->user_id, a->card_id, a->code,
                                                           a->idempotency_key, e.position};
        r.purchases_by_key[{a->user_id, a->idempotency_key}].push_back(a->purchase_id);
      } else if (auto* v = std::get_if<CodeRevoked>(&ev)) {
        code_state[v->code] = "revoked";
      } else if (auto* x = std::get_if<CodesExpired>(&ev)) {
        for (auto& c : x->codes) code_state[c] = "expired";
      } else if (auto* c = std::get_if<WalletCredited>(&ev)) {
        r.balances[c->user_id] += c->amount;
        r.credited[c->user_id] += c->amount;
        r.credits_by_key[{c->user_id, c->idempotency_key}].push_back(e.position);
        if (r.balances[c->user_id] != c->balance_after) ++r.bad_balance_after;
      } else if (auto* d = std::get_if<WalletDebited>(&ev)) {
        r.balances[d->user_id] -= d->amount;
        r.debited[d->user_id] += d->amount;
        if (r.balances[d->user_id] < 0) ++r.overdraft;
        if (r.balances[d->user_id] != d->balance_after) ++r.bad_balance_after;
        if (!debited.emplace(d->purchase_id, std::make_pair(d->user_id, d->amount)).second)
          ++r.unmatched;
      }
    }
  }
  for (auto& [pid, up] : assigned) {
    auto it = debited.find(pid);
    if (it == debited.end() || it->second != up) ++r.unmatched;
  }
  for (auto& [pid, up] : debited)
    if (!assigned.count(pid)) ++r.unmatched;
  // An empty key is no key (e.g. credits written by --demo): not a repeat.
  for (auto& [uk, ids] : r.purchases_by_key)
    if (!uk.second.empty() && ids.size() > 1) ++r.double_charge;
  for (auto& [uk, positions] : r.credits_by_key)
    if (!uk.second.empty() && positions.size() > 1) ++r.double_charge;
  r.last_position = expect - 1;
  if (expect - 1 != store->LastPosition()) ++r.gaps;
  return r;
}

}  // namespace giftcard::test
