// The framing rules of RFC 9112 that HttpServer enforces on every request
// header (api/http_server.h): anything two parsers could read differently
// is refused before a byte of the body is read.
#include <algorithm>
#include <boost/beast/core.hpp>
#include <string_view>

#include "api/http_server.h"

namespace giftcard {

namespace beast = boost::beast;

namespace {

bool is_ows(char c) { return c == ' ' || c == '\t'; }

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
  return s;
}

bool iequals_ascii(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

std::string_view view(beast::string_view s) { return {s.data(), s.size()}; }

// RFC 9110 §5.6.2.
bool is_tchar(char c) {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

enum class Coding { chunked, unsupported, malformed };

// One Transfer-Encoding field value: exactly `chunked` (any case, optional
// surrounding whitespace) is the only coding this server decodes. A list of
// well-formed codings is merely unsupported (501); anything else — an empty
// element, a coding name that is not a token — is malformed (400).
Coding classify_transfer_encoding(std::string_view value) {
  if (iequals_ascii(trim_ows(value), "chunked")) return Coding::chunked;
  size_t pos = 0;
  for (;;) {
    size_t comma = value.find(',', pos);
    std::string_view elem = value.substr(
        pos, comma == std::string_view::npos ? std::string_view::npos : comma - pos);
    std::string_view name = trim_ows(elem.substr(0, elem.find(';')));
    if (name.empty() || !std::all_of(name.begin(), name.end(), is_tchar)) return Coding::malformed;
    if (comma == std::string_view::npos) return Coding::unsupported;
    pos = comma + 1;
  }
}

}  // namespace

bool scan_obs_fold(std::string_view raw, bool* line_start) {
  bool folded = false;
  for (char c : raw) {
    if (*line_start && is_ows(c)) folded = true;
    *line_start = c == '\n';
  }
  return folded;
}

std::optional<FramingRefusal> framing_refusal(const http::request_header<>& req, bool folded,
                                              bool parser_chunked) {
  const bool http11 = req.version() >= 11;
  auto refuse = [](int status, const char* code, const char* detail) {
    return std::optional<FramingRefusal>(FramingRefusal{status, code, detail});
  };
  if (folded) return refuse(400, "invalid_request", "obsolete line folding in the request header");
  if (size_t hosts = req.count(http::field::host); hosts > 1 || (http11 && hosts == 0))
    return refuse(
        400, "invalid_request",
        hosts > 1 ? "more than one Host header" : "an HTTP/1.1 request needs a Host header");
  const size_t lengths = req.count(http::field::content_length);
  if (lengths > 1 ||
      (lengths == 1 && view(req[http::field::content_length]).find(',') != std::string_view::npos))
    return refuse(400, "invalid_request", "more than one Content-Length");
  if (size_t codings = req.count(http::field::transfer_encoding); codings > 0) {
    if (!http11) return refuse(400, "invalid_request", "Transfer-Encoding in an HTTP/1.0 request");
    if (lengths > 0)
      return refuse(400, "invalid_request",
                    "Content-Length and Transfer-Encoding must not both be sent");
    if (codings > 1)
      return refuse(501, "not_implemented", "the only supported Transfer-Encoding is chunked");
    switch (classify_transfer_encoding(view(req[http::field::transfer_encoding]))) {
      case Coding::chunked: break;
      case Coding::unsupported:
        return refuse(501, "not_implemented", "the only supported Transfer-Encoding is chunked");
      case Coding::malformed: return refuse(400, "invalid_request", "malformed Transfer-Encoding");
    }
    if (!parser_chunked)  // cannot happen: Beast agrees on `chunked`
      return refuse(501, "not_implemented", "the only supported Transfer-Encoding is chunked");
  }
  if (size_t expects = req.count(http::field::expect); expects > 0)
    if (expects > 1 || !iequals_ascii(trim_ows(view(req[http::field::expect])), "100-continue"))
      return refuse(417, "expectation_failed", "the only supported expectation is 100-continue");
  return std::nullopt;
}

}  // namespace giftcard
