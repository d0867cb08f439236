#include "api/audit_commands.h"

#include <unistd.h>

#include <filesystem>
#include <iostream>

#include "api/json_views.h"
#include "projections/audit.h"
#include "projections/flat_models.h"
#include "store/rocks_event_store.h"

namespace giftcard {
namespace {

constexpr size_t kPage = 8192;

// A secondary instance with its own scratch directory, removed on exit.
class AuditStore {
 public:
  explicit AuditStore(const std::string& data) {
    namespace fs = std::filesystem;
    char tmpl[] = "/tmp/giftcard-audit-XXXXXX";
    if (::mkdtemp(tmpl)) scratch_ = tmpl;
    StoreOptions so;
    so.path = data;
    so.mode = StoreOptions::Mode::secondary;
    so.create_if_missing = false;
    so.secondary_path = scratch_;
    status_ = OpenRocksEventStore(so, &store_);
  }
  ~AuditStore() {
    store_.reset();
    std::error_code ec;
    if (!scratch_.empty()) std::filesystem::remove_all(scratch_, ec);
  }
  // Prints the reason and returns false if the store could not be opened.
  bool ok(const char* cmd) const {
    if (status_.ok()) return true;
    std::cerr << "giftcard " << cmd << ": cannot open store: " << status_.ToString() << "\n";
    return false;
  }
  EventStore* get() { return store_.get(); }

 private:
  std::string scratch_;
  Status status_;
  std::unique_ptr<EventStore> store_;
};

// Calls fn(e) for every event from `from` while it returns true.
template <class Fn>
Status scan(EventStore* store, int64_t from, Fn fn) {
  std::vector<StoredEvent> page;
  for (int64_t next = std::max<int64_t>(from, 1);;) {
    if (Status s = store->ReadAll(next, kPage, &page); !s.ok()) return s;
    if (page.empty()) return Status::OK();
    for (const auto& e : page)
      if (!fn(e)) return Status::OK();
    next = page.back().position + 1;
  }
}

}  // namespace

int run_events(const EventsOptions& o) {
  AuditStore store(o.data);
  if (!store.ok("events")) return 4;
  Status s;
  if (!o.stream.empty()) {
    std::vector<StoredEvent> page;
    for (int64_t v = 1;;) {
      if (s = store.get()->ReadStream(o.stream, v, kPage, &page); !s.ok() || page.empty()) break;
      for (const auto& e : page)
        if (e.position >= o.from && (o.to == 0 || e.position <= o.to))
          std::cout << event_json(e).dump() << '\n';
      v = page.back().version + 1;
    }
  } else {
    s = scan(store.get(), o.from, [&](const StoredEvent& e) {
      if (o.to != 0 && e.position > o.to) return false;
      std::cout << event_json(e).dump() << '\n';
      return true;
    });
  }
  std::cout.flush();
  if (!s.ok()) {
    std::cerr << "giftcard events: " << s.ToString() << "\n";
    return 4;
  }
  return 0;
}

int run_replay(const ReplayOptions& o) {
  Micros at = 0;
  if (!o.at.empty() && !parse_rfc3339(o.at, &at)) {
    std::cerr << "giftcard replay: --at must be an RFC 3339 time, e.g. 2026-11-22T09:00:00Z\n";
    return 2;
  }
  AuditStore store(o.data);
  if (!store.ok("replay")) return 4;
  ReadModels models;
  Status s = replay_log_flat(store.get(), o.to,
                             o.at.empty() ? std::nullopt : std::optional<Micros>(at), &models,
                             [](int64_t p) { std::cerr << "replay: position " << p << "\n"; });
  if (!s.ok()) {
    std::cerr << "giftcard replay: " << s.ToString() << "\n";
    return 4;
  }
  std::cout << models_json(models).dump() << std::endl;
  return 0;
}

int run_verify(const std::string& data) {
  AuditStore store(data);
  if (!store.ok("verify")) return 4;
  VerifyReport r = verify_log(store.get(), [](int64_t n) {
    if (n % 1000000 < 8192) std::cerr << "verify: " << n << " events checked\n";
  });
  std::cout << "events:          " << r.events << "\n"
            << "last position:   " << r.last_position << "\n"
            << "purchases:       " << r.purchases << "\n"
            << "wallets:         " << r.wallets << "\n"
            << "projections:     "
            << (r.projections_checked_at ? "persisted read models match the log at checkpoint " +
                                               std::to_string(r.projections_checked_at)
                                         : std::string("none persisted yet"))
            << "\n";
  if (r.ok()) {
    std::cout << "hash chain, positions, stream versions, invariants 1-3 and 6: OK\n";
    return 0;
  }
  std::cout << "FAILED: " << r.problems.size() << " problem(s)";
  if (r.first_bad_position) std::cout << "; first bad position " << r.first_bad_position;
  std::cout << "\n";
  for (const auto& p : r.problems) std::cout << "  " << p << "\n";
  return 1;
}

}  // namespace giftcard
