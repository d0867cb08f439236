// The auditor's check of a whole log (`giftcard verify`): RocksDB block
// checksums, gap-free positions, per-stream versions, the SHA-256 hash chain,
// and invariants 1-3 and 6 (docs/CONTRACT.md, "Invariants") re-derived from
// the events; invariant 6 also against the persisted read models, at their
// checkpoint. Read-only. Folds into flat hash maps (projections/flat_models.h).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "store/event_store.h"

namespace giftcard {

struct VerifyReport {
  int64_t events = 0;
  int64_t last_position = 0;
  int64_t first_bad_position = 0;     // 0 if none could be named
  std::vector<std::string> problems;  // each names its position where it has one
  int64_t purchases = 0;
  int64_t codes_assigned = 0;
  int64_t wallets = 0;
  // The persisted read models (projections/projection_db.h) were compared
  // with a fold of the log up to their checkpoint (0: none persisted yet).
  int64_t projections_checked_at = 0;
  bool ok() const { return problems.empty(); }
};

// Checks everything it can; stops early only if events can no longer be read.
// `progress` (may be empty) is called with the number of events checked.
// Events are read `page` at a time on a second thread, which also recomputes
// their hashes and decodes them (projections/audit_pipeline.h); the report
// does not depend on `page` (tests compare page sizes).
VerifyReport verify_log(EventStore* store, const std::function<void(int64_t)>& progress = {},
                        size_t page = 8192);

}  // namespace giftcard
