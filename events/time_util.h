// Timestamps are int64 microseconds since the Unix epoch, UTC ("micros").
// 0 means "none" where a field is optional (e.g. a code that never expires).
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
