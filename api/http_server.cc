#include "api/http_server.h"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <array>
#include <deque>
#include <sstream>
#include <list>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

namespace giftcard {

namespace beast = boost::beast;
namespace net = boost::asio;
using tcp = net::ip::tcp;

class Session;

struct HttpServer::Impl {
  HttpLimits limits;
  HttpHandler handler;
  ProblemMaker problem;
  std::atomic<int64_t>* in_flight = nullptr;
  std::atomic<int64_t>* connections = nullptr;
  std::atomic<int64_t> open{0};  // sessions not yet closed
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

  Impl(HttpLimits l, HttpHandler h, ProblemMaker p)
      : limits(std::move(l)), handler(std::move(h)), problem(std::move(p)),
        ioc(std::max(1, limits.io_threads)) {}
  void accept();
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, HttpServer::Impl* srv)
      : stream_(std::move(socket)), srv_(srv), read_timer_(stream_.get_executor()) {
    ++*srv_->connections;
    ++srv_->open;
  }
  ~Session() {
    if (!closed_.load()) --srv_->open;
    --*srv_->connections;
  }

  void start() {
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->read_header(); });
  }

  // Server shutdown. An event stream closes now; a request in progress
  // finishes and then closes (its response says Connection: close). A
  // connection between requests gets a short grace instead of an immediate
  // close: a request the client already wrote may still be on its way through
  // the loopback or network stack, and it is read and answered. A connection
  // that stays silent closes when the grace ends.
  void drain() {
    net::post(stream_.get_executor(), [self = shared_from_this()] {
      if (self->closed_) return;
      if (self->streaming_) return self->close();
      if (!self->busy_) self->arm_read_timer(self->srv_->limits.drain_grace);
    });
  }

  // `counted`: the answer to a request handed to the handler; it stays in
  // flight until its last byte is written.
  void write(std::shared_ptr<HttpResponse> res, bool counted = false) {
    res->keep_alive(keep_alive_ && !srv_->draining.load());
    res->prepare_payload();
    stream_.expires_after(srv_->limits.write_timeout);
    http::async_write(stream_, *res,
                      [self = shared_from_this(), res, counted](beast::error_code ec, size_t) {
                        if (counted) --*self->srv_->in_flight;
                        self->busy_ = false;
                        if (ec || !res->keep_alive()) return self->close();
                        self->read_header();
                      });
  }

  void start_stream(std::shared_ptr<HttpResponse> head) {
    streaming_ = true;
    // Status line and headers only; the body is the frames that follow.
    auto text = std::make_shared<std::string>();
    {
      std::ostringstream os;
      os << head->base();
      *text = os.str();
    }
    push(text);
    // A read that completes only when the client goes away.
    stream_.expires_never();
    auto buf = std::make_shared<std::array<char, 256>>();
    watch_close(buf);
  }

  void push(std::shared_ptr<const std::string> frame) {
    if (closed_) return;
    if (queue_.size() >= srv_->limits.max_stream_backlog) return close();  // too slow
    queue_.push_back(std::move(frame));
    if (!writing_) write_next();
  }

  std::atomic<bool> closed_{false};

 private:
  void watch_close(std::shared_ptr<std::array<char, 256>> buf) {
    stream_.socket().async_read_some(
        net::buffer(*buf), [self = shared_from_this(), buf](beast::error_code ec, size_t) {
          if (ec) return self->close();
          self->watch_close(buf);  // ignore anything the client sends
        });
  }

  void write_next() {
    if (queue_.empty() || closed_) {
      writing_ = false;
      return;
    }
    writing_ = true;
    auto frame = queue_.front();
    queue_.pop_front();
    net::async_write(stream_.socket(), net::buffer(*frame),
                     [self = shared_from_this(), frame](beast::error_code ec, size_t) {
                       if (ec) return self->close();
                       self->write_next();
                     });
  }

  // Reads run under our own timer rather than the stream's expiry: an expiry
  // would close the socket, and a stalled client is owed a 408 first.
  void arm_read_timer(std::chrono::milliseconds d) {
    timed_out_ = false;
    stream_.expires_never();
    read_timer_.expires_after(d);
    read_timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (ec) return;  // cancelled: the read finished in time
      self->timed_out_ = true;
      beast::error_code ignored;
      self->stream_.socket().cancel(ignored);
    });
  }
  beast::error_code read_outcome(beast::error_code ec) {
    read_timer_.cancel();
    if (timed_out_ && ec == net::error::operation_aborted) return beast::error::timeout;
    return ec;
  }

  void read_header() {
    parser_.emplace();
    parser_->header_limit(static_cast<uint32_t>(srv_->limits.max_header_bytes));
    parser_->body_limit(srv_->limits.max_body_bytes);
    // While draining, a connection only waits out the grace (see drain()).
    arm_read_timer(srv_->draining.load() ? std::chrono::milliseconds(srv_->limits.drain_grace)
                                         : std::chrono::milliseconds(srv_->limits.header_timeout));
    http::async_read_header(stream_, buffer_, *parser_,
                            [self = shared_from_this()](beast::error_code ec, size_t) {
                              self->on_header(self->read_outcome(ec));
                            });
  }

  void on_header(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == net::error::eof ||
        ec == net::error::connection_reset || ec == net::error::operation_aborted)
      return close();
    if (ec == beast::error::timeout) {
      // A stalled header (slowloris) or an idle keep-alive connection.
      if (!parser_->got_some() && buffer_.size() == 0) return close();
      return fail(408, "request_timeout", "the request header did not arrive in time");
    }
    if (ec == http::error::header_limit)
      return fail(431, "request_header_fields_too_large",
                  "request headers exceed " + std::to_string(srv_->limits.max_header_bytes) +
                      " bytes");
    if (ec == http::error::body_limit) return too_large();
    if (ec) return fail(400, "invalid_request", "malformed HTTP request: " + ec.message());
    busy_ = true;
    const auto& req = parser_->get();
    if (req.count(http::field::content_length) && req.count(http::field::transfer_encoding))
      return fail(400, "invalid_request",
                  "Content-Length and Transfer-Encoding must not both be sent");
    if (auto n = parser_->content_length(); n && *n > srv_->limits.max_body_bytes)
      return too_large();
    arm_read_timer(srv_->limits.body_timeout);
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec2, size_t) {
                       self->on_body(self->read_outcome(ec2));
                     });
  }

  void on_body(beast::error_code ec) {
    if (ec == http::error::body_limit) return too_large();
    if (ec == beast::error::timeout)
      return fail(408, "request_timeout", "the request body did not arrive in time");
    if (ec == http::error::end_of_stream || ec == net::error::eof ||
        ec == net::error::connection_reset)
      return close();
    if (ec) return fail(400, "invalid_request", "malformed HTTP request: " + ec.message());
    stream_.expires_never();  // the handler's time is bounded by the handler
    HttpRequest req = parser_->release();
    keep_alive_ = req.keep_alive();
    ++*srv_->in_flight;
    srv_->handler(std::move(req), make_responder());
  }

  void too_large() {
    fail(413, "payload_too_large",
         "request body exceeds " + std::to_string(srv_->limits.max_body_bytes) + " bytes");
  }

  // Answers and closes: after a framing error the connection cannot be reused.
  void fail(int status, const std::string& code, const std::string& detail) {
    busy_ = true;
    keep_alive_ = false;
    auto res = std::make_shared<HttpResponse>(srv_->problem(status, code, detail));
    write(std::move(res));
  }

  void close() {
    if (closed_.exchange(true)) return;
    --srv_->open;
    read_timer_.cancel();
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
  }

  std::shared_ptr<Responder> make_responder();

  beast::tcp_stream stream_;
  HttpServer::Impl* srv_;
  net::steady_timer read_timer_;
  bool timed_out_ = false;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  bool keep_alive_ = true;
  bool busy_ = false;       // between a request's header and its response
  bool streaming_ = false;  // an event stream: no more requests on this connection
  bool writing_ = false;
  std::deque<std::shared_ptr<const std::string>> queue_;

  friend class SessionResponder;
  friend class SessionSink;
};

