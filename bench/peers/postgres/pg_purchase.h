// One purchase of giftcard-pg-bench in PostgreSQL: the prepared statements
// (prepared and warmed up once per connection) and the three strategies,
// pessimistic, optimistic and single (pg_bench.cc says what each sends).
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "pg_conn.h"

namespace giftcard_pg {

// ---------------------------------------------------------------- statements

// "The first free code of the card". $1 is the card as a one-element array: written as
// card_id = ANY($1) ... ORDER BY card_id, id, only the partial index activation_codes_free
// can deliver the order, so the planner must use it. Written the obvious way (card_id = $1
// ... ORDER BY id; --plain-query) PostgreSQL 15 takes the primary key when one card holds
// most codes: it assumes the free codes are spread evenly over the ids, so the first one
// should come at once, but they all come after the sold ones, and every purchase walks
// every code sold so far: throughput falls as the run goes on.
constexpr const char* kFreeCode =
    "SELECT id, code, version FROM activation_codes"
    " WHERE card_id = ANY($1::bigint[]) AND NOT used AND expires_at > now()"
    " ORDER BY card_id, id LIMIT 1";
constexpr const char* kFreeCodePlain =
    "SELECT id, code, version FROM activation_codes"
    " WHERE card_id = ($1::bigint[])[1] AND NOT used AND expires_at > now()"
    " ORDER BY id LIMIT 1";

inline void prepare_all(Conn& c, bool plain_query) {
  const std::string free_code = plain_query ? kFreeCodePlain : kFreeCode;
  c.prepare("lock_code", (free_code + " FOR UPDATE SKIP LOCKED").c_str());
  c.prepare("read_code", free_code.c_str());
  c.prepare("take_code",
            "UPDATE activation_codes SET used = true, used_at = now(), version = version + 1"
            " WHERE id = $1");
  c.prepare("take_code_if_version",
            "UPDATE activation_codes SET used = true, used_at = now(), version = version + 1"
            " WHERE id = $1 AND version = $2 AND NOT used");
  c.prepare("debit",
            "UPDATE wallets SET balance = balance - $2, version = version + 1, updated_at = now()"
            " WHERE user_id = $1 AND balance >= $2");
  c.prepare("insert_purchase",
            "INSERT INTO purchases (user_id, card_id, code_id, price, idempotency_key)"
            " VALUES ($1, $2, $3, $4, $5) RETURNING id");
  c.prepare("single",
            ("WITH c AS (" + free_code + " FOR UPDATE SKIP LOCKED),"
            " u AS (UPDATE activation_codes a SET used = true, used_at = now(), version = a.version + 1"
            "  FROM c WHERE a.id = c.id RETURNING a.id),"
            " w AS (UPDATE wallets SET balance = balance - $3, version = version + 1, updated_at = now()"
            "  WHERE user_id = $2 AND EXISTS (SELECT 1 FROM c) RETURNING user_id)"
            " INSERT INTO purchases (user_id, card_id, code_id, price, idempotency_key)"
            " SELECT w.user_id, ($1::bigint[])[1], u.id, $3, $4 FROM u, w RETURNING id")
                .c_str());
}

// Runs every statement once in a transaction that is rolled back, before the clock starts:
// a new backend loads its catalog caches and plans each statement on first use, which
// costs milliseconds of CPU per connection (seconds at 256 clients on 2 cores).
inline void warm_up(Conn& c, const std::string& card_array, const std::string& user,
             const std::string& price) {
  c.run("read_code", {card_array.c_str()});
  c.exec("BEGIN");
  Result code = c.run("lock_code", {card_array.c_str()});
  if (code.rows() == 1) {
    std::string id = code.get(0, 0);
    std::string version = code.get(0, 2);
    c.run("take_code_if_version", {id.c_str(), version.c_str()});
    c.run("take_code", {id.c_str()});
    c.run("debit", {user.c_str(), price.c_str()});
    std::string card = card_array.substr(1, card_array.size() - 2);
    c.run("insert_purchase", {user.c_str(), card.c_str(), id.c_str(), price.c_str(), "warm-up"});
  }
  c.exec("ROLLBACK");
  c.exec("BEGIN");
  c.run("single", {card_array.c_str(), user.c_str(), price.c_str(), "warm-up"});
  c.exec("ROLLBACK");
}

// ---------------------------------------------------------------- one purchase

enum class Outcome { bought, sold_out, no_funds, abandoned };

struct Card {
  std::string id;
  std::string price;
  std::string as_array;  // "{id}": the parameter of the first-free-code query
};

struct Purchase {
  Conn& c;
  const std::string& user;
  const Card& card;
  const std::string& key;
  int64_t conflicts = 0;  // optimistic: lost version races (each one a rollback + retry)

  Outcome pessimistic() {
    c.exec("BEGIN");
    Result code = c.run("lock_code", {card.as_array.c_str()});
    if (code.rows() == 0) {
      c.exec("ROLLBACK");
      return Outcome::sold_out;
    }
    std::string code_id = code.get(0, 0);
    c.run("take_code", {code_id.c_str()});
    return debit_insert_commit(code_id);
  }

  Outcome optimistic(const std::atomic<bool>& stop) {
    for (;;) {
      Result code = c.run("read_code", {card.as_array.c_str()});
      if (code.rows() == 0) return Outcome::sold_out;
      std::string code_id = code.get(0, 0);
      std::string version = code.get(0, 2);
      c.exec("BEGIN");
      if (c.run("take_code_if_version", {code_id.c_str(), version.c_str()}).affected() == 1) {
        return debit_insert_commit(code_id);
      }
      c.exec("ROLLBACK");
      ++conflicts;
      if (stop.load(std::memory_order_relaxed)) return Outcome::abandoned;
    }
  }

  Outcome single() {
    Result r =
        c.run("single", {card.as_array.c_str(), user.c_str(), card.price.c_str(), key.c_str()});
    return r.rows() == 1 ? Outcome::bought : Outcome::sold_out;
  }

 private:
  Outcome debit_insert_commit(const std::string& code_id) {
    if (c.run("debit", {user.c_str(), card.price.c_str()}).affected() != 1) {
      c.exec("ROLLBACK");
      return Outcome::no_funds;
    }
    c.run("insert_purchase",
          {user.c_str(), card.id.c_str(), code_id.c_str(), card.price.c_str(), key.c_str()});
    c.exec("COMMIT");
    return Outcome::bought;
  }
};

}  // namespace giftcard_pg
