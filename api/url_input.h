// What a request's target brings: the path as percent-decoded segments and
// the query string's parameters, with the checks every route shares.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "api/problem.h"

namespace giftcard {

struct Query {
  std::vector<std::pair<std::string, std::string>> items;
  // The first value of `k`, or nullptr.
  const std::string* find(const std::string& k) const;
};

// "a=1&b=2" into its items, as they are (no decoding).
Query parse_query(std::string_view q);

// A non-negative decimal integer parameter (default if absent).
std::optional<Problem> int_param(const Query& q, const char* name, int64_t dflt, int64_t* out);

// `limit` of a paged list: 1..kMaxPageLimit, default kDefaultPageLimit.
std::optional<Problem> page_limit(const Query& q, int64_t* out);

// Splits "/a/b%40c" into decoded segments {"a", "b@c"}. A decoded segment
// keeps whatever it decodes to ('/', NUL, ...): the id checks refuse those.
// False for a path that does not start with '/' or a malformed escape.
bool split_path(std::string_view path, std::vector<std::string>* out);

}  // namespace giftcard
