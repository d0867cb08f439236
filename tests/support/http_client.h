// A small blocking HTTP/1.1 client for the process tests: raw POSIX sockets
// (so that a test can send any bytes at all — half a header, a huge
// Content-Length and no body, a byte every few seconds) with poll() deadlines
// on every wait, and Boost.Beast's response parser for what comes back.
//
//   HttpConnection c(port);
//   HttpReply r = c.request("POST", "/api/purchases", body, {{"Idempotency-Key", "k1"}});
//   if (r.ok()) use(r.status, r.header("Content-Type"), r.json());
//
// A connection is kept alive between requests and reopened only when the
// server said `Connection: close` (or closed it); `connects()` counts how
// often it connected. Transport failures never throw: the reply has status 0
// and `error` says what happened ("timeout", "connection closed", "reset", ...).
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace giftcard::test {

using Headers = std::vector<std::pair<std::string, std::string>>;

inline bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    auto x = static_cast<unsigned char>(a[i]), y = static_cast<unsigned char>(b[i]);
    if (std::tolower(x) != std::tolower(y)) return false;
  }
  return true;
}

struct HttpReply {
  int status = 0;     // 0: no response; see `error`
  std::string error;  // transport failure
  std::string reason;
  Headers headers;
  std::string body;
  bool keep_alive = false;

  bool ok() const { return status != 0; }
  bool has_header(std::string_view name) const {
    for (const auto& [k, v] : headers)
      if (iequals(k, name)) return true;
    return false;
  }
  std::string header(std::string_view name) const {
    for (const auto& [k, v] : headers)
      if (iequals(k, name)) return v;
    return {};
  }
  size_t header_count(std::string_view name) const {
    size_t n = 0;
    for (const auto& [k, v] : headers) n += iequals(k, name) ? 1 : 0;
    return n;
  }
  // The body as JSON; a discarded value if it is not JSON.
  nlohmann::json json() const { return nlohmann::json::parse(body, nullptr, false); }
  // For assertion messages.
  std::string describe() const {
    if (!ok()) return "no response (" + error + ")";
    std::string b = body.size() > 600 ? body.substr(0, 600) + "..." : body;
    return std::to_string(status) + " " + reason + " [" + header("Content-Type") + "] " + b;
  }
};

class HttpConnection {
 public:
  using ms = std::chrono::milliseconds;

  explicit HttpConnection(uint16_t port, std::string host = "127.0.0.1")
      : host_(std::move(host)), port_(port) {}
  ~HttpConnection() { close(); }
  HttpConnection(const HttpConnection&) = delete;
  HttpConnection& operator=(const HttpConnection&) = delete;
  HttpConnection(HttpConnection&& o) noexcept { *this = std::move(o); }
  HttpConnection& operator=(HttpConnection&& o) noexcept {
    if (this != &o) {
      close();
      host_ = std::move(o.host_);
      port_ = o.port_;
      fd_ = std::exchange(o.fd_, -1);
      connects_ = o.connects_;
      pending_ = std::move(o.pending_);
      default_headers = std::move(o.default_headers);
      timeout = o.timeout;
    }
    return *this;
  }

  // Sent with every request() (e.g. Authorization).
  Headers default_headers;
  // Deadline for one request's response.
  ms timeout{30000};

  bool is_open() const { return fd_ >= 0; }
  int connects() const { return connects_; }
  int fd() const { return fd_; }
  uint16_t port() const { return port_; }

