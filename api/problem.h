// An RFC 9457 problem the HTTP API answers with: a status, a stable code
// (docs/CONTRACT.md, Problem codes) and a human-readable detail.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace giftcard {

struct Problem {
  int status = 400;
  std::string code = "invalid_request";
  std::string detail;
  nlohmann::json extra;  // merged into the body
};

}  // namespace giftcard
