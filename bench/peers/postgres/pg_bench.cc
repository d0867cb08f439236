// giftcard-pg-bench: the relational peer of giftcard-bench. N client threads, each
// with its own libpq connection and its own wallet, buy activation codes of one hot
// card (or of 100 cards, round robin) from PostgreSQL, one transaction per purchase,
// with the schema of bench/peers/postgres/schema.sql.
//
//   giftcard-pg-bench --conn "host=127.0.0.1 port=54329 user=postgres dbname=giftcard"
//                     [--strategy pessimistic|optimistic|single] [--clients N] [--cards K]
//                     [--seconds S | --purchases N] [--warmup S] [--sync on|off]
//                     [--reset] [--codes C] [--users U] [--price P]
//
// Strategies (prepared statements, READ COMMITTED, the isolation level ORMs use):
//   pessimistic  BEGIN; SELECT the first free code ... FOR UPDATE SKIP LOCKED;
//                UPDATE the code (used, version+1); UPDATE the wallet WHERE balance >= price;
//                INSERT the purchase; COMMIT                         -- 6 round trips
//   optimistic   SELECT the first free code and its version, no lock; BEGIN;
//                UPDATE the code WHERE id = $ AND version = $read  -- 0 rows: a conflict,
//                ROLLBACK and start again from the read; wallet debit WHERE balance >= price;
//                INSERT the purchase; COMMIT                         -- 6 round trips
//   single       the pessimistic purchase as one statement (data-modifying CTEs; the wallet's
//                CHECK (balance >= 0) aborts it when funds are short) -- 1 round trip
//
// --reset drops and recreates the schema, loads C codes per card (default: enough for
// 20,000 purchases/s over the run) and U wallets (default max(clients, 256)), each funded
// to buy every code. Without --reset the previous data is reused.
//
// The result is one JSON line on stdout, a human line on stderr. After the run the
// database is checked (no code sold twice, purchases = used codes, no negative balance,
// money spent = sum of the prices paid, rows added = purchases the clients counted).
// Exit codes: 0 ok, 1 a check failed or a client hit an error, 2 usage or setup error,
// 3 a card ran out of free codes (rerun with --reset and more --codes).
#include <libpq-fe.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <latch>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "pg_schema.h"  // kSchemaSql: schema.sql, embedded at configure time

#include "pg_purchase.h"  // pg_conn.h: Conn, Result, PgError

namespace {

using Clock = std::chrono::steady_clock;

enum class Strategy { pessimistic, optimistic, single };

struct Options {
  std::string conn = "host=127.0.0.1 port=54329 user=postgres dbname=giftcard";
  std::string strategy = "pessimistic";
  int clients = 8;
  int cards = 1;
  double seconds = 3;
  int64_t purchases = 0;  // > 0: stop after this many purchases instead of --seconds
  double warmup = 1;
  std::string sync = "on";
  bool reset = false;
  int64_t codes = 0;  // per card; 0: estimate
  int64_t users = 0;  // 0: max(clients, 256)
  int64_t price = 100;
  bool plain_query = false;
};

using namespace giftcard_pg;

// ---------------------------------------------------------------- the run

struct Sample {
  int64_t start_ns;  // since the run's start (first attempt)
  int64_t end_ns;    // COMMIT acknowledged
  int64_t conflicts;
};

struct ClientResult {
  std::vector<Sample> samples;
  int64_t bought = 0;      // every committed purchase, measured or not
  int64_t errors = 0;      // failed transactions other than optimistic conflicts
  int64_t transient = 0;   // of which retried (deadlock / serialization failure)
  bool sold_out = false;
  bool no_funds = false;
  std::string first_error;
};

struct Shared {
  const Options& o;
  Strategy strategy;
  std::vector<Card> cards;
  std::string nonce;
  std::latch connected;
  std::latch go{1};
  std::atomic<bool> stop{false};
  std::atomic<bool> setup_failed{false};
  std::atomic<int64_t> tickets{0};  // --purchases: purchases started
  Clock::time_point start;

