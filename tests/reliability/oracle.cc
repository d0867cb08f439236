#include "tests/reliability/oracle.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>

#include "tests/support/process.h"

namespace giftcard::reliability {

using Kind = Call::Kind;
using Outcome = Call::Outcome;

Counters& Counters::operator+=(const Counters& o) {
  lost += o.lost;
  dup_codes += o.dup_codes;
  overdraft += o.overdraft;
  unmatched += o.unmatched;
  double_charge += o.double_charge;
  gaps += o.gaps;
  replay_diff += o.replay_diff;
  info_unresolved += o.info_unresolved;
  calls += o.calls;
  ok += o.ok;
  fail += o.fail;
  info += o.info;
  events = std::max(events, o.events);
  purchases = std::max(purchases, o.purchases);
  return *this;
}

nlohmann::json Counters::to_json() const {
  return {{"lost", lost},
          {"dup_codes", dup_codes},
          {"overdraft", overdraft},
          {"unmatched", unmatched},
          {"double_charge", double_charge},
          {"gaps", gaps},
          {"replay_diff", replay_diff},
          {"info_unresolved", info_unresolved},
          {"calls", calls},
          {"ok", ok},
          {"fail", fail},
          {"info", info},
          {"events", events},
          {"purchases", purchases}};
}

std::string Counters::summary() const { return to_json().dump(); }

namespace {

void note(std::vector<std::string>* problems, std::map<std::string, int>& seen,
          const std::string& kind, const std::string& line) {
  if (problems && seen[kind]++ < 5) problems->push_back(kind + ": " + line);
}

std::string who(const Call& c) {
  return std::string(c.kind == Kind::purchase ? "purchase" : "credit") + " user=" + c.user +
         " key=" + c.key + (c.card.empty() ? "" : " card=" + c.card);
}

}  // namespace

Counters check_history(const std::vector<Call>& calls, const test::OracleReport& log,
                       std::vector<std::string>* problems) {
  Counters c;
  std::map<std::string, int> seen;
  c.events = log.events;
  c.purchases = log.purchases;
  c.dup_codes = log.dup_codes;
  c.unmatched = log.unmatched;
  c.double_charge = log.double_charge;
  c.overdraft = log.overdraft + log.bad_balance_after;
  c.gaps = log.gaps + log.bad_hashes;
  if (!log.clean()) note(problems, seen, "log", log.summary());
  for (const auto& [user, balance] : log.balances) {
    auto cr = log.credited.find(user), de = log.debited.find(user);
    int64_t sum = (cr == log.credited.end() ? 0 : cr->second) -
                  (de == log.debited.end() ? 0 : de->second);
    if (sum != balance || balance < 0) {
      ++c.overdraft;
      note(problems, seen, "overdraft", user + " balance " + std::to_string(balance));
    }
  }

  std::map<std::string, std::set<std::string>> code_purchases;  // code -> purchase ids (acked)
  std::map<std::tuple<int, std::string, std::string>, std::set<std::string>> bodies;
  for (const auto& call : calls) {
    ++c.calls;
    if (call.outcome == Outcome::fail) ++c.fail;
    if (call.outcome == Outcome::info) {
      ++c.info;
      // Settles only if a retry with the same key after recovery gave a definite
      // answer, and the log holds exactly as many effects as that answer says.
      size_t in_log = 0;
      if (call.kind == Kind::purchase) {
        auto it = log.purchases_by_key.find({call.user, call.key});
        in_log = it == log.purchases_by_key.end() ? 0 : it->second.size();
      } else {
        auto it = log.credits_by_key.find({call.user, call.key});
        in_log = it == log.credits_by_key.end() ? 0 : it->second.size();
      }
      bool settled = call.retried && call.retry_outcome != Outcome::info &&
                     in_log == (call.retry_outcome == Outcome::ok ? 1u : 0u);
      if (!settled) {
        ++c.info_unresolved;
        note(problems, seen, "info_unresolved",
             who(call) + " retried=" + std::to_string(call.retried) +
                 " retry_status=" + std::to_string(call.retry_status) +
                 " in_log=" + std::to_string(in_log) + " (" + call.error + ")");
      }
      continue;
    }
    if (call.outcome != Outcome::ok) continue;
    ++c.ok;
    bodies[{static_cast<int>(call.kind), call.user, call.key}].insert(call.body);
    if (call.position > log.last_position) {
      ++c.gaps;
      note(problems, seen, "gaps",
           who(call) + " acknowledged at position " + std::to_string(call.position) +
               " but the log ends at " + std::to_string(log.last_position));
    }
    if (call.kind == Kind::purchase) {
      code_purchases[call.code].insert(call.purchase_id);
      auto it = log.purchases_by_id.find(call.purchase_id);
      if (it == log.purchases_by_id.end()) {
        ++c.lost;
        note(problems, seen, "lost",
             who(call) + " purchase " + call.purchase_id + " not in the log");
      } else if (it->second.user != call.user || it->second.card != call.card ||
                 it->second.code != call.code || it->second.key != call.key ||
                 it->second.position != call.position) {
        ++c.lost;
        note(problems, seen, "lost",
             who(call) + " purchase " + call.purchase_id + " differs from the log (position " +
                 std::to_string(it->second.position) + " vs " + std::to_string(call.position) +
                 ")");
      }
    } else {
      auto it = log.credits_by_key.find({call.user, call.key});
      bool found = false;
      if (it != log.credits_by_key.end())
        for (int64_t p : it->second) found = found || p == call.position;
      if (!found) {
        ++c.lost;
        note(
            problems, seen, "lost",
            who(call) + " credit at position " + std::to_string(call.position) + " not in the log");
      }
    }
  }
  for (const auto& [code, ids] : code_purchases)
    if (ids.size() > 1) {
      ++c.dup_codes;
      note(problems, seen, "dup_codes",
           "a code was handed to " + std::to_string(ids.size()) + " acknowledged purchases");
    }
  for (const auto& [k, set] : bodies)
    if (set.size() > 1) {
      ++c.double_charge;
      note(problems, seen, "double_charge",
           "user=" + std::get<1>(k) + " key=" + std::get<2>(k) + ": " + std::to_string(set.size()) +
               " different acknowledged bodies");
    }
  return c;
}

Views views_from_replay(const nlohmann::json& replay) {
  Views v;
  if (!replay.is_object()) return v;
  for (const auto& w : replay.value("wallets", nlohmann::json::array()))
    v.balances[w.value("user_id", "")] = w.value("balance", int64_t{0});
  for (const auto& card : replay.value("cards", nlohmann::json::array()))
    v.assigned[card.value("id", "")] = card.value("assigned", int64_t{0});
  if (replay.contains("purchases") && replay["purchases"].is_array())
    v.purchases = static_cast<int64_t>(replay["purchases"].size());
  v.position = replay.value("position", int64_t{-1});
  return v;
}

int64_t diff_views(const Views& v, const test::OracleReport& log, const std::string& what,
                   std::vector<std::string>* problems) {
  int64_t diff = 0;
  std::map<std::string, int> seen;
  for (const auto& [user, balance] : v.balances) {
    auto it = log.balances.find(user);
    int64_t expect = it == log.balances.end() ? 0 : it->second;
    if (balance != expect) {
      ++diff;
      note(problems, seen, "replay_diff",
           what + ": wallet " + user + " " + std::to_string(balance) + " vs fold " +
               std::to_string(expect));
    }
  }
  std::map<std::string, int64_t> assigned;
  for (const auto& [id, p] : log.purchases_by_id) ++assigned[p.card];
  for (const auto& [card, n] : v.assigned) {
    auto it = assigned.find(card);
    int64_t expect = it == assigned.end() ? 0 : it->second;
    if (n != expect) {
      ++diff;
      note(problems, seen, "replay_diff",
           what + ": card " + card + " assigned " + std::to_string(n) + " vs fold " +
               std::to_string(expect));
    }
  }
  if (v.purchases >= 0 && v.purchases != log.purchases) {
    ++diff;
    note(problems, seen, "replay_diff",
         what + ": " + std::to_string(v.purchases) + " purchases vs fold " +
             std::to_string(log.purchases));
  }
  if (v.position >= 0 && v.position != log.last_position) {
    ++diff;
    note(problems, seen, "replay_diff",
         what + ": position " + std::to_string(v.position) + " vs log " +
             std::to_string(log.last_position));
  }
  return diff;
}

bool soak() {
  const char* s = std::getenv("GIFTCARD_SOAK");
  return s != nullptr && std::string(s) == "1";
}

int tier_count(int short_count, int soak_count) {
  if (soak()) return soak_count;
  return test::kSanitized ? std::max(1, short_count / 4) : short_count;
}

std::mt19937_64 seeded_rng(const std::string& suite, uint64_t* seed_out) {
  uint64_t seed = 0;
  if (const char* s = std::getenv("GIFTCARD_SEED"); s != nullptr && *s)
    seed = std::strtoull(s, nullptr, 10);
  else seed = std::random_device{}() ^ (uint64_t{std::random_device{}()} << 32);
  std::cout << "reliability " << suite << ": seed " << seed << " (GIFTCARD_SEED=" << seed
            << " repeats it)" << std::endl;
  if (seed_out) *seed_out = seed;
  return std::mt19937_64(seed);
}

void report(const std::string& suite, const nlohmann::json& figures) {
  std::string path = "reliability-report.json";
  if (const char* p = std::getenv("GIFTCARD_RELIABILITY_REPORT"); p != nullptr && *p) path = p;
  std::cout << "reliability " << suite << (soak() ? " [soak]" : "") << ": " << figures.dump()
            << std::endl;
  // ctest runs suites in parallel: one writer at a time.
  int lock = ::open((path + ".lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock >= 0) ::flock(lock, LOCK_EX);
  nlohmann::json all = nlohmann::json::object();
  {
    std::ifstream in(path);
    if (in) {
      auto parsed = nlohmann::json::parse(in, nullptr, false);
      if (parsed.is_object()) all = std::move(parsed);
    }
  }
  nlohmann::json entry = figures;
  entry["tier"] = soak() ? "soak" : "test";
  entry["sanitized"] = test::kSanitized;
  all[suite] = entry;
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << all.dump(2) << '\n';
  }
  std::rename(tmp.c_str(), path.c_str());
  if (lock >= 0) {
    ::flock(lock, LOCK_UN);
    ::close(lock);
  }
}

int64_t percentile(std::vector<int64_t> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

std::string join(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) out += "\n  " + l;
  return out;
}

}  // namespace giftcard::reliability
