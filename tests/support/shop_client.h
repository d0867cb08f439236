// A CAF remote client of `giftcard serve`'s shop, in this process (an actor
// system of its own, connected over loopback): one request at a time, its
// reply or its error, and the error rendered for a test message.
#pragma once

#include <boost/test/unit_test.hpp>
#include <caf/all.hpp>
#include <chrono>
#include <cstdint>
#include <string>
#include <utility>

#include "actors/messages.h"
#include "api/node_config.h"

namespace giftcard::test {

class ShopClient {
 public:
  explicit ShopClient(uint16_t port,
                      std::chrono::seconds request_timeout = std::chrono::seconds(60))
      : timeout(request_timeout) {
    auto shop = connect_shop(sys_, HostPort{"127.0.0.1", port}, false);
    if (!shop)
      BOOST_FAIL("cannot connect to 127.0.0.1:" << port << ": " << sys_.render(shop.error()));
    shop_ = *shop;
  }

  std::chrono::seconds timeout;  // per request

  caf::actor_system& system() { return sys_; }
  const shop_actor& shop() const { return shop_; }

  // One request, its reply or its error.
  template <class Reply, class... Ts>
  caf::expected<Reply> ask(Ts&&... xs) {
    caf::expected<Reply> result{caf::make_error(caf::sec::request_timeout)};
    caf::scoped_actor self{sys_};
    self->request(shop_, timeout, std::forward<Ts>(xs)...)
        .receive([&](Reply& r) { result = std::move(r); },
                 [&](caf::error& e) { result = std::move(e); });
    return result;
  }

  // "ok", or the error as CAF renders it.
  template <class T>
  std::string why(const caf::expected<T>& x) {
    return x ? std::string("ok") : sys_.render(x.error());
  }

 private:
  NodeConfig cfg_{TlsOptions{}};
  caf::actor_system sys_{cfg_};
  shop_actor shop_;
};

}  // namespace giftcard::test