  Shared(const Options& opts, Strategy s, std::vector<Card> c, std::string n)
      : o(opts), strategy(s), cards(std::move(c)), nonce(std::move(n)), connected(opts.clients) {}
};

bool transient(const std::string& sqlstate) {
  return sqlstate == "40001" || sqlstate == "40P01";  // serialization failure, deadlock
}

void client(Shared& s, int index, ClientResult& out) {
  std::optional<Conn> conn;
  try {
    conn.emplace(s.o.conn);
    conn->exec("SET synchronous_commit = " + s.o.sync);
    conn->exec("SET application_name = 'giftcard-pg-bench'");
    prepare_all(*conn, s.o.plain_query);
    const Card& card = s.cards[static_cast<size_t>(index) % s.cards.size()];
    warm_up(*conn, card.as_array, std::to_string(index + 1), card.price);
  } catch (const std::exception& e) {
    out.first_error = e.what();
    ++out.errors;
    s.setup_failed = true;
  }
  s.connected.count_down();
  s.go.wait();
  if (!conn || s.setup_failed) return;

  const std::string user = std::to_string(index + 1);
  const int64_t limit = s.o.purchases;
  int64_t seq = 0;
  size_t card_index = static_cast<size_t>(index) % s.cards.size();
  out.samples.reserve(1 << 14);

  while (!s.stop.load(std::memory_order_relaxed)) {
    if (limit > 0 && s.tickets.fetch_add(1, std::memory_order_relaxed) >= limit) break;
    const Card& card = s.cards[card_index];
    card_index = (card_index + 1) % s.cards.size();
    const std::string key = s.nonce + "-" + user + "-" + std::to_string(seq++);
    Purchase p{*conn, user, card, key};
    const auto t0 = Clock::now();
    Outcome outcome = Outcome::abandoned;
    for (;;) {
      try {
        switch (s.strategy) {
          case Strategy::pessimistic: outcome = p.pessimistic(); break;
          case Strategy::optimistic: outcome = p.optimistic(s.stop); break;
          case Strategy::single: outcome = p.single(); break;
        }
        break;
      } catch (const PgError& e) {
        if (!conn->ok()) {
          ++out.errors;
          if (out.first_error.empty()) out.first_error = e.what();
          return;
        }
        conn->rollback();
        if (e.sqlstate == "23514") {  // single: CHECK (balance >= 0) refused the debit
          outcome = Outcome::no_funds;
          break;
        }
        ++out.errors;
        if (out.first_error.empty()) out.first_error = e.what();
        if (!transient(e.sqlstate)) return;
        ++out.transient;
        if (s.stop.load(std::memory_order_relaxed)) return;
      } catch (const std::exception& e) {
        ++out.errors;
        if (out.first_error.empty()) out.first_error = e.what();
        return;
      }
    }
    const auto t1 = Clock::now();
    switch (outcome) {
      case Outcome::bought:
        ++out.bought;
        out.samples.push_back(
            {std::chrono::duration_cast<std::chrono::nanoseconds>(t0 - s.start).count(),
             std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - s.start).count(),
             p.conflicts});
        break;
      case Outcome::sold_out:
        out.sold_out = true;
        s.stop = true;  // the numbers would no longer describe the contended workload
        return;
      case Outcome::no_funds:
        out.no_funds = true;
        ++out.errors;
        if (out.first_error.empty()) out.first_error = "wallet " + user + ": insufficient funds";
        return;
      case Outcome::abandoned:
        return;
    }
  }
}

// ---------------------------------------------------------------- setup and checks

int64_t default_codes(const Options& o) {
  // Enough for 20,000 purchases/s (several times what PostgreSQL does on 2 cores) over the
  // whole run, spread over the cards, plus one per client (SKIP LOCKED skips locked codes).
  double total = o.purchases > 0 ? static_cast<double>(o.purchases) * 1.2
                                 : 20000.0 * (o.seconds + o.warmup + 1);
  int64_t per_card = static_cast<int64_t>(std::ceil(total / o.cards)) + o.clients;
  return std::max<int64_t>(per_card, 1000);
}

