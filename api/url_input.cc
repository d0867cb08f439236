#include "api/url_input.h"

#include <algorithm>

#include "actors/messages.h"

namespace giftcard {

const std::string* Query::find(const std::string& k) const {
  for (const auto& [key, v] : items)
    if (key == k) return &v;
  return nullptr;
}

Query parse_query(std::string_view q) {
  Query out;
  while (!q.empty()) {
    auto amp = q.find('&');
    std::string_view item = q.substr(0, amp);
    auto eq = item.find('=');
    out.items.emplace_back(std::string(item.substr(0, eq)),
                           eq == std::string_view::npos ? "" : std::string(item.substr(eq + 1)));
    if (amp == std::string_view::npos) break;
    q.remove_prefix(amp + 1);
  }
  return out;
}

std::optional<Problem> int_param(const Query& q, const char* name, int64_t dflt, int64_t* out) {
  *out = dflt;
  const std::string* v = q.find(name);
  if (!v) return std::nullopt;
  if (v->empty() || v->size() > 18 ||
      !std::all_of(v->begin(), v->end(), [](char c) { return c >= '0' && c <= '9'; }))
    return Problem{400,
                   "invalid_request",
                   std::string("query parameter ") + name + " must be a non-negative integer",
                   {}};
  *out = std::stoll(*v);
  return std::nullopt;
}

std::optional<Problem> page_limit(const Query& q, int64_t* out) {
  if (auto p = int_param(q, "limit", kDefaultPageLimit, out)) return p;
  if (*out < 1 || *out > kMaxPageLimit)
    return Problem{400, "invalid_request", "limit must be 1.." + std::to_string(kMaxPageLimit), {}};
  return std::nullopt;
}

namespace {

// %XX-decodes one path segment; false for a malformed escape.
bool percent_decode(std::string_view in, std::string* out) {
  out->clear();
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out->push_back(in[i]);
      continue;
    }
    if (i + 2 >= in.size()) return false;
    int hi = hex(in[i + 1]), lo = hex(in[i + 2]);
    if (hi < 0 || lo < 0) return false;
    out->push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return true;
}

}  // namespace

bool split_path(std::string_view path, std::vector<std::string>* out) {
  out->clear();
  if (path.empty() || path.front() != '/') return false;
  path.remove_prefix(1);
  for (;;) {
    auto slash = path.find('/');
    out->emplace_back();
    if (!percent_decode(path.substr(0, slash), &out->back())) return false;
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return true;
}

}  // namespace giftcard
