// One connection's requests, one at a time: the header and its checks, the
// body, the handler, the response (api/http_server.h describes the limits).
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>

#include "api/http_session.h"

namespace giftcard {

namespace {

std::string peer_of(const tcp::socket& s) {
  beast::error_code ec;
  auto ep = s.remote_endpoint(ec);
  if (ec) return "unknown";
  auto a = ep.address();
  if (a.is_v6() && a.to_v6().is_v4_mapped())
    return net::ip::make_address_v4(net::ip::v4_mapped, a.to_v6()).to_string();
  return a.to_string();
}

}  // namespace

Session::Session(tcp::socket socket, HttpServer::Impl* srv)
    : stream_(std::move(socket)),
      srv_(srv),
      read_timer_(stream_.get_executor()),
      stall_timer_(stream_.get_executor()),
      peer_(peer_of(stream_.socket())) {
  chunk_cb_ = [this](std::uint64_t size, beast::string_view, beast::error_code& ec) {
    on_chunk_header(size, ec);
  };
  ++*srv_->connections;
  ++srv_->open;
}

Session::~Session() {
  release_body();
  if (!closed_.load()) --srv_->open;
  --*srv_->connections;
}

void Session::start() {
  net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->read_header(); });
}

void Session::drain() {
  net::post(stream_.get_executor(), [self = shared_from_this()] {
    if (self->closed_) return;
    if (self->streaming_) return self->close();
    if (!self->busy_) self->arm_read_timer(self->srv_->limits.drain_grace);
  });
}

