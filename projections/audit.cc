#include "projections/audit.h"

#include <algorithm>
#include <optional>

#include "projections/audit_pipeline.h"
#include "projections/flat_models.h"
#include "projections/projection_db.h"
#include "projections/read_models.h"

namespace giftcard {
namespace {

constexpr size_t kMaxProblems = 100;  // the report names the first ones
// The checks of event i start loading the hash-map slots event i + this will
// touch: most of the checks' time was waiting for memory.
constexpr size_t kPrefetchAhead = 8;

enum class Code : uint8_t { available, assigned, revoked, expired };

// A purchase id's two halves (invariant 3): its CodeAssigned and its
// WalletDebited, each the first one seen (position 0: not seen).
struct Purchase {
  int64_t price = 0, assigned_at = 0;
  int64_t amount = 0, debited_at = 0;
};

// The checks of one event, in log order, on the caller's thread. The hash was
// recomputed and the payload decoded by the reader (audit_pipeline.h). The
// checker's own fold (codes, balances, purchases) and the read models'
// (FlatModels: apply()'s fold) are independent; invariant 6 compares them.
struct Checker {
  explicit Checker(VerifyReport& report) : r(report) {}
  VerifyReport& r;
  // The maps' keys are hashed by the reader (EventKeys, audit_pipeline.h);
  // the few too long to be kept inline (StoredKey) live in `keys`.
  StringArena keys;
  HashedMap<int64_t> versions;
  HashedMap<Code> codes;
  HashedMap<int64_t> balances;
  HashedMap<Purchase> purchases;
  FlatModels models;
  ReadModels persisted;  // position 0: nothing to compare
  Hash prev{};
  int64_t expect = 1;
  const EventKeys* keys_ = nullptr;  // of the event being checked

  // map[key], the key copied into `keys` if it is new.
  template <class V>
  V& entry(HashedMap<V>& map, std::string_view key, size_t hash) {
    const HashedKey k{key, hash};
    return map.lazy_emplace(k, [&](const auto& ctor) { ctor(StoredKey(k, keys), V{}); })->second;
  }
  // Inserts key unless present; false if it was.
  template <class V>
  bool insert(HashedMap<V>& map, std::string_view key, size_t hash, V v) {
    bool added = false;
    const HashedKey k{key, hash};
    map.lazy_emplace(k, [&](const auto& ctor) {
      added = true;
      ctor(StoredKey(k, keys), v);
    });
    return added;
  }

  void problem(int64_t position, const std::string& what) {
    if (position > 0 && (r.first_bad_position == 0 || position < r.first_bad_position))
      r.first_bad_position = position;
    if (r.problems.size() < kMaxProblems)
      r.problems.push_back(position > 0 ? "position " + std::to_string(position) + ": " + what
                                        : what);
  }

  // Starts loading what check(e, ev) will look up (no effect on the result).
  void prefetch(const StoredEvent& e, const Event& ev, const EventKeys& k) const {
    versions.prefetch(HashedKey{e.stream, k.stream});
    if (const auto* x = std::get_if<CodeAssigned>(&ev)) {
      codes.prefetch(HashedKey{x->code, k.code});
      purchases.prefetch(HashedKey{x->purchase_id, k.purchase});
    } else if (const auto* d = std::get_if<WalletDebited>(&ev)) {
      balances.prefetch(HashedKey{d->user_id, k.user});
      purchases.prefetch(HashedKey{d->purchase_id, k.purchase});
    }
    models.prefetch(ev, k);
  }

  // `ev` is e's payload if `decoded` is OK; its strings may be moved out.
  // `k`: the hashes of its keys.
  void check(const StoredEvent& e, Event& ev, bool hash_ok, const Status& decoded,
             const EventKeys& k) {
    keys_ = &k;
    ++r.events;
    if (e.position != expect)
      problem(expect, "missing or out of order (next event found is position " +
                          std::to_string(e.position) + ")");
    expect = e.position + 1;
    if (e.prev_hash != prev) problem(e.position, "hash chain broken (prev_hash does not match)");
    if (!hash_ok) problem(e.position, "event hash does not match its contents");
    prev = e.hash;
    int64_t& v = entry(versions, e.stream, k.stream);
    if (e.version != v + 1)
      problem(e.position, "stream " + e.stream + " jumps from version " + std::to_string(v) +
                              " to " + std::to_string(e.version));
    v = e.version;
    const bool fold = e.position > models.position();  // as apply(): a repeat is skipped
    if (!decoded.ok()) {
      // apply()'s message; an event the models already hold was never decoded there.
      if (fold)
        problem(e.position, "position " + std::to_string(e.position) + ": " + decoded.message());
      return;
    }
    std::visit([&](auto& x) { on(e, x); }, ev);
    if (fold) models.fold(e, std::move(ev), k);
    if (persisted.position == e.position) compare_persisted();
  }

