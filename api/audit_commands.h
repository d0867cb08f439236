// The auditor's commands (docs/CONTRACT.md, Command line): `giftcard events`, `giftcard replay` and
// `giftcard verify`. They open the store as a RocksDB secondary instance, so
// they work beside a running server and never modify the store. Progress goes
// to stderr, results to stdout. Exit codes: 0 ok; 1 verify found a problem;
// 2 bad arguments; 4 no store / unreadable store.
#pragma once

#include <cstdint>
#include <string>

namespace giftcard {

struct EventsOptions {
  std::string data;
  int64_t from = 1;
  int64_t to = 0;  // 0: to the end
  std::string stream;
};
int run_events(const EventsOptions& o);

struct ReplayOptions {
  std::string data;
  int64_t to = 0;  // 0: to the end
  std::string at;  // RFC 3339; events recorded at or before it
};
int run_replay(const ReplayOptions& o);

int run_verify(const std::string& data);

}  // namespace giftcard
