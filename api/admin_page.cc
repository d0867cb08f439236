#include "api/admin_page.h"

namespace giftcard {

std::string_view admin_page_html() {
  return R"HTML(<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>giftcard admin</title></head>
<body><p>The admin viewer is being built.</p></body></html>
)HTML";
}

}  // namespace giftcard
