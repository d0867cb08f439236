// An independent oracle over the raw log (tests only): re-derives docs/CONTRACT.md's
// invariants 1-3 and 7 from the events, without the product's projections,
// and indexes what a client-side history is checked against (purchases and
// credits by idempotency key; tests/reliability/oracle.h).
#pragma once

#include <map>
#include <set>
#include <string>

#include "store/event_store.h"

namespace giftcard::test {

struct LoggedPurchase {
  std::string user, card, code, key;
  int64_t position = 0;  // of its CodeAssigned
};

using UserKey = std::pair<std::string, std::string>;  // (user, idempotency key)

struct OracleReport {
  int64_t events = 0;
  int64_t purchases = 0;   // CodeAssigned events
  int64_t gaps = 0;        // positions not 1..N, or stream versions not 1..k
  int64_t bad_hashes = 0;  // chain broken or hash != compute_hash
  int64_t dup_codes = 0;   // a code assigned twice, or a revoked/expired/unknown code assigned
  int64_t unmatched = 0;   // CodeAssigned without exactly one matching WalletDebited, or reverse
  int64_t overdraft = 0;   // a balance below 0 at any position
  int64_t bad_balance_after = 0;  // balance_after disagrees with the fold
  int64_t double_charge = 0;      // more than one purchase (or credit) for one (user, key)
  int64_t last_position = 0;
  std::map<std::string, int64_t> balances;        // user -> folded balance
  std::map<std::string, std::string> code_owner;  // code -> user
  std::map<std::string, LoggedPurchase> purchases_by_id;
  std::map<UserKey, std::vector<std::string>> purchases_by_key;  // -> purchase ids
  std::map<UserKey, std::vector<int64_t>> credits_by_key;        // -> positions
  std::map<std::string, int64_t> credited, debited;              // user -> sums
  bool clean() const {
    return gaps == 0 && bad_hashes == 0 && dup_codes == 0 && unmatched == 0 && overdraft == 0 &&
           bad_balance_after == 0 && double_charge == 0;
  }
  std::string summary() const;
};

OracleReport check_log(EventStore* store);

}  // namespace giftcard::test
