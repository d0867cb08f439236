// giftcard-projection-bench (projection_bench.cc): the generated log. Its
// plan (every fact of the log is a function of a few numbers), its generation
// through EventStore::Append, the read models expected from the plan, the
// in-memory replay, and where a subcommand's log comes from (--events or
// --from).
#pragma once

#include "bench/projection_bench_common.h"
#include "projections/flat_models.h"
#include "store/keys.h"

namespace giftcard::projbench {

// ---- the generation plan -----------------------------------------------------
// Everything about the generated log is a function of these numbers, so that
// checks can compute the expected read models without keeping the log.
constexpr uint64_t kPurchaseIdPrefix = 0x5eedb0a7c0ffee11ULL;
constexpr int64_t kCreditSlack = 1000000;  // every wallet can still buy after the log

inline uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

struct Plan {
  // Inputs.
  int64_t events = 0;
  int64_t cards = 0;        // 0: max(10, events / 10000)
  int64_t users = 0;        // 0: max(100, events / 20)
  int64_t codes_batch = 1000;
  int64_t slack = 100;      // codes per card left unsold
  int64_t request_events = 2000;  // events per append request (purchases)
  // Derived.
  int64_t purchases = 0, codes_per_card = 0, batches_per_card = 0, extra_credits = 0;
  std::vector<int64_t> spend, bought;  // per user
  std::vector<int64_t> sold;           // per card

  static std::string card_id(int64_t c) {
    char b[64];
    std::snprintf(b, sizeof b, "gc%04lld", static_cast<long long>(c));
    return b;
  }
  static std::string user_id(int64_t u) {
    char b[64];
    std::snprintf(b, sizeof b, "user%07lld", static_cast<long long>(u));
    return b;
  }
  // Activation codes look random, as real ones do (the demo's are
  // "STM-CGQG-BJ98-DK34"): 12 base-32 characters of a bijective scramble of
  // (card, n) within 60 bits, so distinct (card, n) give distinct codes.
  static std::string code(int64_t c, int64_t n) {
    constexpr uint64_t kMask = (uint64_t{1} << 60) - 1;
    uint64_t x = (static_cast<uint64_t>(c) << 24 | static_cast<uint64_t>(n)) & kMask;
    x = (x * 0x9e3779b97f4a7c15ULL) & kMask;  // odd multiplier: a bijection mod 2^60
    x ^= x >> 29;                             // xorshift within 60 bits: a bijection
    x = (x * 0xbf58476d1ce4e5b9ULL) & kMask;
    static constexpr char kAlphabet[] = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    std::string s = "GC";
    for (int i = 0; i < 12; ++i) {
      if (i % 4 == 0) s.push_back('-');
      s.push_back(kAlphabet[(x >> (55 - 5 * i)) & 31]);
    }
    return s;
  }
  static std::string card_name(int64_t c) { return "Gift card " + std::to_string(c); }
  static std::string purchase_id(int64_t i) {
    char b[64];
    std::snprintf(b, sizeof b, "p_%016llx_%lld", static_cast<unsigned long long>(kPurchaseIdPrefix),
                  static_cast<long long>(i + 1));
    return b;
  }
  // Idempotency keys as clients make them: random-looking, unique.
  static std::string purchase_key(int64_t i) {
    char b[64];
    std::snprintf(b, sizeof b, "ord-%016llx",
                  static_cast<unsigned long long>(splitmix64(static_cast<uint64_t>(i) ^ kPurchaseIdPrefix)));
    return b;
  }
  int64_t price(int64_t c) const { return 500 + (c % 20) * 250; }
  int64_t card_of(int64_t i) const { return i % cards; }
  int64_t user_of(int64_t i) const {
    return static_cast<int64_t>(splitmix64(static_cast<uint64_t>(i)) % static_cast<uint64_t>(users));
  }
  int64_t credit(int64_t u) const { return spend[static_cast<size_t>(u)] + kCreditSlack; }
  int64_t final_balance(int64_t u) const {
    return credit(u) + (u == 0 ? extra_credits : 0) - spend[static_cast<size_t>(u)];
  }
  int64_t card_events() const { return 1 + batches_per_card; }
  // Position of purchase i's CodeAssigned (its WalletDebited follows).
  int64_t purchase_position(int64_t i) const {
    return cards * card_events() + users + extra_credits + 2 * i + 1;
  }