void reset(Conn& c, const Options& o) {
  const int64_t codes = o.codes > 0 ? o.codes : default_codes(o);
  const int64_t users = o.users > 0 ? o.users : std::max<int64_t>(o.clients, 256);
  // Each wallet can pay for every code of every card: money never runs out.
  const int64_t funding = codes * o.cards * o.price;
  const auto t0 = Clock::now();
  std::cerr << "reset: schema, " << o.cards << " card(s) x " << codes << " codes, " << users
            << " wallets\n";
  c.exec("SET client_min_messages = warning");
  c.exec(kSchemaSql);
  c.exec("INSERT INTO gift_cards (name, price) SELECT 'Gift card ' || g, " + std::to_string(o.price) +
         " FROM generate_series(1, " + std::to_string(o.cards) + ") g");
  // Codes in card order, so each card's free codes are contiguous in id order.
  c.exec("INSERT INTO activation_codes (card_id, code, expires_at)"
         " SELECT c.id, 'GC' || c.id || '-' || g || '-' || upper(substr(md5(c.id || ':' || g), 1, 10)),"
         "        now() + interval '1 year'"
         " FROM gift_cards c CROSS JOIN generate_series(1, " + std::to_string(codes) + ") g"
         " ORDER BY c.id, g");
  c.exec("INSERT INTO wallets (user_id, balance) SELECT g, " + std::to_string(funding) +
         " FROM generate_series(1, " + std::to_string(users) + ") g");
  c.exec("INSERT INTO wallet_credits (user_id, amount) SELECT user_id, balance FROM wallets");
  for (const char* t : {"gift_cards", "activation_codes", "wallets", "wallet_credits", "purchases"}) {
    c.exec(std::string("VACUUM (ANALYZE) ") + t);
  }
  c.exec("CHECKPOINT");  // the run does not pay for flushing the load
  std::cerr << "reset: done in "
            << std::chrono::duration<double>(Clock::now() - t0).count() << " s\n";
}

struct Check {
  const char* what;
  std::string sql;  // must return 0
};

const std::vector<Check>& checks() {
  static const std::vector<Check> all = {
      {"codes sold twice",
       "SELECT count(*) FROM (SELECT code_id FROM purchases GROUP BY code_id HAVING count(*) > 1) d"},
      {"purchases - used codes",
       "SELECT (SELECT count(*) FROM purchases) - (SELECT count(*) FROM activation_codes WHERE used)"},
      {"purchases of a code that is free, of another card or not versioned",
       "SELECT count(*) FROM purchases p JOIN activation_codes a ON a.id = p.code_id"
       " WHERE NOT a.used OR a.card_id <> p.card_id OR a.version < 1"},
      {"negative balances", "SELECT count(*) FROM wallets WHERE balance < 0"},
      {"purchases not at the card's price",
       "SELECT count(*) FROM purchases p JOIN gift_cards g ON g.id = p.card_id"
       " WHERE p.price <> g.price"},
      {"money debited - purchases x price",
       "SELECT (SELECT coalesce(sum(amount), 0) FROM wallet_credits)"
       " - (SELECT coalesce(sum(balance), 0) FROM wallets)"
       " - (SELECT coalesce(sum(g.price), 0) FROM purchases p JOIN gift_cards g ON g.id = p.card_id)"},
      {"wallets whose debits differ from their own purchases",
       "SELECT count(*) FROM wallets w"
       " WHERE (SELECT coalesce(sum(amount), 0) FROM wallet_credits c WHERE c.user_id = w.user_id)"
       "     - w.balance"
       "  <> (SELECT coalesce(sum(price), 0) FROM purchases p WHERE p.user_id = w.user_id)"},
  };
  return all;
}

double percentile_ms(std::vector<int64_t>& v, double q) {
  if (v.empty()) return 0;
  size_t k = std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return static_cast<double>(v[k]) / 1e6;
}

double round3(double x) { return std::round(x * 1000) / 1000; }

std::string random_nonce() {
  std::random_device rd;
  uint64_t x = (static_cast<uint64_t>(rd()) << 32) ^ rd();
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(x));
  return buf;
}