class SessionSink final : public StreamSink {
 public:
  explicit SessionSink(std::shared_ptr<Session> s) : s_(std::move(s)) {}
  void push(std::shared_ptr<const std::string> frame) override {
    if (s_->closed_) return;
    net::post(s_->stream_.get_executor(), [s = s_, f = std::move(frame)]() mutable {
      s->push(std::move(f));
    });
  }
  bool closed() const override { return s_->closed_.load(); }

 private:
  std::shared_ptr<Session> s_;
};

class SessionResponder final : public Responder {
 public:
  explicit SessionResponder(std::shared_ptr<Session> s) : s_(std::move(s)) {}
  ~SessionResponder() override {
    if (!answered_.exchange(true)) {  // a handler that dropped its responder
      auto res = std::make_shared<HttpResponse>(
          s_->srv_->problem(500, "internal_error", "the request was not answered"));
      net::post(s_->stream_.get_executor(), [s = s_, res] { s->write(res, true); });
    }
  }
  void send(HttpResponse res) override {
    if (answered_.exchange(true)) return;
    auto p = std::make_shared<HttpResponse>(std::move(res));
    net::post(s_->stream_.get_executor(), [s = s_, p] { s->write(p, true); });
  }
  std::shared_ptr<StreamSink> stream(HttpResponse head) override {
    auto sink = std::make_shared<SessionSink>(s_);
    if (answered_.exchange(true)) return sink;
    --*s_->srv_->in_flight;
    auto p = std::make_shared<HttpResponse>(std::move(head));
    net::post(s_->stream_.get_executor(), [s = s_, p] { s->start_stream(p); });
    return sink;
  }