  std::string compute() {
    if (cards == 0) cards = std::max<int64_t>(10, events / 10000);
    if (users == 0) users = std::max<int64_t>(100, events / 20);
    if (cards < 1 || users < 1 || codes_batch < 1 || codes_batch > 100000 || slack < 1 ||
        request_events < 2)
      return "cards, users, codes-batch (<= 100000), slack and request-events must be positive";
    int64_t p0 = (events - cards - users) / 2;
    if (p0 < cards) return "too few events for the cards and users (need ~2 purchases per card)";
    codes_per_card = (p0 + cards - 1) / cards + slack;
    if (codes_per_card >= (int64_t{1} << 24) || cards >= (int64_t{1} << 36))
      return "too many codes per card for the code generator (< 16,777,216)";
    batches_per_card = (codes_per_card + codes_batch - 1) / codes_batch;
    int64_t rest = events - cards * card_events() - users;
    if (rest < 2) return "too few events";
    purchases = rest / 2;
    extra_credits = rest % 2;  // one more credit (1 cent) to user 0 makes the count exact
    spend.assign(static_cast<size_t>(users), 0);
    bought.assign(static_cast<size_t>(users), 0);
    sold.assign(static_cast<size_t>(cards), 0);
    for (int64_t i = 0; i < purchases; ++i) {
      auto c = static_cast<size_t>(card_of(i));
      auto u = static_cast<size_t>(user_of(i));
      spend[u] += price(static_cast<int64_t>(c));
      ++bought[u];
      ++sold[c];
    }
    for (int64_t c = 0; c < cards; ++c)
      if (sold[static_cast<size_t>(c)] > codes_per_card - slack) return "internal: codes per card too low";
    return {};
  }

  json to_json() const {
    return json{{"events", events},   {"cards", cards},       {"users", users},
                {"codes_batch", codes_batch}, {"slack", slack}, {"request_events", request_events},
                {"purchases", purchases}, {"codes_per_card", codes_per_card}};
  }
  static Plan from_json(const json& j) {
    Plan p;
    p.events = j.at("events");
    p.cards = j.at("cards");
    p.users = j.at("users");
    p.codes_batch = j.at("codes_batch");
    p.slack = j.at("slack");
    p.request_events = j.at("request_events");
    return p;
  }
};

struct GenOptions {
  int64_t events = 0;
  int64_t cards = 0, users = 0, codes_batch = 1000, slack = 100, request_events = 2000;
};

inline Plan make_plan(const GenOptions& g) {
  Plan p;
  p.events = g.events;
  p.cards = g.cards;
  p.users = g.users;
  p.codes_batch = g.codes_batch;
  p.slack = g.slack;
  p.request_events = g.request_events;
  if (auto why = p.compute(); !why.empty()) setup_error(why);
  return p;
}

inline void add_gen_options(CLI::App* cmd, GenOptions* g) {
  cmd->add_option("--cards", g->cards, "cards in a generated log (default max(10, N/10000))");
  cmd->add_option("--users", g->users, "wallets in a generated log (default max(100, N/20))");
  cmd->add_option("--codes-batch", g->codes_batch, "codes per CodesAdded event")->capture_default_str();
  cmd->add_option("--slack", g->slack, "codes per card left unsold")->capture_default_str();
  cmd->add_option("--request-events", g->request_events,
                  "events per append request while generating")
      ->capture_default_str();
}

// A claim's position value, as the store writes it (store/keys.h).
inline std::string be64(int64_t v) {
  std::string s;
  keys::put_be64(s, static_cast<uint64_t>(v));
  return s;
}

// Keeps up to `depth` append requests in flight and checks that each one
// commits at the position the generator predicted.
class Appender {
 public:
  Appender(EventStore* store, int depth) : store_(store), depth_(depth) {}
  void Submit(AppendRequest req, int64_t predicted_first) {
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return inflight_ < depth_ || !error_.ok(); });
      if (!error_.ok()) return;
      ++inflight_;
    }
    store_->Append(std::move(req), [this, predicted_first](const Status& s, const AppendResult& r) {
      std::lock_guard lock(mu_);
      if (!s.ok() && error_.ok()) {
        error_ = s;
        if (!r.conflict_stream.empty()) error_ = Status::Conflict(s.message() + " (" + r.conflict_stream + ")");
      } else if (s.ok() && r.first_position != predicted_first && error_.ok()) {
        error_ = Status::Corruption("request committed at " + std::to_string(r.first_position) +
                                    ", predicted " + std::to_string(predicted_first));
      }
      --inflight_;
      cv_.notify_all();
    });
  }
  Status Finish() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return inflight_ == 0; });
    return error_;
  }

 private:
  EventStore* store_;
  int depth_;
  std::mutex mu_;
  std::condition_variable cv_;
  int inflight_ = 0;
  Status error_;
};

