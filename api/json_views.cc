#include "api/json_views.h"

namespace giftcard {

nlohmann::json to_json(const Purchase& p) {
  return {{"purchase_id", p.purchase_id}, {"card_id", p.card_id}, {"user_id", p.user_id},
          {"code", p.code},               {"price", p.price},
          {"purchased_at", format_rfc3339(p.purchased_at)}, {"position", p.position}};
}

nlohmann::json to_json(const CardInfo& c) {
  return {{"id", c.id},           {"name", c.name},         {"price", c.price},
          {"value", c.value},     {"available", c.available}, {"assigned", c.assigned},
          {"expired", c.expired}, {"revoked", c.revoked}};
}

nlohmann::json to_json(const CreditReply& c) {
  return {{"user_id", c.user_id}, {"balance", c.balance}, {"position", c.position}};
}

nlohmann::json to_json(const WalletView& w) { return {{"user_id", w.user_id}, {"balance", w.balance}}; }

nlohmann::json to_json(const AddCodesReply& a) { return {{"added", a.added}, {"position", a.position}}; }

nlohmann::json error_json(const caf::error& e) {
  Errc code = errc_of(e);
  nlohmann::json j = {{"code", std::string(to_string(code))},
                      {"status", http_status(code)},
                      {"detail", detail_of(e)}};
  if (auto codes = codes_of(e); !codes.empty()) j["codes"] = codes;
  return j;
}

}  // namespace giftcard
