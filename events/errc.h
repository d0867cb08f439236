// The stable, machine-readable error codes of docs/CONTRACT.md, "Problem codes". Values never
// change: they cross the CAF wire as caf::error codes and appear as "code" in HTTP problem details.
// Names are snake_case because they are rendered verbatim.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string_view>

namespace giftcard {

enum class Errc : uint8_t {
  ok = 0,
  invalid_request = 1,
  card_exists = 2,
  card_not_found = 3,
  duplicate_codes = 4,
  code_not_found = 5,
  code_not_available = 6,
  out_of_stock = 7,
  insufficient_funds = 8,
  missing_idempotency_key = 9,
  idempotency_key_reused = 10,
  purchase_not_found = 11,
  storage_unavailable = 12,
  storage_corruption = 13,
  projection_lagging = 14,
  balance_overflow = 15,
  unavailable = 16,   // shutting down / actor gone; safe to retry with the same key
  unauthorized = 17,  // a missing or wrong token (HTTP 401, CAF login)
  busy = 18,          // a bounded queue is full (queries, sessions); retry later
  rate_limited = 19,  // over the caller's request rate (HTTP 429)
};

// "card_not_found" etc.; "unknown" for values outside the enum.
std::string_view to_string(Errc e);
// HTTP status for an error code (docs/CONTRACT.md, "Problem codes").
int http_status(Errc e);
// Parses a rendered name back; false if unknown.
bool from_string(std::string_view s, Errc* out);
std::ostream& operator<<(std::ostream& os, Errc e);

}  // namespace giftcard
