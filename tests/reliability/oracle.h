// The reliability oracle (docs/RELIABILITY.md, §0 "The oracle"), shared by every suite
// in tests/reliability/.
//
// A client-side History records each call a load generator makes: `invoke`,
// then `ok` (2xx), `fail` (a definite non-2xx) or `info` (no answer: timeout,
// reset, the server died). The checker compares that history with the log
// (read straight from the store, the same bytes `giftcard events` prints) and
// with the live views and `giftcard replay`, and counts what docs/CONTRACT.md, "Invariants",
// forbids. Every counter must be 0.
#pragma once

#include <cstdint>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "tests/support/log_oracle.h"

namespace giftcard::reliability {

struct Call {
  enum class Kind { purchase, credit } kind = Kind::purchase;
  enum class Outcome { ok, fail, info } outcome = Outcome::info;
  std::string user, key, card;
  int64_t amount = 0;
  int status = 0;     // HTTP status; 0 for info
  std::string body;   // response body (ok and fail)
  std::string error;  // transport error (info)
  // From an ok body.
  int64_t position = 0;
  std::string purchase_id, code;
  // Set on an info call once it was retried with the same key after recovery.
  bool retried = false;
  Outcome retry_outcome = Outcome::info;
  int retry_status = 0;
};

class History {
 public:
  void add(Call c) {
    std::lock_guard<std::mutex> lock(mu_);
    calls_.push_back(std::move(c));
  }
  std::vector<Call> snapshot() const {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_;
  }
  std::vector<Call>& calls() { return calls_; }  // single-threaded phases only
  size_t size() const {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_.size();
  }

 private:
  mutable std::mutex mu_;
  std::vector<Call> calls_;
};

// The §0 counters. Each must be 0.
struct Counters {
  int64_t lost = 0;             // acknowledged calls missing from the log
  int64_t dup_codes = 0;        // a code assigned twice (or a revoked/expired one)
  int64_t overdraft = 0;        // a balance below 0, or credits - debits != balance
  int64_t unmatched = 0;        // a debit without its CodeAssigned, or the reverse
  int64_t double_charge = 0;    // > 1 purchase per (user, key); repeat bodies that differ
  int64_t gaps = 0;             // positions not 1..N; an acked position past N; bad hashes
  int64_t replay_diff = 0;      // live views, `giftcard replay` and the fold disagree
  int64_t info_unresolved = 0;  // an info call that did not settle on retry
  // Context, not invariants.
  int64_t calls = 0, ok = 0, fail = 0, info = 0, events = 0, purchases = 0;

  Counters& operator+=(const Counters& o);
  bool clean() const {
    return lost == 0 && dup_codes == 0 && overdraft == 0 && unmatched == 0 && double_charge == 0 &&
           gaps == 0 && replay_diff == 0 && info_unresolved == 0;
  }
  nlohmann::json to_json() const;
  std::string summary() const;
};

// Compares the history with the log. `problems` collects a line per finding
// (the first few of each kind), for the failure message.
Counters check_history(const std::vector<Call>& calls, const test::OracleReport& log,
                       std::vector<std::string>* problems);

// Views to compare with the log's fold (replay_diff): what `giftcard replay`
// printed and what the live server answered.
struct Views {
  std::map<std::string, int64_t> balances;  // user -> balance
  std::map<std::string, int64_t> assigned;  // card -> assigned
  int64_t purchases = -1;                   // -1: not known
  int64_t position = -1;
};
// Parses `giftcard replay` JSON.
Views views_from_replay(const nlohmann::json& replay);
// Counts disagreements between `v` and the fold, for the given users/cards.
int64_t diff_views(const Views& v, const test::OracleReport& log, const std::string& what,
                   std::vector<std::string>* problems);

// ---- Tiers and the report ---------------------------------------------------

// The p-quantile (0..1, nearest rank) of `v`; 0 when empty.
int64_t percentile(std::vector<int64_t> v, double p);
// "\n  line" per line: the problems under a failed check.
std::string join(const std::vector<std::string>& lines);

// True when GIFTCARD_SOAK=1 (make soak): full counts of the plan.
bool soak();
// `short_count` in make test (shrunk under sanitizers), `soak_count` under make soak.
int tier_count(int short_count, int soak_count);
// A seeded generator; the seed is GIFTCARD_SEED if set, else random, and is
// printed so a failing run can be repeated.
std::mt19937_64 seeded_rng(const std::string& suite, uint64_t* seed_out = nullptr);

// Merges {suite: figures} into reliability-report.json (GIFTCARD_RELIABILITY_REPORT
// overrides the path) and prints one summary line.
void report(const std::string& suite, const nlohmann::json& figures);

}  // namespace giftcard::reliability
