#include "api/http_api.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "api/caf_gate.h"
#include "api/http_api_impl.h"

namespace giftcard {

using json = nlohmann::json;

namespace {

// The int is unused: an argument-less function actor trips UBSan inside CAF
// 0.17.6's init_fun_factory.
caf::behavior bridge_behavior(caf::event_based_actor* self, int) {
  return {[self](BridgeJob& job) { job.run(self); }};
}

using Api = HttpApi::Impl;
using verb = http::verb;

// ---------------------------------------------------------------- the routes
//
// Every route of docs/API.md: method, path pattern, the role it needs, the
// handler. A path that matches a pattern with another method is answered
// 405 with Allow: the methods listed here for it, in this order; a path that
// matches none is 404. Everything under /api/admin needs the admin token,
// also a path that is no route (route() checks it first).
const Route kRoutes[] = {
    // health and metrics (metrics.cc)
    {verb::get, "/healthz", Guard::none, &Api::get_healthz},
    {verb::get, "/metrics", Guard::admin, &Api::get_metrics},
    // cards and codes (shop_routes.cc)
    {verb::get, "/api/cards", Guard::none, &Api::list_cards},
    {verb::post, "/api/cards", Guard::admin, &Api::create_card},
    {verb::get, "/api/cards/{id}", Guard::none, &Api::get_card},
    {verb::post, "/api/cards/{id}/codes", Guard::admin, &Api::add_codes},
    {verb::delete_, "/api/cards/{id}/codes/{code}", Guard::admin, &Api::revoke_code},
    // wallets and purchases (shop_routes.cc)
    {verb::get, "/api/wallets/{user}", Guard::api, &Api::get_wallet},
    {verb::post, "/api/wallets/{user}/credits", Guard::api, &Api::credit_wallet},
    {verb::post, "/api/purchases", Guard::api, &Api::purchase},
    {verb::get, "/api/purchases/{id}", Guard::api, &Api::get_purchase},
    {verb::get, "/api/users/{user}/purchases", Guard::api, &Api::list_user_purchases},
    // the log (admin_routes.cc)
    {verb::get, "/api/events", Guard::admin, &Api::list_events},
    {verb::get, "/api/events/stream", Guard::admin, &Api::stream_events},
    // the admin viewer: public static files, admin-only data (admin_routes.cc)
    {verb::get, "/admin", Guard::none, &Api::get_admin_page},
    {verb::get, "/admin/app.js", Guard::none, &Api::get_admin_js},
    {verb::get, "/admin/app.css", Guard::none, &Api::get_admin_css},
    {verb::get, "/api/admin/state", Guard::admin, &Api::admin_state},
    {verb::get, "/api/admin/wallets", Guard::admin, &Api::admin_wallets},
    {verb::get, "/api/admin/purchases", Guard::admin, &Api::admin_purchases},
    // operations (admin_routes.cc)
    {verb::post, "/api/projections/rebuild", Guard::admin, &Api::rebuild_projections},
};

// The next segment of a pattern ("/api/cards/{id}"), consumed from `rest`.
std::string_view next_segment(std::string_view* rest) {
  rest->remove_prefix(1);  // the '/'
  size_t slash = rest->find('/');
  std::string_view s = rest->substr(0, slash);
  rest->remove_prefix(slash == std::string_view::npos ? rest->size() : slash);
  return s;
}

bool is_parameter(std::string_view s) {
  return s.size() > 2 && s.front() == '{' && s.back() == '}';
}

}  // namespace

bool Route::matches(const std::vector<std::string>& seg) const {
  std::string_view rest = pattern;
  for (const std::string& s : seg) {
    if (rest.empty()) return false;
    std::string_view want = next_segment(&rest);
    if (is_parameter(want) ? s.empty() : s != want) return false;
  }
  return rest.empty();
}

const std::string& Call::param(std::string_view name) const {
  std::string_view rest = route.pattern;
  for (size_t i = 0; !rest.empty(); ++i) {
    std::string_view s = next_segment(&rest);
    if (is_parameter(s) && s.substr(1, s.size() - 2) == name) return seg.at(i);
  }
  throw std::logic_error("no path parameter " + std::string(name));  // a bug in the table
}

bool constant_time_equal(const std::string& a, const std::string& b) {
  // Fixed-length SHA-256 digests compared with CRYPTO_memcmp: the time
  // depends on neither the contents nor the lengths of the secrets.
  unsigned char da[SHA256_DIGEST_LENGTH], db[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(a.data()), a.size(), da);
  SHA256(reinterpret_cast<const unsigned char*>(b.data()), b.size(), db);
  return CRYPTO_memcmp(da, db, sizeof da) == 0;
}

HttpResponse HttpApi::problem(int status, const std::string& code, const std::string& detail) {
  HttpResponse res{static_cast<http::status>(status), 11};
  res.set(http::field::content_type, "application/problem+json");
  res.set(http::field::cache_control, "no-store");
  json body = {{"type", "https://giftcard.example/problems/" + code},
               {"title", std::string(http::obsolete_reason(static_cast<http::status>(status)))},
               {"status", status},
               {"detail", detail},
               {"code", code}};
  res.body() = body.dump(-1, ' ', false, json::error_handler_t::replace);
  return res;
}

// ---------------------------------------------------------------- the API

HttpApi::Impl::Impl(caf::actor_system& s, shop_actor sh, ShopContext* c, HttpApiOptions o)
    : sys(s),
      shop(std::move(sh)),
      ctx(c),
      opts(std::move(o)),
      hub(c->store, EventHubLimits{opts.max_stream_viewers, opts.max_stream_backfill}),
      limiter(opts.rate_limit),
      refusals(opts.refusal_limit) {
  if (!ctx->queries)
    own_pool = std::make_unique<QueryPool>(ctx->config.query_threads,
                                           ctx->config.max_queued_queries);
  pool = ctx->queries ? ctx->queries : own_pool.get();
  for (int i = 0; i < 2; ++i) bridges.push_back(sys.spawn(bridge_behavior, 0));
}

// ---- auth

bool HttpApi::Impl::authorized(const http::request_header<>& req, Guard g) const {
  if (g == Guard::none) return true;
  // No token configured at all: open (loopback only, serve enforces it).
  // Once any token is configured, a role without one is closed: it is not
  // silently left open beside a protected one.
  if (opts.admin_token.empty() && opts.api_token.empty()) return true;
  auto h = req[http::field::authorization];
  std::string_view v(h.data(), h.size());
  // The scheme is case-insensitive (RFC 9110 §11.1).
  if (v.size() < 7 || !boost::beast::iequals(boost::beast::string_view(v.data(), 7), "bearer "))
    return false;
  std::string given(v.substr(7));
  const std::string& need = g == Guard::admin ? opts.admin_token : opts.api_token;
  bool ok = !need.empty() && constant_time_equal(given, need);
  // The admin token also opens the API routes.
  if (g == Guard::api && !opts.admin_token.empty())
    ok = constant_time_equal(given, opts.admin_token) | ok;
  return ok;
}

Guard HttpApi::Impl::guard_for(http::verb m, const std::vector<std::string>& seg) {
  if (seg.empty()) return Guard::none;
  if (seg[0] == "metrics") return Guard::admin;
  if (seg[0] != "api" || seg.size() < 2) return Guard::none;  // /healthz, /admin, 404s
  const std::string& what = seg[1];
  if (what == "cards") return m == http::verb::get ? Guard::none : Guard::admin;
  if (what == "wallets" || what == "purchases" || what == "users") return Guard::api;
  return Guard::admin;  // events, admin, projections, anything new under /api
}

std::string HttpApi::Impl::caller_of(const http::request_header<>& h,
                                     const std::string& peer) const {
  auto a = h[http::field::authorization];
  std::string_view v(a.data(), a.size());
  if (v.size() > 7 && boost::beast::iequals(boost::beast::string_view(v.data(), 7), "bearer ")) {
    std::string given(v.substr(7));
    for (const std::string* t : {&opts.admin_token, &opts.api_token})
      if (!t->empty() && constant_time_equal(given, *t))
        return t == &opts.admin_token ? "token:admin" : "token:api";
  }
  return "peer:" + peer;
}

std::optional<HttpResponse> HttpApi::Impl::check_header(const http::request_header<>& h,
                                                        const std::string& peer) {
  std::string_view target(h.target().data(), h.target().size());
  std::string_view path = target.substr(0, target.find('?'));
  if (path == "/healthz") return std::nullopt;  // probes are never limited
  auto too_many = [&](int64_t retry) {
    HttpResponse res = HttpApi::problem(
        429, "rate_limited", "too many requests; retry in " + std::to_string(retry) + " s");
    res.set(http::field::retry_after, std::to_string(retry));
    count(429);
    return res;
  };
  std::vector<std::string> seg;
  bool ok = !split_path(path, &seg) || authorized(h, guard_for(h.method(), seg));
  int64_t retry = 0;
  if (ok) {
    if (!limiter.take(caller_of(h, peer), &retry)) return too_many(retry);
    return std::nullopt;  // route() answers (a bad path gets its 400 there)
  }
  // Refusals are cheap but not free, and a flood of them is a token hunt:
  // they have a small budget of their own per peer address.
  if (!refusals.take("peer:" + peer, &retry)) return too_many(retry);
  HttpResponse res = HttpApi::problem(401, "unauthorized", "a valid bearer token is required");
  res.set(http::field::www_authenticate, "Bearer");
  count(401);
  return res;
}

bool HttpApi::Impl::guard(const HttpRequest& req, const std::shared_ptr<Responder>& r, Guard g) {
  if (authorized(req, g)) return true;
  send_problem(r, Problem{401, "unauthorized", "a valid bearer token is required", {}});
  return false;
}

HttpApi::HttpApi(caf::actor_system& sys, shop_actor shop, ShopContext* ctx, HttpApiOptions options)
    : impl_(std::make_unique<Impl>(sys, std::move(shop), ctx, std::move(options))) {}

HttpApi::~HttpApi() { stop(); }

void HttpApi::stop() {
  impl_->hub.stop();
  if (impl_->own_pool) impl_->own_pool->stop();
  for (auto& b : impl_->bridges) caf::anon_send_exit(b, caf::exit_reason::user_shutdown);
  impl_->bridges.clear();
}

std::optional<HttpResponse> HttpApi::check_header(const http::request_header<>& header,
                                                  const std::string& peer) {
  return impl_->check_header(header, peer);
}

void HttpApi::handle(HttpRequest&& req, const std::shared_ptr<Responder>& r) {
  try {
    impl_->route(req, r);
  } catch (const std::exception& e) {
    // Never a crash for bad input; the message carries no request data.
    impl_->send_problem(r, Problem{500, "internal_error", "internal error", {}});
  }
}

// Finds the request's line in kRoutes and checks its role before its handler
// runs; 400 for a malformed path or ?after=, 405 and 404 as kRoutes says.
void HttpApi::Impl::route(HttpRequest& req, const std::shared_ptr<Responder>& r) {
  std::string_view target(req.target().data(), req.target().size());
  auto qpos = target.find('?');
  std::string_view path = target.substr(0, qpos);
  Query q = parse_query(qpos == std::string_view::npos ? "" : target.substr(qpos + 1));
  std::vector<std::string> seg;
  if (!split_path(path, &seg))
    return send_problem(
        r, Problem{400, "invalid_request", "malformed percent-escape in the path", {}});
  const http::verb m = req.method();
  int64_t after = 0;
  if (m == http::verb::get)
    if (auto p = int_param(q, "after", 0, &after)) return send_problem(r, *p);
  if (seg.size() >= 2 && seg[0] == "api" && seg[1] == "admin" && !guard(req, r, Guard::admin))
    return;
  std::string allow;
  for (const Route& route : kRoutes) {
    if (!route.matches(seg)) continue;
    if (route.method != m) {
      allow += (allow.empty() ? "" : ", ") + std::string(http::to_string(route.method));
      continue;
    }
    if (!guard(req, r, route.role)) return;
    return (this->*route.handler)(Call{req, r, q, seg, route, after});
  }
  if (!allow.empty())
    return send_problem(r, Problem{405, "method_not_allowed", "allowed: " + allow, {}},
                        allow.c_str());
  send_problem(r, Problem{404, "not_found", "no route " + std::string(path), {}});
}

// ---- responding

void HttpApi::Impl::send_json(const std::shared_ptr<Responder>& r, int status, const json& body,
                              bool replayed) {
  HttpResponse res{static_cast<http::status>(status), 11};
  res.set(http::field::content_type, "application/json");
  res.set(http::field::cache_control, "no-store");
  res.set("X-Content-Type-Options", "nosniff");
  if (replayed) res.set("Idempotent-Replayed", "true");
  res.body() = body.dump(-1, ' ', false, json::error_handler_t::replace);
  count(status);
  r->send(std::move(res));
}

void HttpApi::Impl::send_problem(const std::shared_ptr<Responder>& r, const Problem& p,
                                 const char* allow) {
  HttpResponse res = HttpApi::problem(p.status, p.code, p.detail);
  if (!p.extra.is_null()) {
    json body = json::parse(res.body());
    body.update(p.extra);
    res.body() = body.dump(-1, ' ', false, json::error_handler_t::replace);
  }
  if (p.status == 401) res.set(http::field::www_authenticate, "Bearer");
  if (allow) res.set(http::field::allow, allow);
  count(p.status);
  r->send(std::move(res));
}

void HttpApi::Impl::send_error(const std::shared_ptr<Responder>& r, const caf::error& raw) {
  caf::error e = client_error(raw);
  Errc code = errc_of(e);
  Problem p{http_status(code), std::string(to_string(code)), detail_of(e), {}};
  if (auto codes = codes_of(e); !codes.empty()) p.extra = {{"codes", codes}};
  send_problem(r, p);
}

void HttpApi::Impl::send_storage_problem(const std::shared_ptr<Responder>& r, const Status& s) {
  send_error(r, make_error(errc_for(s), s.message()));
}

bool HttpApi::Impl::read_body(const Call& c, json* body) {
  if (auto p = parse_body(c.req, body)) {
    send_problem(c.r, *p);
    return false;
  }
  return true;
}

}  // namespace giftcard
