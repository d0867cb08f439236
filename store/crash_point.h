// Named crash points (docs/RELIABILITY.md §2): whitebox process crashes at the
// moments where a bug would lose or duplicate something.
//
//   GIFTCARD_CRASH_POINT=<name>:1-in-<N>   (or <name>:<N>; <name> alone is 1-in-1)
//
// makes the process print "giftcard: crash point <name> hit" on stderr and
// _exit(kCrashPointExit) — no destructors, no flushes, like a kill -9 at that
// line — each time the point is passed, with probability 1/N. The draws are
// seeded from GIFTCARD_CRASH_SEED if set (else from the clock and pid), so a
// crash schedule repeats for a repeated sequence of passes.
//
// Without the variable every point is one relaxed atomic load. Builds
// configured with -DGIFTCARD_CRASH_POINTS=OFF compile the points out entirely.
// The points (kCrashPoints) are listed in crash_point.cc and in RELIABILITY.md.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace giftcard {

inline constexpr int kCrashPointExit = 86;

// Every point's name, in the order of the write path.
const std::vector<std::string_view>& crash_points();

// Parses GIFTCARD_CRASH_POINT; an empty string when it is unset or valid, else
// what is wrong with it (an unknown point, a bad ratio). Call once at start-up
// and refuse to run on an error: a misspelled point would otherwise never fire.
std::string crash_point_config_error();

namespace crash_detail {
bool armed();  // a point is configured (cheap after the first call)
void pass(std::string_view name);
}  // namespace crash_detail

}  // namespace giftcard

#if !defined(GIFTCARD_NO_CRASH_POINTS)
#define GIFTCARD_CRASH_POINT(name)                                               \
  do {                                                                           \
    if (::giftcard::crash_detail::armed()) ::giftcard::crash_detail::pass(name); \
  } while (0)
#else
#define GIFTCARD_CRASH_POINT(name) \
  do {                             \
  } while (0)
#endif
