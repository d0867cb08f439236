// Fuzz target `http`: raw bytes from a client connection -> the server's
// HTTP/1.1 parsing (Boost.Beast request_parser with api/http_framing.cc's and api/http_session.cc's
// limits and checks) -> HttpApi routing, authentication, query and JSON
// validation -> the shop, with no socket (fuzz/api_world.h).
//
// Input: the bytes a client sends on one connection. Like the server, the
// harness reads requests one after another from the same buffer
// (pipelining) while they ask for keep-alive, at most kMaxRequests of them;
// the end of the input is the client closing its side.
//
// Oracles (check_answer in api_world.cc): every request gets exactly the
// answer the server would write — a documented status, never 500, a
// problem+json body for 4xx/5xx, clean headers — within the time limit.
#include <boost/asio/buffer.hpp>
#include <cstdint>
#include <string>
#include <string_view>

#include "api/http_server.h"
#include "fuzz/api_world.h"
#include "fuzz/fuzz_util.h"

using namespace giftcard;
using namespace giftcard::fuzz;
namespace beast = boost::beast;

namespace {

constexpr int kMaxRequests = 8;

// Feeds `in` to the parser until the header (or the whole message) is done,
// as Beast's read loop does with the connection's buffer. When the input
// runs out, the client has closed: put_eof, as Beast does after a read
// returns eof (end_of_stream if nothing at all had arrived).
void feed(http::request_parser<http::string_body>& p, std::string_view& in, bool header_only,
          beast::error_code& ec) {
  bool starved = false;  // the parser needs more than what is left
  for (;;) {
    if (header_only ? p.is_header_done() : p.is_done()) return;
    if (in.empty() || starved) {
      if (!p.got_some()) {
        ec = http::error::end_of_stream;
        return;
      }
      p.put_eof(ec);
      if (!ec && !(header_only ? p.is_header_done() : p.is_done())) ec = http::error::partial_message;
      return;
    }
    size_t n = p.put(boost::asio::buffer(in.data(), in.size()), ec);
    in.remove_prefix(n);
    if (ec == http::error::need_more) {
      ec = {};
      if (n == 0) starved = true;
    } else if (ec) {
      return;
    }
  }
}

// The server's own error answers (HttpServer's ProblemMaker is HttpApi::problem).
void server_fails(int status, const std::string& code, const std::string& detail) {
  Answer a;
  a.kind = Answer::Kind::sent;
  a.res = HttpApi::problem(status, code, detail);
  check_answer(a, "the server's own " + std::to_string(status));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const HttpLimits limits;  // the server's defaults
  std::string_view in(reinterpret_cast<const char*>(data), size);
  for (int i = 0; i < kMaxRequests; ++i) {
    http::request_parser<http::string_body> p;
    p.header_limit(static_cast<uint32_t>(limits.max_header_bytes));
    p.body_limit(limits.max_body_bytes);
    beast::error_code ec;
    const std::string_view before = in;
    feed(p, in, true, ec);  // Session::read_header / on_header
    bool line_start = false;
    const bool folded = scan_obs_fold(before.substr(0, before.size() - in.size()), &line_start);
    if (ec == http::error::end_of_stream) return 0;  // closed between requests
    if (ec == http::error::header_limit)
      return server_fails(431, "request_header_fields_too_large", "request headers too large"), 0;
    if (ec == http::error::body_limit)
      return server_fails(413, "payload_too_large", "request body too large"), 0;
    if (ec) return server_fails(400, "invalid_request", "malformed HTTP request: " + ec.message()), 0;
    const auto& head = p.get();
    if (auto why = framing_refusal(head, folded, p.chunked()))
      return server_fails(why->status, why->code, why->detail), 0;
    // The API's header check (token, rate limit) runs in call_api, as in the
    // server after the framing checks.
    if (auto n = p.content_length(); n && *n > limits.max_body_bytes)
      return server_fails(413, "payload_too_large", "request body too large"), 0;
    p.eager(true);
    feed(p, in, false, ec);  // Session::on_body
    if (ec == http::error::body_limit)
      return server_fails(413, "payload_too_large", "request body too large"), 0;
    if (ec) return server_fails(400, "invalid_request", "malformed HTTP request: " + ec.message()), 0;

    HttpRequest req = p.release();
    const bool keep_alive = req.keep_alive();
    std::string what = std::string(req.method_string()) + " " + std::string(req.target());
    Answer a = call_api(std::move(req));
    check_answer(a, printable(what, 200));
    if (!keep_alive || a.kind == Answer::Kind::streamed) return 0;
  }
  return 0;
}
