#include "events/check.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>

namespace giftcard {
namespace {

std::atomic<CheckHandler> handler{nullptr};

}  // namespace

void set_check_handler_for_testing(CheckHandler h) { handler.store(h); }

void check_failed(const char* file, int line, const char* what, std::string_view detail) {
  if (CheckHandler h = handler.load()) {
    h(file, line, what, detail);
    return;
  }
  std::fprintf(stderr, "%s:%d: check failed: %s", file, line, what);
  if (!detail.empty())
    std::fprintf(stderr, " (%.*s)", static_cast<int>(detail.size()), detail.data());
  std::fputc('\n', stderr);
  std::fflush(stderr);
  std::abort();
}

}  // namespace giftcard