int run(const Options& o) {
  const Strategy strategy = o.strategy == "optimistic" ? Strategy::optimistic
                            : o.strategy == "single"   ? Strategy::single
                                                       : Strategy::pessimistic;
  Conn admin(o.conn);
  if (o.reset) reset(admin, o);

  // The cards and their prices: a shop caches its catalogue, so clients do not read it.
  std::vector<Card> cards;
  {
    Result r = admin.exec("SELECT id, price FROM gift_cards ORDER BY id LIMIT " +
                          std::to_string(o.cards));
    for (int i = 0; i < r.rows(); ++i) {
      cards.push_back({r.get(i, 0), r.get(i, 1), std::string("{") + r.get(i, 0) + "}"});
    }
  }
  if (static_cast<int>(cards.size()) < o.cards) {
    std::cerr << "only " << cards.size() << " gift card(s) in the database, " << o.cards
              << " wanted: run with --reset\n";
    return 2;
  }
  const int64_t wallets = admin.scalar("SELECT count(*) FROM wallets WHERE user_id BETWEEN 1 AND " +
                                       std::to_string(o.clients));
  if (wallets < o.clients) {
    std::cerr << "only " << wallets << " wallets for " << o.clients
              << " clients: run with --reset (or --reset --users N)\n";
    return 2;
  }
  {
    std::string ids;
    for (const Card& c : cards) ids += (ids.empty() ? "" : ",") + c.id;
    const int64_t least_free = admin.scalar(
        "SELECT coalesce(min(n), 0) FROM (SELECT count(a.id) n FROM gift_cards g"
        " LEFT JOIN activation_codes a ON a.card_id = g.id AND NOT a.used"
        " WHERE g.id IN (" + ids + ") GROUP BY g.id) f");
    std::cerr << "free codes: at least " << least_free << " per card\n";
  }
  const int64_t purchases_before = admin.scalar("SELECT count(*) FROM purchases");

  Shared s(o, strategy, std::move(cards), random_nonce());
  std::vector<ClientResult> results(static_cast<size_t>(o.clients));
  std::vector<std::thread> threads;
  threads.reserve(static_cast<size_t>(o.clients));
  for (int i = 0; i < o.clients; ++i) {
    threads.emplace_back(client, std::ref(s), i, std::ref(results[static_cast<size_t>(i)]));
  }
  s.connected.wait();
  s.start = Clock::now();
  s.go.count_down();

  const auto measure_from = std::chrono::duration<double>(o.warmup);
  int64_t measure_from_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(measure_from).count();
  int64_t measure_to_ns = INT64_MAX;
  if (!s.setup_failed && o.purchases <= 0) {
    const auto deadline = s.start + std::chrono::duration_cast<Clock::duration>(
                                        std::chrono::duration<double>(o.warmup + o.seconds));
    while (Clock::now() < deadline && !s.stop.load()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    measure_to_ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - s.start).count();
    s.stop = true;
  }
  for (auto& t : threads) t.join();
  if (s.setup_failed) {
    for (const ClientResult& r : results) {
      if (!r.first_error.empty()) {
        std::cerr << "giftcard-pg-bench: a client could not start: " << r.first_error << "\n";
        break;
      }
    }
    return 2;
  }
  if (o.purchases > 0) measure_from_ns = 0;  // a fixed amount of work: all of it is measured

  // Aggregate.
  int64_t bought = 0, errors = 0, transient_errors = 0, conflicts = 0;
  bool sold_out = false;
  std::string first_error;
  std::vector<int64_t> latencies;
  int64_t last_end = 0;
  for (const ClientResult& r : results) {
    bought += r.bought;
    errors += r.errors;
    transient_errors += r.transient;
    sold_out = sold_out || r.sold_out;
    if (first_error.empty()) first_error = r.first_error;
    for (const Sample& x : r.samples) {
      // Throughput is purchases completed inside the window, wherever they started.
      if (x.end_ns <= measure_from_ns || x.end_ns > measure_to_ns) continue;
      latencies.push_back(x.end_ns - x.start_ns);
      conflicts += x.conflicts;
      last_end = std::max(last_end, x.end_ns);
    }
  }
  const int64_t measured = static_cast<int64_t>(latencies.size());
  double seconds;
  if (o.purchases > 0) {
    seconds = measured > 0 ? static_cast<double>(last_end) / 1e9 : 0;
  } else {
    seconds = static_cast<double>(std::max<int64_t>(measure_to_ns - measure_from_ns, 0)) / 1e9;
  }
  const double p50 = percentile_ms(latencies, 0.50);
  const double p99 = percentile_ms(latencies, 0.99);
  const double max_ms = latencies.empty()
                            ? 0
                            : static_cast<double>(*std::max_element(latencies.begin(), latencies.end())) / 1e6;

  // Check the database.
  std::vector<std::string> failed;
  try {
    Conn check(o.conn);
    for (const Check& c : checks()) {
      int64_t v = check.scalar(c.sql);
      if (v != 0) failed.push_back(std::string(c.what) + " = " + std::to_string(v));
    }
    const int64_t added = check.scalar("SELECT count(*) FROM purchases") - purchases_before;
    if (added != bought) {
      failed.push_back("purchases added (" + std::to_string(added) + ") != purchases the clients committed (" +
                       std::to_string(bought) + ")");
    }
  } catch (const std::exception& e) {
    failed.push_back(std::string("check query failed: ") + e.what());
  }

  nlohmann::ordered_json out;  // fields in the order documented above
  out["bench"] = "postgres";
  out["strategy"] = o.strategy;
  out["clients"] = o.clients;
  out["cards"] = o.cards;
  out["sync"] = o.sync;
  out["purchases"] = measured;
  out["seconds"] = round3(seconds);
  out["purchases_per_s"] = seconds > 0 ? std::round(static_cast<double>(measured) / seconds) : 0.0;
  out["p50_ms"] = round3(p50);
  out["p99_ms"] = round3(p99);
  out["max_ms"] = round3(max_ms);
  out["conflicts_per_purchase"] =
      measured > 0 ? round3(static_cast<double>(conflicts) / static_cast<double>(measured)) : 0.0;
  out["errors"] = errors;
  if (transient_errors > 0) out["retried_errors"] = transient_errors;
  if (sold_out) out["sold_out"] = true;
  out["warmup_s"] = o.purchases > 0 ? 0.0 : o.warmup;
  out["check"] = failed.empty() ? "ok" : "failed";
  if (!failed.empty()) out["check_failures"] = failed;
  std::cout << out.dump() << std::endl;

  char line[512];
  std::snprintf(line, sizeof line,
                "postgres %s clients=%d cards=%d sync=%s: %lld purchases in %.2f s = %.0f/s, "
                "p50 %.2f ms, p99 %.2f ms, %.2f conflicts/purchase, %lld errors, check %s",
                o.strategy.c_str(), o.clients, o.cards, o.sync.c_str(),
                static_cast<long long>(measured), seconds,
                seconds > 0 ? static_cast<double>(measured) / seconds : 0.0, p50, p99,
                measured > 0 ? static_cast<double>(conflicts) / static_cast<double>(measured) : 0.0,
                static_cast<long long>(errors), failed.empty() ? "ok" : "FAILED");
  std::cerr << line << "\n";
  for (const std::string& f : failed) std::cerr << "  check failed: " << f << "\n";
  if (!first_error.empty()) std::cerr << "  first error: " << first_error << "\n";

  if (!failed.empty()) return 1;
  if (sold_out) {
    std::cerr << "  a card ran out of free codes: rerun with --reset (and a larger --codes)\n";
    return 3;
  }
  return errors > transient_errors ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"giftcard-pg-bench: concurrent gift-card purchases against PostgreSQL"};
  app.add_option("--conn", o.conn, "libpq connection string (pg.sh start prints it)")
      ->capture_default_str();
  app.add_option("--strategy", o.strategy,
                 "pessimistic: FOR UPDATE SKIP LOCKED; optimistic: row version + retry; "
                 "single: SKIP LOCKED in one statement")
      ->check(CLI::IsMember({"pessimistic", "optimistic", "single"}))
      ->capture_default_str();
  app.add_option("--clients", o.clients, "client threads, one connection each")
      ->check(CLI::Range(1, 10000))
      ->capture_default_str();
  app.add_option("--cards", o.cards, "cards bought from (1: one hot card; else round robin)")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  auto* seconds = app.add_option("--seconds", o.seconds, "measured seconds, after the warm-up")
                      ->check(CLI::PositiveNumber)
                      ->capture_default_str();
  app.add_option("--purchases", o.purchases, "stop after this many purchases (no warm-up)")
      ->check(CLI::PositiveNumber)
      ->excludes(seconds);
  app.add_option("--warmup", o.warmup, "seconds of unmeasured purchases before measuring")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--sync", o.sync, "synchronous_commit of every client session")
      ->check(CLI::IsMember({"on", "off"}))
      ->capture_default_str();
  app.add_flag("--reset", o.reset, "drop and recreate the schema, load codes and wallets");
  app.add_option("--codes", o.codes,
                 "with --reset: codes per card (default: 20,000/s over the run, split over the cards)")
      ->check(CLI::PositiveNumber);
  app.add_option("--users", o.users, "with --reset: wallets (default max(clients, 256))")
      ->check(CLI::PositiveNumber);
  app.add_option("--price", o.price, "with --reset: price of every card, in cents")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_flag("--plain-query", o.plain_query,
               "find the first free code with card_id = $1 ORDER BY id (the planner then "
               "takes the primary key and slows down as codes sell; see pg_bench.cc)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;  // --help: 0; a usage error: 2
  }

  try {
    return run(o);
  } catch (const std::exception& e) {
    std::cerr << "giftcard-pg-bench: " << e.what() << "\n";
    return 2;
  }
}
