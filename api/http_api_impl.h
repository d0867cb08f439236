// Inside the HTTP API (api/http_api.h): the route table's types, the state
// every handler shares and the helpers that answer. Included only by the
// API's own files: http_api.cc (authentication, the route table, dispatch),
// shop_routes.cc, admin_routes.cc and metrics.cc (the handlers).
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <caf/all.hpp>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "actors/errors.h"
#include "actors/query_pool.h"
#include "api/event_hub.h"
#include "api/http_api.h"
#include "api/json_input.h"
#include "api/url_input.h"

namespace giftcard {

// A closure run inside a bridge actor (in-process only; never on the wire).
struct BridgeJob {
  std::function<void(caf::event_based_actor*)> run;
};

}  // namespace giftcard

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(giftcard::BridgeJob)

namespace giftcard {

// Who may call a route (HttpApiOptions): anyone, a holder of the api token
// (or the admin token), a holder of the admin token.
enum class Guard { none, api, admin };

struct Route;

// One request, as its route's handler sees it.
struct Call {
  HttpRequest& req;
  const std::shared_ptr<Responder>& r;
  const Query& q;
  const std::vector<std::string>& seg;  // the percent-decoded path segments
  const Route& route;
  int64_t after;  // a GET's ?after=P (read-your-writes, docs/API.md); 0 if absent
  // The path parameter `name` of the route's pattern: "{id}" is param("id").
  const std::string& param(std::string_view name) const;
};

using Handler = void (HttpApi::Impl::*)(const Call&);

// One line of the route table (api/http_api.cc).
struct Route {
  http::verb method;
  // "/api/cards/{id}/codes": literal segments, and {name} for one non-empty
  // segment (a path parameter).
  std::string_view pattern;
  Guard role;
  Handler handler;
  bool matches(const std::vector<std::string>& seg) const;
};

struct HttpApi::Impl {
  caf::actor_system& sys;
  shop_actor shop;
  ShopContext* ctx;
  HttpApiOptions opts;
  std::vector<caf::actor> bridges;
  std::atomic<size_t> next_bridge{0};
  EventHub hub;
  std::array<std::atomic<uint64_t>, 6> responses{};  // by status class 1xx..5xx
  RateLimiter limiter;
  RateLimiter refusals;  // 401s per peer address

  // Reads that the route answers itself (a page of the log, the admin
  // views, a time-travel replay of tens of milliseconds) run on the shop's
  // bounded query pool, never on an I/O thread or a CAF scheduler thread.
  std::unique_ptr<QueryPool> own_pool;  // only when the context has none
  QueryPool* pool;

  Impl(caf::actor_system& s, shop_actor sh, ShopContext* c, HttpApiOptions o);

  // ---- authentication and dispatch (http_api.cc)
  bool authorized(const http::request_header<>& req, Guard g) const;
  // The role a route needs, from the method and path alone (for the header
  // check; route() checks again with the same rules).
  static Guard guard_for(http::verb m, const std::vector<std::string>& seg);
  // Who is asking, for the rate limit: a valid token (its digest, never the
  // token itself), else the peer address.
  std::string caller_of(const http::request_header<>& h, const std::string& peer) const;
  std::optional<HttpResponse> check_header(const http::request_header<>& h,
                                           const std::string& peer);
  void route(HttpRequest& req, const std::shared_ptr<Responder>& r);
  // True if the request holds the role's token; else answers 401.
  bool guard(const HttpRequest& req, const std::shared_ptr<Responder>& r, Guard g);

  // ---- health and metrics (metrics.cc)
  void get_healthz(const Call& c);
  void get_metrics(const Call& c);
  std::string metrics_text();

  // ---- cards, codes, wallets, purchases (shop_routes.cc)
  void list_cards(const Call& c);
  void create_card(const Call& c);
  void get_card(const Call& c);
  void add_codes(const Call& c);
  void revoke_code(const Call& c);
  void get_wallet(const Call& c);
  void credit_wallet(const Call& c);
  void purchase(const Call& c);
  void get_purchase(const Call& c);
  void list_user_purchases(const Call& c);

  // ---- the log, the viewer and its data, operations (admin_routes.cc)
  void list_events(const Call& c);
  void stream_events(const Call& c);
  void get_admin_page(const Call& c);
  void get_admin_js(const Call& c);
  void get_admin_css(const Call& c);
  void admin_state(const Call& c);
  void admin_wallets(const Call& c);
  void admin_purchases(const Call& c);
  void rebuild_projections(const Call& c);

  // ---- responding (http_api.cc)
  void count(int status) { ++responses[static_cast<size_t>(std::clamp(status / 100, 0, 5))]; }
  void send_json(const std::shared_ptr<Responder>& r, int status, const nlohmann::json& body,
                 bool replayed = false);
  void send_problem(const std::shared_ptr<Responder>& r, const Problem& p,
                    const char* allow = nullptr);
  // Domain errors as they are; a storage failure's cause (paths, RocksDB's
  // words) goes to the server's log, the client reads "storage unavailable".
  void send_error(const std::shared_ptr<Responder>& r, const caf::error& raw);
  void send_storage_problem(const std::shared_ptr<Responder>& r, const Status& s);
  // The request's body as a strict JSON object (api/json_input.h); false
  // once its problem is answered.
  bool read_body(const Call& c, nlohmann::json* body);

  // Runs `work` on the query pool; 503 busy when the pool is full.
  template <class F>
  void on_query_pool(const std::shared_ptr<Responder>& r, F work) {
    bool posted = pool->try_post([this, r, work]() mutable {
      try {
        work();
      } catch (const std::exception&) {
        send_problem(r, Problem{500, "internal_error", "internal error", {}});
      }
    });
    if (!posted)
      send_problem(r, Problem{503, "busy", "too many queries in progress; retry later", {}});
  }

  // ---- asking the shop without blocking: the bridge sends, the reply completes
  template <class T, class OnOk, class... Ts>
  void ask(const std::shared_ptr<Responder>& r, OnOk on_ok, Ts... xs) {
    auto& bridge = bridges[next_bridge++ % bridges.size()];
    auto timeout = opts.command_timeout;
    caf::anon_send(bridge,
                   BridgeJob{[this, r, on_ok, timeout, xs...](caf::event_based_actor* self) {
                     self->request(shop, timeout, xs...)
                         .then([r, on_ok](T& reply) { on_ok(reply); },
                               [this, r](caf::error& e) { send_error(r, e); });
                   }});
  }

  // As ask(), for a reply that is expensive to render (a page of up to 1,000
  // items): the JSON is built on the query pool, never on a CAF worker, where
  // it would hold up the purchases queued behind it (a 1,000-purchase page
  // is milliseconds of nlohmann::json). A full pool renders it in place.
  template <class T, class OnOk, class... Ts>
  void ask_rendered(const std::shared_ptr<Responder>& r, OnOk on_ok, Ts... xs) {
    ask<T>(
        r,
        [this, on_ok](T& reply) {
          auto job = [on_ok, reply = std::make_shared<T>(std::move(reply))] { on_ok(*reply); };
          if (!pool->try_post(job)) job();
        },
        xs...);
  }
};

}  // namespace giftcard