// Appends the plan's log to an empty store. Returns the seconds it took.
inline double generate(const Plan& plan, EventStore* store) {
  if (store->LastPosition() != 0) setup_error("generate: the store is not empty");
  const auto t0 = Clock::now();
  Appender ap(store, 4);
  int64_t pos = 0;  // last position submitted
  auto progress = [&, next = int64_t{1000000}](bool force = false) mutable {
    if (pos >= next || force) {
      std::cerr << "generate: " << pos << "/" << plan.events << " events ("
                << round_to(secs(Clock::now() - t0), 1) << " s)\n";
      while (next <= pos) next += 1000000;
    }
  };
  std::vector<std::string> card_ids, card_streams, user_ids, wallet_streams;
  for (int64_t c = 0; c < plan.cards; ++c) {
    card_ids.push_back(Plan::card_id(c));
    card_streams.push_back(card_stream(card_ids.back()));
  }
  for (int64_t u = 0; u < plan.users; ++u) {
    user_ids.push_back(Plan::user_id(u));
    wallet_streams.push_back(wallet_stream(user_ids.back()));
  }
  // 1. Cards: CardCreated and the code imports, one request per card.
  for (int64_t c = 0; c < plan.cards; ++c) {
    const auto ci = static_cast<size_t>(c);
    AppendRequest req;
    const int64_t first = pos + 1;
    req.events.push_back(PendingEvent::of(
        card_streams[ci], CardCreated{card_ids[ci], Plan::card_name(c), plan.price(c), plan.price(c)}));
    req.expected.emplace_back(card_streams[ci], kNoStream);
    for (int64_t done = 0; done < plan.codes_per_card;) {
      int64_t n = std::min(plan.codes_batch, plan.codes_per_card - done);
      CodesAdded ev{card_ids[ci], {}};
      ev.codes.reserve(static_cast<size_t>(n));
      for (int64_t k = 0; k < n; ++k) {
        ev.codes.push_back(CodeSpec{Plan::code(c, done + k), 0});
        req.claims.push_back(Claim{code_claim(ev.codes.back().code), card_ids[ci], false});
      }
      req.events.push_back(PendingEvent::of(card_streams[ci], ev));
      done += n;
    }
    pos += static_cast<int64_t>(req.events.size());
    ap.Submit(std::move(req), first);
    progress();
  }
  // 2. Wallets: one credit each (claims as the wallet actor writes them).
  auto credit_request = [&](int64_t from, int64_t to, bool extra) {
    AppendRequest req;
    const int64_t first = pos + 1;
    for (int64_t u = from; u < to; ++u) {
      const auto ui = static_cast<size_t>(u);
      int64_t amount = extra ? 1 : plan.credit(u);
      int64_t after = extra ? plan.credit(u) + 1 : amount;
      std::string key = extra ? "gen-extra" : "gen-credit";
      req.events.push_back(
          PendingEvent::of(wallet_streams[ui], WalletCredited{user_ids[ui], amount, after, key}));
      req.expected.emplace_back(wallet_streams[ui], extra ? 1 : kNoStream);
      ++pos;
      req.claims.push_back(Claim{credit_idem_claim(user_ids[ui], key), std::to_string(amount) + be64(pos), false});
    }
    ap.Submit(std::move(req), first);
    progress();
  };
  const int64_t per_request = std::max<int64_t>(1, plan.request_events / 2);
  for (int64_t u = 0; u < plan.users; u += 2 * per_request)
    credit_request(u, std::min(plan.users, u + 2 * per_request), false);
  if (plan.extra_credits) credit_request(0, 1, true);
  // 3. Purchases: CodeAssigned + WalletDebited + the idempotency claim, with
  //    the exact expected version of every stream a request touches.
  std::vector<int64_t> card_version(static_cast<size_t>(plan.cards), plan.card_events());
  std::vector<int64_t> wallet_version(static_cast<size_t>(plan.users), 1);
  if (plan.extra_credits) wallet_version[0] = 2;
  std::vector<int64_t> balance(static_cast<size_t>(plan.users));
  for (int64_t u = 0; u < plan.users; ++u)
    balance[static_cast<size_t>(u)] = plan.credit(u) + (u == 0 ? plan.extra_credits : 0);
  std::vector<int64_t> next_code(static_cast<size_t>(plan.cards), 0);
  std::vector<int64_t> card_stamp(static_cast<size_t>(plan.cards), -1);
  std::vector<int64_t> user_stamp(static_cast<size_t>(plan.users), -1);
  for (int64_t i = 0, reqno = 0; i < plan.purchases; ++reqno) {
    AppendRequest req;
    const int64_t first = pos + 1;
    if (first != plan.purchase_position(i)) setup_error("generate: internal: position plan is off");
    for (int64_t k = 0; k < per_request && i < plan.purchases; ++k, ++i) {
      const auto c = static_cast<size_t>(plan.card_of(i));
      const auto u = static_cast<size_t>(plan.user_of(i));
      if (card_stamp[c] != reqno) {
        card_stamp[c] = reqno;
        req.expected.emplace_back(card_streams[c], card_version[c]);
      }
      if (user_stamp[u] != reqno) {
        user_stamp[u] = reqno;
        req.expected.emplace_back(wallet_streams[u], wallet_version[u]);
      }
      const int64_t price = plan.price(static_cast<int64_t>(c));
      const std::string pid = Plan::purchase_id(i);
      const std::string key = Plan::purchase_key(i);
      balance[u] -= price;
      req.events.push_back(PendingEvent::of(
          card_streams[c], CodeAssigned{card_ids[c], Plan::code(static_cast<int64_t>(c), next_code[c]++),
                                        pid, user_ids[u], price, key}));
      req.events.push_back(PendingEvent::of(
          wallet_streams[u], WalletDebited{user_ids[u], price, balance[u], pid, card_ids[c]}));
      req.claims.push_back(Claim{purchase_idem_claim(user_ids[u], key), card_ids[c] + be64(pos + 1), false});
      pos += 2;
      ++card_version[c];
      ++wallet_version[u];
    }
    ap.Submit(std::move(req), first);
    progress();
  }
  if (Status s = ap.Finish(); !s.ok()) correctness("generate: an append failed: " + s.ToString());
  if (store->LastPosition() != plan.events || pos != plan.events)
    correctness("generate: log ends at " + std::to_string(store->LastPosition()) + ", planned " +
                std::to_string(plan.events));
  progress(true);
  return secs(Clock::now() - t0);
}

