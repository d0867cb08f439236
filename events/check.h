// GIFTCARD_CHECK: an assertion that stays on in every build, in the style of
// TigerBeetle's: on the paths that must never lie (the code pool, positions,
// the hash chain), a broken invariant stops the process at once rather than
// let it sell a code twice or acknowledge a write it did not make. Keep the
// condition cheap; O(n) checks go behind GIFTCARD_DCHECK (debug builds only).
#pragma once

#include <string_view>

namespace giftcard {

// Prints "<file>:<line>: check failed: <what> (<detail>)" to stderr and
// aborts — unless a test installed a handler, which is called instead and
// returns (the code then goes on past the failed check).
void check_failed(const char* file, int line, const char* what, std::string_view detail = {});

// For negative controls only (the deterministic simulation, which counts a
// failed check as a caught bug and ends the seed): nullptr restores abort.
// Not thread-safe against concurrent check failures; set it before the run.
using CheckHandler = void (*)(const char* file, int line, const char* what,
                              std::string_view detail);
void set_check_handler_for_testing(CheckHandler handler);

}  // namespace giftcard

#define GIFTCARD_CHECK(cond)                               \
  do {                                                     \
    if (!(cond)) [[unlikely]]                              \
      ::giftcard::check_failed(__FILE__, __LINE__, #cond); \
  } while (0)

// Checks that `expr` (a std::string, "" when all is well) is empty.
#define GIFTCARD_CHECK_EMPTY(expr)                                                          \
  do {                                                                                      \
    if (auto giftcard_check_detail_ = (expr); !giftcard_check_detail_.empty()) [[unlikely]] \
      ::giftcard::check_failed(__FILE__, __LINE__, #expr, giftcard_check_detail_);          \
  } while (0)

#ifdef NDEBUG
#define GIFTCARD_DCHECK_EMPTY(expr) \
  do {                              \
  } while (0)
#else
#define GIFTCARD_DCHECK_EMPTY(expr) GIFTCARD_CHECK_EMPTY(expr)
#endif
