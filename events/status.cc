#include "events/status.h"

namespace giftcard {

std::string Status::ToString() const {
  const char* name = "OK";
  switch (code_) {
    case Code::ok: return "OK";
    case Code::not_found: name = "NotFound"; break;
    case Code::corruption: name = "Corruption"; break;
    case Code::invalid_argument: name = "InvalidArgument"; break;
    case Code::io_error: name = "IOError"; break;
    case Code::conflict: name = "Conflict"; break;
    case Code::busy: name = "Busy"; break;
  }
  return msg_.empty() ? std::string(name) : std::string(name) + ": " + msg_;
}

}  // namespace giftcard