inline fs::path generate_into(const Plan& plan, const fs::path& dir, json* report) {
  fs::path store_dir = dir / "store";
  {
    std::ofstream(dir / "plan.json") << plan.to_json().dump() << "\n";
  }
  auto store = open_store(store_dir, /*sync=*/false);  // generation only
  double s = generate(plan, store.get());
  close_store(store);
  (*report)["generate_s"] = round_to(s, 2);
  (*report)["generate_events_per_s"] = std::round(static_cast<double>(plan.events) / s);
  std::cerr << "generate: " << plan.events << " events in " << round_to(s, 1) << " s ("
            << std::round(static_cast<double>(plan.events) / s) << "/s); " << plan.purchases
            << " purchases, " << plan.cards << " cards, " << plan.users << " wallets\n";
  return store_dir;
}

// ---- checks ------------------------------------------------------------------
inline CardView expected_card(const Plan& p, int64_t c) {
  CardView v;
  v.id = Plan::card_id(c);
  v.name = Plan::card_name(c);
  v.price = v.value = p.price(c);
  v.sold = v.assigned = p.sold[static_cast<size_t>(c)];
  v.available = p.codes_per_card - v.sold;
  v.revenue = v.sold * v.price;
  return v;
}

inline PurchaseView expected_purchase(const Plan& p, int64_t i, int64_t code_index) {
  PurchaseView v;
  v.purchase_id = Plan::purchase_id(i);
  v.card_id = Plan::card_id(p.card_of(i));
  v.user_id = Plan::user_id(p.user_of(i));
  v.code = Plan::code(p.card_of(i), code_index);
  v.price = p.price(p.card_of(i));
  v.position = p.purchase_position(i);
  return v;
}

