#include "actors/messages.h"

#include "actors/errors.h"

namespace giftcard {

void register_message_types(caf::actor_system_config& cfg) {
  cfg.add_message_type<CodeSpec>("giftcard::CodeSpec");
  cfg.add_message_type<CardSpec>("giftcard::CardSpec");
  cfg.add_message_type<CardInfo>("giftcard::CardInfo");
  cfg.add_message_type<AddCodesReply>("giftcard::AddCodesReply");
  cfg.add_message_type<CreditReply>("giftcard::CreditReply");
  cfg.add_message_type<Purchase>("giftcard::Purchase");
  cfg.add_message_type<WalletView>("giftcard::WalletView");
  cfg.add_message_type<ShopStatus>("giftcard::ShopStatus");
  cfg.add_message_type<RebuildInfo>("giftcard::RebuildInfo");
  cfg.add_message_type<CardPage>("giftcard::CardPage");
  cfg.add_message_type<PurchasePage>("giftcard::PurchasePage");
  cfg.add_message_type<shop_actor>("giftcard::shop_actor");
  cfg.add_message_type<api_session_actor>("giftcard::api_session_actor");
  cfg.add_message_type<gate_actor>("giftcard::gate_actor");
  cfg.add_error_category(kErrorCategory, render_error);
}

}  // namespace giftcard
