// The in-memory half of ProjectionDb::Rebuild (projections/projection_db.h):
// the whole log folded into hash maps with fold_event()
// (projections/read_models_fold.h, the one definition of the read models),
// kept in the shape the rebuild writes them out in: sorted runs of keys that
// become table files and are ingested into the projection space at once,
// instead of going through the memtable one batch at a time.
//
// Memory: the wallets and cards (a balance or a CardView each), plus every
// purchase folded (its four strings in an arena and ~100 bytes beside them):
// ~230 bytes per purchase at their peak while the runs are written, ~110 MB
// for the 474,700 purchases of the 1,000,000-event benchmark log. The events
// themselves are not kept (one page of them at a time). Thread-compatible;
// the const accessors may be called from several threads at once.
#pragma once

#include <absl/container/flat_hash_map.h>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "projections/flat_models.h"
#include "projections/read_models.h"
#include "store/event_store.h"

namespace giftcard {

class RebuildModels {
 public:
  // A CodeAssigned as the purchase read model keeps it; strings in the arena.
  struct Purchase {
    absl::string_view purchase_id, card_id, user_id, code;
    int64_t price = 0;
    Micros purchased_at = 0;
    int64_t position = 0;
    // Into `out`, reusing its strings' buffers.
    void view(PurchaseView* out) const;
  };

  // Folds the log from position() + 1 to `to` (the pages read and decoded
  // one ahead on a second thread, store/log_scanner.h). `progress` gets the
  // position after every page. A gap in the positions is Corruption.
  Status FoldLog(EventLog* log, int64_t to, const std::function<void(int64_t)>& progress);

  int64_t position() const { return position_; }
  Micros recorded_at() const { return recorded_at_; }

  // Sorted by key (byte order, as the projection space sorts them).
  std::vector<std::pair<std::string_view, int64_t>> balances() const;
  std::vector<const CardView*> cards() const;
  // The purchase model: the latest CodeAssigned of each purchase id, by id.
  std::vector<const Purchase*> purchases_by_id() const;
  // Every CodeAssigned in log order (the "recent" index, newest last).
  const std::vector<Purchase>& purchases() const { return purchases_; }
  // Every CodeAssigned by user (users in byte order), each user's in log
  // order (the per-user index).
  std::vector<const Purchase*> purchases_by_user() const;

 private:
  struct Fold;  // the containers as fold_event() sees them (rebuild_fold.cc)
  int64_t position_ = 0;
  Micros recorded_at_ = 0;
  absl::flat_hash_map<std::string, int64_t> balances_;
  absl::flat_hash_map<std::string, CardView> cards_;
  std::vector<Purchase> purchases_;
  absl::flat_hash_map<absl::string_view, size_t> latest_;  // purchase id -> index
  StringArena strings_;
};

}  // namespace giftcard
