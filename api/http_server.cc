#include "api/http_server.h"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <algorithm>
#include <array>
#include <deque>
#include <list>
#include <mutex>
#include <optional>
#include <sstream>
#include <string_view>
#include <thread>
#include <vector>

namespace giftcard {

namespace beast = boost::beast;
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

bool is_ows(char c) { return c == ' ' || c == '\t'; }

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
  return s;
}

bool iequals_ascii(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

std::string_view view(beast::string_view s) { return {s.data(), s.size()}; }

// RFC 9110 §5.6.2.
bool is_tchar(char c) {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

enum class Coding { chunked, unsupported, malformed };

// One Transfer-Encoding field value: exactly `chunked` (any case, optional
// surrounding whitespace) is the only coding this server decodes. A list of
// well-formed codings is merely unsupported (501); anything else — an empty
// element, a coding name that is not a token — is malformed (400).
Coding classify_transfer_encoding(std::string_view value) {
  if (iequals_ascii(trim_ows(value), "chunked")) return Coding::chunked;
  size_t pos = 0;
  for (;;) {
    size_t comma = value.find(',', pos);
    std::string_view elem =
        value.substr(pos, comma == std::string_view::npos ? std::string_view::npos : comma - pos);
    std::string_view name = trim_ows(elem.substr(0, elem.find(';')));
    if (name.empty() || !std::all_of(name.begin(), name.end(), is_tchar)) return Coding::malformed;
    if (comma == std::string_view::npos) return Coding::unsupported;
    pos = comma + 1;
  }
}

}  // namespace

bool scan_obs_fold(std::string_view raw, bool* line_start) {
  bool folded = false;
  for (char c : raw) {
    if (*line_start && is_ows(c)) folded = true;
    *line_start = c == '\n';
  }
  return folded;
}

std::optional<FramingRefusal> framing_refusal(const http::request_header<>& req, bool folded,
                                              bool parser_chunked) {
  const bool http11 = req.version() >= 11;
  auto refuse = [](int status, const char* code, const char* detail) {
    return std::optional<FramingRefusal>(FramingRefusal{status, code, detail});
  };
  if (folded) return refuse(400, "invalid_request", "obsolete line folding in the request header");
  if (size_t hosts = req.count(http::field::host); hosts > 1 || (http11 && hosts == 0))
    return refuse(400, "invalid_request",
                  hosts > 1 ? "more than one Host header" : "an HTTP/1.1 request needs a Host header");
  const size_t lengths = req.count(http::field::content_length);
  if (lengths > 1 ||
      (lengths == 1 && view(req[http::field::content_length]).find(',') != std::string_view::npos))
    return refuse(400, "invalid_request", "more than one Content-Length");
  if (size_t codings = req.count(http::field::transfer_encoding); codings > 0) {
    if (!http11) return refuse(400, "invalid_request", "Transfer-Encoding in an HTTP/1.0 request");
    if (lengths > 0)
      return refuse(400, "invalid_request", "Content-Length and Transfer-Encoding must not both be sent");
    if (codings > 1)
      return refuse(501, "not_implemented", "the only supported Transfer-Encoding is chunked");
    switch (classify_transfer_encoding(view(req[http::field::transfer_encoding]))) {
      case Coding::chunked: break;
      case Coding::unsupported:
        return refuse(501, "not_implemented", "the only supported Transfer-Encoding is chunked");
      case Coding::malformed: return refuse(400, "invalid_request", "malformed Transfer-Encoding");
    }
    if (!parser_chunked)  // cannot happen: Beast agrees on `chunked`
      return refuse(501, "not_implemented", "the only supported Transfer-Encoding is chunked");
  }
  if (size_t expects = req.count(http::field::expect); expects > 0)
    if (expects > 1 || !iequals_ascii(trim_ows(view(req[http::field::expect])), "100-continue"))
      return refuse(417, "expectation_failed", "the only supported expectation is 100-continue");
  return std::nullopt;
}

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
      : limits(std::move(l)), handler(std::move(h)), problem(std::move(p)), check(std::move(c)),
        ioc(std::max(1, limits.io_threads)) {}
  void accept();

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

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, HttpServer::Impl* srv)
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
  ~Session() {
    release_body();
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
    pending_ += text->size();
    push(text);
    // A read that completes only when the client goes away.
    stream_.expires_never();
    auto buf = std::make_shared<std::array<char, 256>>();
    watch_close(buf);
  }

  // On the strand: `frame` is already counted in pending_.
  void push(std::shared_ptr<const std::string> frame) {
    if (closed_) {
      pending_ -= frame->size();
      return;
    }
    if (queue_.size() >= srv_->limits.max_stream_backlog) {  // too slow
      pending_ -= frame->size();
      return cut();
    }
    queue_.push_back(std::move(frame));
    if (!writing_) write_next();
  }

  // The stream's client is too slow: closed, and counted as cut.
  void cut() {
    if (closed_) return;
    cut_ = true;
    ++srv_->cut_streams;
    close();
  }

  std::atomic<bool> closed_{false};
  std::atomic<bool> cut_{false};
  // Event stream: bytes pushed and not yet written to the socket.
  std::atomic<size_t> pending_{0};

 private:
  tcp::socket& socket() { return stream_.socket(); }

  void watch_close(std::shared_ptr<std::array<char, 256>> buf) {
    socket().async_read_some(net::buffer(*buf),
                             [self = shared_from_this(), buf](beast::error_code ec, size_t) {
                               if (ec) return self->close();
                               self->watch_close(buf);  // ignore anything the client sends
                             });
  }

  // Writes what is queued (several frames at once), under the stall timer:
  // a write that has not completed within stream_stall_timeout cuts the client.
  void write_next() {
    if (queue_.empty() || closed_) {
      writing_ = false;
      stall_timer_.cancel();
      return;
    }
    writing_ = true;
    auto batch = std::make_shared<std::vector<std::shared_ptr<const std::string>>>();
    std::vector<net::const_buffer> bufs;
    size_t bytes = 0;
    while (!queue_.empty() && batch->size() < 64 && bytes < (256u << 10)) {
      batch->push_back(std::move(queue_.front()));
      queue_.pop_front();
      bufs.emplace_back(batch->back()->data(), batch->back()->size());
      bytes += batch->back()->size();
    }
    const uint64_t gen = ++write_gen_;
    stall_timer_.expires_after(srv_->limits.stream_stall_timeout);
    stall_timer_.async_wait([self = shared_from_this(), gen](beast::error_code ec) {
      if (ec || gen != self->write_gen_ || !self->writing_) return;
      self->cut();  // the write did not complete in time
    });
    net::async_write(socket(), bufs,
                     [self = shared_from_this(), batch, bytes](beast::error_code ec, size_t) {
                       self->pending_ -= bytes;
                       if (ec) return self->close();
                       self->write_next();
                     });
  }

  // Reads run under our own timer rather than the stream's expiry: an expiry
  // would close the socket, and a stalled client is owed a 408 first. Once
  // it fires, it cancels the socket's reads every 100 ms until the read
  // completes (a read started after the first cancel — its predecessor's
  // completion was already queued — is cancelled on the next tick). Each
  // arming has its own generation, so that a tick already queued when the
  // timer was disarmed cancels nothing.
  void arm_read_timer(std::chrono::milliseconds d) {
    timed_out_ = false;
    stream_.expires_never();
    read_timer_.expires_after(d);
    wait_read_timer(++read_gen_);
  }
  void wait_read_timer(uint64_t gen) {
    read_timer_.async_wait([self = shared_from_this(), gen](beast::error_code ec) {
      if (ec || gen != self->read_gen_ || self->closed_) return;  // disarmed
      self->timed_out_ = true;
      beast::error_code ignored;
      self->socket().cancel(ignored);
      self->read_timer_.expires_after(std::chrono::milliseconds(100));
      self->wait_read_timer(gen);
    });
  }
  void disarm_read_timer() {
    ++read_gen_;
    read_timer_.cancel();
  }
  beast::error_code read_outcome(beast::error_code ec) {
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

  void read_header() {
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

  void read_header_some() {
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

  void parse_header() {
    beast::error_code ec;
    size_t used = parser_->put(buffer_.data(), ec);
    scan_folds(used);
    buffer_.consume(used);
    if (ec == http::error::need_more) return read_header_some();
    if (!ec && !parser_->is_header_done()) return read_header_some();
    disarm_read_timer();
    on_header(ec);
  }

  void scan_folds(size_t used) {
    if (scan_obs_fold({static_cast<const char*>(buffer_.data().data()), used}, &line_start_))
      folded_ = true;
  }

  void on_header(beast::error_code ec) {
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
      return fail(431, "request_header_fields_too_large",
                  "request headers exceed " + std::to_string(srv_->limits.max_header_bytes) +
                      " bytes");
    if (ec == http::error::body_limit) return too_large();
    if (ec) return fail(400, "invalid_request", "malformed HTTP request: " + ec.message());
    busy_ = true;
    const auto& req = parser_->get();
    const bool http11 = req.version() >= 11;
    header_fields_ = static_cast<size_t>(std::distance(req.begin(), req.end()));

    // Framing (RFC 9112): anything that two parsers could read differently
    // is refused, and the connection closes without reading further.
    if (auto why = framing_refusal(req, folded_, parser_->chunked()))
      return fail(why->status, why->code, why->detail);
    // RFC 9110 §10.1.1: ignored in an HTTP/1.0 request.
    const bool send_continue = req.count(http::field::expect) > 0 && http11 && !parser_->is_done();

    // Authorization and rate limits, from the header alone.
    if (srv_->check) {
      std::optional<HttpResponse> refused;
      try {
        refused = srv_->check(req, peer_);
      } catch (const std::exception&) {
        return fail(500, "internal_error", "internal error");
      }
      if (refused) return refuse(std::make_shared<HttpResponse>(std::move(*refused)));
    }

    if (auto n = parser_->content_length(); n && *n > srv_->limits.max_body_bytes)
      return too_large();
    if (auto n = parser_->content_length(); n && *n > 0) {
      if (!srv_->reserve(static_cast<size_t>(*n))) return busy();
      reserved_ += static_cast<size_t>(*n);
    }

    if (!send_continue) return read_body();
    static const std::string kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
    stream_.expires_after(srv_->limits.write_timeout);
    net::async_write(stream_, net::buffer(kContinue),
                     [self = shared_from_this()](beast::error_code ec2, size_t) {
                       if (ec2) return self->close();
                       self->read_body();
                     });
  }

  // A chunked body reserves each chunk as its header arrives (Beast has
  // already checked the running total against max_body_bytes).
  void on_chunk_header(std::uint64_t size, beast::error_code& ec) {
    if (size == 0) return;
    if (!srv_->reserve(static_cast<size_t>(size))) {
      chunk_refused_ = true;
      ec = net::error::no_buffer_space;
      return;
    }
    reserved_ += static_cast<size_t>(size);
  }

  void read_body() {
    arm_read_timer(srv_->limits.body_timeout);
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, size_t) {
                       self->on_body(self->read_outcome(ec));
                     });
  }

  void on_body(beast::error_code ec) {
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
  void drop_trailers(HttpRequest& req) const {
    size_t i = 0;
    for (auto it = req.begin(); it != req.end();) {
      if (i++ < header_fields_) ++it;
      else it = req.erase(it);
    }
  }

  void release_body() {
    if (reserved_ == 0) return;
    srv_->buffered -= reserved_;
    reserved_ = 0;
  }

  void too_large() {
    fail(413, "payload_too_large",
         "request body exceeds " + std::to_string(srv_->limits.max_body_bytes) + " bytes");
  }

  void busy() {
    auto res = std::make_shared<HttpResponse>(srv_->problem(
        503, "busy", "the server is buffering too many request bodies; retry later"));
    res->set(http::field::retry_after, "1");
    refuse(std::move(res));
  }

  // Answers and closes: after a framing error the connection cannot be reused.
  void fail(int status, const std::string& code, const std::string& detail) {
    refuse(std::make_shared<HttpResponse>(srv_->problem(status, code, detail)));
  }
  void refuse(std::shared_ptr<HttpResponse> res) {
    release_body();
    busy_ = true;
    keep_alive_ = false;
    write(std::move(res));
  }

  void close() {
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

class SessionSink final : public StreamSink {
 public:
  explicit SessionSink(std::shared_ptr<Session> s) : s_(std::move(s)) {}
  void push(std::shared_ptr<const std::string> frame) override {
    if (s_->closed_ || !frame) return;
    const size_t n = frame->size();
    const size_t before = s_->pending_.fetch_add(n);
    // Past the bound: cut. (A lone frame may be larger than the bound.)
    if (before > 0 && before + n > s_->srv_->limits.max_stream_pending_bytes) {
      s_->pending_ -= n;
      net::post(s_->stream_.get_executor(), [s = s_] { s->cut(); });
      return;
    }
    net::post(s_->stream_.get_executor(), [s = s_, f = std::move(frame)]() mutable {
      s->push(std::move(f));
    });
  }
  bool closed() const override { return s_->closed_.load(); }
  size_t pending_bytes() const override { return s_->pending_.load(); }
  bool cut() const override { return s_->cut_.load(); }

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
  const std::string& peer() const override { return s_->peer_; }

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

HttpServer::HttpServer(HttpLimits limits, HttpHandler handler, ProblemMaker problem, HeaderCheck check)
    : impl_(std::make_unique<Impl>(std::move(limits), std::move(handler), std::move(problem),
                                   std::move(check))) {
  impl_->in_flight = &in_flight_;
  impl_->connections = &connections_;
}

HttpServer::~HttpServer() { stop(); }

int64_t HttpServer::cut_streams() const { return impl_->cut_streams.load(); }
size_t HttpServer::buffered_body_bytes() const { return impl_->buffered.load(); }

uint16_t HttpServer::start(const HostPort& address, std::string* error) {
  beast::error_code ec;
  auto ip = net::ip::make_address(address.host == "localhost" ? "127.0.0.1" : address.host, ec);
  if (ec) {
    *error = "bad address " + address.host + ": " + ec.message();
    return 0;
  }
  tcp::endpoint ep(ip, address.port);
  // On a strand of its own: accept completions and stop_accepting()'s close
  // never run at the same time on the two I/O threads.
  auto& acc = impl_->acceptor.emplace(net::make_strand(impl_->ioc));
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
  if (impl_->acceptor)
    net::post(impl_->acceptor->get_executor(), [this] {
      beast::error_code ignored;
      impl_->acceptor->close(ignored);
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
