#include "api/demo_catalog.h"

#include <random>

#include "actors/errors.h"

namespace giftcard {
namespace {

std::string random_code(std::mt19937_64& rng, const std::string& prefix) {
  static const char* kAlphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
  std::string s = prefix;
  for (int group = 0; group < 3; ++group) {
    s.push_back('-');
    for (int i = 0; i < 4; ++i) s.push_back(kAlphabet[rng() % 32]);
  }
  return s;
}

}  // namespace

std::string seed_demo_catalog(caf::actor_system& sys, const shop_actor& shop) {
  struct DemoCard {
    CardSpec spec;
    const char* prefix;
    int codes;
  };
  const DemoCard cards[] = {
      {{"steam-50", "Steam Wallet 50 EUR", 5000, 5000}, "STM", 500},
      {{"netflix-25", "Netflix 25 EUR", 2500, 2500}, "NFX", 500},
      {{"spotify-10", "Spotify Premium 1 month", 999, 1099}, "SPT", 500},
  };
  const std::pair<const char*, int64_t> wallets[] = {
      {"alice", 100000}, {"bob", 50000}, {"carol", 2000}};
  std::random_device rd;
  std::mt19937_64 rng((static_cast<uint64_t>(rd()) << 32) ^ rd());
  caf::scoped_actor self{sys};
  std::string failure;
  auto on_error = [&](caf::error& e) { failure = sys.render(e); };
  for (const auto& c : cards) {
    self->request(shop, std::chrono::seconds(30), create_atom::value, c.spec)
        .receive([](CardInfo&) {}, on_error);
    if (!failure.empty()) return "creating " + c.spec.id + ": " + failure;
    std::vector<CodeSpec> codes;
    for (int i = 0; i < c.codes; ++i) codes.push_back(CodeSpec{random_code(rng, c.prefix), 0});
    self->request(shop, std::chrono::seconds(30), add_codes_atom::value, c.spec.id, codes)
        .receive([](AddCodesReply&) {}, on_error);
    if (!failure.empty()) return "adding codes to " + c.spec.id + ": " + failure;
  }
  for (const auto& [user, amount] : wallets) {
    self->request(shop, std::chrono::seconds(30), credit_atom::value, std::string(user), amount,
                  std::string("demo-seed"))
        .receive([](CreditReply&) {}, on_error);
    if (!failure.empty()) return std::string("crediting ") + user + ": " + failure;
  }
  return {};
}

}  // namespace giftcard