  // True if the server has closed (or reset) the open connection: an idle
  // keep-alive connection the server timed out. Checked before each request,
  // so that a request is never written into a connection known to be dead.
  bool peer_closed() {
    if (fd_ < 0 || !pending_.empty()) return false;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, 0) <= 0) return false;
    char c;
    ssize_t n = ::recv(fd_, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
  }

  // Opens the connection (if closed, or closed by the server while idle).
  // False with *error on failure.
  bool connect(std::string* error = nullptr) {
    if (fd_ >= 0 && peer_closed()) close();
    if (fd_ >= 0) return true;
    pending_.clear();
    int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0) return fail(error, "socket: " + std::string(std::strerror(errno)));
    int one = 1;
    ::setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port_);
    if (::inet_pton(AF_INET, host_.c_str(), &a.sin_addr) != 1) {
      ::close(s);
      return fail(error, "bad address " + host_);
    }
    int rc;
    do rc = ::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
    while (rc != 0 && errno == EINTR);
    if (rc != 0) {
      std::string why = std::strerror(errno);
      ::close(s);
      return fail(error, "connect to " + host_ + ":" + std::to_string(port_) + ": " + why);
    }
    fd_ = s;
    ++connects_;
    return true;
  }

  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    pending_.clear();
  }

  // Half-closes the sending side (the server reads EOF).
  void shutdown_send() {
    if (fd_ >= 0) ::shutdown(fd_, SHUT_WR);
  }

  // Sends all of `bytes`. False (and *error) on failure.
  bool send(std::string_view bytes, std::string* error = nullptr, ms limit = ms(30000)) {
    if (fd_ < 0 && !connect(error)) return false;
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (!bytes.empty()) {
      ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        bytes.remove_prefix(static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        int left = left_ms(deadline);
        if (left <= 0) return fail(error, "send timeout");
        pollfd p{fd_, POLLOUT, 0};
        ::poll(&p, 1, left);
        continue;
      }
      return fail(error, errno == EPIPE || errno == ECONNRESET ? "reset" : std::strerror(errno));
    }
    return true;
  }

  // Reads one response (`head_only`: the status line and headers, e.g. of an
  // event stream; the rest stays readable through read_some()).
  HttpReply read_reply(ms limit, bool head_only = false) {
    HttpReply r;
    if (fd_ < 0) {
      r.error = "not connected";
      return r;
    }
    namespace http = boost::beast::http;
    http::response_parser<http::string_body> parser;
    parser.eager(!head_only);  // head only: leave the body's bytes unparsed
    parser.body_limit(std::uint64_t{1} << 30);
    parser.header_limit(1u << 20);
    auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
      boost::beast::error_code ec;
      while (!pending_.empty()) {
        size_t used = parser.put(boost::asio::buffer(pending_.data(), pending_.size()), ec);
        pending_.erase(0, used);
        if (ec == http::error::need_more) {
          ec = {};
          break;
        }
        if (ec) {
          r.error = "bad response: " + ec.message();
          close();
          return r;
        }
        if (parser.is_done() || (head_only && parser.is_header_done())) break;
        if (used == 0) break;
      }
      if (parser.is_done() || (head_only && parser.is_header_done())) break;
      std::string chunk;
      std::string err;
      int got = read_some(&chunk, ms(left_ms(deadline)), &err);
      if (got > 0) {
        pending_ += chunk;
        continue;
      }
      if (got == 0 && parser.is_header_done() && !parser.chunked() && !parser.content_length()) {
        parser.put_eof(ec);  // a body delimited by the end of the connection
        if (!ec) break;
      }
      r.error = got == 0
                    ? (parser.got_some() ? "connection closed mid-response" : "connection closed")
                    : err;
      close();
      return r;
    }
    auto& res = parser.get();
    r.status = static_cast<int>(res.result_int());
    r.reason = std::string(res.reason());
    for (const auto& f : res)
      r.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
    r.keep_alive = res.keep_alive();
    if (!head_only) {
      r.body = std::move(res.body());
      if (!r.keep_alive) close();
    }
    return r;
  }

  // Reads whatever arrives within `limit` (at least one byte). Returns the
  // number of bytes appended to *out; 0 at the end of the stream (the peer
  // closed); -1 on a timeout or an error (*error says which). Bytes already
  // buffered by read_reply come first.
  int read_some(std::string* out, ms limit, std::string* error = nullptr) {
    if (!pending_.empty()) {
      int n = static_cast<int>(pending_.size());
      out->append(pending_);
      pending_.clear();
      return n;
    }
    if (fd_ < 0) return fail(error, "not connected"), -1;
    auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
      pollfd p{fd_, POLLIN, 0};
      int left = left_ms(deadline);
      int pr = ::poll(&p, 1, std::max(left, 0));
      if (pr < 0 && errno == EINTR) continue;
      if (pr == 0) return fail(error, "timeout"), -1;
      char buf[16384];
      ssize_t n = ::recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
      if (n > 0) {
        out->append(buf, static_cast<size_t>(n));
        return static_cast<int>(n);
      }
      if (n == 0) return 0;
      if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
      return fail(error, errno == ECONNRESET ? "reset" : std::strerror(errno)), -1;
    }
  }

  // Waits until the server closes the connection (EOF or reset), collecting
  // anything it sends meanwhile into *received. False on a timeout.
  bool wait_closed(ms limit, std::string* received = nullptr, std::string* how = nullptr) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    std::string sink;
    for (;;) {
      std::string err;
      int got = read_some(received ? received : &sink, ms(std::max(left_ms(deadline), 0)), &err);
      if (got > 0) continue;
      if (got == 0 || err != "timeout") {
        if (how) *how = got == 0 ? "eof" : err;
        close();
        return true;
      }
      return false;
    }
  }

  // The bytes of a request: request line, Host, default and extra headers,
  // Content-Length when there is a body (or for POST/PUT), then the body.
  std::string format(std::string_view method, std::string_view target, std::string_view body,
                     const Headers& extra) const {
    std::string req;
    req.reserve(256 + body.size());
    req.append(method).append(" ").append(target).append(" HTTP/1.1\r\n");
    req.append("Host: ").append(host_).append(":").append(std::to_string(port_)).append("\r\n");
    for (const auto& [k, v] : default_headers) req.append(k).append(": ").append(v).append("\r\n");
    for (const auto& [k, v] : extra) req.append(k).append(": ").append(v).append("\r\n");
    if (!body.empty() || method == "POST" || method == "PUT")
      req.append("Content-Length: ").append(std::to_string(body.size())).append("\r\n");
    req.append("\r\n").append(body);
    return req;
  }

  // One request and its response, on the kept-alive connection.
  HttpReply request(std::string_view method, std::string_view target, std::string_view body = {},
                    const Headers& extra = {}) {
    HttpReply r;
    if (!connect(&r.error)) return r;
    if (!send(format(method, target, body, extra), &r.error)) {
      close();
      return r;
    }
    return read_reply(timeout);
  }

  HttpReply get(std::string_view target, const Headers& extra = {}) {
    return request("GET", target, {}, extra);
  }
  // A JSON POST (Content-Type: application/json unless `extra` sets one).
  HttpReply post(std::string_view target, std::string_view body, const Headers& extra = {}) {
    bool typed = false;
    for (const auto& [k, v] : extra) typed = typed || iequals(k, "Content-Type");
    if (typed) return request("POST", target, body, extra);
    Headers all;
    all.reserve(extra.size() + 1);
    all.emplace_back("Content-Type", "application/json");
    for (const auto& h : extra) all.push_back(h);
    return request("POST", target, body, all);
  }
  HttpReply post(std::string_view target, const nlohmann::json& body, const Headers& extra = {}) {
    return post(target, std::string_view(body.dump()), extra);
  }
  HttpReply del(std::string_view target, const Headers& extra = {}) {
    return request("DELETE", target, {}, extra);
  }

 private:
  static int left_ms(std::chrono::steady_clock::time_point deadline) {
    auto left = std::chrono::duration_cast<ms>(deadline - std::chrono::steady_clock::now());
    return static_cast<int>(std::max<int64_t>(left.count(), 0));
  }
  static bool fail(std::string* error, std::string why) {
    if (error) *error = std::move(why);
    return false;
  }

  std::string host_;
  uint16_t port_ = 0;
  int fd_ = -1;
  int connects_ = 0;
  std::string pending_;  // received, not yet parsed
};