// The read models a replay of the plan's log must give (as far as the plan
// determines them; purchased_at is the commit time, checked for > 0).
inline std::vector<std::string> check_models(const Plan& p, const ReadModels& m, int64_t extra_events = 0) {
  std::vector<std::string> bad;
  auto expect = [&](bool ok, const std::string& what) {
    if (!ok && bad.size() < 20) bad.push_back(what);
  };
  expect(m.position == p.events + extra_events, "position " + std::to_string(m.position) + ", expected " +
                                                    std::to_string(p.events + extra_events));
  expect(static_cast<int64_t>(m.purchases.size()) == p.purchases,
         "purchases " + std::to_string(m.purchases.size()) + ", generated " + std::to_string(p.purchases));
  expect(static_cast<int64_t>(m.balances.size()) == p.users,
         "wallets " + std::to_string(m.balances.size()) + ", generated " + std::to_string(p.users));
  expect(static_cast<int64_t>(m.cards.size()) == p.cards,
         "cards " + std::to_string(m.cards.size()) + ", generated " + std::to_string(p.cards));
  for (int64_t u = 0; u < p.users; ++u) {
    auto it = m.balances.find(Plan::user_id(u));
    expect(it != m.balances.end() && it->second == p.final_balance(u),
           "balance of " + Plan::user_id(u) + " is " +
               (it == m.balances.end() ? "missing" : std::to_string(it->second)) + ", expected " +
               std::to_string(p.final_balance(u)));
    auto up = m.user_purchases.find(Plan::user_id(u));
    int64_t n = up == m.user_purchases.end() ? 0 : static_cast<int64_t>(up->second.size());
    expect(n == p.bought[static_cast<size_t>(u)], "purchases of " + Plan::user_id(u) + ": " +
                                                      std::to_string(n) + ", generated " +
                                                      std::to_string(p.bought[static_cast<size_t>(u)]));
  }
  for (int64_t c = 0; c < p.cards; ++c) {
    auto it = m.cards.find(Plan::card_id(c));
    expect(it != m.cards.end() && it->second == expected_card(p, c), "card view of " + Plan::card_id(c));
  }
  // Every purchase: its fields, its code (card c's k-th sale got code k).
  std::vector<int64_t> code_index(static_cast<size_t>(p.cards), 0);
  for (int64_t i = 0; i < p.purchases; ++i) {
    PurchaseView want = expected_purchase(p, i, code_index[static_cast<size_t>(p.card_of(i))]++);
    auto it = m.purchases.find(want.purchase_id);
    if (it == m.purchases.end()) {
      expect(false, "purchase " + want.purchase_id + " missing");
      continue;
    }
    want.purchased_at = it->second.purchased_at;
    expect(it->second == want && want.purchased_at > 0, "purchase " + want.purchase_id + " differs");
  }
  return bad;
}

inline void require_models(const Plan& p, const ReadModels& m, const std::string& what) {
  auto bad = check_models(p, m);
  if (bad.empty()) return;
  for (auto& b : bad) std::cerr << "  " << what << ": " << b << "\n";
  correctness(what + ": the read models do not match the generated log");
}

inline void require_equal(const ReadModels& a, const ReadModels& b, const std::string& what) {
  if (a == b) return;
  std::ostringstream d;
  d << what << ": models differ (position " << a.position << " vs " << b.position << ", balances "
    << a.balances.size() << " vs " << b.balances.size() << ", cards " << a.cards.size() << " vs "
    << b.cards.size() << ", purchases " << a.purchases.size() << " vs " << b.purchases.size()
    << ", users with purchases " << a.user_purchases.size() << " vs " << b.user_purchases.size()
    << ", balances equal " << (a.balances == b.balances) << ", cards equal " << (a.cards == b.cards)
    << ", purchases equal " << (a.purchases == b.purchases) << ", user index equal "
    << (a.user_purchases == b.user_purchases) << ")";
  correctness(d.str());
}

