// Helpers of the GiftCard aggregate's tests (gift_card_test.cc,
// card_pool_test.cc): given committed events folded with evolve, a printable
// dump of the whole state, and rejection checks.
#pragma once

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cstdint>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "events/gift_card.h"

namespace giftcard::card_test {

inline const std::string kCard = "steam-50";

inline CardState given(const std::vector<CardEvent>& events) {
  CardState s;
  for (const auto& e : events) s = evolve(std::move(s), e);
  return s;
}

inline CardEvent created(const std::string& id = kCard) {
  return CardCreated{id, "Steam 50", 4999, 5000};
}

// Codes with one expiry each; std::nullopt: never expire.
inline std::vector<CodeSpec> specs(std::vector<std::string> codes,
                                   Expiry expires_at = std::nullopt) {
  std::vector<CodeSpec> out;
  for (auto& c : codes) {
    CodeSpec spec{std::move(c)};
    spec.expires_at = expires_at;
    out.push_back(std::move(spec));
  }
  return out;
}

inline CardEvent added(std::vector<std::string> codes, Expiry expires_at = std::nullopt) {
  return CodesAdded{kCard, specs(std::move(codes), expires_at)};
}

inline CardEvent assigned(const std::string& code, const std::string& purchase = "p-1") {
  return CodeAssigned{kCard, code, purchase, "alice", 4999, "key-" + purchase};
}

inline CardEvent revoked(const std::string& code) { return CodeRevoked{kCard, code}; }

inline CardEvent expired(std::vector<std::string> codes) {
  return CodesExpired{kCard, std::move(codes)};
}

// A card with codes C1..Cn in import order, none expiring.
inline CardState card_with(int n) {
  std::vector<std::string> codes;
  for (int i = 1; i <= n; ++i) codes.push_back("CODE-" + std::to_string(i));
  return given({created(), added(codes)});
}

inline const CodeSlot& slot_of(const CardState& s, const std::string& code) {
  auto it = s.index.find(code);
  BOOST_REQUIRE_MESSAGE(it != s.index.end(), "no slot for " << code);
  return s.slots[it->second];
}

// A printable dump of everything in CardState, to compare states.
inline std::string dump(const CardState& s) {
  std::ostringstream o;
  o << s.exists << '|' << s.id << '|' << s.name << '|' << s.price << '|' << s.value << '|'
    << s.available << ',' << s.assigned << ',' << s.revoked << ',' << s.expired << ',' << s.held
    << "|slots:";
  for (const auto& sl : s.slots)
    o << sl.code << '/' << (sl.expires_at ? std::to_string(*sl.expires_at) : "never") << '/'
      << static_cast<int>(sl.status) << '/' << sl.held << ';';
  std::map<std::string, uint32_t> sorted(s.index.begin(), s.index.end());
  o << "|index:";
  for (const auto& [k, v] : sorted) o << k << '=' << v << ';';
  o << "|queue:";
  for (auto q : s.queue) o << q << ';';
  return o.str();
}

inline void check_counters(const CardState& s, int64_t available, int64_t assigned_n,
                           int64_t revoked_n, int64_t expired_n, int64_t held) {
  BOOST_TEST(s.available == available);
  BOOST_TEST(s.assigned == assigned_n);
  BOOST_TEST(s.revoked == revoked_n);
  BOOST_TEST(s.expired == expired_n);
  BOOST_TEST(s.held == held);
  BOOST_TEST(pool_violation(s) == "");
}

inline void check_rejected(const CardDecision& d, Errc want) {
  BOOST_TEST(!d.ok());
  BOOST_TEST(to_string(d.error) == to_string(want));
  BOOST_TEST(d.events.empty());
  BOOST_TEST(!d.detail.empty());
}

}  // namespace giftcard::card_test