// A Server-Sent-Events frame: the fields of one event (comments skipped).
struct SseEvent {
  std::string id;
  std::string event;
  std::string data;
};

// Splits complete frames off the front of *buf (frames end with a blank
// line); comment lines (": ping") are dropped, incomplete frames stay.
inline std::vector<SseEvent> take_sse_events(std::string* buf) {
  std::vector<SseEvent> out;
  for (;;) {
    auto end = buf->find("\n\n");
    if (end == std::string::npos) break;
    std::string frame = buf->substr(0, end);
    buf->erase(0, end + 2);
    SseEvent ev;
    bool any = false;
    size_t pos = 0;
    while (pos <= frame.size()) {
      auto nl = frame.find('\n', pos);
      std::string line = frame.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
      pos = nl == std::string::npos ? frame.size() + 1 : nl + 1;
      if (line.empty() || line[0] == ':') continue;
      auto colon = line.find(':');
      std::string field = line.substr(0, colon);
      std::string value = colon == std::string::npos ? "" : line.substr(colon + 1);
      if (!value.empty() && value[0] == ' ') value.erase(0, 1);
      if (field == "id") ev.id = value, any = true;
      else if (field == "event") ev.event = value, any = true;
      else if (field == "data") ev.data += (ev.data.empty() ? "" : "\n") + value, any = true;
    }
    if (any) out.push_back(std::move(ev));
  }
  return out;
}

// One POST /api/cards/{card}/codes of `count` distinct filler codes, each
// padded to `length` characters ("<prefix>-<batch>-<i>-QQQ..."), for tests
// that need a big log quickly. Returns the request (its body size is the
// history it adds) and the reply.
struct CodeImport {
  size_t body_bytes = 0;
  HttpReply reply;
};
inline CodeImport import_filler_codes(HttpConnection& c, const std::string& card,
                                      const std::string& prefix, int batch, int count,
                                      size_t length) {
  nlohmann::json codes = nlohmann::json::array();
  for (int i = 0; i < count; ++i) {
    std::string code = prefix + "-" + std::to_string(batch) + "-" + std::to_string(i) + "-";
    code.resize(std::max(length, code.size()), 'Q');
    codes.push_back({{"code", code}});
  }
  std::string body = nlohmann::json{{"codes", codes}}.dump();
  CodeImport out;
  out.body_bytes = body.size();
  out.reply = c.post("/api/cards/" + card + "/codes", std::string_view(body));
  return out;
}

}  // namespace giftcard::test
