// What the projection crash tests see of `giftcard serve` besides its answers
// (projection_crash_test.cc): the serve child and its startup report, the
// store through a RocksDB secondary instance (log head, checkpoints,
// generations), the log as `giftcard events` prints it, `giftcard replay` and
// `verify`, and the moment between an append and its projection update,
// caught with SIGSTOP and killed there.
#pragma once

#include <algorithm>
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "events/events.h"
#include "projections/projection_db.h"
#include "projections/read_models.h"
#include "store/keys.h"
#include "store/rocks_event_store.h"
#include "tests/support/models.h"
#include "tests/support/process.h"
#include "tests/support/serve_child.h"

namespace giftcard::crash_test {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

using namespace giftcard::test;            // processes: tests/support/process.h
constexpr int kSlow = kSanitized ? 5 : 1;  // multiplier for deadlines

// `giftcard serve --data DIR --caf 127.0.0.1:0`, stderr to a log file.
// `giftcard serve` as a child (tests/support/serve_child.h); port() is its
// CAF port, and a clean stop may take up to 30 s (x5 under sanitizers).
class ServeProcess : public ServeChild {
 public:
  ServeProcess(const std::string& data, const std::string& log_path) : ServeChild(data, log_path) {}
  uint16_t port() const { return caf_port(); }
  void stop_clean() { ServeChild::stop_clean(std::chrono::milliseconds(30000 * kSlow)); }
};

// What serve said about its store when it started: "store DIR open at
// position L" and, if behind, "projections at position C, N events to catch up".
struct StartupReport {
  int64_t log = -1;
  std::optional<int64_t> projections;  // only if it was behind
  std::optional<int64_t> behind;
};

inline StartupReport startup_report(const std::string& log) {
  StartupReport r;
  auto num_after = [&](const std::string& marker) -> std::optional<int64_t> {
    auto at = log.find(marker);
    if (at == std::string::npos) return std::nullopt;
    return std::stoll(log.substr(at + marker.size()));
  };
  r.log = num_after(" open at position ").value_or(-1);
  r.projections = num_after("projections at position ");
  if (r.projections) {
    auto at = log.find("projections at position ");
    auto comma = log.find(", ", at);
    if (comma != std::string::npos) r.behind = std::stoll(log.substr(comma + 2));
  }
  return r;
}

// ---------------------------------------------------------------------------
// The store as this process sees it: a RocksDB secondary instance.

class Secondary {
 public:
  Secondary(const std::string& data, const std::string& scratch) {
    StoreOptions so;
    so.path = data;
    so.mode = StoreOptions::Mode::secondary;
    so.create_if_missing = false;
    so.secondary_path = scratch;
    so.block_cache_bytes = 16u << 20;
    Status s = OpenRocksEventStore(so, &store_);
    BOOST_REQUIRE_MESSAGE(s.ok(), "secondary open of " << data << ": " << s.ToString());
  }
  EventStore* get() { return store_.get(); }
  void refresh() {
    Status s = CatchUpWithPrimary(store_.get());
    BOOST_REQUIRE_MESSAGE(s.ok(), "secondary catch-up: " << s.ToString());
  }

