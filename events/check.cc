#include "events/check.h"

#include <cstdio>
#include <cstdlib>

namespace giftcard {

void check_failed(const char* file, int line, const char* what, std::string_view detail) {
  std::fprintf(stderr, "%s:%d: check failed: %s", file, line, what);
  if (!detail.empty())
    std::fprintf(stderr, " (%.*s)", static_cast<int>(detail.size()), detail.data());
  std::fputc('\n', stderr);
  std::fflush(stderr);
  std::abort();
}

}  // namespace giftcard
