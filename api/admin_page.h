// The admin projection viewer (docs/CONTRACT.md, HTTP routes): one page in
// three static files, no build step, nothing fetched from elsewhere:
//   GET /admin          admin_page_html()  api/admin/index.html, the markup
//   GET /admin/app.css  admin_page_css()   api/admin/app.css, the style
//   GET /admin/app.js   admin_page_js()    api/admin/app.js, the script
// Each is compiled in as it is, byte for byte (api/embed_file.cmake: the
// functions are generated at build time).
//
// They are served under a CSP without 'unsafe-inline' or 'unsafe-eval'
// (api/admin_routes.cc), so nothing in them may be inline: no <script> or
// <style> element with content, no style= or on...= attribute (in the markup
// or in anything the script builds), no javascript: URL, no eval, new
// Function or string setTimeout. The script wires every control with
// addEventListener, handles the login form's submit itself (form-action
// 'none'), and sizes the stock bars through the CSSOM
// (element.style.flexGrow), which the CSP allows.
//
// The page holds no data: it asks for the admin token, keeps it in the tab's
// session storage, and fetches nothing but this server's own /admin/app.*,
// /api/admin/*, /api/events and /api/events/stream (connect-src 'self'). It
// writes data into the DOM only through textContent, never as HTML.
//
// Secrets: an activation code is cut to its last 4 characters the moment an
// event is parsed (sanitize); the full code is never kept, let alone shown.
#pragma once

#include <string_view>

namespace giftcard {

std::string_view admin_page_html();
std::string_view admin_page_css();
std::string_view admin_page_js();

}  // namespace giftcard
