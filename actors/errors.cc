#include "actors/errors.h"

namespace giftcard {

caf::error make_error(Errc e, std::string detail, std::vector<std::string> codes) {
  return caf::error(static_cast<uint8_t>(e), kErrorCategory,
                    caf::make_message(std::move(detail), std::move(codes)));
}

Errc errc_of(const caf::error& e) {
  if (!e) return Errc::ok;
  if (e.category() != kErrorCategory) return Errc::unavailable;
  return static_cast<Errc>(e.code());
}

std::string detail_of(const caf::error& e) {
  // category() and context() are only defined on a non-empty error.
  if (!e) return {};
  if (e.category() == kErrorCategory && e.context().size() > 0 &&
      e.context().match_element<std::string>(0))
    return e.context().get_as<std::string>(0);
  return caf::to_string(e);
}

std::vector<std::string> codes_of(const caf::error& e) {
  if (!e) return {};
  if (e.category() == kErrorCategory && e.context().size() > 1 &&
      e.context().match_element<std::vector<std::string>>(1))
    return e.context().get_as<std::vector<std::string>>(1);
  return {};
}

std::string render_error(uint8_t code, caf::atom_value, const caf::message& ctx) {
  std::string s(to_string(static_cast<Errc>(code)));
  if (ctx.size() > 0 && ctx.match_element<std::string>(0) && !ctx.get_as<std::string>(0).empty())
    s += ": " + ctx.get_as<std::string>(0);
  return s;
}

Errc errc_for(const Status& s) {
  if (s.IsCorruption()) return Errc::storage_corruption;
  if (s.IsInvalidArgument()) return Errc::invalid_request;
  return Errc::storage_unavailable;
}

}  // namespace giftcard
