#include "api/json_input.h"

#include <cctype>
#include <cmath>
#include <limits>
#include <set>
#include <string_view>
#include <vector>

namespace giftcard {

using json = nlohmann::json;

namespace {

// Builds the DOM like nlohmann's own parser, but refuses duplicate keys,
// nesting deeper than kMaxDepth and non-finite numbers.
class StrictSax : public nlohmann::json_sax<json> {
 public:
  static constexpr size_t kMaxDepth = 32;
  explicit StrictSax(json& out) : dom_(out, false) {}
  std::string error;

  bool null() override { return dom_.null(); }
  bool boolean(bool v) override { return dom_.boolean(v); }
  bool number_integer(number_integer_t v) override { return dom_.number_integer(v); }
  bool number_unsigned(number_unsigned_t v) override { return dom_.number_unsigned(v); }
  bool number_float(number_float_t v, const string_t& s) override {
    if (!std::isfinite(v)) return fail("number " + s + " is out of range");
    return dom_.number_float(v, s);
  }
  bool string(string_t& v) override { return dom_.string(v); }
  bool binary(binary_t& v) override { return dom_.binary(v); }
  bool start_object(std::size_t n) override {
    if (++depth_ > kMaxDepth) return fail("JSON nested deeper than " + std::to_string(kMaxDepth));
    keys_.emplace_back();
    return dom_.start_object(n);
  }
  bool key(string_t& k) override {
    if (!keys_.back().insert(k).second) return fail("duplicate key \"" + k + "\"");
    return dom_.key(k);
  }
  bool end_object() override {
    keys_.pop_back();
    --depth_;
    return dom_.end_object();
  }
  bool start_array(std::size_t n) override {
    if (++depth_ > kMaxDepth) return fail("JSON nested deeper than " + std::to_string(kMaxDepth));
    return dom_.start_array(n);
  }
  bool end_array() override {
    --depth_;
    return dom_.end_array();
  }
  bool parse_error(std::size_t, const std::string&,
                   const nlohmann::detail::exception& ex) override {
    return fail(std::string("malformed JSON: ") + ex.what());
  }

 private:
  bool fail(std::string why) {
    if (error.empty()) error = std::move(why);
    return false;
  }
  nlohmann::detail::json_sax_dom_parser<json> dom_;
  std::vector<std::set<std::string>> keys_;
  size_t depth_ = 0;
};

}  // namespace

std::string Fields::str(const char* name, bool required) {
  auto it = j_.find(name);
  if (it == j_.end()) {
    if (required) fail(std::string("missing field \"") + name + "\"");
    return {};
  }
  if (!it->is_string()) {
    fail(std::string("field \"") + name + "\" must be a string");
    return {};
  }
  return it->get<std::string>();
}

int64_t Fields::integer(const char* name) {
  auto it = j_.find(name);
  if (it == j_.end()) return fail(std::string("missing field \"") + name + "\""), 0;
  if (!it->is_number_integer())
    return fail(std::string("field \"") + name + "\" must be an integer (minor units)"), 0;
  if (it->is_number_unsigned() &&
      it->get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
    return fail(std::string("field \"") + name + "\" is too large"), 0;
  return it->get<int64_t>();
}

const json* Fields::array(const char* name) {
  auto it = j_.find(name);
  if (it == j_.end()) return fail(std::string("missing field \"") + name + "\""), nullptr;
  if (!it->is_array()) return fail(std::string("field \"") + name + "\" must be an array"), nullptr;
  return &*it;
}

void Fields::fail(std::string why) {
  if (!error) error = Problem{400, "invalid_request", std::move(why), {}};
}

std::optional<Problem> parse_body(const HttpRequest& req, json* out) {
  auto ct = req[http::field::content_type];
  std::string_view type(ct.data(), ct.size());
  if (auto semi = type.find(';'); semi != std::string_view::npos) type = type.substr(0, semi);
  while (!type.empty() && type.back() == ' ') type.remove_suffix(1);
  std::string lower(type);
  for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower != "application/json")
    return Problem{415, "unsupported_media_type", "Content-Type must be application/json", {}};
  // nlohmann's lexer ends the input at a NUL: whatever follows one would be
  // ignored. A JSON text has no raw NUL anywhere, so refuse it outright.
  if (req.body().find('\0') != std::string::npos)
    return Problem{400,
                   "invalid_request",
                   "the body contains a NUL byte; it must be one JSON value and nothing else",
                   {}};
  StrictSax sax(*out);
  if (!json::sax_parse(req.body(), &sax, json::input_format_t::json, true) || !sax.error.empty())
    return Problem{400, "invalid_request", sax.error.empty() ? "malformed JSON" : sax.error, {}};
  if (!out->is_object())
    return Problem{400, "invalid_request", "the body must be a JSON object", {}};
  return std::nullopt;
}

}  // namespace giftcard
