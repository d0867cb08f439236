// The admin token's routes (docs/API.md): the log (a page, or a live stream
// of Server-Sent Events), the admin viewer (its static files are public,
// its data is not: docs/SECURITY.md) and the projection rebuild.
#include "api/admin_page.h"
#include "api/http_api_impl.h"
#include "api/json_views.h"
#include "events/time_util.h"
#include "events/validate.h"

namespace giftcard {

using json = nlohmann::json;

namespace {

// Activation codes are secrets: the viewer sees the last 4 characters only.
std::string mask_code(const std::string& code) {
  return "****" + (code.size() > 4 ? code.substr(code.size() - 4) : std::string());
}

json card_view_json(const CardView& c) {
  return {{"id", c.id},           {"name", c.name},           {"price", c.price},
          {"value", c.value},     {"available", c.available}, {"assigned", c.assigned},
          {"expired", c.expired}, {"revoked", c.revoked},     {"sold", c.sold},
          {"revenue", c.revenue}};
}

// The part of the query every admin view shares: ?at=P (a past log
// position; -1: now) and ?limit=N (1..1000, default 100).
struct AdminWindow {
  int64_t head = 0;  // the log's last position when asked
  int64_t at = -1;
  int64_t limit = 0;
};

std::optional<Problem> admin_window(const Query& q, int64_t head, AdminWindow* w) {
  w->head = head;
  if (auto p = int_param(q, "at", -1, &w->at)) return p;
  if (w->at > head)
    return Problem{400,
                   "invalid_request",
                   "position " + std::to_string(w->at) + " is not in the log (last position " +
                       std::to_string(head) + ")",
                   {}};
  if (auto p = int_param(q, "limit", 100, &w->limit)) return p;
  if (w->limit < 1 || w->limit > 1000)
    return Problem{400, "invalid_request", "limit must be 1..1000", {}};
  return std::nullopt;
}

std::string text_param(const Query& q, const char* name) {
  const std::string* v = q.find(name);
  return v ? *v : std::string();
}

// GET /api/admin/state's body: the cards from `from` on (at most `limit`)
// and the totals over all cards, as of a.position.
json state_json(const ProjectionHistory::AsOf& a, int64_t head, const std::string& from,
                int64_t limit) {
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
  return {{"position", a.position},
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
}

json purchase_view_json(const PurchaseView& p) {
  return {{"purchase_id", p.purchase_id},
          {"card_id", p.card_id},
          {"user_id", p.user_id},
          {"code", mask_code(p.code)},
          {"price", p.price},
          {"purchased_at", format_rfc3339(p.purchased_at)},
          {"position", p.position}};
}

}  // namespace

// ---- the log

// GET /api/events?from=P&limit=N
void HttpApi::Impl::list_events(const Call& c) {
  const auto r = c.r;
  int64_t from = 1, limit = 100;
  if (auto p = int_param(c.q, "from", 1, &from)) return send_problem(r, *p);
  if (auto p = int_param(c.q, "limit", 100, &limit)) return send_problem(r, *p);
  if (limit < 1 || limit > static_cast<int64_t>(opts.max_events_page))
    return send_problem(r, Problem{400,
                                   "invalid_request",
                                   "limit must be 1.." + std::to_string(opts.max_events_page),
                                   {}});
  on_query_pool(r, [this, r, from, limit] {
    std::vector<StoredEvent> evs;
    if (Status s = ctx->store->ReadAll(std::max<int64_t>(from, 1), static_cast<size_t>(limit),
                                       &evs);
        !s.ok())
      return send_storage_problem(r, s);
    json arr = json::array();
    for (const auto& e : evs) arr.push_back(event_json(e));
    int64_t next = evs.empty() ? std::max<int64_t>(from, 1) : evs.back().position + 1;
    send_json(r, 200, {{"events", arr}, {"next", next}});
  });
}

namespace {

// Where an event stream resumes: after Last-Event-ID (a reconnecting
// EventSource) or before ?from=N (events N.. are sent); -1, the default:
// only what is committed from now on.
std::optional<Problem> stream_start(const Call& c, int64_t* after_pos) {
  int64_t from = -1;
  if (auto p = int_param(c.q, "from", -1, &from)) return p;
  *after_pos = from >= 0 ? std::max<int64_t>(from - 1, 0) : -1;  // from=0: the start
  if (auto last = c.req["Last-Event-ID"]; !last.empty()) {
    Query lq;
    lq.items.emplace_back("Last-Event-ID", std::string(last));
    if (int_param(lq, "Last-Event-ID", 0, after_pos))
      return Problem{
          400, "invalid_request", "header Last-Event-ID must be a non-negative integer", {}};
  }
  return std::nullopt;
}

}  // namespace

// GET /api/events/stream?from=N (or Last-Event-ID): text/event-stream
void HttpApi::Impl::stream_events(const Call& c) {
  const auto& r = c.r;
  int64_t after_pos = -1;
  if (auto p = stream_start(c, &after_pos)) return send_problem(r, *p);
  if (after_pos >= 0 &&
      ctx->store->LastPosition() - after_pos > static_cast<int64_t>(opts.max_stream_backfill))
    return send_problem(
        r, Problem{400,
                   "invalid_request",
                   "the stream would start more than " + std::to_string(opts.max_stream_backfill) +
                       " events back; page through GET /api/events first",
                   {}});
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
    return send_problem(r, Problem{503,
                                   "busy",
                                   "too many open event streams (" +
                                       std::to_string(opts.max_stream_viewers) + "); retry later",
                                   {}});
  if (!s.ok()) return send_problem(r, Problem{400, "invalid_request", s.message(), {}});
}

// ---- the admin viewer's static files: no data, no token; a strict CSP, no
// framing, no sniffing, no referrer.

namespace {

HttpResponse admin_file(std::string_view body, const char* type) {
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
  return res;
}

}  // namespace

void HttpApi::Impl::get_admin_page(const Call& c) {
  count(200);
  c.r->send(admin_file(admin_page_html(), "text/html; charset=utf-8"));
}

void HttpApi::Impl::get_admin_js(const Call& c) {
  count(200);
  c.r->send(admin_file(admin_page_js(), "text/javascript; charset=utf-8"));
}

void HttpApi::Impl::get_admin_css(const Call& c) {
  count(200);
  c.r->send(admin_file(admin_page_css(), "text/css; charset=utf-8"));
}

// ---- the admin viewer's data

// GET /api/admin/state?at=P&cards_from=ID&limit=N   cards and totals as of P
void HttpApi::Impl::admin_state(const Call& c) {
  const auto r = c.r;
  AdminWindow w;
  if (auto p = admin_window(c.q, ctx->store->LastPosition(), &w)) return send_problem(r, *p);
  if (!ctx->history)
    return send_problem(
        r, Problem{503, "unavailable", "time travel is not enabled on this server", {}});
  std::string from = text_param(c.q, "cards_from");
  on_query_pool(r, [this, r, w, from] {
    ProjectionHistory::AsOf a;
    if (Status s = ctx->history->At(w.at < 0 ? w.head : w.at, &a); !s.ok())
      return send_storage_problem(r, s);
    send_json(r, 200, state_json(a, w.head, from, w.limit));
  });
}

// GET /api/admin/wallets?q=PREFIX&from=ID&limit=N&at=P
void HttpApi::Impl::admin_wallets(const Call& c) {
  const auto r = c.r;
  AdminWindow w;
  if (auto p = admin_window(c.q, ctx->store->LastPosition(), &w)) return send_problem(r, *p);
  std::string prefix = text_param(c.q, "q"), from = text_param(c.q, "from");
  for (const std::string* s : {&prefix, &from})
    if (!s->empty() && !check_user_id(*s).empty())
      return send_problem(
          r,
          Problem{400, "invalid_request", "q and from may contain only A-Z a-z 0-9 _ . @ -", {}});
  on_query_pool(r, [this, r, at = w.at, limit = w.limit, prefix, from] {
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
    send_json(r, 200,
              {{"wallets", arr},
               {"next", next},
               {"position", at >= 0 ? at : ctx->projections->position()}});
  });
}

// GET /api/admin/purchases?at=P&limit=N             newest first, codes masked
void HttpApi::Impl::admin_purchases(const Call& c) {
  const auto r = c.r;
  AdminWindow w;
  if (auto p = admin_window(c.q, ctx->store->LastPosition(), &w)) return send_problem(r, *p);
  on_query_pool(r, [this, r, at = w.at, limit = w.limit] {
    std::vector<PurchaseView> ps;
    if (Status s = ctx->projections->RecentPurchases(static_cast<size_t>(limit), &ps,
                                                     at >= 0 ? at : INT64_MAX);
        !s.ok())
      return send_storage_problem(r, s);
    json arr = json::array();
    for (const auto& p : ps) arr.push_back(purchase_view_json(p));
    send_json(r, 200,
              {{"purchases", arr}, {"position", at >= 0 ? at : ctx->projections->position()}});
  });
}

// ---- operations

// POST /api/projections/rebuild
void HttpApi::Impl::rebuild_projections(const Call& c) {
  auto r = c.r;
  ask<RebuildInfo>(
      r,
      [this, r](const RebuildInfo& i) {
        send_json(r, 200,
                  {{"events", i.events},
                   {"position", i.position},
                   {"generation", i.generation},
                   {"millis", i.millis}});
      },
      rebuild_atom::value);
}

}  // namespace giftcard
