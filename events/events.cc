#include "events/events.h"

#include <array>

namespace giftcard {
namespace {

constexpr std::array<std::string_view, 8> kNames = {
    "Unknown",     "CardCreated",  "CodesAdded",     "CodeAssigned",
    "CodeRevoked", "CodesExpired", "WalletCredited", "WalletDebited",
};

}  // namespace

EventType type_of(const Event& e) { return static_cast<EventType>(e.index() + 1); }
// CardEvent and WalletEvent list their alternatives in EventType order.
static_assert(std::is_same_v<std::variant_alternative_t<0, CardEvent>, CardCreated> &&
              std::is_same_v<std::variant_alternative_t<4, CardEvent>, CodesExpired> &&
              std::variant_size_v<CardEvent> == 5);
static_assert(std::is_same_v<std::variant_alternative_t<0, WalletEvent>, WalletCredited> &&
              std::variant_size_v<WalletEvent> == 2);
EventType type_of_card_event(const CardEvent& e) { return static_cast<EventType>(e.index() + 1); }
EventType type_of_wallet_event(const WalletEvent& e) {
  return static_cast<EventType>(e.index() + static_cast<size_t>(EventType::WalletCredited));
}

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

namespace {

// Moves the alternative `e` holds into a variant that also has it; nullopt
// when `To` lacks it.
template <class To, class From>
std::optional<To> convert(From e) {
  return std::visit(
      [](auto&& x) -> std::optional<To> {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_constructible_v<To, T>) return To{std::forward<decltype(x)>(x)};
        else return std::nullopt;
      },
      std::move(e));
}

}  // namespace

Event to_event(CardEvent e) { return *convert<Event>(std::move(e)); }
Event to_event(WalletEvent e) { return *convert<Event>(std::move(e)); }
std::optional<CardEvent> to_card_event(Event e) { return convert<CardEvent>(std::move(e)); }
std::optional<WalletEvent> to_wallet_event(Event e) { return convert<WalletEvent>(std::move(e)); }

std::string card_stream(std::string_view card_id) { return "card-" + std::string(card_id); }
std::string wallet_stream(std::string_view user_id) { return "wallet-" + std::string(user_id); }

}  // namespace giftcard
