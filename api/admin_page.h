// The admin projection viewer (SPEC §6): one self-contained HTML page (markup,
// style and script inline; no build step, nothing fetched from the network)
// served at GET /admin. It holds no data: it asks for the admin token and
// reads /api/admin/* and /api/events/stream with it.
#pragma once

#include <string_view>

namespace giftcard {

std::string_view admin_page_html();

}  // namespace giftcard