 private:
  std::unique_ptr<EventStore> store_;
};

// Projection-space key of a generation's checkpoint ('g' gen:be32 'k'; see
// projections/projection_db.cc): present once a (re)build wrote its first batch.
inline std::string checkpoint_key(uint32_t gen) {
  std::string be;
  keys::put_be64(be, gen);
  return "g" + be.substr(4) + "k";
}

struct DiskState {
  int64_t log = 0;         // last committed event
  int64_t checkpoint = 0;  // projections' checkpoint (active generation)
  uint32_t generation = 0;
  std::optional<int64_t> next_generation_checkpoint;  // a rebuild's partial generation
};

inline DiskState read_disk_state(Secondary& sec) {
  sec.refresh();
  DiskState d;
  d.log = sec.get()->LastPosition();
  std::unique_ptr<ProjectionDb> db;
  Status s = ProjectionDb::Open(sec.get(), &db);
  BOOST_REQUIRE_MESSAGE(s.ok(), "projections on the secondary: " << s.ToString());
  d.checkpoint = db->position();
  d.generation = db->generation();
  std::string v;
  if (sec.get()->KvGet(checkpoint_key(d.generation + 1), &v).ok() && v.size() == 16) {
    d.next_generation_checkpoint = static_cast<int64_t>(keys::get_be64(v));
  }
  return d;
}

// The server's persisted models (active generation) equal a fresh fold of the
// whole log. Only meaningful while the server is idle and caught up.
inline void require_models_equal_fold(const std::string& data, const std::string& scratch,
                                      const std::string& when) {
  Secondary sec(data, scratch);
  sec.refresh();
  std::unique_ptr<ProjectionDb> db;
  Status s = ProjectionDb::Open(sec.get(), &db);
  BOOST_REQUIRE_MESSAGE(s.ok(), when << ": " << s.ToString());
  ReadModels live;
  s = db->LoadAll(&live);
  BOOST_REQUIRE_MESSAGE(s.ok(), when << ": LoadAll: " << s.ToString());
  ReadModels fold = fold_log(sec.get());
  BOOST_TEST(live.position == sec.get()->LastPosition(), when);
  BOOST_TEST((live == fold), when << ": persisted projections differ from the fold of the log: "
                                  << first_difference(live, fold));
}

// ---------------------------------------------------------------------------
// The log as `giftcard events` prints it: the auditor's independent view.

struct CardFacts {
  std::string name;
  int64_t price = 0, value = 0;
  int64_t added = 0, assigned = 0, revoked = 0, expired = 0, revenue = 0;
};

struct LogFacts {
  int64_t last = 0;
  bool gapless = true;
  std::map<std::string, int64_t> credited, debited;  // per user
  std::map<std::string, CardFacts> cards;
  std::map<int64_t, nlohmann::json> events;  // by position
  std::map<std::string, int> code_sales;     // code -> times assigned
  int64_t purchases = 0;
};

// `known` holds the facts of a prefix of the log already (default: none);
// only the events after it are read.
inline LogFacts read_log(const std::string& data, LogFacts known = {}) {
  auto r = run_giftcard({"events", "--data", data, "--from", std::to_string(known.last + 1)},
                        std::chrono::milliseconds(60000 * kSlow));
  BOOST_REQUIRE_MESSAGE(r.code() == 0, "giftcard events: " << r.describe());
  LogFacts f = std::move(known);
  std::istringstream in(r.out);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    auto j = nlohmann::json::parse(line, nullptr, false);
    BOOST_REQUIRE_MESSAGE(!j.is_discarded() && j.contains("data"), "bad event line: " << line);
    int64_t pos = j.at("position").get<int64_t>();
    if (pos != f.last + 1) f.gapless = false;
    f.last = pos;
    const std::string type = j.at("type").get<std::string>();
    const auto& d = j.at("data");
    if (type == "WalletCredited") {
      f.credited[d.at("user_id").get<std::string>()] += d.at("amount").get<int64_t>();
    } else if (type == "WalletDebited") {
      f.debited[d.at("user_id").get<std::string>()] += d.at("amount").get<int64_t>();
    } else if (type == "CardCreated") {
      auto& c = f.cards[d.at("card_id").get<std::string>()];
      c.name = d.at("name").get<std::string>();
      c.price = d.at("price").get<int64_t>();
      c.value = d.at("value").get<int64_t>();
    } else if (type == "CodesAdded") {
      f.cards[d.at("card_id").get<std::string>()].added += static_cast<int64_t>(
          d.at("codes").size());
    } else if (type == "CodeAssigned") {
      auto& c = f.cards[d.at("card_id").get<std::string>()];
      ++c.assigned;
      c.revenue += d.at("price").get<int64_t>();
      ++f.code_sales[d.at("code").get<std::string>()];
      ++f.purchases;
    } else if (type == "CodeRevoked") {
      ++f.cards[d.at("card_id").get<std::string>()].revoked;
    } else if (type == "CodesExpired") {
      f.cards[d.at("card_id").get<std::string>()].expired += static_cast<int64_t>(
          d.at("codes").size());
    }
    if (type != "CodesAdded") f.events.emplace(pos, std::move(j));  // keep the small ones
  }
  return f;
}

inline nlohmann::json run_replay(const std::string& data) {
  auto r = run_giftcard({"replay", "--data", data}, std::chrono::milliseconds(60000 * kSlow));
  BOOST_REQUIRE_MESSAGE(r.code() == 0, "giftcard replay: " << r.describe());
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  BOOST_REQUIRE_MESSAGE(!j.is_discarded() && j.is_object(), "replay output: " << r.describe());
  return j;
}

