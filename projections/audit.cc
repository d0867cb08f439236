#include "projections/audit.h"

#include <unordered_map>

#include "projections/projection_db.h"
#include "projections/read_models.h"

namespace giftcard {
namespace {

constexpr size_t kPage = 8192;
constexpr size_t kMaxProblems = 100;  // the report names the first ones

enum class Code : uint8_t { available, assigned, revoked, expired };

struct Checker {
  explicit Checker(VerifyReport& report) : r(report) {}
  VerifyReport& r;
  std::unordered_map<std::string, int64_t> versions;
  std::unordered_map<std::string, Code> codes;
  std::unordered_map<std::string, int64_t> balances;
  std::unordered_map<std::string, std::pair<int64_t, int64_t>>
      assigned;  // purchase -> (price, pos)
  std::unordered_map<std::string, std::pair<int64_t, int64_t>>
      debited;  // purchase -> (amount, pos)
  ReadModels models;
  ReadModels persisted;  // position 0: nothing to compare
  Hash prev{};
  int64_t expect = 1;

  void problem(int64_t position, const std::string& what) {
    if (position > 0 && (r.first_bad_position == 0 || position < r.first_bad_position))
      r.first_bad_position = position;
    if (r.problems.size() < kMaxProblems)
      r.problems.push_back(position > 0 ? "position " + std::to_string(position) + ": " + what
                                        : what);
  }

  void check(const StoredEvent& e) {
    ++r.events;
    if (e.position != expect)
      problem(expect, "missing or out of order (next event found is position " +
                          std::to_string(e.position) + ")");
    expect = e.position + 1;
    if (e.prev_hash != prev) problem(e.position, "hash chain broken (prev_hash does not match)");
    if (e.hash != compute_hash(e)) problem(e.position, "event hash does not match its contents");
    prev = e.hash;
    int64_t& v = versions[e.stream];
    if (e.version != v + 1)
      problem(e.position, "stream " + e.stream + " jumps from version " + std::to_string(v) +
                              " to " + std::to_string(e.version));
    v = e.version;
    if (Status s = apply(models, e); !s.ok()) {
      problem(e.position, s.message());
      return;
    }
    if (persisted.position == e.position) compare_persisted();
    Event ev;
    e.decode(&ev).PermitUncheckedError();  // decoded fine just above
    std::visit([&](const auto& x) { on(e, x); }, ev);
  }

  void compare_persisted() {
    r.projections_checked_at = persisted.position;
    if (auto d = first_difference(models, persisted); !d.empty())
      problem(0, "persisted projections at checkpoint " + std::to_string(persisted.position) +
                     " differ from a fold of the log (invariant 6): " + d);
    persisted = ReadModels{};  // done; free the memory
  }
  void on(const StoredEvent&, const CardCreated&) {}
  void on(const StoredEvent& e, const CodesAdded& x) {
    for (const auto& c : x.codes)
      if (!codes.emplace(c.code, Code::available).second)
        problem(e.position, "code added twice (system-wide uniqueness)");
  }
  void on(const StoredEvent& e, const CodeAssigned& x) {
    ++r.purchases;
    auto it = codes.find(x.code);
    if (it == codes.end()) problem(e.position, "assigned a code that was never added");
    else if (it->second != Code::available)
      problem(e.position, "assigned a code that is not available (invariant 1)");
    else it->second = Code::assigned, ++r.codes_assigned;
    if (!assigned.emplace(x.purchase_id, std::make_pair(x.price, e.position)).second)
      problem(e.position, "purchase id assigned twice (invariant 3)");
  }
  void on(const StoredEvent& e, const CodeRevoked& x) {
    auto it = codes.find(x.code);
    if (it == codes.end() || it->second != Code::available)
      problem(e.position, "revoked a code that was not available");
    else it->second = Code::revoked;
  }
  void on(const StoredEvent& e, const CodesExpired& x) {
    for (const auto& c : x.codes) {
      auto it = codes.find(c);
      if (it == codes.end() || it->second != Code::available)
        problem(e.position, "expired a code that was not available");
      else it->second = Code::expired;
    }
  }
  void on(const StoredEvent& e, const WalletCredited& x) {
    int64_t& b = balances[x.user_id];
    b += x.amount;
    if (x.amount <= 0) problem(e.position, "credit of a non-positive amount");
    if (b != x.balance_after) problem(e.position, "balance_after disagrees with the fold");
  }
  void on(const StoredEvent& e, const WalletDebited& x) {
    int64_t& b = balances[x.user_id];
    b -= x.amount;
    if (b < 0) problem(e.position, "balance of " + x.user_id + " goes negative (invariant 2)");
    if (b != x.balance_after) problem(e.position, "balance_after disagrees with the fold");
    if (!debited.emplace(x.purchase_id, std::make_pair(x.amount, e.position)).second)
      problem(e.position, "purchase id debited twice (invariant 3)");
  }

  // Invariant 3 pairs and invariant 6 (two independent folds agree).
  void finish() {
    for (const auto& [id, a] : assigned) {
      auto d = debited.find(id);
      if (d == debited.end())
        problem(a.second, "CodeAssigned without its WalletDebited (invariant 3)");
      else if (d->second.first != a.first)
        problem(a.second, "debit amount differs from the price (invariant 3)");
      else if (d->second.second != a.second + 1)
        problem(a.second, "CodeAssigned and WalletDebited were not committed together");
    }
    for (const auto& [id, d] : debited)
      if (!assigned.count(id))
        problem(d.second, "WalletDebited without its CodeAssigned (invariant 3)");
    for (const auto& [user, b] : balances) {
      auto it = models.balances.find(user);
      if (it == models.balances.end() || it->second != b)
        problem(0, "projection of wallet " + user + " differs from the log (invariant 6)");
    }
    for (const auto& [id, c] : models.cards) {
      (void)id;
      if (c.available < 0 || c.assigned != c.sold)
        problem(0, "projection of card " + c.id + " is inconsistent (invariant 6)");
    }
    if (static_cast<int64_t>(models.purchases.size()) != r.purchases)
      problem(0, "purchase projection count differs from the log (invariant 6)");
    r.wallets = static_cast<int64_t>(balances.size());
  }
};

}  // namespace

VerifyReport verify_log(EventStore* store, const std::function<void(int64_t)>& progress) {
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
  std::vector<StoredEvent> page;
  int unreadable = 0;
  for (;;) {
    Status s = store->ReadAll(c.expect, kPage, &page);
    if (!s.ok()) {
      // Name the exact event: re-read one at a time from where the page began,
      // then step over the unreadable one and go on.
      std::vector<StoredEvent> one;
      Status e1;
      while ((e1 = store->ReadAll(c.expect, 1, &one)).ok() && !one.empty()) c.check(one.front());
      if (e1.ok()) break;  // the page error did not reproduce: end of log
      c.problem(c.expect, "unreadable: " + e1.message());
      c.expect += 1;
      if (++unreadable > 1000) break;  // a wrecked store: the report names enough
      continue;
    }
    if (page.empty()) break;
    for (const auto& e : page) c.check(e);
    if (progress) progress(r.events);
  }
  r.last_position = c.expect - 1;
  if (r.last_position != store->LastPosition() && r.problems.empty())
    c.problem(r.last_position + 1, "log ends before the store's last position");
  c.finish();
  return r;
}

}  // namespace giftcard
