// The admin projection viewer (SPEC §6): one page in three static files, no
// build step, nothing fetched from elsewhere:
//   GET /admin          admin_page_html()  the markup; links the other two
//   GET /admin/app.css  admin_page_css()   the style
//   GET /admin/app.js   admin_page_js()    the script
// They are served under a strict Content-Security-Policy (no 'unsafe-inline',
// no 'unsafe-eval'; api/http_api.cc), so the markup holds no inline script,
// style, style attribute or event-handler attribute. The page holds no data:
// it asks for the admin token and reads /api/admin/* and /api/events/stream
// with it.
#pragma once

#include <string_view>

namespace giftcard {

std::string_view admin_page_html();
std::string_view admin_page_css();
std::string_view admin_page_js();

}  // namespace giftcard