inline void require_verify_ok(const std::string& data) {
  auto r = run_giftcard({"verify", "--data", data}, std::chrono::milliseconds(60000 * kSlow));
  BOOST_TEST(r.code() == 0, "giftcard verify: " << r.describe());
}

// Freezes the server until the log is ahead of the projections' checkpoint on
// disk (an append committed, its projection update not yet), then kills it
// there. Returns the state it died in. Gives up after `attempts` freezes and
// kills it wherever it is.
struct CrashPoint {
  DiskState disk;
  int freezes = 0;
  bool between() const { return disk.checkpoint < disk.log; }
};

inline CrashPoint kill_between_append_and_projection(ServeProcess& serve, const std::string& data,
                                                     const std::string& scratch,
                                                     std::mt19937_64& rng, int attempts) {
  Secondary sec(data, scratch);
  CrashPoint cp;
  for (int i = 0;; ++i) {
    serve.freeze();
    cp.disk = read_disk_state(sec);
    cp.freezes = i + 1;
    if (cp.between() || cp.freezes >= attempts) break;
    serve.thaw();
    std::this_thread::sleep_for(std::chrono::microseconds(200 + rng() % 3000));
  }
  serve.kill_hard();  // SIGKILL while stopped: the disk is exactly as read
  return cp;
}

// After a restart: serve reported the state the crash left, and caught up.
inline void check_restart_report(ServeProcess& serve, const CrashPoint& cp,
                                 const std::string& what) {
  StartupReport rep = startup_report(serve.log());
  BOOST_TEST(rep.log == cp.disk.log, what << ": serve reopened the log at " << rep.log
                                          << ", it was killed at " << cp.disk.log);
  if (cp.between()) {
    BOOST_TEST((rep.projections && *rep.projections == cp.disk.checkpoint),
               what << ": serve resumed the projections at "
                    << (rep.projections ? *rep.projections : -1) << ", the checkpoint was "
                    << cp.disk.checkpoint);
    BOOST_TEST((rep.behind && *rep.behind == cp.disk.log - cp.disk.checkpoint), what);
  } else {
    BOOST_TEST(!rep.projections, what << ": no catch-up expected");
  }
}

inline std::set<std::string> keys_of(const std::map<std::string, CardFacts>& m) {
  std::set<std::string> out;
  for (const auto& [k, _] : m) out.insert(k);
  return out;
}

// Appends `events` WalletCredited events (users seed-0..seed-<users-1>) to a
// new store before any server runs: a log long enough that a rebuild can be
// caught half-way. Returns what the log says so far.
inline LogFacts seed_store(const std::string& data, int events, int users) {
  StoreOptions so;
  so.path = data;
  std::unique_ptr<EventStore> store;
  Status s = OpenRocksEventStore(so, &store);
  BOOST_REQUIRE_MESSAGE(s.ok(), "seed: " << s.ToString());
  std::vector<int64_t> balance(static_cast<size_t>(users), 0);
  constexpr int kPerAppend = 2000;
  for (int first = 0; first < events; first += kPerAppend) {
    AppendRequest req;
    for (int i = first; i < std::min(events, first + kPerAppend); ++i) {
      const int u = i % users;
      WalletCredited ev;
      ev.user_id = "seed-" + std::to_string(u);
      ev.amount = 1 + i % 97;
      ev.balance_after = balance[static_cast<size_t>(u)] += ev.amount;
      ev.idempotency_key = "seed-" + std::to_string(i);
      req.events.push_back(PendingEvent::of(wallet_stream(ev.user_id), ev));
    }
    AppendResult res;
    s = store->AppendAndWait(std::move(req), &res);
    BOOST_REQUIRE_MESSAGE(s.ok(), "seed append: " << s.ToString());
  }
  store->Close();
  LogFacts f;
  f.last = events;
  for (int u = 0; u < users; ++u)
    f.credited["seed-" + std::to_string(u)] = balance[static_cast<size_t>(u)];
  return f;
}

// Number of projection-space keys of a generation ('g' gen:be32 ...).
inline int64_t generation_keys(Secondary& sec, uint32_t gen) {
  std::string prefix = checkpoint_key(gen);
  prefix.pop_back();  // 'g' gen:be32
  int64_t n = 0;
  Status s = sec.get()->KvScan(prefix, "", [&](std::string_view, std::string_view) {
    ++n;
    return true;
  });
  BOOST_REQUIRE_MESSAGE(s.ok(), s.ToString());
  return n;
}

}  // namespace giftcard::crash_test
