// The mixed HTTP load of RELIABILITY.md §1 against a `giftcard serve` child,
// recorded into a History, and the end-of-suite check that runs the whole
// oracle (§0) over it.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "tests/reliability/oracle.h"
#include "tests/support/http_client.h"
#include "tests/support/serve_child.h"

namespace giftcard::reliability {

struct LoadConfig {
  int clients = 64;
  int users = 32;  // client i buys as user i % users: two clients share each wallet
  int cards = 8;   // hot cards "hot0".."hot7"
  int64_t price = 100;
  int64_t credit = 300;
  // Mix: purchases, then credits; the rest are same-key retries of a recent call
  // of the same user (possibly in flight on another client at the same time).
  double purchase_share = 0.7;
  double credit_share = 0.2;
  // Sent with every request (e.g. Authorization: Bearer ... when serve has tokens).
  test::Headers headers;
};

std::string card_id(int i);
std::string user_id(int i);

// A previous call, kept to be sent again with its key.
struct Recent {
  Call::Kind kind;
  std::string user, key, card;
  int64_t amount = 0;
};

class HttpLoad {
 public:
  // `tag` makes this load's keys unique across rounds.
  HttpLoad(uint16_t port, const LoadConfig& cfg, History* history, uint64_t seed, std::string tag);
  ~HttpLoad();
  void start();
  // Stops the clients and joins them; a call cut off by the stop or by the
  // server's death is recorded as info.
  void stop();
  int64_t acknowledged() const { return acked_.load(); }

 private:
  void client(int i, uint64_t seed);

  uint16_t port_;
  LoadConfig cfg_;
  History* history_;
  uint64_t seed_;
  std::string tag_;
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> acked_{0};
  std::vector<std::thread> threads_;
  std::mutex recent_mu_;
  std::vector<Recent> recent_;  // ring of recent calls, for retries
};

// One request of a call, as the load sends it. Fills outcome/status/body/parsed fields.
void send_call(uint16_t port, Call* call, const test::Headers& headers = {});

// First start: the hot cards and a funded wallet per user.
void set_up_shop(uint16_t port, const LoadConfig& cfg);
// Adds codes to every hot card that has fewer than `low` available; `round` names them.
void top_up_codes(uint16_t port, const LoadConfig& cfg, int round, int64_t low, int64_t add);

// Retries every info call not yet retried, with its key, against a recovered
// server; an acknowledged retry is added to the history as an ok call.
void resolve_infos(uint16_t port, History* history, const test::Headers& headers = {});

// The whole oracle on a live server: resolves info calls, reads the live
// views, stops the server with SIGTERM, runs `giftcard verify` and `giftcard
// replay`, folds the log and checks the history against it.
Counters final_check(test::ServeChild& server, const LoadConfig& cfg, History* history,
                     std::vector<std::string>* problems);

}  // namespace giftcard::reliability
