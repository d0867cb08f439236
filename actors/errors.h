// Domain errors on the CAF wire: a caf::error with category "giftcard", code =
// Errc value, and a context message (detail string, conflicting codes).
#pragma once

#include <caf/all.hpp>
#include <string>
#include <vector>

#include "events/errc.h"
#include "events/status.h"

namespace giftcard {

constexpr caf::atom_value kErrorCategory = caf::atom("giftcard");

caf::error make_error(Errc e, std::string detail = {}, std::vector<std::string> codes = {});

// Maps any caf::error to an Errc: ours by code; CAF's own (a dead actor, a
// broken connection, a timeout) to Errc::unavailable.
Errc errc_of(const caf::error& e);
std::string detail_of(const caf::error& e);
std::vector<std::string> codes_of(const caf::error& e);

// A storage Status as a domain error code: storage_corruption,
// invalid_request, or storage_unavailable.
Errc errc_for(const Status& s);

// The renderer registered for the category (readable errors in logs/CLI).
std::string render_error(uint8_t code, caf::atom_value category, const caf::message& ctx);

}  // namespace giftcard
