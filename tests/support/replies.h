// Replies of the shop (actors/messages.h) in tests: a request's error code and
// a readable "code: detail", and purchases compared field by field.
#pragma once

#include <caf/all.hpp>
#include <string>

#include "actors/errors.h"
#include "actors/messages.h"

namespace giftcard::test {

// The outcome of a request: its error code (ok on success), and a readable
// "code: detail" for test messages.
template <class T>
Errc err(const caf::expected<T>& x) {
  return x ? Errc::ok : errc_of(x.error());
}

template <class T>
std::string what(const caf::expected<T>& x) {
  return x ? std::string("ok")
           : std::string(to_string(errc_of(x.error()))) + ": " + detail_of(x.error());
}

// The same purchase: every field but `replayed` (a replay answers the
// original purchase).
inline bool same_purchase(const Purchase& a, const Purchase& b) {
  return a.purchase_id == b.purchase_id && a.card_id == b.card_id && a.user_id == b.user_id &&
         a.code == b.code && a.price == b.price && a.purchased_at == b.purchased_at &&
         a.position == b.position;
}

}  // namespace giftcard::test
