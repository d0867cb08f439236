// The HTTP+JSON API (docs/API.md) on top of HttpServer: routing, bearer-token
// authentication, strict JSON input, RFC 9457 problem details, Server-Sent
// Events of the log, Prometheus metrics and health.
//
// Handlers never block an I/O thread on the shop: each command or query is
// handed to a small "bridge" actor that sends the request and completes the
// HTTP response from the reply (docs/BENCHMARKS.md, Measured on this machine:
// a blocking scoped_actor round trip costs ~93 µs and would cap throughput).
#pragma once

#include <caf/all.hpp>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "actors/internal.h"
#include "api/http_server.h"
#include "api/rate_limiter.h"

namespace giftcard {

struct HttpApiOptions {
  // Bearer tokens (docs/CONTRACT.md, Headers). Both empty: every route is
  // open (loopback only). Otherwise a route needs its role's token (the admin
  // token also opens the api routes); a role without a configured token is
  // closed.
  std::string admin_token;  // cards, codes, events, viewer, metrics, rebuild
  std::string api_token;    // purchases, credits, wallet and purchase reads
  // How long a command may take in the shop before the client gets 503.
  std::chrono::milliseconds command_timeout{30000};
  // Most events one GET /api/events page returns; backfill of a new stream.
  size_t max_events_page = 1000;
  size_t max_stream_backfill = 100000;
  size_t max_stream_viewers = 64;  // more open event streams: 503 busy
  // Requests per caller (a bearer token, or the peer address without a valid
  // token); over it: 429 with Retry-After. rate 0: off.
  RateLimit rate_limit{20000, 40000};
  // Requests refused with 401, per peer address (a token hunt); beyond: 429.
  RateLimit refusal_limit{50, 100};
  // Why the server is not healthy ("" when it is): /healthz answers 503.
  std::function<std::string()> unhealthy;
  // More lines for /metrics (the CAF door's counters, ...).
  std::function<std::string()> more_metrics;
};

class HttpApi {
 public:
  // `shop` must stay alive while requests are served; `ctx` outlives this.
  HttpApi(caf::actor_system& sys, shop_actor shop, ShopContext* ctx, HttpApiOptions options);
  ~HttpApi();
  HttpApi(const HttpApi&) = delete;
  HttpApi& operator=(const HttpApi&) = delete;

  void handle(HttpRequest&& req, const std::shared_ptr<Responder>& responder);
  // HttpServer's header check: the rate limit and the route's token, decided
  // from the header alone, before any body byte is read.
  std::optional<HttpResponse> check_header(const http::request_header<>& header,
                                           const std::string& peer);
  // An application/problem+json response.
  static HttpResponse problem(int status, const std::string& code, const std::string& detail);
  // Ends every event stream and stops the streaming thread.
  void stop();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// Constant-time comparison (tokens).
bool constant_time_equal(const std::string& a, const std::string& b);

}  // namespace giftcard
