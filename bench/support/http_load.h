// The HTTP purchase load shared by giftcard-http-bench and giftcard-remote-bench:
// one keep-alive connection per buyer, one POST /api/purchases in flight, a
// fresh Idempotency-Key per request, results kept per buyer.
#pragma once

#include <array>
#include <atomic>
#include <functional>
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

// Microseconds in log-linear buckets: exact below 256 us, then 128 buckets per
// power of two (< 0.4 % error), up to 2^32 us. Lock-free adds from any thread;
// a fixed size however many latencies it holds.
class LatencyHistogram {
 public:
  static constexpr size_t kBuckets = 256 + 24 * 128;

  void add(uint64_t us) { b_[bucket(us)].fetch_add(1, std::memory_order_relaxed); }
  uint64_t count() const;
  // Nearest rank, as percentile_ms(): the bucket's midpoint, in ms.
  double percentile_ms(double p) const;
  double max_ms() const;

 private:
  static size_t bucket(uint64_t us);
  static double mid_us(size_t bucket);
  std::array<std::atomic<uint64_t>, kBuckets> b_{};
};

// One answer of a KeepAliveConn.
struct HttpAnswer {
  int status = 0;         // 0: no answer (transport error)
  bool replayed = false;  // `Idempotent-Replayed` was set
  std::string code;       // 201: the body's "code"
  std::string error;      // otherwise: "409 out_of_stock", "transport: read: ..."
  uint64_t us = 0;        // from the write to the answer
  bool closed = false;    // the server closed the connection after it (the next send reconnects)
};

// One keep-alive connection with one request in flight at a time, given as
// raw bytes; connects on demand and again after 5 idle seconds (the server
// closes connections idle for 10 s) or a `Connection: close`.
class KeepAliveConn : public std::enable_shared_from_this<KeepAliveConn> {
 public:
  using Done = std::function<void(HttpAnswer)>;
  KeepAliveConn(boost::asio::io_context& ioc, boost::asio::ip::tcp::endpoint ep) : sock_(ioc), ep_(ep) {}
  void send(std::string request, Done done);
  void close();

 private:
  void write();
  void on_read(boost::beast::error_code ec);
  void finish_error(const std::string& why);

  boost::asio::ip::tcp::socket sock_;
  boost::asio::ip::tcp::endpoint ep_;
  std::string req_;
  Done done_;
  boost::beast::flat_buffer buf_;
  boost::beast::http::response<boost::beast::http::string_body> res_;
  Clock::time_point t0_, last_{};
};

class HttpPurchaseClient : public std::enable_shared_from_this<HttpPurchaseClient> {
 public:
  // `tag` prefixes the error lines on stderr ("http-bench", ...).
  HttpPurchaseClient(boost::asio::io_context& ioc, boost::asio::ip::tcp::endpoint ep, LoadShared* sh,
                     Buyer* b, std::string tag);
  void start();

 private:
  void send();
  void on_response(HttpAnswer a);
  void fail(const std::string& error);
  void done();

  std::shared_ptr<KeepAliveConn> conn_;
  LoadShared* sh_;
  Buyer* b_;
  std::string tag_, body_, head_;
  bool finished_ = false;
};

}  // namespace giftcard::bench
