// A small asynchronous HTTP/1.1 server on Boost.Beast, sized for the shop:
// a few I/O threads multiplex every connection, so slow clients, idle
// keep-alive connections and open Server-Sent-Event streams cost a socket and
// a buffer each — never a thread — and cannot starve purchases.
//
// Limits enforced before a handler sees anything: the whole header must
// arrive within `header_timeout` (slowloris) and fit in `max_header_bytes`
// (431); a body larger than `max_body_bytes` is refused from its
// Content-Length before it is read (413); a body that stalls gets 408;
// Content-Length together with Transfer-Encoding is 400. Such connections are
// closed after the answer.
//
// Handlers are asynchronous: they receive the request and a Responder, and may
// answer from any thread, once. A handler may instead turn the connection
// into an event stream (Responder::stream).
#pragma once

#include <atomic>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "api/address.h"

namespace giftcard {

namespace http = boost::beast::http;
using HttpRequest = http::request<http::string_body>;
using HttpResponse = http::response<http::string_body>;

struct HttpLimits {
  size_t max_body_bytes = 16u << 20;  // 16 MiB: a 100,000-code import is ~2.5 MB
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
};

class Responder {
 public:
  virtual ~Responder() = default;
  // Sends the response (Content-Length and keep-alive are set for you).
  virtual void send(HttpResponse res) = 0;
  // Sends `head` (status and headers only) and keeps the connection open as
  // an event stream; everything pushed to the sink follows it.
  virtual std::shared_ptr<StreamSink> stream(HttpResponse head) = 0;
};

using HttpHandler = std::function<void(HttpRequest&&, std::shared_ptr<Responder>)>;

// Builds the error responses the server itself sends (413, 431, 408, 400).
using ProblemMaker = std::function<HttpResponse(int status, const std::string& code,
                                                const std::string& detail)>;

class HttpServer {
 public:
  HttpServer(HttpLimits limits, HttpHandler handler, ProblemMaker problem);
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
  // After stop_accepting(): every request answered and every connection closed
  // (a request already waiting on a connection is read and answered first).
  bool drained() const;
  // Closes everything and joins the I/O threads.
  void stop();

  struct Impl;  // the sessions' view of the server (http_server.cc)

 private:
  std::unique_ptr<Impl> impl_;
  std::atomic<int64_t> in_flight_{0};
  std::atomic<int64_t> connections_{0};
};

}  // namespace giftcard