void Session::write(const std::shared_ptr<HttpResponse>& res, bool counted) {
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

// ------------------------------------------------------------ read timers
//
// Reads run under our own timer rather than the stream's expiry: an expiry
// would close the socket, and a stalled client is owed a 408 first. Once
// it fires, it cancels the socket's reads every 100 ms until the read
// completes (a read started after the first cancel — its predecessor's
// completion was already queued — is cancelled on the next tick). Each
// arming has its own generation, so that a tick already queued when the
// timer was disarmed cancels nothing.
void Session::arm_read_timer(std::chrono::milliseconds d) {
  timed_out_ = false;
  stream_.expires_never();
  read_timer_.expires_after(d);
  wait_read_timer(++read_gen_);
}

void Session::wait_read_timer(uint64_t gen) {
  read_timer_.async_wait([self = shared_from_this(), gen](beast::error_code ec) {
    if (ec || gen != self->read_gen_ || self->closed_) return;  // disarmed
    self->timed_out_ = true;
    beast::error_code ignored;
    self->socket().cancel(ignored);
    self->read_timer_.expires_after(std::chrono::milliseconds(100));
    self->wait_read_timer(gen);
  });
}

void Session::disarm_read_timer() {
  ++read_gen_;
  read_timer_.cancel();
}

beast::error_code Session::read_outcome(beast::error_code ec) {
  disarm_read_timer();
  if (timed_out_ && ec == net::error::operation_aborted) return beast::error::timeout;
  return ec;
}

// ------------------------------------------------------------ the header
//
// The header is read here rather than with http::async_read_header: the
// raw bytes are needed (Beast unfolds obs-fold lines silently). They are
// fed to the parser as they arrive; what it consumes is scanned for a line
// that starts with SP or HTAB before it is dropped from the buffer.

void Session::read_header() {
  parser_.emplace();
  parser_->header_limit(static_cast<uint32_t>(srv_->limits.max_header_bytes));
  parser_->body_limit(srv_->limits.max_body_bytes);
  parser_->on_chunk_header(chunk_cb_);
  line_start_ = false;
  folded_ = false;
  chunk_refused_ = false;
  // While draining, a connection only waits out the grace (see drain()).
  arm_read_timer(srv_->draining.load() ? std::chrono::milliseconds(srv_->limits.drain_grace)
                                       : std::chrono::milliseconds(srv_->limits.header_timeout));
  if (buffer_.size() > 0) return parse_header();  // pipelined
  read_header_some();
}

void Session::read_header_some() {
  if (timed_out_) {
    disarm_read_timer();
    return on_header(beast::error::timeout);
  }
  size_t n = beast::read_size(buffer_, 65536);
  socket().async_read_some(buffer_.prepare(n),
                           [self = shared_from_this()](beast::error_code ec, size_t got) {
                             self->buffer_.commit(got);
                             if (ec) return self->on_header(self->read_outcome(ec));
                             self->parse_header();
                           });
}

void Session::parse_header() {
  beast::error_code ec;
  size_t used = parser_->put(buffer_.data(), ec);
  scan_folds(used);
  buffer_.consume(used);
  if (ec == http::error::need_more) return read_header_some();
  if (!ec && !parser_->is_header_done()) return read_header_some();
  disarm_read_timer();
  on_header(ec);
}

void Session::scan_folds(size_t used) {
  if (scan_obs_fold({static_cast<const char*>(buffer_.data().data()), used}, &line_start_))
    folded_ = true;
}

void Session::on_header(beast::error_code ec) {
  if (ec) return on_header_error(ec);
  busy_ = true;
  if (admit_header()) continue_to_body();
}

void Session::on_header_error(beast::error_code ec) {
  const bool got_some = parser_->got_some() || buffer_.size() > 0;
  if (ec == net::error::eof || ec == http::error::end_of_stream) {
    if (!got_some) return close();
    return fail(400, "invalid_request", "malformed HTTP request: partial message");
  }
  if (ec == net::error::connection_reset || ec == net::error::operation_aborted) return close();
  if (ec == beast::error::timeout) {
    // A stalled header (slowloris) or an idle keep-alive connection.
    if (!got_some) return close();
    return fail(408, "request_timeout", "the request header did not arrive in time");
  }
  if (ec == http::error::header_limit)
    return fail(
        431, "request_header_fields_too_large",
        "request headers exceed " + std::to_string(srv_->limits.max_header_bytes) + " bytes");
  if (ec == http::error::body_limit) return too_large();
  fail(400, "invalid_request", "malformed HTTP request: " + ec.message());
}

bool Session::admit_header() {
  const auto& req = parser_->get();
  header_fields_ = static_cast<size_t>(std::distance(req.begin(), req.end()));

  // Framing (RFC 9112): anything that two parsers could read differently
  // is refused, and the connection closes without reading further.
  if (auto why = framing_refusal(req, folded_, parser_->chunked()))
    return fail(why->status, why->code, why->detail), false;

  // Authorization and rate limits, from the header alone.
  if (srv_->check) {
    std::optional<HttpResponse> refused;
    try {
      refused = srv_->check(req, peer_);
    } catch (const std::exception&) {
      return fail(500, "internal_error", "internal error"), false;
    }
    if (refused) return refuse(std::make_shared<HttpResponse>(std::move(*refused))), false;
  }

  if (auto n = parser_->content_length(); n && *n > srv_->limits.max_body_bytes)
    return too_large(), false;
  if (auto n = parser_->content_length(); n && *n > 0) {
    if (!srv_->reserve(static_cast<size_t>(*n))) return busy(), false;
    reserved_ += static_cast<size_t>(*n);
  }
  return true;
}

// 100 Continue if the client waits for it, then the body.
void Session::continue_to_body() {
  const auto& req = parser_->get();
  // RFC 9110 §10.1.1: ignored in an HTTP/1.0 request.
  const bool send_continue = req.count(http::field::expect) > 0 && req.version() >= 11 &&
                             !parser_->is_done();
  if (!send_continue) return read_body();
  static const std::string kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
  stream_.expires_after(srv_->limits.write_timeout);
  net::async_write(stream_, net::buffer(kContinue),
                   [self = shared_from_this()](beast::error_code ec2, size_t) {
                     if (ec2) return self->close();
                     self->read_body();
                   });
}

// ------------------------------------------------------------ the body

// A chunked body reserves each chunk as its header arrives (Beast has
// already checked the running total against max_body_bytes).
void Session::on_chunk_header(std::uint64_t size, beast::error_code& ec) {
  if (size == 0) return;
  if (!srv_->reserve(static_cast<size_t>(size))) {
    chunk_refused_ = true;
    ec = net::error::no_buffer_space;
    return;
  }
  reserved_ += static_cast<size_t>(size);
}

void Session::read_body() {
  arm_read_timer(srv_->limits.body_timeout);
  http::async_read(stream_, buffer_, *parser_,
                   [self = shared_from_this()](beast::error_code ec, size_t) {
                     self->on_body(self->read_outcome(ec));
                   });
}

void Session::on_body(beast::error_code ec) {
  if (chunk_refused_) return busy();
  if (ec == http::error::body_limit) return too_large();
  if (ec == beast::error::timeout)
    return fail(408, "request_timeout", "the request body did not arrive in time");
  if (ec == http::error::end_of_stream || ec == net::error::eof ||
      ec == net::error::connection_reset || ec == net::error::operation_aborted)
    return close();
  if (ec) return fail(400, "invalid_request", "malformed HTTP request: " + ec.message());
  stream_.expires_never();  // the handler's time is bounded by the handler
  HttpRequest req = parser_->release();
  drop_trailers(req);
  keep_alive_ = req.keep_alive();
  ++*srv_->in_flight;
  srv_->handler(std::move(req), make_responder());
  release_body();  // the handler has parsed the body (and dropped it or kept its own copy)
}

// Beast appends a chunked body's trailer fields to the header. They were
// not there for the checks above (nor for the HeaderCheck), so they are
// discarded (RFC 9112 §7.1.2 lets a recipient do so).
void Session::drop_trailers(HttpRequest& req) const {
  size_t i = 0;
  for (auto it = req.begin(); it != req.end();) {
    if (i++ < header_fields_) ++it;
    else it = req.erase(it);
  }
}

void Session::release_body() {
  if (reserved_ == 0) return;
  srv_->buffered -= reserved_;
  reserved_ = 0;
}

// ------------------------------------------------------------ refusing

void Session::too_large() {
  fail(413, "payload_too_large",
       "request body exceeds " + std::to_string(srv_->limits.max_body_bytes) + " bytes");
}

void Session::busy() {
  auto res = std::make_shared<HttpResponse>(
      srv_->problem(503, "busy", "the server is buffering too many request bodies; retry later"));
  res->set(http::field::retry_after, "1");
  refuse(res);
}

// Answers and closes: after a framing error the connection cannot be reused.
void Session::fail(int status, const std::string& code, const std::string& detail) {
  refuse(std::make_shared<HttpResponse>(srv_->problem(status, code, detail)));
}

void Session::refuse(const std::shared_ptr<HttpResponse>& res) {
  release_body();
  busy_ = true;
  keep_alive_ = false;
  write(res);
}

void Session::close() {
  if (closed_.exchange(true)) return;
  --srv_->open;
  disarm_read_timer();
  stall_timer_.cancel();
  release_body();
  queue_.clear();
  beast::error_code ignored;
  socket().shutdown(tcp::socket::shutdown_both, ignored);
  stream_.close();
}

// ------------------------------------------------------------ the answer

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
    auto sink = make_stream_sink(s_);
    if (answered_.exchange(true)) return sink;
    --*s_->srv_->in_flight;
    auto p = std::make_shared<HttpResponse>(std::move(head));
    net::post(s_->stream_.get_executor(), [s = s_, p] { s->start_stream(p); });
    return sink;
  }
  const std::string& peer() const override { return s_->peer_; }

 private:
  std::shared_ptr<Session> s_;
  std::atomic<bool> answered_{false};
};

std::shared_ptr<Responder> Session::make_responder() {
  return std::make_shared<SessionResponder>(shared_from_this());
}

}  // namespace giftcard
