// Inside HttpServer (api/http_server.h): the server's shared state and one
// connection's Session. Included only by the server's own files:
// http_server.cc (listening, shutdown), http_session.cc (a request's life:
// header, checks, body, handler, response) and http_stream.cc (a connection
// turned into an event stream).
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <deque>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "api/http_server.h"

namespace giftcard {

namespace beast = boost::beast;
namespace net = boost::asio;
using tcp = net::ip::tcp;

class Session;

struct HttpServer::Impl {
  HttpLimits limits;
  HttpHandler handler;
  ProblemMaker problem;
  HeaderCheck check;
  std::atomic<int64_t>* in_flight = nullptr;
  std::atomic<int64_t>* connections = nullptr;
  std::atomic<int64_t> open{0};  // sessions not yet closed
  // Request-body bytes reserved by all sessions (max_buffered_body_bytes).
  std::atomic<size_t> buffered{0};
  std::atomic<int64_t> cut_streams{0};
  net::io_context ioc;
  std::optional<tcp::acceptor> acceptor;
  std::vector<std::thread> threads;
  // Keeps ioc.run() going while no socket operation is pending (every
  // session waiting on the shop after the acceptor closed): responses are
  // posted to it later.
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work;
  std::atomic<bool> draining{false};
  std::mutex sessions_mu;
  std::list<std::weak_ptr<Session>> sessions;  // GUARDED_BY(sessions_mu)

  Impl(HttpLimits l, HttpHandler h, ProblemMaker p, HeaderCheck c)
      : limits(l),
        handler(std::move(h)),
        problem(std::move(p)),
        check(std::move(c)),
        ioc(std::max(1, limits.io_threads)) {}
  // Accepts connections, each into a Session, until the acceptor closes.
  void accept();
  // Session::drain() on every open session (shutdown).
  void drain_sessions();

  // Reserves `n` body bytes under the global cap; false (nothing reserved)
  // if they do not fit.
  bool reserve(size_t n) {
    const size_t cap = limits.max_buffered_body_bytes;
    size_t cur = buffered.load();
    do {
      if (n > cap || cur > cap - n) return false;
    } while (!buffered.compare_exchange_weak(cur, cur + n));
    return true;
  }
};

// One client connection, on its own strand: requests one at a time
// (http_session.cc), or, once a handler asked for it, an event stream
// (http_stream.cc).
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, HttpServer::Impl* srv);
  ~Session();

  void start();
  // Server shutdown. An event stream closes now; a request in progress
  // finishes and then closes (its response says Connection: close). A
  // connection between requests gets a short grace instead of an immediate
  // close: a request the client already wrote may still be on its way through
  // the loopback or network stack, and it is read and answered. A connection
  // that stays silent closes when the grace ends.
  void drain();
  // `counted`: the answer to a request handed to the handler; it stays in
  // flight until its last byte is written.
  void write(const std::shared_ptr<HttpResponse>& res, bool counted = false);

  // ---- the event stream (http_stream.cc)
  void start_stream(const std::shared_ptr<HttpResponse>& head);
  // On the strand: `frame` is already counted in pending_.
  void push(std::shared_ptr<const std::string> frame);
  // The stream's client is too slow: closed, and counted as cut.
  void cut();

  std::atomic<bool> closed_{false};
  std::atomic<bool> cut_{false};
  // Event stream: bytes pushed and not yet written to the socket.
  std::atomic<size_t> pending_{0};

 private:
  tcp::socket& socket() { return stream_.socket(); }

  // ---- the event stream (http_stream.cc)
  void watch_close(const std::shared_ptr<std::array<char, 256>>& buf);
  void write_next();

  // ---- read timers
  void arm_read_timer(std::chrono::milliseconds d);
  void wait_read_timer(uint64_t gen);
  void disarm_read_timer();
  beast::error_code read_outcome(beast::error_code ec);

  // ---- the header
  void read_header();
  void read_header_some();
  void parse_header();
  void scan_folds(size_t used);
  void on_header(beast::error_code ec);
  // A read error before a complete header: closes, or answers and closes.
  void on_header_error(beast::error_code ec);
  // The checks on a complete header (framing, the HeaderCheck, the body's
  // size and reservation); false once the request is refused.
  bool admit_header();
  void continue_to_body();

  // ---- the body
  void on_chunk_header(std::uint64_t size, beast::error_code& ec);
  void read_body();
  void on_body(beast::error_code ec);
  void drop_trailers(HttpRequest& req) const;
  void release_body();

  // ---- refusing
  void too_large();
  void busy();
  void fail(int status, const std::string& code, const std::string& detail);
  void refuse(const std::shared_ptr<HttpResponse>& res);
  void close();

  std::shared_ptr<Responder> make_responder();

  beast::tcp_stream stream_;
  HttpServer::Impl* srv_;
  net::steady_timer read_timer_;
  net::steady_timer stall_timer_;
  const std::string peer_;
  bool timed_out_ = false;
  uint64_t read_gen_ = 0;  // arming of read_timer_
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::function<void(std::uint64_t, beast::string_view, beast::error_code&)> chunk_cb_;
  bool line_start_ = false;     // the header bytes scanned so far end a line
  bool folded_ = false;         // a header line started with SP or HTAB
  bool chunk_refused_ = false;  // a chunk did not fit under max_buffered_body_bytes
  size_t reserved_ = 0;         // body bytes reserved for the current request
  size_t header_fields_ = 0;    // fields of the current request's header (before trailers)
  bool keep_alive_ = true;
  bool busy_ = false;       // between a request's header and its response
  bool streaming_ = false;  // an event stream: no more requests on this connection
  bool writing_ = false;
  uint64_t write_gen_ = 0;  // event-stream writes started (the stall timer's)
  std::deque<std::shared_ptr<const std::string>> queue_;

  friend class SessionResponder;
  friend class SessionSink;
};

// The write side of an event stream (http_stream.cc).
std::shared_ptr<StreamSink> make_stream_sink(std::shared_ptr<Session> s);

}  // namespace giftcard
