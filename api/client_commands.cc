#include "api/client_commands.h"

#include <iostream>

#include "api/json_views.h"

namespace giftcard {
namespace {

// Connects, sends one request, prints the reply or the error.
template <class Reply, class... Ts>
int call(const ClientOptions& o, Ts&&... xs) {
  if (auto why = o.tls.check(); !why.empty()) {
    std::cerr << "giftcard: " << why << "\n";
    return 2;
  }
  NodeConfig cfg(o.tls);
  caf::actor_system sys{cfg};
  auto shop = connect_api(sys, o.node, o.tls.enabled(), o.token,
                          std::chrono::seconds(o.timeout_seconds));
  if (!shop && shop.error().category() == kErrorCategory) {
    std::cout << error_json(shop.error()).dump() << std::endl;
    std::cerr << "giftcard: login refused: " << detail_of(shop.error()) << "\n";
    return errc_of(shop.error()) == Errc::unauthorized ? 1 : 3;
  }
  if (!shop) {
    std::cerr << "giftcard: cannot reach " << o.node.host << ":" << o.node.port << ": "
              << sys.render(shop.error()) << "\n";
    return 3;
  }
  int rc = 0;
  caf::scoped_actor self{sys};
  self->request(*shop, std::chrono::seconds(o.timeout_seconds), std::forward<Ts>(xs)...)
      .receive(
          [&](Reply& r) {
            auto j = to_json(r);
            if (r.replayed) j["replayed"] = true;
            std::cout << j.dump() << std::endl;
          },
          [&](caf::error& e) {
            Errc code = errc_of(e);
            if (e.category() != kErrorCategory) {
              std::cerr << "giftcard: no answer from " << o.node.host << ":" << o.node.port << ": "
                        << sys.render(e) << "\n";
              rc = 3;
              return;
            }
            std::cout << error_json(e).dump() << std::endl;
            std::cerr << "giftcard: " << to_string(code) << ": " << detail_of(e) << "\n";
            rc = code == Errc::unavailable || code == Errc::storage_unavailable ? 3 : 1;
          });
  return rc;
}

}  // namespace

int run_purchase(const ClientOptions& o, const std::string& card, const std::string& user,
                 const std::string& key) {
  return call<Purchase>(o, purchase_atom::value, card, user, key);
}

int run_credit(const ClientOptions& o, const std::string& user, int64_t amount,
               const std::string& key) {
  return call<CreditReply>(o, credit_atom::value, user, amount, key);
}

}  // namespace giftcard
