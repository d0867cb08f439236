// The HTTP+JSON API of SPEC §4 on top of HttpServer: routing, bearer-token
// authentication, strict JSON input, RFC 9457 problem details, Server-Sent
// Events of the log, Prometheus metrics and health.
//
// Handlers never block an I/O thread on the shop: each command or query is
// handed to a small "bridge" actor that sends the request and completes the
// HTTP response from the reply (MEASURED.md: a blocking scoped_actor round
// trip costs ~93 µs and would cap throughput).
#pragma once

#include <caf/all.hpp>
#include <memory>
#include <string>

#include "actors/internal.h"
#include "api/http_server.h"

namespace giftcard {

struct HttpApiOptions {
  // Bearer tokens (SPEC §4). Empty: that class of routes is open.
  std::string admin_token;  // cards, codes, events, viewer, metrics, rebuild
  std::string api_token;    // purchases, credits, wallet and purchase reads
  // How long a command may take in the shop before the client gets 503.
  std::chrono::milliseconds command_timeout{30000};
  // Most events one GET /api/events page returns; backfill of a new stream.
  size_t max_events_page = 1000;
  size_t max_stream_backfill = 100000;
};

class HttpApi {
 public:
  // `shop` must stay alive while requests are served; `ctx` outlives this.
  HttpApi(caf::actor_system& sys, shop_actor shop, ShopContext* ctx, HttpApiOptions options);
  ~HttpApi();
  HttpApi(const HttpApi&) = delete;
  HttpApi& operator=(const HttpApi&) = delete;

  void handle(HttpRequest&& req, std::shared_ptr<Responder> responder);
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
