// The HTTP purchase load shared by giftcard-http-bench and giftcard-remote-bench:
// one keep-alive connection per buyer, one POST /api/purchases in flight, a
// fresh Idempotency-Key per request, results kept per buyer.
#pragma once

#include <atomic>
#include <utility>  // before Asio: boost 1.74's awaitable.hpp uses std::exchange

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "bench/support/bench_support.h"

namespace giftcard::bench {

// What the load's clients and the benchmark's main thread share.
struct LoadShared {
  std::atomic<int> phase{0};  // 0 warm-up, 1 measuring, 2 stop
  std::atomic<int> running{0};  // clients (or request lanes) still going
  std::atomic<uint64_t> ok{0};
  std::atomic<bool> out_of_stock{false};
  std::atomic<uint64_t> reported{0};  // errors printed so far (the first 5 are)
};

// One buyer: what it buys, and its results (read by main once `running` is 0).
struct Buyer {
  std::string card, user, key_prefix;
  uint64_t seq = 0;    // the next idempotency key's number
  int lanes_left = 0;  // request lanes still running (CAF: several per buyer)
  uint64_t ok_total = 0, ok_measured = 0, replayed = 0, transport_errors = 0;
  std::vector<uint32_t> latency_us;  // measured successes
  std::vector<std::string> codes;    // every success
  std::map<std::string, uint64_t> errors;
};

// Counts a success sent at `t0`; its latency if the window is open.
void record_ok(LoadShared* sh, Buyer* b, std::string code, Clock::time_point t0);

class HttpPurchaseClient : public std::enable_shared_from_this<HttpPurchaseClient> {
 public:
  // `tag` prefixes the error lines on stderr ("http-bench", ...).
  HttpPurchaseClient(boost::asio::io_context& ioc, boost::asio::ip::tcp::endpoint ep, LoadShared* sh,
                     Buyer* b, std::string tag);
  void start();

 private:
  void send();
  void on_response(boost::beast::error_code ec);
  void fail(const std::string& why);
  void done();

  boost::asio::ip::tcp::socket sock_;
  boost::asio::ip::tcp::endpoint ep_;
  LoadShared* sh_;
  Buyer* b_;
  std::string tag_, body_, head_, req_;
  boost::beast::flat_buffer buf_;
  boost::beast::http::response<boost::beast::http::string_body> res_;
  Clock::time_point t0_;
  bool finished_ = false;
};

}  // namespace giftcard::bench