 private:
  std::shared_ptr<Session> s_;
  std::atomic<bool> answered_{false};
};

std::shared_ptr<Responder> Session::make_responder() {
  return std::make_shared<SessionResponder>(shared_from_this());
}

void HttpServer::Impl::accept() {
  acceptor->async_accept(net::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
    if (ec == net::error::operation_aborted || !acceptor->is_open()) return;
    if (!ec) {
      auto s = std::make_shared<Session>(std::move(socket), this);
      {
        std::lock_guard lock(sessions_mu);
        sessions.remove_if([](const std::weak_ptr<Session>& w) { return w.expired(); });
        sessions.push_back(s);
      }
      s->start();
    }
    accept();
  });
}

HttpServer::HttpServer(HttpLimits limits, HttpHandler handler, ProblemMaker problem)
    : impl_(std::make_unique<Impl>(std::move(limits), std::move(handler), std::move(problem))) {
  impl_->in_flight = &in_flight_;
  impl_->connections = &connections_;
}

HttpServer::~HttpServer() { stop(); }

uint16_t HttpServer::start(const HostPort& address, std::string* error) {
  beast::error_code ec;
  auto ip = net::ip::make_address(address.host == "localhost" ? "127.0.0.1" : address.host, ec);
  if (ec) {
    *error = "bad address " + address.host + ": " + ec.message();
    return 0;
  }
  tcp::endpoint ep(ip, address.port);
  auto& acc = impl_->acceptor.emplace(impl_->ioc);
  if (acc.open(ep.protocol(), ec); !ec) acc.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acc.bind(ep, ec);
  if (!ec) acc.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    *error = "cannot listen on " + address.host + ":" + std::to_string(address.port) + ": " +
             ec.message();
    impl_->acceptor.reset();
    return 0;
  }
  uint16_t port = acc.local_endpoint().port();
  impl_->work.emplace(net::make_work_guard(impl_->ioc));
  impl_->accept();
  for (int i = 0; i < std::max(1, impl_->limits.io_threads); ++i)
    impl_->threads.emplace_back([this] { impl_->ioc.run(); });
  return port;
}

void HttpServer::stop_accepting() {
  if (impl_->draining.exchange(true)) return;
  net::post(impl_->ioc, [this] {
    beast::error_code ignored;
    if (impl_->acceptor) impl_->acceptor->close(ignored);
  });
  std::lock_guard lock(impl_->sessions_mu);
  for (auto& w : impl_->sessions)
    if (auto s = w.lock()) s->drain();
}

bool HttpServer::drained() const { return in_flight_.load() == 0 && impl_->open.load() == 0; }

void HttpServer::stop() {
  if (!impl_) return;
  stop_accepting();
  impl_->work.reset();
  impl_->ioc.stop();
  for (auto& t : impl_->threads)
    if (t.joinable()) t.join();
  impl_->threads.clear();
}

}  // namespace giftcard