  void compare_persisted() {
    r.projections_checked_at = persisted.position;
    if (auto d = first_difference(models.to_read_models(), persisted); !d.empty())
      problem(0, "persisted projections at checkpoint " + std::to_string(persisted.position) +
                     " differ from a fold of the log (invariant 6): " + d);
    persisted = ReadModels{};  // done; free the memory
  }
  void on(const StoredEvent&, const CardCreated&) {}
  void on(const StoredEvent& e, const CodesAdded& x) {
    for (size_t i = 0; i < x.codes.size(); ++i)
      if (!insert(codes, x.codes[i].code, keys_->codes[i], Code::available))
        problem(e.position, "code added twice (system-wide uniqueness)");
  }
  void on(const StoredEvent& e, const CodeAssigned& x) {
    ++r.purchases;
    auto it = codes.find(HashedKey{x.code, keys_->code});
    if (it == codes.end()) problem(e.position, "assigned a code that was never added");
    else if (it->second != Code::available)
      problem(e.position, "assigned a code that is not available (invariant 1)");
    else it->second = Code::assigned, ++r.codes_assigned;
    Purchase& p = entry(purchases, x.purchase_id, keys_->purchase);
    if (p.assigned_at != 0) problem(e.position, "purchase id assigned twice (invariant 3)");
    else p.price = x.price, p.assigned_at = e.position;
  }
  void on(const StoredEvent& e, const CodeRevoked& x) {
    auto it = codes.find(HashedKey{x.code, keys_->code});
    if (it == codes.end() || it->second != Code::available)
      problem(e.position, "revoked a code that was not available");
    else it->second = Code::revoked;
  }
  void on(const StoredEvent& e, const CodesExpired& x) {
    for (size_t i = 0; i < x.codes.size(); ++i) {
      auto it = codes.find(HashedKey{x.codes[i], keys_->codes[i]});
      if (it == codes.end() || it->second != Code::available)
        problem(e.position, "expired a code that was not available");
      else it->second = Code::expired;
    }
  }
  void on(const StoredEvent& e, const WalletCredited& x) {
    int64_t& b = entry(balances, x.user_id, keys_->user);
    b += x.amount;
    if (x.amount <= 0) problem(e.position, "credit of a non-positive amount");
    if (b != x.balance_after) problem(e.position, "balance_after disagrees with the fold");
  }
  void on(const StoredEvent& e, const WalletDebited& x) {
    int64_t& b = entry(balances, x.user_id, keys_->user);
    b -= x.amount;
    if (b < 0) problem(e.position, "balance of " + x.user_id + " goes negative (invariant 2)");
    if (b != x.balance_after) problem(e.position, "balance_after disagrees with the fold");
    Purchase& p = entry(purchases, x.purchase_id, keys_->purchase);
    if (p.debited_at != 0) problem(e.position, "purchase id debited twice (invariant 3)");
    else p.amount = x.amount, p.debited_at = e.position;
  }

  // Invariant 3 pairs and invariant 6 (two independent folds agree).
  void finish() {
    for (const auto& [id, p] : purchases) {
      if (p.assigned_at == 0)
        problem(p.debited_at, "WalletDebited without its CodeAssigned (invariant 3)");
      else if (p.debited_at == 0)
        problem(p.assigned_at, "CodeAssigned without its WalletDebited (invariant 3)");
      else if (p.amount != p.price)
        problem(p.assigned_at, "debit amount differs from the price (invariant 3)");
      else if (p.debited_at != p.assigned_at + 1)
        problem(p.assigned_at, "CodeAssigned and WalletDebited were not committed together");
    }
    for (const auto& [user, b] : balances) {
      const std::string_view u = user.view();
      std::optional<int64_t> m = models.balance(u);
      if (!m || *m != b)
        problem(0,
                "projection of wallet " + std::string(u) + " differs from the log (invariant 6)");
    }
    models.for_each_card([&](const CardView& c) {
      if (c.available < 0 || c.assigned != c.sold)
        problem(0, "projection of card " + c.id + " is inconsistent (invariant 6)");
    });
    if (static_cast<int64_t>(models.purchase_count()) != r.purchases)
      problem(0, "purchase projection count differs from the log (invariant 6)");
    r.wallets = static_cast<int64_t>(balances.size());
  }
};

}  // namespace

VerifyReport verify_log(EventStore* store, const std::function<void(int64_t)>& progress,
                        size_t page_size) {
  VerifyReport r;
  Checker c(r);
  if (Status s = store->VerifyChecksums(); !s.ok())
    c.problem(0, "storage checksums: " + s.message());
  {
    std::unique_ptr<ProjectionDb> db;
    Status s = ProjectionDb::Open(store, &db);
    if (s.ok()) s = db->LoadAll(&c.persisted);
    if (!s.ok()) c.problem(0, "persisted projections unreadable: " + s.message());
  }
  {
    // Reads, hashes and decodes on a second thread (audit_pipeline.h); the
    // events and unreadable positions arrive in the old single loop's order.
    AuditReader reader(store, {.page = std::max<size_t>(page_size, 1)});
    AuditPage page;
    while (reader.Next(&page)) {
      if (page.events.empty()) {
        c.problem(page.unreadable, page.why);
        c.expect = page.unreadable + 1;
        continue;
      }
      const size_t n = page.events.size();
      for (size_t i = 0; i < std::min(n, kPrefetchAhead); ++i)
        if (i >= page.prepared) page.prepare(i);
      for (size_t i = 0; i < n; ++i) {
        if (size_t j = i + kPrefetchAhead; j < n) {
          if (j >= page.prepared) page.prepare(j);
          if (page.decode[j].ok()) c.prefetch(page.events[j], page.decoded[j], page.keys[j]);
        }
        c.check(page.events[i], page.decoded[i], page.hash_ok[i] != 0, page.decode[i],
                page.keys[i]);
      }
      if (progress) progress(r.events);
    }
  }
  r.last_position = c.expect - 1;
  if (r.last_position != store->LastPosition() && r.problems.empty())
    c.problem(r.last_position + 1, "log ends before the store's last position");
  c.finish();
  return r;
}

}  // namespace giftcard
