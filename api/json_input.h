// Strict JSON request bodies: the Content-Type must be application/json, the
// body one JSON object with no duplicate key, no nesting deeper than 32 and no
// non-finite number; Fields reads its members with a type check that names
// the field.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "api/http_server.h"
#include "api/problem.h"

namespace giftcard {

// Parses the request's body into *out; a problem (415 or 400) if it is not
// one strict JSON object.
std::optional<Problem> parse_body(const HttpRequest& req, nlohmann::json* out);

// Fields of a JSON object, each with a type check that names the field. The
// first failure is kept in `error`; later reads return empty values.
class Fields {
 public:
  explicit Fields(const nlohmann::json& j) : j_(j) {}
  std::optional<Problem> error;

  std::string str(const char* name, bool required = true);
  // An integer in minor units that fits in int64_t.
  int64_t integer(const char* name);
  const nlohmann::json* array(const char* name);
  void fail(std::string why);

 private:
  const nlohmann::json& j_;
};

}  // namespace giftcard
