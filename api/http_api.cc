#include "api/http_api.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <cmath>
#include <condition_variable>
#include <limits>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>
#include <vector>

#include "actors/errors.h"
#include "actors/query_pool.h"
#include "api/admin_page.h"
#include "api/caf_gate.h"
#include "api/event_hub.h"
#include "api/json_views.h"
#include "events/validate.h"
#include "events/time_util.h"

namespace giftcard {

using json = nlohmann::json;

namespace {

// A closure run inside a bridge actor (in-process only; never on the wire).
struct BridgeJob {
  std::function<void(caf::event_based_actor*)> run;
};

}  // namespace
}  // namespace giftcard

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(giftcard::BridgeJob)

namespace giftcard {
namespace {

// The int is unused: an argument-less function actor trips UBSan inside CAF
// 0.17.6's init_fun_factory.
caf::behavior bridge_behavior(caf::event_based_actor* self, int) {
  return {[self](BridgeJob& job) { job.run(self); }};
}

// ---------------------------------------------------------------- strict JSON

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
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& ex) override {
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

struct Problem {
  int status = 400;
  std::string code = "invalid_request";
  std::string detail;
  json extra;  // merged into the body
};

// Fields of a JSON object, each with a type check that names the field.
class Fields {
 public:
  explicit Fields(const json& j) : j_(j) {}
  std::optional<Problem> error;

  std::string str(const char* name, bool required = true) {
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
  int64_t integer(const char* name) {
    auto it = j_.find(name);
    if (it == j_.end()) return fail(std::string("missing field \"") + name + "\""), 0;
    if (!it->is_number_integer())
      return fail(std::string("field \"") + name + "\" must be an integer (minor units)"), 0;
    if (it->is_number_unsigned() &&
        it->get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      return fail(std::string("field \"") + name + "\" is too large"), 0;
    return it->get<int64_t>();
  }
  const json* array(const char* name) {
    auto it = j_.find(name);
    if (it == j_.end()) return fail(std::string("missing field \"") + name + "\""), nullptr;
    if (!it->is_array()) return fail(std::string("field \"") + name + "\" must be an array"), nullptr;
    return &*it;
  }
  void fail(std::string why) {
    if (!error) error = Problem{400, "invalid_request", std::move(why), {}};
  }

 private:
  const json& j_;
};

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
    return Problem{400, "invalid_request", "the body contains a NUL byte; it must be one JSON value and nothing else", {}};
  StrictSax sax(*out);
  if (!json::sax_parse(req.body(), &sax, json::input_format_t::json, true) || !sax.error.empty())
    return Problem{400, "invalid_request", sax.error.empty() ? "malformed JSON" : sax.error, {}};
  if (!out->is_object()) return Problem{400, "invalid_request", "the body must be a JSON object", {}};
  return std::nullopt;
}

// ---------------------------------------------------------------- query strings

struct Query {
  std::vector<std::pair<std::string, std::string>> items;
  const std::string* find(const std::string& k) const {
    for (const auto& [key, v] : items)
      if (key == k) return &v;
    return nullptr;
  }
};

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

// A non-negative decimal integer parameter (default if absent).
std::optional<Problem> int_param(const Query& q, const char* name, int64_t dflt, int64_t* out) {
  *out = dflt;
  const std::string* v = q.find(name);
  if (!v) return std::nullopt;
  if (v->empty() || v->size() > 18 ||
      !std::all_of(v->begin(), v->end(), [](char c) { return c >= '0' && c <= '9'; }))
    return Problem{400, "invalid_request",
                   std::string("query parameter ") + name + " must be a non-negative integer", {}};
  *out = std::stoll(*v);
  return std::nullopt;
}

// `limit` of a paged list: 1..kMaxPageLimit, default kDefaultPageLimit.
std::optional<Problem> page_limit(const Query& q, int64_t* out) {
  if (auto p = int_param(q, "limit", kDefaultPageLimit, out)) return p;
  if (*out < 1 || *out > kMaxPageLimit)
    return Problem{400, "invalid_request", "limit must be 1.." + std::to_string(kMaxPageLimit), {}};
  return std::nullopt;
}

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

// Splits "/a/b%40c" into decoded segments {"a", "b@c"}. A decoded segment
// keeps whatever it decodes to ('/', NUL, ...): the id checks refuse those.
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

}  // namespace

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

  Impl(caf::actor_system& s, shop_actor sh, ShopContext* c, HttpApiOptions o)
      : sys(s), shop(std::move(sh)), ctx(c), opts(std::move(o)),
        hub(c->store, EventHubLimits{opts.max_stream_viewers, opts.max_stream_backfill}),
        limiter(opts.rate_limit), refusals(opts.refusal_limit) {
    if (!ctx->queries)
      own_pool = std::make_unique<QueryPool>(ctx->config.query_threads, ctx->config.max_queued_queries);
    pool = ctx->queries ? ctx->queries : own_pool.get();
    for (int i = 0; i < 2; ++i) bridges.push_back(sys.spawn(bridge_behavior, 0));
  }

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
  bool route_admin(const std::vector<std::string>& seg, http::verb m, const Query& q,
                   const std::shared_ptr<Responder>& r);

  // ---- responding
  void count(int status) { ++responses[static_cast<size_t>(std::clamp(status / 100, 0, 5))]; }

  void send_json(const std::shared_ptr<Responder>& r, int status, const json& body,
                 bool replayed = false) {
    HttpResponse res{static_cast<http::status>(status), 11};
    res.set(http::field::content_type, "application/json");
    res.set(http::field::cache_control, "no-store");
    res.set("X-Content-Type-Options", "nosniff");
    if (replayed) res.set("Idempotent-Replayed", "true");
    res.body() = body.dump(-1, ' ', false, json::error_handler_t::replace);
    count(status);
    r->send(std::move(res));
  }
  void send_problem(const std::shared_ptr<Responder>& r, const Problem& p,
                    const char* allow = nullptr) {
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
  // Domain errors as they are; a storage failure's cause (paths, RocksDB's
  // words) goes to the server's log, the client reads "storage unavailable".
  void send_error(const std::shared_ptr<Responder>& r, const caf::error& raw) {
    caf::error e = client_error(raw);
    Errc code = errc_of(e);
    Problem p{http_status(code), std::string(to_string(code)), detail_of(e), {}};
    if (auto codes = codes_of(e); !codes.empty()) p.extra = {{"codes", codes}};
    send_problem(r, p);
  }

  void send_storage_problem(const std::shared_ptr<Responder>& r, const Status& s) {
    send_error(r, make_error(errc_for(s), s.message()));
  }

  // ---- asking the shop without blocking: the bridge sends, the reply completes
  template <class T, class OnOk, class... Ts>
  void ask(std::shared_ptr<Responder> r, OnOk on_ok, Ts... xs) {
    auto& bridge = bridges[next_bridge++ % bridges.size()];
    auto timeout = opts.command_timeout;
    caf::anon_send(bridge, BridgeJob{[this, r, on_ok, timeout, xs...](caf::event_based_actor* self) {
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
  void ask_rendered(std::shared_ptr<Responder> r, OnOk on_ok, Ts... xs) {
    ask<T>(
        r,
        [this, on_ok](T& reply) {
          auto job = [on_ok, reply = std::make_shared<T>(std::move(reply))] { on_ok(*reply); };
          if (!pool->try_post(job)) job();
        },
        xs...);
  }

  // ---- auth
  enum class Guard { none, api, admin };
  bool authorized(const http::request_header<>& req, Guard g) const {
    if (g == Guard::none) return true;
    // No token configured at all: open (loopback only, serve enforces it).
    // Once any token is configured, a role without one is closed: it is not
    // silently left open beside a protected one.
    if (opts.admin_token.empty() && opts.api_token.empty()) return true;
    auto h = req[http::field::authorization];
    std::string_view v(h.data(), h.size());
    // The scheme is case-insensitive (RFC 9110 §11.1).
    if (v.size() < 7 || !boost::beast::iequals(boost::beast::string_view(v.data(), 7), "bearer ")) return false;
    std::string given(v.substr(7));
    const std::string& need = g == Guard::admin ? opts.admin_token : opts.api_token;
    bool ok = !need.empty() && constant_time_equal(given, need);
    // The admin token also opens the API routes.
    if (g == Guard::api && !opts.admin_token.empty())
      ok = constant_time_equal(given, opts.admin_token) | ok;
    return ok;
  }

  // The role a route needs, from the method and path alone (for the header
  // check; route() checks again with the same rules).
  static Guard guard_for(http::verb m, const std::vector<std::string>& seg) {
    if (seg.empty()) return Guard::none;
    if (seg[0] == "metrics") return Guard::admin;
    if (seg[0] != "api" || seg.size() < 2) return Guard::none;  // /healthz, /admin, 404s
    const std::string& what = seg[1];
    if (what == "cards") return m == http::verb::get ? Guard::none : Guard::admin;
    if (what == "wallets" || what == "purchases" || what == "users") return Guard::api;
    return Guard::admin;  // events, admin, projections, anything new under /api
  }

  // Who is asking, for the rate limit: a valid token (its digest, never the
  // token itself), else the peer address.
  std::string caller_of(const http::request_header<>& h, const std::string& peer) const {
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

  std::optional<HttpResponse> check_header(const http::request_header<>& h, const std::string& peer) {
    std::string_view target(h.target().data(), h.target().size());
    std::string_view path = target.substr(0, target.find('?'));
    if (path == "/healthz") return std::nullopt;  // probes are never limited
    auto too_many = [&](int64_t retry) {
      HttpResponse res = HttpApi::problem(429, "rate_limited",
                                          "too many requests; retry in " + std::to_string(retry) + " s");
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

  void handle(HttpRequest&& req, std::shared_ptr<Responder> r);
  void route(HttpRequest& req, const std::shared_ptr<Responder>& r);
  std::string metrics_text();
};

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

void HttpApi::handle(HttpRequest&& req, std::shared_ptr<Responder> r) {
  try {
    impl_->route(req, r);
  } catch (const std::exception& e) {
    // Never a crash for bad input; the message carries no request data.
    impl_->send_problem(r, Problem{500, "internal_error", "internal error", {}});
  }
}

void HttpApi::Impl::route(HttpRequest& req, const std::shared_ptr<Responder>& r) {
  std::string_view target(req.target().data(), req.target().size());
  auto qpos = target.find('?');
  std::string_view path = target.substr(0, qpos);
  Query q = parse_query(qpos == std::string_view::npos ? "" : target.substr(qpos + 1));
  std::vector<std::string> seg;
  if (!split_path(path, &seg))
    return send_problem(r, Problem{400, "invalid_request", "malformed percent-escape in the path", {}});
  const http::verb m = req.method();
  auto is = [&](std::initializer_list<const char*> want) {
    if (seg.size() != want.size()) return false;
    size_t i = 0;
    for (const char* w : want) {
      if (*w != '*' && seg[i] != w) return false;
      if (*w == '*' && seg[i].empty()) return false;
      ++i;
    }
    return true;
  };
  auto method_not_allowed = [&](const char* allow) {
    send_problem(r, Problem{405, "method_not_allowed", std::string("allowed: ") + allow, {}}, allow);
  };
  auto guard = [&](Guard g) {
    if (authorized(req, g)) return true;
    send_problem(r, Problem{401, "unauthorized", "a valid bearer token is required", {}});
    return false;
  };
  int64_t after = 0;
  if (m == http::verb::get)
    if (auto p = int_param(q, "after", 0, &after)) return send_problem(r, *p);

  // ---- health and metrics
  if (is({"healthz"})) {
    if (m != http::verb::get) return method_not_allowed("GET");
    Status h = ctx->store->Health();
    std::string why = opts.unhealthy ? opts.unhealthy() : std::string();
    if (why.empty() && !h.ok()) why = "storage unavailable";
    json body = {{"status", why.empty() ? "ok" : "failing"},
                 {"position", ctx->store->LastPosition()},
                 {"projection_position", ctx->projections->position()}};
    if (!why.empty()) body["reason"] = why;
    return send_json(r, why.empty() ? 200 : 503, body);
  }
  if (is({"metrics"})) {
    if (m != http::verb::get) return method_not_allowed("GET");
    if (!guard(Guard::admin)) return;
    HttpResponse res{http::status::ok, 11};
    res.set(http::field::content_type, "text/plain; version=0.0.4");
    res.body() = metrics_text();
    count(200);
    return r->send(std::move(res));
  }

  // ---- cards
  if (is({"api", "cards"})) {
    if (m == http::verb::get) {
      int64_t limit = 0;
      if (auto p = page_limit(q, &limit)) return send_problem(r, *p);
      const std::string* from = q.find("from");
      return ask_rendered<CardPage>(
          r,
          [this, r](const CardPage& page) {
            json body = json::object();
            json& arr = body["cards"] = json::array();
            for (const auto& c : page.cards) arr.push_back(to_json(c));
            body["next"] = page.next.empty() ? json(nullptr) : json(page.next);
            body["position"] = page.position;
            send_json(r, 200, body);
          },
          cards_atom::value, from ? *from : std::string(), limit, after);
    }
    if (m != http::verb::post) return method_not_allowed("GET, POST");
    if (!guard(Guard::admin)) return;
    json body;
    if (auto p = parse_body(req, &body)) return send_problem(r, *p);
    Fields f(body);
    CardSpec spec{f.str("id"), f.str("name"), f.integer("price"), f.integer("value")};
    if (f.error) return send_problem(r, *f.error);
    return ask<CardInfo>(
        r, [this, r](const CardInfo& c) { send_json(r, 201, to_json(c)); }, create_atom::value,
        std::move(spec));
  }
  if (is({"api", "cards", "*"})) {
    if (m != http::verb::get) return method_not_allowed("GET");
    return ask<CardInfo>(
        r, [this, r](const CardInfo& c) { send_json(r, 200, to_json(c)); }, card_atom::value,
        seg[2], after);
  }
  if (is({"api", "cards", "*", "codes"})) {
    if (m != http::verb::post) return method_not_allowed("POST");
    if (!guard(Guard::admin)) return;
    json body;
    if (auto p = parse_body(req, &body)) return send_problem(r, *p);
    Fields f(body);
    const json* arr = f.array("codes");
    if (f.error) return send_problem(r, *f.error);
    if (arr->empty() || arr->size() > 100000)
      return send_problem(r, Problem{400, "invalid_request", "codes must hold 1..100000 entries", {}});
    std::vector<CodeSpec> codes;
    codes.reserve(arr->size());
    for (size_t i = 0; i < arr->size(); ++i) {
      const json& c = (*arr)[i];
      auto bad = [&](const std::string& why) {
        send_problem(r, Problem{400, "invalid_request", "codes[" + std::to_string(i) + "]: " + why, {}});
      };
      if (!c.is_object()) return bad("must be an object");
      Fields cf(c);
      CodeSpec spec{cf.str("code")};  // no expires_at: never expires
      std::string exp = cf.str("expires_at", false);
      if (cf.error) return bad(cf.error->detail);
      if (c.contains("expires_at")) {  // any instant is an expiry, the epoch too
        Micros at = 0;
        if (!parse_rfc3339(exp, &at))
          return bad("expires_at must be an RFC 3339 UTC time, e.g. 2027-01-31T23:59:59Z");
        spec.expires_at = at;
      }
      codes.push_back(std::move(spec));
    }
    return ask<AddCodesReply>(
        r, [this, r](const AddCodesReply& a) { send_json(r, 201, to_json(a)); },
        add_codes_atom::value, seg[2], std::move(codes));
  }
  if (is({"api", "cards", "*", "codes", "*"})) {
    if (m != http::verb::delete_) return method_not_allowed("DELETE");
    if (!guard(Guard::admin)) return;
    return ask<int64_t>(
        r,
        [this, r](int64_t) {
          count(204);
          HttpResponse res{http::status::no_content, 11};
          r->send(std::move(res));
        },
        revoke_atom::value, seg[2], seg[4]);
  }

  // ---- wallets
  if (is({"api", "wallets", "*"})) {
    if (m != http::verb::get) return method_not_allowed("GET");
    if (!guard(Guard::api)) return;
    return ask<WalletView>(
        r, [this, r](const WalletView& w) { send_json(r, 200, to_json(w)); }, wallet_atom::value,
        seg[2], after);
  }
  if (is({"api", "wallets", "*", "credits"})) {
    if (m != http::verb::post) return method_not_allowed("POST");
    if (!guard(Guard::api)) return;
    if (req.count("Idempotency-Key") > 1)
      return send_problem(r, Problem{400, "invalid_request", "one Idempotency-Key header only", {}});
    json body;
    if (auto p = parse_body(req, &body)) return send_problem(r, *p);
    Fields f(body);
    int64_t amount = f.integer("amount");
    if (f.error) return send_problem(r, *f.error);
    std::string key(req["Idempotency-Key"]);
    return ask<CreditReply>(
        r, [this, r](const CreditReply& c) { send_json(r, 201, to_json(c), c.replayed); },
        credit_atom::value, seg[2], amount, std::move(key));
  }

  // ---- purchases
  if (is({"api", "purchases"})) {
    if (m != http::verb::post) return method_not_allowed("POST");
    if (!guard(Guard::api)) return;
    if (req.count("Idempotency-Key") > 1)
      return send_problem(r, Problem{400, "invalid_request", "one Idempotency-Key header only", {}});
    json body;
    if (auto p = parse_body(req, &body)) return send_problem(r, *p);
    Fields f(body);
    std::string card = f.str("card_id"), user = f.str("user_id");
    if (f.error) return send_problem(r, *f.error);
    std::string key(req["Idempotency-Key"]);
    return ask<Purchase>(
        r, [this, r](const Purchase& p) { send_json(r, 201, to_json(p), p.replayed); },
        purchase_atom::value, std::move(card), std::move(user), std::move(key));
  }
  if (is({"api", "purchases", "*"})) {
    if (m != http::verb::get) return method_not_allowed("GET");
    if (!guard(Guard::api)) return;
    return ask<Purchase>(
        r, [this, r](const Purchase& p) { send_json(r, 200, to_json(p)); }, lookup_atom::value,
        seg[2], after);
  }
  if (is({"api", "users", "*", "purchases"})) {
    if (m != http::verb::get) return method_not_allowed("GET");
    if (!guard(Guard::api)) return;
    int64_t limit = 0, from = 0;
    if (auto p = page_limit(q, &limit)) return send_problem(r, *p);
    if (auto p = int_param(q, "from", 0, &from)) return send_problem(r, *p);
    return ask_rendered<PurchasePage>(
        r,
        [this, r](const PurchasePage& page) {
          json body = json::object();
          json& arr = body["purchases"] = json::array();
          for (const auto& p : page.purchases) arr.push_back(to_json(p));
          body["next"] = page.next == 0 ? json(nullptr) : json(page.next);
          body["position"] = page.position;
          send_json(r, 200, body);
        },
        history_atom::value, seg[2], from, limit, after);
  }

  // ---- the log
  if (is({"api", "events"})) {
    if (m != http::verb::get) return method_not_allowed("GET");
    if (!guard(Guard::admin)) return;
    int64_t from = 1, limit = 100;
    if (auto p = int_param(q, "from", 1, &from)) return send_problem(r, *p);
    if (auto p = int_param(q, "limit", 100, &limit)) return send_problem(r, *p);
    if (limit < 1 || limit > static_cast<int64_t>(opts.max_events_page))
      return send_problem(r, Problem{400, "invalid_request",
                                     "limit must be 1.." + std::to_string(opts.max_events_page), {}});
    return on_query_pool(r, [this, r, from, limit] {
      std::vector<StoredEvent> evs;
      if (Status s = ctx->store->ReadAll(std::max<int64_t>(from, 1), static_cast<size_t>(limit), &evs);
          !s.ok())
        return send_storage_problem(r, s);
      json arr = json::array();
      for (const auto& e : evs) arr.push_back(event_json(e));
      int64_t next = evs.empty() ? std::max<int64_t>(from, 1) : evs.back().position + 1;
      send_json(r, 200, {{"events", arr}, {"next", next}});
    });
  }
  if (is({"api", "events", "stream"})) {
    if (m != http::verb::get) return method_not_allowed("GET");
    if (!guard(Guard::admin)) return;
    // Resume after Last-Event-ID (a reconnecting EventSource) or ?from=N
    // (events N.. are sent); default: only what is committed from now on.
    int64_t from = -1;
    if (auto p = int_param(q, "from", -1, &from)) return send_problem(r, *p);
    int64_t after_pos = from >= 0 ? std::max<int64_t>(from - 1, 0) : -1;  // from=0: the start
    if (auto last = req["Last-Event-ID"]; !last.empty()) {
      Query lq;
      lq.items.emplace_back("Last-Event-ID", std::string(last));
      if (int_param(lq, "Last-Event-ID", 0, &after_pos))
        return send_problem(r, Problem{400, "invalid_request",
                                       "header Last-Event-ID must be a non-negative integer", {}});
    }
    if (after_pos >= 0 &&
        ctx->store->LastPosition() - after_pos > static_cast<int64_t>(opts.max_stream_backfill))
      return send_problem(r, Problem{400, "invalid_request",
                                     "the stream would start more than " +
                                         std::to_string(opts.max_stream_backfill) +
                                         " events back; page through GET /api/events first", {}});
    HttpResponse head{http::status::ok, 11};
    head.set(http::field::content_type, "text/event-stream");
    head.set(http::field::cache_control, "no-store");
    head.set(http::field::connection, "keep-alive");
    // The stream opens only once the hub has admitted the viewer: a refused
    // one gets a plain 503, never a 200 that goes quiet.
    Status s = hub.attach(
        [&] {
          count(200);
          return r->stream(std::move(head));
        },
        after_pos);
    if (s.IsBusy())
      return send_problem(r, Problem{503, "busy",
                                     "too many open event streams (" +
                                         std::to_string(opts.max_stream_viewers) + "); retry later", {}});
    if (!s.ok()) return send_problem(r, Problem{400, "invalid_request", s.message(), {}});
    return;
  }

  // ---- the admin viewer: the page is public (it holds no data), its data is not
  // (docs/SECURITY.md): static files, no data, no token; a strict CSP, no
  // framing, no sniffing, no referrer.
  auto admin_file = [&](std::string_view body, const char* type) {
    if (m != http::verb::get) return method_not_allowed("GET");
    HttpResponse res{http::status::ok, 11};
    res.set(http::field::content_type, type);
    res.set(http::field::cache_control, "no-store");
    res.set("Content-Security-Policy",
            "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
            "img-src 'self' data:; font-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
            "form-action 'none'");
    res.set("X-Content-Type-Options", "nosniff");
    res.set("X-Frame-Options", "DENY");
    res.set("Referrer-Policy", "no-referrer");
    res.body() = std::string(body);
    count(200);
    return r->send(std::move(res));
  };
  if (is({"admin"})) return admin_file(admin_page_html(), "text/html; charset=utf-8");
  if (is({"admin", "app.js"})) return admin_file(admin_page_js(), "text/javascript; charset=utf-8");
  if (is({"admin", "app.css"})) return admin_file(admin_page_css(), "text/css; charset=utf-8");
  if (seg.size() >= 2 && seg[0] == "api" && seg[1] == "admin") {
    if (!guard(Guard::admin)) return;
    if (route_admin(seg, m, q, r)) return;
  }

  // ---- operations
  if (is({"api", "projections", "rebuild"})) {
    if (m != http::verb::post) return method_not_allowed("POST");
    if (!guard(Guard::admin)) return;
    return ask<RebuildInfo>(
        r,
        [this, r](const RebuildInfo& i) {
          send_json(r, 200, {{"events", i.events}, {"position", i.position},
                             {"generation", i.generation}, {"millis", i.millis}});
        },
        rebuild_atom::value);
  }

  send_problem(r, Problem{404, "not_found", "no route " + std::string(path), {}});
}

namespace {

// Activation codes are secrets: the viewer sees the last 4 characters only.
std::string mask_code(const std::string& code) {
  return "****" + (code.size() > 4 ? code.substr(code.size() - 4) : std::string());
}

json card_view_json(const CardView& c) {
  return {{"id", c.id},           {"name", c.name},         {"price", c.price},
          {"value", c.value},     {"available", c.available}, {"assigned", c.assigned},
          {"expired", c.expired}, {"revoked", c.revoked},   {"sold", c.sold},
          {"revenue", c.revenue}};
}

}  // namespace

// GET /api/admin/state?at=P&cards_from=ID&limit=N   cards and totals as of P
// GET /api/admin/wallets?q=PREFIX&from=ID&limit=N&at=P
// GET /api/admin/purchases?at=P&limit=N             newest first, codes masked
bool HttpApi::Impl::route_admin(const std::vector<std::string>& seg, http::verb m, const Query& q,
                                const std::shared_ptr<Responder>& r) {
  if (seg.size() != 3) return false;
  const std::string& what = seg[2];
  if (what != "state" && what != "wallets" && what != "purchases") return false;
  if (m != http::verb::get) {
    send_problem(r, Problem{405, "method_not_allowed", "allowed: GET", {}}, "GET");
    return true;
  }
  const int64_t head = ctx->store->LastPosition();
  int64_t at = -1, limit = 0;
  if (auto p = int_param(q, "at", -1, &at)) return send_problem(r, *p), true;
  if (at > head) {
    send_problem(r, Problem{400, "invalid_request",
                            "position " + std::to_string(at) + " is not in the log (last position " +
                                std::to_string(head) + ")", {}});
    return true;
  }
  if (auto p = int_param(q, "limit", 100, &limit)) return send_problem(r, *p), true;
  if (limit < 1 || limit > 1000) {
    send_problem(r, Problem{400, "invalid_request", "limit must be 1..1000", {}});
    return true;
  }
  auto text = [&](const char* name) {
    const std::string* v = q.find(name);
    return v ? *v : std::string();
  };
  if (what == "state") {
    if (!ctx->history) {
      send_problem(r, Problem{503, "unavailable", "time travel is not enabled on this server", {}});
      return true;
    }
    std::string from = text("cards_from");
    on_query_pool(r, [this, r, at, head, limit, from] {
      ProjectionHistory::AsOf a;
      if (Status s = ctx->history->At(at < 0 ? head : at, &a); !s.ok())
        return send_storage_problem(r, s);
      int64_t available = 0, sold = 0, revenue = 0;
      json cards = json::array();
      std::string next;
      for (const auto& c : a.cards) {
        available += c.available;
        sold += c.sold;
        revenue += c.revenue;
        if (c.id < from) continue;
        if (static_cast<int64_t>(cards.size()) == limit) {
          if (next.empty()) next = c.id;
          continue;
        }
        cards.push_back(card_view_json(c));
      }
      json body = {{"position", a.position},
                   {"head", head},
                   {"recorded_at", a.recorded_at ? format_rfc3339(a.recorded_at) : ""},
                   {"replayed", a.replayed},
                   {"totals",
                    {{"cards", a.cards.size()},
                     {"codes_available", available},
                     {"codes_sold", sold},
                     {"revenue", revenue},
                     {"wallet_float", a.wallet_float}}},
                   {"cards", cards},
                   {"next_card", next.empty() ? json(nullptr) : json(next)}};
      send_json(r, 200, body);
    });
    return true;
  }
  if (what == "wallets") {
    std::string prefix = text("q"), from = text("from");
    for (const std::string* s : {&prefix, &from})
      if (!s->empty() && !check_user_id(*s).empty()) {
        send_problem(r, Problem{400, "invalid_request",
                                "q and from may contain only A-Z a-z 0-9 _ . @ -", {}});
        return true;
      }
    on_query_pool(r, [this, r, at, limit, prefix, from] {
      std::vector<std::pair<std::string, int64_t>> ws;
      if (Status s = ctx->projections->Wallets(prefix, from, static_cast<size_t>(limit) + 1, &ws);
          !s.ok())
        return send_storage_problem(r, s);
      json arr = json::array();
      json next = nullptr;
      for (size_t i = 0; i < ws.size(); ++i) {
        if (static_cast<int64_t>(i) == limit) {
          next = ws[i].first;
          break;
        }
        int64_t balance = ws[i].second;
        bool existed = true;
        if (at >= 0 && ctx->history) {
          if (Status s = ctx->history->BalanceAt(ws[i].first, at, &balance, &existed); !s.ok())
            return send_storage_problem(r, s);
        }
        arr.push_back({{"user_id", ws[i].first}, {"balance", balance}, {"existed", existed}});
      }
      send_json(r, 200, {{"wallets", arr}, {"next", next},
                         {"position", at >= 0 ? at : ctx->projections->position()}});
    });
    return true;
  }
  on_query_pool(r, [this, r, at, limit] {
    std::vector<PurchaseView> ps;
    if (Status s = ctx->projections->RecentPurchases(static_cast<size_t>(limit), &ps,
                                                     at >= 0 ? at : INT64_MAX);
        !s.ok())
      return send_storage_problem(r, s);
    json arr = json::array();
    for (const auto& p : ps)
      arr.push_back({{"purchase_id", p.purchase_id}, {"card_id", p.card_id},
                     {"user_id", p.user_id}, {"code", mask_code(p.code)}, {"price", p.price},
                     {"purchased_at", format_rfc3339(p.purchased_at)}, {"position", p.position}});
    send_json(r, 200, {{"purchases", arr}, {"position", at >= 0 ? at : ctx->projections->position()}});
  });
  return true;
}

std::string HttpApi::Impl::metrics_text() {
  std::ostringstream o;
  auto metric = [&](const char* name, const char* type, const char* help, auto value,
                    const char* labels = "") {
    o << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n'
      << name << labels << ' ' << value << '\n';
  };
  const auto& sm = ctx->metrics;
  o << "# HELP giftcard_purchases_total Purchases answered by the shop, by outcome.\n"
       "# TYPE giftcard_purchases_total counter\n"
    << "giftcard_purchases_total{outcome=\"ok\"} " << sm.purchases_ok.load() << '\n'
    << "giftcard_purchases_total{outcome=\"replayed\"} " << sm.purchases_replayed.load() << '\n'
    << "giftcard_purchases_total{outcome=\"rejected\"} " << sm.purchases_rejected.load() << '\n';
  StoreStats st = ctx->store->Stats();
  metric("giftcard_append_batches_total", "counter", "Synced group commits.", st.batches);
  metric("giftcard_append_requests_total", "counter", "Append requests committed.", st.requests);
  metric("giftcard_append_events_total", "counter", "Events committed.", st.events);
  metric("giftcard_append_rejected_total", "counter", "Append requests rejected (conflicts).",
         st.rejected);
  metric("giftcard_append_batch_requests_max", "gauge", "Largest group commit, in requests.",
         st.max_batch_requests);
  metric("giftcard_append_sync_seconds_total", "counter", "Time spent in synced writes.",
         static_cast<double>(st.sync_micros) / 1e6);
  metric("giftcard_log_position", "gauge", "Last committed log position.",
         ctx->store->LastPosition());
  metric("giftcard_projection_position", "gauge", "Last position folded into the read models.",
         ctx->projections->position());
  metric("giftcard_projection_lag_seconds", "gauge",
         "Commit-to-visible delay of the last projection catch-up.",
         static_cast<double>(sm.projection_lag_micros.load()) / 1e6);
  metric("giftcard_projection_batches_total", "counter", "Projection catch-ups.",
         sm.projection_batches.load());
  metric("giftcard_live_card_actors", "gauge", "Card actors in memory.", sm.live_cards.load());
  metric("giftcard_live_wallet_actors", "gauge", "Wallet actors in memory.", sm.live_wallets.load());
  metric("giftcard_passivations_total", "counter", "Actors passivated.", sm.passivations.load());
  metric("giftcard_event_stream_viewers", "gauge", "Open /api/events/stream connections.",
         hub.viewers());
  metric("giftcard_event_stream_viewers_cut_total", "counter",
         "Event-stream viewers cut for not reading (pending bytes or a stalled write).",
         hub.cut_viewers());
  metric("giftcard_event_stream_viewers_refused_total", "counter",
         "Event-stream viewers refused at the cap (503 busy).",
         hub.refused_viewers());
  metric("giftcard_http_rate_limited_total", "counter",
         "Requests refused with 429 (over the caller's rate).",
         limiter.limited() + refusals.limited());
  if (opts.more_metrics) o << opts.more_metrics();
  o << "# HELP giftcard_http_responses_total HTTP responses by status class.\n"
       "# TYPE giftcard_http_responses_total counter\n";
  for (size_t i = 1; i < responses.size(); ++i)
    o << "giftcard_http_responses_total{class=\"" << i << "xx\"} " << responses[i].load() << '\n';
  return o.str();
}

}  // namespace giftcard
