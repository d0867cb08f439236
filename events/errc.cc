#include "events/errc.h"

#include <array>
#include <ostream>
#include <utility>

namespace giftcard {
namespace {

struct Row {
  Errc e;
  std::string_view name;
  int http;
};

constexpr std::array<Row, 20> kRows = {{
    {Errc::ok, "ok", 200},
    {Errc::invalid_request, "invalid_request", 400},
    {Errc::card_exists, "card_exists", 409},
    {Errc::card_not_found, "card_not_found", 404},
    {Errc::duplicate_codes, "duplicate_codes", 409},
    {Errc::code_not_found, "code_not_found", 404},
    {Errc::code_not_available, "code_not_available", 409},
    {Errc::out_of_stock, "out_of_stock", 409},
    {Errc::insufficient_funds, "insufficient_funds", 402},
    {Errc::missing_idempotency_key, "missing_idempotency_key", 400},
    {Errc::idempotency_key_reused, "idempotency_key_reused", 422},
    {Errc::purchase_not_found, "purchase_not_found", 404},
    {Errc::storage_unavailable, "storage_unavailable", 503},
    {Errc::storage_corruption, "storage_corruption", 500},
    {Errc::projection_lagging, "projection_lagging", 503},
    {Errc::balance_overflow, "balance_overflow", 422},
    {Errc::unavailable, "unavailable", 503},
    {Errc::unauthorized, "unauthorized", 401},
    {Errc::busy, "busy", 503},
    {Errc::rate_limited, "rate_limited", 429},
}};

}  // namespace

std::string_view to_string(Errc e) {
  for (const auto& r : kRows)
    if (r.e == e) return r.name;
  return "unknown";
}

int http_status(Errc e) {
  for (const auto& r : kRows)
    if (r.e == e) return r.http;
  return 500;
}

bool from_string(std::string_view s, Errc* out) {
  for (const auto& r : kRows)
    if (r.name == s) {
      *out = r.e;
      return true;
    }
  return false;
}

std::ostream& operator<<(std::ostream& os, Errc e) { return os << to_string(e); }

}  // namespace giftcard
