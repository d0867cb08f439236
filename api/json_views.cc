#include "api/json_views.h"

namespace giftcard {

nlohmann::json to_json(const Purchase& p) {
  return {{"purchase_id", p.purchase_id},
          {"card_id", p.card_id},
          {"user_id", p.user_id},
          {"code", p.code},
          {"price", p.price},
          {"purchased_at", format_rfc3339(p.purchased_at)},
          {"position", p.position}};
}

nlohmann::json to_json(const CardInfo& c) {
  return {{"id", c.id},           {"name", c.name},           {"price", c.price},
          {"value", c.value},     {"available", c.available}, {"assigned", c.assigned},
          {"expired", c.expired}, {"revoked", c.revoked}};
}

nlohmann::json to_json(const CreditReply& c) {
  return {{"user_id", c.user_id}, {"balance", c.balance}, {"position", c.position}};
}

nlohmann::json to_json(const WalletView& w) {
  return {{"user_id", w.user_id}, {"balance", w.balance}};
}

nlohmann::json to_json(const AddCodesReply& a) {
  return {{"added", a.added}, {"position", a.position}};
}

namespace {

struct EventData {
  nlohmann::json operator()(const CardCreated& x) const {
    return {{"card_id", x.card_id}, {"name", x.name}, {"price", x.price}, {"value", x.value}};
  }
  nlohmann::json operator()(const CodesAdded& x) const {
    nlohmann::json codes = nlohmann::json::array();
    for (const auto& c : x.codes) {
      nlohmann::json j = {{"code", c.code}};
      if (c.expires_at) j["expires_at"] = format_rfc3339(*c.expires_at);  // absent: never
      codes.push_back(std::move(j));
    }
    return {{"card_id", x.card_id}, {"codes", std::move(codes)}};
  }
  nlohmann::json operator()(const CodeAssigned& x) const {
    return {{"card_id", x.card_id}, {"code", x.code},   {"purchase_id", x.purchase_id},
            {"user_id", x.user_id}, {"price", x.price}, {"idempotency_key", x.idempotency_key}};
  }
  nlohmann::json operator()(const CodeRevoked& x) const {
    return {{"card_id", x.card_id}, {"code", x.code}};
  }
  nlohmann::json operator()(const CodesExpired& x) const {
    return {{"card_id", x.card_id}, {"codes", x.codes}};
  }
  nlohmann::json operator()(const WalletCredited& x) const {
    return {{"user_id", x.user_id},
            {"amount", x.amount},
            {"balance_after", x.balance_after},
            {"idempotency_key", x.idempotency_key}};
  }
  nlohmann::json operator()(const WalletDebited& x) const {
    return {{"user_id", x.user_id},
            {"amount", x.amount},
            {"balance_after", x.balance_after},
            {"purchase_id", x.purchase_id},
            {"card_id", x.card_id}};
  }
};

}  // namespace

nlohmann::json event_json(const StoredEvent& e) {
  nlohmann::json j = {{"position", e.position},
                      {"stream", e.stream},
                      {"version", e.version},
                      {"type", std::string(type_name(e.type))},
                      {"recorded_at", format_rfc3339(e.recorded_at)}};
  Event ev;
  if (Status s = e.decode(&ev); s.ok()) j["data"] = std::visit(EventData{}, ev);
  else j["error"] = s.message();
  j["prev_hash"] = hash_hex(e.prev_hash);
  j["hash"] = hash_hex(e.hash);
  return j;
}

nlohmann::json models_json(const ReadModels& m) {
  nlohmann::json wallets = nlohmann::json::array(), cards = nlohmann::json::array(),
                 purchases = nlohmann::json::array();
  for (const auto& [user, balance] : m.balances)
    wallets.push_back({{"user_id", user}, {"balance", balance}});
  for (const auto& [id, c] : m.cards)
    cards.push_back({{"id", c.id},
                     {"name", c.name},
                     {"price", c.price},
                     {"value", c.value},
                     {"available", c.available},
                     {"assigned", c.assigned},
                     {"expired", c.expired},
                     {"revoked", c.revoked},
                     {"sold", c.sold},
                     {"revenue", c.revenue}});
  for (const auto& [id, p] : m.purchases)
    purchases.push_back({{"purchase_id", p.purchase_id},
                         {"card_id", p.card_id},
                         {"user_id", p.user_id},
                         {"code", p.code},
                         {"price", p.price},
                         {"purchased_at", format_rfc3339(p.purchased_at)},
                         {"position", p.position}});
  return {{"position", m.position},
          {"as_of", m.position ? format_rfc3339(m.recorded_at) : std::string()},
          {"wallets", std::move(wallets)},
          {"cards", std::move(cards)},
          {"purchases", std::move(purchases)}};
}

nlohmann::json error_json(const caf::error& e) {
  Errc code = errc_of(e);
  nlohmann::json j = {{"code", std::string(to_string(code))},
                      {"status", http_status(code)},
                      {"detail", detail_of(e)}};
  if (auto codes = codes_of(e); !codes.empty()) j["codes"] = codes;
  return j;
}

}  // namespace giftcard
