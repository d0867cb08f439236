// What the projection query tests share (projection_query_test.cc, the
// queries; projection_rebuild_test.cc, rebuilds and replays under load):
// requests to the shop exactly as given, readable cards and purchases, and
// waits and checks over the shop's log and projections.
#pragma once

#include <boost/test/unit_test.hpp>
#include <sstream>

#include "projections/audit.h"
#include "projections/read_models.h"
#include "tests/actors/shop_fixture.h"
#include "tests/support/log_oracle.h"
#include "tests/support/models.h"

namespace giftcard::test {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;
using Backend = ShopFixture::Backend;

// A request with arguments exactly as given (the fixture's query helpers
// turn a negative `after` into the log head).
template <class R, class... Ts>
caf::expected<R> ask(ShopFixture& f, Ts&&... xs) {
  caf::scoped_actor self{f.sys()};
  caf::expected<R> out{make_error(Errc::unavailable, "no reply")};
  self->request(f.shop(), std::chrono::seconds(60), std::forward<Ts>(xs)...)
      .receive([&](R& r) { out = std::move(r); }, [&](caf::error& e) { out = std::move(e); });
  return out;
}

inline caf::expected<ShopStatus> status(ShopFixture& f) {
  return ask<ShopStatus>(f, status_atom::value);
}
inline caf::expected<RebuildInfo> rebuild(ShopFixture& f) {
  return ask<RebuildInfo>(f, rebuild_atom::value);
}
// Every card, page by page, each page asked with exactly this `after`.
inline caf::expected<std::vector<CardInfo>> cards(ShopFixture& f, int64_t after) {
  std::vector<CardInfo> out;
  for (std::string from;;) {
    auto page = ask<CardPage>(f, cards_atom::value, from, kMaxPageLimit, after);
    if (!page) return std::move(page.error());
    for (auto& c : page->cards) out.push_back(std::move(c));
    if (page->next.empty()) return out;
    from = page->next;
  }
}
inline caf::expected<PurchasePage> history(ShopFixture& f, const std::string& user, int64_t after) {
  return ask<PurchasePage>(f, history_atom::value, user, int64_t{0}, kMaxPageLimit, after);
}

inline std::string show(const Purchase& p) {
  std::ostringstream o;
  o << "{" << p.purchase_id << " card=" << p.card_id << " user=" << p.user_id << " code=" << p.code
    << " price=" << p.price << " at=" << p.purchased_at << " pos=" << p.position << "}";
  return o.str();
}
inline std::string show(const CardInfo& c) {
  std::ostringstream o;
  o << "{" << c.id << " '" << c.name << "' price=" << c.price << " value=" << c.value
    << " available=" << c.available << " assigned=" << c.assigned << " expired=" << c.expired
    << " revoked=" << c.revoked << "}";
  return o.str();
}

// Waits (really: ProjectionDb::WaitFor) until the projections include the
// log's head.
inline void await_head(ShopFixture& f) {
  const int64_t head = f.store()->LastPosition();
  BOOST_REQUIRE_MESSAGE(f.projections().WaitFor(head, milliseconds(60000)),
                        "projections stuck at " << f.projections().position() << " of " << head);
}

inline void check_oracle(ShopFixture& f) {
  OracleReport r = check_log(f.store());
  BOOST_TEST(r.clean(), r.summary());
  VerifyReport v = verify_log(f.store());
  BOOST_TEST(v.ok(), (v.problems.empty() ? "" : v.problems.front()));
}

}  // namespace giftcard::test
