// Decision: what decide() returns — a rejection (error code + message) or the
// events to append. Plain struct.
#pragma once

#include <string>
#include <vector>

#include "events/errc.h"
#include "events/events.h"

namespace giftcard {

struct Decision {
  Errc error = Errc::ok;
  std::string detail;                  // human-readable; never contains a secret
  std::vector<std::string> conflicts;  // e.g. the duplicate codes of AddCodes
  std::vector<Event> events;

  bool ok() const { return error == Errc::ok; }
  static Decision reject(Errc e, std::string detail) {
    Decision d;
    d.error = e;
    d.detail = std::move(detail);
    return d;
  }
  static Decision accept(std::vector<Event> events) {
    Decision d;
    d.events = std::move(events);
    return d;
  }
};

}  // namespace giftcard
