#include "events/events.h"

#include <array>

namespace giftcard {
namespace {

constexpr std::array<std::string_view, 8> kNames = {
    "Unknown",      "CardCreated",  "CodesAdded",     "CodeAssigned",
    "CodeRevoked",  "CodesExpired", "WalletCredited", "WalletDebited",
};

}  // namespace

EventType type_of(const Event& e) { return static_cast<EventType>(e.index() + 1); }

std::string_view type_name(EventType t) {
  auto i = static_cast<size_t>(t);
  return i < kNames.size() ? kNames[i] : kNames[0];
}

bool type_from_name(std::string_view name, EventType* out) {
  for (size_t i = 1; i < kNames.size(); ++i)
    if (kNames[i] == name) {
      *out = static_cast<EventType>(i);
      return true;
    }
  return false;
}

bool is_known_type(uint8_t raw) { return raw >= 1 && raw < kNames.size(); }

std::string card_stream(std::string_view card_id) { return "card-" + std::string(card_id); }
std::string wallet_stream(std::string_view user_id) { return "wallet-" + std::string(user_id); }

}  // namespace giftcard