// ---- (a) in-memory replay ----------------------------------------------------
struct ReplayResult {
  double seconds = 0;
  double cpu_seconds = 0;  // of the process (the fold thread and the scanner's reader)
  int64_t events = 0;
};

// `giftcard replay` itself: replay_log_flat (projections/flat_models.h), whose
// reader thread works one page ahead; CPU is the whole process's.
inline ReplayResult replay_in_memory(EventStore* store, size_t /*chunk*/, ReadModels* m) {
  ReplayResult r;
  const auto t0 = Clock::now();
  const double c0 = process_cpu();
  must(replay_log_flat(store, 0, std::nullopt, m), "replay_log_flat");
  r.events = m->position;
  r.seconds = secs(Clock::now() - t0);
  r.cpu_seconds = process_cpu() - c0;
  return r;
}

// The same work, timed per stage (page by page, so the clock costs nothing);
// the fold includes the final conversion to ReadModels.
inline json replay_breakdown(EventStore* store, size_t chunk) {
  FlatModels m;
  std::vector<StoredEvent> page;
  std::vector<Event> decoded;
  Clock::duration read{}, decode{}, fold{};
  int64_t events = 0;
  const double c0 = thread_cpu();
  for (int64_t next = 1;;) {
    auto a = Clock::now();
    must(store->ReadAll(next, chunk, &page), "ReadAll");
    auto b = Clock::now();
    read += b - a;
    if (page.empty()) break;
    decoded.resize(page.size());
    for (size_t i = 0; i < page.size(); ++i) must(page[i].decode(&decoded[i]), "decode");
    auto c = Clock::now();
    decode += c - b;
    for (size_t i = 0; i < page.size(); ++i) m.fold(page[i], std::move(decoded[i]));
    fold += Clock::now() - c;
    events += static_cast<int64_t>(page.size());
    next = page.back().position + 1;
  }
  {
    auto c = Clock::now();
    ReadModels models = m.to_read_models();
    fold += Clock::now() - c;
    if (models.position != events) correctness("breakdown: the conversion lost events");
  }
  double total = secs(read + decode + fold);
  const double cpu = thread_cpu() - c0;
  auto per_event_us = [&](Clock::duration d) {
    return round_to(secs(d) * 1e6 / static_cast<double>(std::max<int64_t>(events, 1)), 3);
  };
  return json{{"events_per_s", std::round(static_cast<double>(events) / total)},
              {"events_per_cpu_s", std::round(static_cast<double>(events) / cpu)},
              {"read_us_per_event", per_event_us(read)},
              {"decode_us_per_event", per_event_us(decode)},
              {"fold_us_per_event", per_event_us(fold)}};
}

// ---- where a subcommand's log comes from (--events or --from) -------------
struct SourceOptions {
  GenOptions gen;
  std::string from;
  std::string tmp = "/tmp";
};

// The plan and a store to measure on: a fresh generation, or a hard-link clone
// of `--from`'s store (never modified).
inline Plan prepare_source(const SourceOptions& o, const fs::path& work, fs::path* store_dir, json* out) {
  Plan plan;
  if (!o.from.empty()) {
    std::ifstream in(fs::path(o.from) / "plan.json");
    if (!in) setup_error("--from " + o.from + ": no plan.json (make it with `generate --out`)");
    json j;
    in >> j;
    plan = Plan::from_json(j);
    if (auto why = plan.compute(); !why.empty()) setup_error("plan.json: " + why);
    *store_dir = work / "store";
    clone_store(fs::path(o.from) / "store", *store_dir);
    (*out)["source"] = o.from;
  } else {
    plan = make_plan(o.gen);
    *store_dir = generate_into(plan, work, out);
    (*out)["source"] = "generated";
  }
  (*out)["plan"] = plan.to_json();
  return plan;
}

inline void add_source_options(CLI::App* cmd, SourceOptions* o, int64_t default_events) {
  o->gen.events = default_events;
  cmd->add_option("--events", o->gen.events, "events in the generated log")->capture_default_str();
  cmd->add_option("--from", o->from, "use the log made by `generate --out DIR` (cloned, never modified)");
  cmd->add_option("--tmp", o->tmp, "where stores are made (removed at the end)")->capture_default_str();
  cmd->add_flag("--keep", g_keep, "keep the temp stores");
  add_gen_options(cmd, &o->gen);
}

}  // namespace giftcard::projbench
