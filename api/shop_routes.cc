// The shop's routes (docs/API.md): cards and their codes, wallets and
// credits, purchases. Each asks the shop actor without blocking
// (HttpApi::Impl::ask) and answers from its reply.
#include "api/http_api_impl.h"
#include "api/json_views.h"
#include "events/time_util.h"

namespace giftcard {

using json = nlohmann::json;

namespace {

// A page of a list: {"<name>": [...], "next": ..., "position": P}.
template <class Items>
json page_json(const char* name, const Items& items, json next, int64_t position) {
  json body = json::object();
  json& arr = body[name] = json::array();
  for (const auto& item : items) arr.push_back(to_json(item));
  body["next"] = std::move(next);
  body["position"] = position;
  return body;
}

// One entry of POST /api/cards/{id}/codes: {"code": ..., "expires_at"?: RFC 3339}.
std::optional<std::string> code_spec(const json& c, CodeSpec* out) {
  if (!c.is_object()) return "must be an object";
  Fields cf(c);
  CodeSpec spec{cf.str("code")};  // no expires_at: never expires
  std::string exp = cf.str("expires_at", false);
  if (cf.error) return cf.error->detail;
  if (c.contains("expires_at")) {  // any instant is an expiry, the epoch too
    Micros at = 0;
    if (!parse_rfc3339(exp, &at))
      return "expires_at must be an RFC 3339 UTC time, e.g. 2027-01-31T23:59:59Z";
    spec.expires_at = at;
  }
  *out = std::move(spec);
  return std::nullopt;
}

// {"codes": [...]} with 1..100000 entries.
std::optional<Problem> code_specs(const json& body, std::vector<CodeSpec>* codes) {
  Fields f(body);
  const json* arr = f.array("codes");
  if (f.error) return f.error;
  if (arr->empty() || arr->size() > 100000)
    return Problem{400, "invalid_request", "codes must hold 1..100000 entries", {}};
  codes->reserve(arr->size());
  for (size_t i = 0; i < arr->size(); ++i) {
    CodeSpec spec;
    if (auto why = code_spec((*arr)[i], &spec))
      return Problem{400, "invalid_request", "codes[" + std::to_string(i) + "]: " + *why, {}};
    codes->push_back(std::move(spec));
  }
  return std::nullopt;
}

// A command may carry one Idempotency-Key header at most.
std::optional<Problem> one_idempotency_key(const HttpRequest& req) {
  if (req.count("Idempotency-Key") > 1)
    return Problem{400, "invalid_request", "one Idempotency-Key header only", {}};
  return std::nullopt;
}

// Asks the shop (HttpApi::Impl::ask) and answers its reply as JSON.
template <class T, class... Ts>
void ask_json(HttpApi::Impl& api, const std::shared_ptr<Responder>& r, int status, Ts... xs) {
  api.ask<T>(
      r, [&api, r, status](const T& reply) { api.send_json(r, status, to_json(reply)); },
      std::move(xs)...);
}

}  // namespace

// ---- cards

// GET /api/cards?from=ID&limit=N
void HttpApi::Impl::list_cards(const Call& c) {
  int64_t limit = 0;
  if (auto p = page_limit(c.q, &limit)) return send_problem(c.r, *p);
  const std::string* from = c.q.find("from");
  auto r = c.r;
  ask_rendered<CardPage>(
      r,
      [this, r](const CardPage& page) {
        json next = page.next.empty() ? json(nullptr) : json(page.next);
        send_json(r, 200, page_json("cards", page.cards, std::move(next), page.position));
      },
      cards_atom::value, from ? *from : std::string(), limit, c.after);
}

// POST /api/cards {"id","name","price","value"}
void HttpApi::Impl::create_card(const Call& c) {
  json body;
  if (!read_body(c, &body)) return;
  Fields f(body);
  CardSpec spec{f.str("id"), f.str("name"), f.integer("price"), f.integer("value")};
  if (f.error) return send_problem(c.r, *f.error);
  ask_json<CardInfo>(*this, c.r, 201, create_atom::value, std::move(spec));
}

// GET /api/cards/{id}
void HttpApi::Impl::get_card(const Call& c) {
  ask_json<CardInfo>(*this, c.r, 200, card_atom::value, c.param("id"), c.after);
}

// POST /api/cards/{id}/codes {"codes": [{"code", "expires_at"?}, ...]}
void HttpApi::Impl::add_codes(const Call& c) {
  json body;
  if (!read_body(c, &body)) return;
  std::vector<CodeSpec> codes;
  if (auto p = code_specs(body, &codes)) return send_problem(c.r, *p);
  ask_json<AddCodesReply>(*this, c.r, 201, add_codes_atom::value, c.param("id"), std::move(codes));
}

// DELETE /api/cards/{id}/codes/{code}: 204
void HttpApi::Impl::revoke_code(const Call& c) {
  auto r = c.r;
  ask<int64_t>(
      r,
      [this, r](int64_t) {
        count(204);
        HttpResponse res{http::status::no_content, 11};
        r->send(std::move(res));
      },
      revoke_atom::value, c.param("id"), c.param("code"));
}

// ---- wallets

// GET /api/wallets/{user}
void HttpApi::Impl::get_wallet(const Call& c) {
  ask_json<WalletView>(*this, c.r, 200, wallet_atom::value, c.param("user"), c.after);
}

// POST /api/wallets/{user}/credits {"amount"} with Idempotency-Key
void HttpApi::Impl::credit_wallet(const Call& c) {
  if (auto p = one_idempotency_key(c.req)) return send_problem(c.r, *p);
  json body;
  if (!read_body(c, &body)) return;
  Fields f(body);
  int64_t amount = f.integer("amount");
  if (f.error) return send_problem(c.r, *f.error);
  std::string key(c.req["Idempotency-Key"]);
  auto r = c.r;
  ask<CreditReply>(
      r, [this, r](const CreditReply& cr) { send_json(r, 201, to_json(cr), cr.replayed); },
      credit_atom::value, c.param("user"), amount, std::move(key));
}

// ---- purchases

// POST /api/purchases {"card_id","user_id"} with Idempotency-Key
void HttpApi::Impl::purchase(const Call& c) {
  if (auto p = one_idempotency_key(c.req)) return send_problem(c.r, *p);
  json body;
  if (!read_body(c, &body)) return;
  Fields f(body);
  std::string card = f.str("card_id"), user = f.str("user_id");
  if (f.error) return send_problem(c.r, *f.error);
  std::string key(c.req["Idempotency-Key"]);
  auto r = c.r;
  ask<Purchase>(
      r, [this, r](const Purchase& p) { send_json(r, 201, to_json(p), p.replayed); },
      purchase_atom::value, std::move(card), std::move(user), std::move(key));
}

// GET /api/purchases/{id}
void HttpApi::Impl::get_purchase(const Call& c) {
  ask_json<Purchase>(*this, c.r, 200, lookup_atom::value, c.param("id"), c.after);
}

// GET /api/users/{user}/purchases?from=N&limit=N
void HttpApi::Impl::list_user_purchases(const Call& c) {
  int64_t limit = 0, from = 0;
  if (auto p = page_limit(c.q, &limit)) return send_problem(c.r, *p);
  if (auto p = int_param(c.q, "from", 0, &from)) return send_problem(c.r, *p);
  auto r = c.r;
  ask_rendered<PurchasePage>(
      r,
      [this, r](const PurchasePage& page) {
        json next = page.next == 0 ? json(nullptr) : json(page.next);
        send_json(r, 200, page_json("purchases", page.purchases, std::move(next), page.position));
      },
      history_atom::value, c.param("user"), from, limit, c.after);
}

}  // namespace giftcard
