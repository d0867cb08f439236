// What a monitor reads: GET /healthz (open, never rate limited) and
// GET /metrics (admin; Prometheus text, docs/CONTRACT.md, Metrics).
#include "api/metrics.h"

#include "api/http_api_impl.h"

namespace giftcard {

using json = nlohmann::json;

// GET /healthz: 200 {"status":"ok",...}, or 503 "failing" with the reason
void HttpApi::Impl::get_healthz(const Call& c) {
  Status h = ctx->store->Health();
  std::string why = opts.unhealthy ? opts.unhealthy() : std::string();
  if (why.empty() && !h.ok()) why = "storage unavailable";
  json body = {{"status", why.empty() ? "ok" : "failing"},
               {"position", ctx->store->LastPosition()},
               {"projection_position", ctx->projections->position()}};
  if (!why.empty()) body["reason"] = why;
  send_json(c.r, why.empty() ? 200 : 503, body);
}

// GET /metrics
void HttpApi::Impl::get_metrics(const Call& c) {
  HttpResponse res{http::status::ok, 11};
  res.set(http::field::content_type, "text/plain; version=0.0.4");
  res.body() = metrics_text();
  count(200);
  c.r->send(std::move(res));
}

std::string HttpApi::Impl::metrics_text() {
  MetricsText m;
  const auto& sm = ctx->metrics;
  m.family("giftcard_purchases_total", "counter", "Purchases answered by the shop, by outcome.");
  m.sample("giftcard_purchases_total", "{outcome=\"ok\"}", sm.purchases_ok.load());
  m.sample("giftcard_purchases_total", "{outcome=\"replayed\"}", sm.purchases_replayed.load());
  m.sample("giftcard_purchases_total", "{outcome=\"rejected\"}", sm.purchases_rejected.load());
  StoreStats st = ctx->store->Stats();
  m.metric("giftcard_append_batches_total", "counter", "Synced group commits.", st.batches);
  m.metric("giftcard_append_requests_total", "counter", "Append requests committed.", st.requests);
  m.metric("giftcard_append_events_total", "counter", "Events committed.", st.events);
  m.metric("giftcard_append_rejected_total", "counter", "Append requests rejected (conflicts).",
           st.rejected);
  m.metric("giftcard_append_batch_requests_max", "gauge", "Largest group commit, in requests.",
           st.max_batch_requests);
  m.metric("giftcard_append_sync_seconds_total", "counter", "Time spent in synced writes.",
           static_cast<double>(st.sync_micros) / 1e6);
  m.metric("giftcard_log_position", "gauge", "Last committed log position.",
           ctx->store->LastPosition());
  m.metric("giftcard_projection_position", "gauge", "Last position folded into the read models.",
           ctx->projections->position());
  m.metric("giftcard_projection_lag_seconds", "gauge",
           "Commit-to-visible delay of the last projection catch-up.",
           static_cast<double>(sm.projection_lag_micros.load()) / 1e6);
  m.metric("giftcard_projection_batches_total", "counter", "Projection catch-ups.",
           sm.projection_batches.load());
  m.metric("giftcard_live_card_actors", "gauge", "Card actors in memory.", sm.live_cards.load());
  m.metric("giftcard_live_wallet_actors", "gauge", "Wallet actors in memory.",
           sm.live_wallets.load());
  m.metric("giftcard_passivations_total", "counter", "Actors passivated.", sm.passivations.load());
  m.metric("giftcard_event_stream_viewers", "gauge", "Open /api/events/stream connections.",
           hub.viewers());
  m.metric("giftcard_event_stream_viewers_cut_total", "counter",
           "Event-stream viewers cut for not reading (pending bytes or a stalled write).",
           hub.cut_viewers());
  m.metric("giftcard_event_stream_viewers_refused_total", "counter",
           "Event-stream viewers refused at the cap (503 busy).", hub.refused_viewers());
  m.metric("giftcard_http_rate_limited_total", "counter",
           "Requests refused with 429 (over the caller's rate).",
           limiter.limited() + refusals.limited());
  if (opts.more_metrics) m.raw(opts.more_metrics());
  m.family("giftcard_http_responses_total", "counter", "HTTP responses by status class.");
  for (size_t i = 1; i < responses.size(); ++i)
    m.sample("giftcard_http_responses_total", "{class=\"" + std::to_string(i) + "xx\"}",
             responses[i].load());
  return m.str();
}

}  // namespace giftcard
