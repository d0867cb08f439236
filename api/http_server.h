// A small asynchronous HTTP/1.1 server on Boost.Beast, sized for the shop:
// a few I/O threads multiplex every connection, so slow clients, idle
// keep-alive connections and open Server-Sent-Event streams cost a socket and
// a buffer each — never a thread — and cannot starve purchases.
//
// Limits enforced before a handler sees anything: the whole header must
// arrive within `header_timeout` (slowloris) and fit in `max_header_bytes`
// (431); a body larger than `max_body_bytes` is refused from its
// Content-Length before it is read (413); a body that stalls gets 408.
// Framing (RFC 9112): the only transfer coding accepted is exactly `chunked`
// (another coding: 501; Transfer-Encoding in HTTP/1.0 or next to
// Content-Length, several or malformed Content-Length, a missing or repeated
// Host in HTTP/1.1, an obs-folded header line: 400); `Expect` may only be
// `100-continue` (417). Such connections are closed after the answer, and no
// byte after the header is ever read as a request.
//
// Then the HeaderCheck (authorization, rate limit) decides from the header
// alone; then the body's bytes are reserved against a cap shared by all
// connections (`max_buffered_body_bytes`, 503 busy beyond it) — from the
// Content-Length, or chunk by chunk — and only then is `100 Continue` sent and
// the body read. The reservation ends when the handler call returns (or the
// connection fails). A chunked body's trailer fields are discarded.
//
// Handlers are asynchronous: they receive the request and a Responder, and may
// answer from any thread, once. A handler may instead turn the connection
// into an event stream (Responder::stream). An event-stream client is cut
// (StreamSink::cut) when its queue passes max_stream_pending_bytes or
// max_stream_backlog frames, or when a write to it does not complete within
// stream_stall_timeout.
#pragma once

#include <atomic>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "api/address.h"

namespace giftcard {

namespace http = boost::beast::http;
using HttpRequest = http::request<http::string_body>;
using HttpResponse = http::response<http::string_body>;

struct HttpLimits {
  size_t max_body_bytes = 16u << 20;  // 16 MiB: a 100,000-code import is ~2.5 MB
  // Request-body bytes buffered at once over all connections (reserved from
  // the header, released when the handler returns); beyond it: 503 busy.
  size_t max_buffered_body_bytes = 64u << 20;
  size_t max_header_bytes = 8u << 10;
  // The request header (first byte to blank line) must arrive within this;
  // it is also how long an idle keep-alive connection is kept.
  std::chrono::seconds header_timeout{10};
  std::chrono::seconds body_timeout{30};
  // On shutdown, how long a connection between requests may still deliver a
  // request it already sent before it is closed.
  std::chrono::milliseconds drain_grace{500};
  std::chrono::seconds write_timeout{30};
  // Frames queued for one event-stream client before it counts as too slow
  // and is disconnected (it can resume with Last-Event-ID).
  size_t max_stream_backlog = 8192;
  // Bytes queued for one event-stream client and not yet written to its
  // socket; past it the client is cut. (A single frame larger than this is
  // still sent to a client that has nothing else pending.)
  size_t max_stream_pending_bytes = 1u << 20;
  // An event-stream write that has not completed within this cuts the client.
  std::chrono::seconds stream_stall_timeout{10};
  int io_threads = 2;
};

// The write side of one event stream. Thread-safe.
class StreamSink {
 public:
  virtual ~StreamSink() = default;
  // Queues bytes (already formatted frames) for the client.
  virtual void push(std::shared_ptr<const std::string> frame) = 0;
  // True once the client is gone or was too slow; stop pushing.
  virtual bool closed() const = 0;
  // Bytes pushed and not yet written to the socket.
  virtual size_t pending_bytes() const = 0;
  // True iff the server closed the stream for being too slow (its queue
  // passed max_stream_pending_bytes or max_stream_backlog, or a write stalled
  // for stream_stall_timeout), as opposed to the client leaving or shutdown.
  virtual bool cut() const = 0;
};

class Responder {
 public:
  virtual ~Responder() = default;
  // Sends the response (Content-Length and keep-alive are set for you).
  virtual void send(HttpResponse res) = 0;
  // Sends `head` (status and headers only) and keeps the connection open as
  // an event stream; everything pushed to the sink follows it.
  virtual std::shared_ptr<StreamSink> stream(HttpResponse head) = 0;
  // The client's IP address as text ("127.0.0.1", "::1").
  virtual const std::string& peer() const = 0;
};

using HttpHandler = std::function<void(HttpRequest&&, std::shared_ptr<Responder>)>;

// Builds the error responses the server itself sends (400, 408, 413, 417,
// 431, 501, 503).
using ProblemMaker =
    std::function<HttpResponse(int status, const std::string& code, const std::string& detail)>;

// Called once per request after its header has been read and passed the framing checks, before any
// body byte is read and before a 100 Continue is sent. `peer` is the client's IP address as text
// ("127.0.0.1", "::1"). A returned response is sent at once with Connection: close, the body is
// never read, and the connection closes.
using HeaderCheck = std::function<std::optional<HttpResponse>(const http::request_header<>& header,
                                                              const std::string& peer)>;

// The framing rules (RFC 9112) the server enforces on a parsed request
// header, also used by the fuzz harness to judge requests as the server does.
// `folded`: a header line started with SP or HTAB in the raw bytes (Beast
// unfolds such lines silently; see scan_obs_fold). `parser_chunked`: Beast's
// parser decided the body is chunked. Nullopt: the framing is acceptable.
struct FramingRefusal {
  int status = 400;
  std::string code;
  std::string detail;
};
std::optional<FramingRefusal> framing_refusal(const http::request_header<>& req, bool folded,
                                              bool parser_chunked);
// Scans raw header bytes for a line that starts with SP or HTAB. `line_start`
// carries whether the previous chunk ended a line (start a header with false:
// the request line cannot be folded). True if a folded line was seen.
bool scan_obs_fold(std::string_view raw, bool* line_start);

class HttpServer {
 public:
  HttpServer(HttpLimits limits, HttpHandler handler, ProblemMaker problem, HeaderCheck check = {});
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and starts the I/O threads. Returns the bound port, or 0 with *error.
  uint16_t start(const HostPort& address, std::string* error);
  // Stops accepting; open connections finish their current request and close.
  void stop_accepting();
  // Requests handed to the handler and not yet answered.
  int64_t in_flight() const { return in_flight_.load(); }
  int64_t connections() const { return connections_.load(); }
  // Event streams cut for being too slow (StreamSink::cut), total.
  int64_t cut_streams() const;
  // Request-body bytes reserved right now (max_buffered_body_bytes).
  size_t buffered_body_bytes() const;
  // After stop_accepting(): every request answered and every connection closed
  // (a request already waiting on a connection is read and answered first).
  bool drained() const;
  // Closes everything and joins the I/O threads.
  void stop();

  struct Impl;  // the sessions' view of the server (api/http_session.h)

 private:
  std::unique_ptr<Impl> impl_;
  std::atomic<int64_t> in_flight_{0};
  std::atomic<int64_t> connections_{0};
};

}  // namespace giftcard
