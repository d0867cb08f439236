// Timestamps are int64 microseconds since the Unix epoch, UTC ("micros").
// 0 is the epoch, 1970-01-01T00:00:00Z, like any other instant: an optional time
// is a std::optional (e.g. a code's expiry, events/events.h), never 0 for "none".
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace giftcard {

using Micros = int64_t;

// Wall clock now, in micros.
Micros now_micros();

// RFC 3339 UTC with microseconds: "2026-11-22T10:00:00.123456Z".
std::string format_rfc3339(Micros t);

// Accepts "YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)" ('t'/' ' separators too).
// Returns false on anything else, including out-of-range fields.
bool parse_rfc3339(std::string_view s, Micros* out);

}  // namespace giftcard
