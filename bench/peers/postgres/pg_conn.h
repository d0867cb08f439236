// The libpq calls of giftcard-pg-bench: a connection that throws PgError (with
// the SQLSTATE) on any failed statement, and results freed on destruction.
#pragma once

#include <libpq-fe.h>

#include <cstdint>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <vector>

namespace giftcard_pg {

struct PgError : std::runtime_error {
  std::string sqlstate;
  PgError(const std::string& what, std::string state)
      : std::runtime_error(what), sqlstate(std::move(state)) {}
};

class Result {
 public:
  explicit Result(PGresult* r) : r_(r) {}
  Result(Result&& o) noexcept : r_(o.r_) { o.r_ = nullptr; }
  Result(const Result&) = delete;
  Result& operator=(const Result&) = delete;
  Result& operator=(Result&&) = delete;
  ~Result() { PQclear(r_); }

  int rows() const { return PQntuples(r_); }
  const char* get(int row, int col) const { return PQgetvalue(r_, row, col); }
  int64_t get_int(int row, int col) const { return std::stoll(get(row, col)); }
  int64_t affected() const {
    const char* n = PQcmdTuples(r_);
    return *n ? std::stoll(n) : 0;
  }

 private:
  PGresult* r_;
};

class Conn {
 public:
  explicit Conn(const std::string& conninfo) : c_(PQconnectdb(conninfo.c_str())) {
    if (PQstatus(c_) != CONNECTION_OK) {
      std::string msg = c_ ? PQerrorMessage(c_) : "out of memory";
      PQfinish(c_);
      throw PgError("cannot connect (" + conninfo + "): " + trim(msg), "");
    }
  }
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;
  ~Conn() { PQfinish(c_); }

  bool ok() const { return PQstatus(c_) == CONNECTION_OK; }

  // Simple query protocol: may hold several statements separated by ';'.
  Result exec(const std::string& sql) { return check(PQexec(c_, sql.c_str()), sql); }

  void prepare(const char* name, const char* sql) {
    check(PQprepare(c_, name, sql, 0, nullptr), sql);
  }

  Result run(const char* name, std::initializer_list<const char*> params) {
    std::vector<const char*> p(params);
    return check(PQexecPrepared(c_, name, static_cast<int>(p.size()), p.data(), nullptr, nullptr, 0),
                 name);
  }

  // ROLLBACK after a failed statement, if a transaction is open; never throws (the caller
  // already reports an error).
  void rollback() {
    if (PQtransactionStatus(c_) != PQTRANS_IDLE) PQclear(PQexec(c_, "ROLLBACK"));
  }

  int64_t scalar(const std::string& sql) {
    Result r = exec(sql);
    if (r.rows() != 1) throw PgError("expected one row from: " + sql, "");
    return r.get_int(0, 0);
  }

 private:
  static std::string trim(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return s;
  }

  Result check(PGresult* r, const std::string& what) {
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return Result(r);
    const char* state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
    std::string msg = trim(r ? PQresultErrorMessage(r) : PQerrorMessage(c_));
    std::string sqlstate = state ? state : "";
    PQclear(r);
    std::string head = what.substr(0, what.find('\n'));
    throw PgError(head.substr(0, 80) + ": " + msg, sqlstate);
  }

  PGconn* c_;
};

}  // namespace giftcard_pg
