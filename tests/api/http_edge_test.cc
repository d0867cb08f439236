// The HTTP edge (issue #14) against a real `giftcard serve` child over raw
// sockets: request framing (Transfer-Encoding, Content-Length, Host,
// obs-fold) that two parsers could read differently is refused and the
// connection closed, so that no request can be smuggled in a body;
// `Expect: 100-continue` is honoured, and a request refused from its header
// (401) is answered before any of its body is read; a flood of unauthorized
// bodies costs the server no memory; the cap on request-body bytes buffered
// over all connections answers 503 busy; and an event-stream client that
// never reads is cut.
//
// Every case here but chunked_bodies_still_work (which guards what must keep
// working) failed on the server before issue #14 (Beast's parser used as it
// comes): it read bodies before authorization, took `gzip, chunked` for
// chunked and `identity` for no body (the body then parsed as the next
// request), sent no 100 Continue, accepted folded lines, a missing Host and
// repeated Content-Lengths, and queued an event stream's backfill without
// bound.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <boost/beast/http.hpp>
#include <boost/test/unit_test.hpp>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/http_client.h"
#include "tests/support/process.h"
#include "tests/support/serve_child.h"

namespace giftcard::http_edge_test {
namespace {

namespace http = boost::beast::http;
using Clock = std::chrono::steady_clock;
using json = nlohmann::json;
using namespace std::chrono_literals;
using ms = std::chrono::milliseconds;
using test::by_build;
using test::Headers;
using test::HttpConnection;
using test::HttpReply;
using test::import_filler_codes;
using test::ms_since;
using test::ServeArgs;
using test::ServeChild;
using test::TempDir;

const std::string kAdmin = "edge-admin-7f3c9a1e5b2d4f60";
const std::string kApi = "edge-api-0b8e6d4c2a197f35";
const std::string kAuth = "Authorization: Bearer " + kAdmin + "\r\n";

// serve with both tokens (GIFTCARD_ADMIN_TOKEN / GIFTCARD_API_TOKEN).
ServeArgs tokened(std::vector<std::string> flags = {}) {
  ServeArgs a;
  a.flags = std::move(flags);
  a.env = {{"GIFTCARD_ADMIN_TOKEN", kAdmin}, {"GIFTCARD_API_TOKEN", kApi}};
  return a;
}

std::string card_json(const std::string& id) {
  return json{{"id", id}, {"name", "Card " + id}, {"price", 100}, {"value", 100}}.dump();
}

// POST /api/cards with the admin token; `framing` are the framing fields
// (Content-Length, Transfer-Encoding, Expect, ...), each ending in CRLF.
std::string cards_head(const std::string& framing, const std::string& version = "HTTP/1.1",
                       const std::string& auth = kAuth) {
  return "POST /api/cards " + version + "\r\nHost: t\r\n" + auth +
         "Content-Type: application/json\r\n" + framing + "\r\n";
}

// One parsed response of a raw exchange.
struct Response {
  int status = 0;
  std::string connection;  // the Connection header
  std::string body;
  std::string code() const {
    json j = json::parse(body, nullptr, false);
    return j.is_object() && j.contains("code") && j["code"].is_string()
               ? j["code"].get<std::string>()
               : "";
  }
  std::string describe() const {
    return std::to_string(status) + " [Connection: " + connection + "] " + body.substr(0, 300);
  }
};

// Every complete response in `bytes` (what one connection received), in order.
std::vector<Response> parse_responses(std::string bytes) {
  std::vector<Response> out;
  while (!bytes.empty()) {
    http::response_parser<http::string_body> p;
    p.eager(true);
    p.body_limit(std::uint64_t{1} << 30);
    boost::beast::error_code ec;
    size_t used = p.put(boost::asio::buffer(bytes.data(), bytes.size()), ec);
    if (ec || !p.is_done()) break;  // incomplete (or not HTTP): stop here
    bytes.erase(0, used);
    Response r;
    r.status = static_cast<int>(p.get().result_int());
    r.connection = std::string(p.get()[http::field::connection]);
    r.body = p.get().body();
    out.push_back(std::move(r));
  }
  return out;
}

std::string describe(const std::vector<Response>& rs) {
  std::ostringstream os;
  os << rs.size() << " response(s)";
  for (const auto& r : rs) os << "\n  " << r.describe();
  return os.str();
}

// What the server sent back for `bytes`, written at once, until it closed
// the connection. *closed: it did close within `limit`.
std::string exchange(uint16_t port, const std::string& bytes, bool* closed,
                     ms limit = by_build<ms>(5s, 20s)) {
  HttpConnection c(port);
  std::string received, err;
  *closed = false;
  if (!c.send(bytes, &err)) {
    // The server may close before all of it is written: whatever it answered counts.
    *closed = c.wait_closed(limit, &received);
    return received;
  }
  *closed = c.wait_closed(limit, &received);
  return received;
}

// Exactly one response with a status in `statuses` (and the problem code
// that status has here), Connection: close, and the connection closed.
void expect_one_refusal(const std::string& what, const std::string& received, bool closed,
                        const std::set<int>& statuses) {
  auto rs = parse_responses(received);
  BOOST_TEST(closed, what << ": the server did not close the connection; got " << describe(rs));
  BOOST_TEST_REQUIRE(rs.size() == 1u,
                     what << ": expected exactly one response, got " << describe(rs));
  const Response& r = rs.front();
  BOOST_TEST(statuses.count(r.status) == 1u, what << ": " << r.describe());
  const std::string want = r.status == 501   ? "not_implemented"
                           : r.status == 417 ? "expectation_failed"
                           : r.status == 401 ? "unauthorized"
                           : r.status == 503 ? "busy"
                                             : "invalid_request";
  BOOST_TEST(r.code() == want, what << ": " << r.describe());
  BOOST_TEST(test::iequals(r.connection, "close"),
             what << ": no Connection: close: " << r.describe());
}

using test::log_position;

// GET /api/cards/<id> once the read side has caught up with the whole log.
int card_status(uint16_t port, const std::string& id) {
  const int64_t after = log_position(port);
  HttpConnection c(port);
  return c
      .get("/api/cards/" + id + "?after=" + std::to_string(after),
           {{"Authorization", "Bearer " + kAdmin}})
      .status;
}

// The server's resident set in KiB (/proc/<pid>/status VmRSS); 0 if unreadable.
int64_t rss_kib(pid_t pid) {
  std::string s = test::read_file_text("/proc/" + std::to_string(pid) + "/status");
  auto at = s.find("VmRSS:");
  if (at == std::string::npos) return 0;
  return std::atoll(s.c_str() + at + 6);
}

// A plain blocking TCP connection to the server; `rcvbuf` > 0 shrinks its
// receive buffer (set before connect, so that the window is small from the start).
int connect_raw(uint16_t port, int rcvbuf = 0) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  BOOST_REQUIRE(fd >= 0);
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (rcvbuf > 0) ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  ::inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  int rc;
  do rc = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  while (rc != 0 && errno == EINTR);
  BOOST_REQUIRE_MESSAGE(rc == 0, "connect: " << std::strerror(errno));
  return fd;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(http_edge)

// RFC 9112 §6: only exactly `chunked` is a transfer coding this server
// decodes. Every other value is refused from the header (501 for a coding it
// does not implement, 400 for a broken field) and the connection closes: the
// body — here a second request — is never read, executed or answered.
BOOST_AUTO_TEST_CASE(transfer_encoding_other_than_chunked_is_refused_and_nothing_is_smuggled) {
  TempDir dir;
  ServeChild srv(dir.str("data"), dir.str("serve.log"), tokened());
  struct Case {
    std::string name;
    std::string framing;
    std::string version;
    std::set<int> statuses;
  };
  const std::vector<Case> cases = {
      {"xchunked", "Transfer-Encoding: xchunked\r\n", "HTTP/1.1", {501}},
      {"identity", "Transfer-Encoding: identity\r\n", "HTTP/1.1", {501}},
      {"gzip", "Transfer-Encoding: gzip\r\n", "HTTP/1.1", {501}},
      {"chunked, identity", "Transfer-Encoding: chunked, identity\r\n", "HTTP/1.1", {501}},
      {"gzip, chunked", "Transfer-Encoding: gzip, chunked\r\n", "HTTP/1.1", {501}},
      {"chunked;ext", "Transfer-Encoding: chunked;x=1\r\n", "HTTP/1.1", {501, 400}},
      {"gzip then chunked fields",
       "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n",
       "HTTP/1.1",
       {501, 400}},
      {"chunked then identity fields",
       "Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n",
       "HTTP/1.1",
       {501, 400}},
      {"chunked twice",
       "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
       "HTTP/1.1",
       {501, 400}},
      {"an empty list element", "Transfer-Encoding: chunked,\r\n", "HTTP/1.1", {501, 400}},
      {"an empty value", "Transfer-Encoding: \r\n", "HTTP/1.1", {501, 400}},
      {"chunked in HTTP/1.0", "Transfer-Encoding: chunked\r\n", "HTTP/1.0", {400}},
      {"gzip in HTTP/1.0", "Transfer-Encoding: gzip\r\n", "HTTP/1.0", {400}},
      {"Content-Length and chunked",
       "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
       "HTTP/1.1",
       {400}},
      {"chunked and Content-Length",
       "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
       "HTTP/1.1",
       {400}},
      {"gzip and Content-Length",
       "Transfer-Encoding: gzip\r\nContent-Length: 0\r\n",
       "HTTP/1.1",
       {400}},
  };
  const int64_t start = log_position(srv.port());
  std::vector<std::string> smuggled_ids;
  int n = 0;
  for (const Case& c : cases) {
    // Two bodies: an empty chunked body and a GET, and a whole POST that
    // would create a card if it were ever read as a request.
    const std::string id = "smuggled-" + std::to_string(n++);
    smuggled_ids.push_back(id);
    const std::string post = cards_head("Content-Length: " + std::to_string(card_json(id).size()) +
                                        "\r\n") +
                             card_json(id);
    const std::vector<std::pair<std::string, std::string>> bodies = {
        {"a GET after an empty chunked body",
         "0\r\n\r\nGET /api/cards/" + id + " HTTP/1.1\r\nHost: t\r\n\r\n"},
        {"a whole POST", post},
        {"a POST in a chunk", "3\r\nabc\r\n0\r\n\r\n" + post},
    };
    for (const auto& [how, body] : bodies) {
      bool closed = false;
      std::string got = exchange(srv.port(), cards_head(c.framing, c.version) + body, &closed);
      expect_one_refusal("Transfer-Encoding case '" + c.name + "' with " + how, got, closed,
                         c.statuses);
    }
  }
  for (const auto& id : smuggled_ids)
    BOOST_TEST(card_status(srv.port(), id) == 404, "the smuggled POST created " << id);
  BOOST_TEST(log_position(srv.port()) == start, "a refused request changed the log");
  BOOST_TEST(srv.alive());
}

// `chunked` itself (any case, surrounding whitespace) still works, chunk by
// chunk, and the connection stays usable: a request pipelined after the last
// chunk is answered too.
BOOST_AUTO_TEST_CASE(chunked_bodies_still_work) {
  TempDir dir;
  ServeChild srv(dir.str("data"), dir.str("serve.log"), tokened());
  int n = 0;
  for (const std::string te : {"chunked", "Chunked", " CHUNKED\t", "chunked"}) {
    // The last one ends with trailer fields (discarded; they cannot add a
    // field the header checks did not see).
    const std::string trailer = n == 3 ? "X-Checksum: abc\r\nContent-Type: text/plain\r\n" : "";
    const std::string id = "chunky-" + std::to_string(n++);
    const std::string body = card_json(id);
    const size_t half = body.size() / 2;
    auto chunk = [](const std::string& s) {
      char size[16];
      std::snprintf(size, sizeof size, "%zx", s.size());
      return std::string(size) + "\r\n" + s + "\r\n";
    };
    const std::string req = cards_head("Transfer-Encoding: " + te + "\r\n") +
                            chunk(body.substr(0, half)) + chunk(body.substr(half)) + "0\r\n" +
                            trailer + "\r\n" +
                            "GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    bool closed = false;
    auto rs = parse_responses(exchange(srv.port(), req, &closed));
    BOOST_TEST_REQUIRE(rs.size() == 2u, "Transfer-Encoding '" << te << "': " << describe(rs));
    BOOST_TEST(rs[0].status == 201, "chunked POST: " << rs[0].describe());
    BOOST_TEST(!test::iequals(rs[0].connection, "close"),
               "a chunked request closed the connection");
    BOOST_TEST(rs[1].status == 200, "the pipelined GET: " << rs[1].describe());
    BOOST_TEST(closed);
    BOOST_TEST(card_status(srv.port(), id) == 200, "the card of the chunked POST is not there");
  }
}

// Content-Length must be one decimal number (RFC 9112 §6.3): a repeated
// field, even with the same value, or a list is refused and the connection
// closed.
BOOST_AUTO_TEST_CASE(repeated_or_listed_content_length_is_refused) {
  TempDir dir;
  ServeChild srv(dir.str("data"), dir.str("serve.log"), tokened());
  const std::string body = card_json("cl-1");
  const std::string len = std::to_string(body.size());
  for (const auto& [name, framing] : std::vector<std::pair<std::string, std::string>>{
           {"the same Content-Length twice",
            "Content-Length: " + len + "\r\nContent-Length: " + len + "\r\n"},
           {"a Content-Length list", "Content-Length: " + len + ", " + len + "\r\n"},
           {"two different Content-Lengths",
            "Content-Length: " + len + "\r\nContent-Length: 3\r\n"},
           {"a signed Content-Length", "Content-Length: +" + len + "\r\n"},
       }) {
    bool closed = false;
    std::string got = exchange(srv.port(), cards_head(framing) + body, &closed);
    expect_one_refusal(name, got, closed, {400});
  }
  BOOST_TEST(card_status(srv.port(), "cl-1") == 404);
}

// RFC 9112 §3.2: an HTTP/1.1 request has exactly one Host. §5.2: a line that
// starts with whitespace (obs-fold) is refused, not unfolded.
BOOST_AUTO_TEST_CASE(host_and_obs_fold) {
  TempDir dir;
  ServeChild srv(dir.str("data"), dir.str("serve.log"), tokened());
  const std::vector<std::pair<std::string, std::string>> rows = {
      {"HTTP/1.1 without Host", "GET /healthz HTTP/1.1\r\n\r\n"},
      {"HTTP/1.1 without Host, keep-alive",
       "GET /healthz HTTP/1.1\r\nConnection: keep-alive\r\n\r\n"},
      {"two Host fields", "GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"},
      {"two Host fields in HTTP/1.0", "GET /healthz HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n"},
      {"obs-fold with SP", "GET /healthz HTTP/1.1\r\nHost: a\r\nX-Note: one\r\n two\r\n\r\n"},
      {"obs-fold with HTAB", "GET /healthz HTTP/1.1\r\nHost: a\r\nX-Note: one\r\n\ttwo\r\n\r\n"},
      {"obs-fold of Authorization",
       "GET /api/admin/state HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer\r\n " + kAdmin +
           "\r\n\r\n"},
      {"obs-fold of Transfer-Encoding",
       "POST /api/cards HTTP/1.1\r\nHost: a\r\n" + kAuth +
           "Transfer-Encoding: gzip,\r\n chunked\r\n\r\n0\r\n\r\n"},
      {"obs-fold of Host", "GET /healthz HTTP/1.1\r\nHost:\r\n a\r\n\r\n"},
  };
  for (const auto& [name, bytes] : rows) {
    bool closed = false;
    // A second request after it must not be answered either.
    std::string got = exchange(srv.port(), bytes + "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n",
                               &closed);
    expect_one_refusal(name, got, closed, {400});
  }
  // HTTP/1.0 needs no Host; a normal HTTP/1.1 request is unchanged.
  bool closed = false;
  auto rs = parse_responses(exchange(srv.port(), "GET /healthz HTTP/1.0\r\n\r\n", &closed));
  BOOST_TEST_REQUIRE(rs.size() == 1u, describe(rs));
  BOOST_TEST(rs[0].status == 200, rs[0].describe());
  HttpConnection c(srv.port());
  BOOST_TEST(c.get("/healthz").status == 200);
  BOOST_TEST(c.get("/healthz").status == 200);
  BOOST_TEST(c.connects() == 1, "keep-alive broke");
}

// Expect: 100-continue (RFC 9110 §10.1.1): the 100 comes once the header has
// passed every check (authorization included), then the final answer. A
// request refused from its header gets the refusal at once, without a 100,
// and its body is never read. Any other expectation is 417.
BOOST_AUTO_TEST_CASE(expect_100_continue) {
  TempDir dir;
  ServeChild srv(dir.str("data"), dir.str("serve.log"), tokened());
  const std::string body = card_json("expect-1");
  const std::string framing = "Content-Length: " + std::to_string(body.size()) +
                              "\r\nExpect: 100-continue\r\n";
  {
    HttpConnection c(srv.port());
    BOOST_REQUIRE(c.send(cards_head(framing)));
    HttpReply cont = c.read_reply(by_build<ms>(5s, 20s));
    BOOST_TEST_REQUIRE(cont.status == 100, "no 100 Continue before the body: " << cont.describe());
    BOOST_REQUIRE(c.send(body));
    HttpReply fin = c.read_reply(by_build<ms>(10s, 30s));
    BOOST_TEST(fin.status == 201, fin.describe());
    BOOST_TEST(fin.keep_alive, "the connection closed after an Expect request");
    // The connection is still usable.
    BOOST_TEST(c.get("/healthz").status == 200);
    BOOST_TEST(c.connects() == 1);
    BOOST_TEST(card_status(srv.port(), "expect-1") == 200);
  }
  // Case-insensitive, with whitespace.
  {
    HttpConnection c(srv.port());
    const std::string b2 = card_json("expect-2");
    BOOST_REQUIRE(c.send(cards_head("Content-Length: " + std::to_string(b2.size()) +
                                    "\r\nExpect:  100-Continue \r\n")));
    HttpReply cont = c.read_reply(by_build<ms>(5s, 20s));
    BOOST_TEST_REQUIRE(cont.status == 100, cont.describe());
    BOOST_REQUIRE(c.send(b2));
    BOOST_TEST(c.read_reply(by_build<ms>(10s, 30s)).status == 201);
  }
  // Unauthorized: 401 at once, no 100 first, the body never read, closed.
  for (const auto& [how, auth] : std::vector<std::pair<std::string, std::string>>{
           {"no Authorization", ""},
           {"a wrong token", "Authorization: Bearer not-the-token\r\n"},
           {"the API token on an admin route", "Authorization: Bearer " + kApi + "\r\n"},
       }) {
    HttpConnection c(srv.port());
    // A large body is announced; none of it is sent.
    BOOST_REQUIRE(
        c.send(cards_head("Content-Length: 900000\r\nExpect: 100-continue\r\n", "HTTP/1.1", auth)));
    std::string got;
    bool closed = c.wait_closed(by_build<ms>(5s, 20s), &got);
    expect_one_refusal("Expect: 100-continue with " + how, got, closed, {401});
    BOOST_TEST(got.find(" 100 ") == std::string::npos, how << ": a 100 Continue was sent: " << got);
  }
  // Other expectations.
  for (const std::string expect : {"100-continue-please", "something", "100-continue, x"}) {
    bool closed = false;
    std::string got = exchange(srv.port(),
                               cards_head("Content-Length: " + std::to_string(body.size()) +
                                          "\r\nExpect: " + expect + "\r\n") +
                                   body,
                               &closed);
    expect_one_refusal("Expect: " + expect, got, closed, {417});
  }
  {
    bool closed = false;
    std::string got = exchange(
        srv.port(),
        cards_head("Content-Length: 2\r\nExpect: 100-continue\r\nExpect: 100-continue\r\n") + "{}",
        &closed);
    expect_one_refusal("two Expect fields", got, closed, {417});
  }
}

// A flood of unauthorized uploads: 60 connections each announce a 16 MB body
// and write it as fast as they can. Each gets its 401 from the header and is
// closed; the server reads none of the bodies, so its memory stays flat
// (before the header check it buffered every body: ~961 MB).
BOOST_AUTO_TEST_CASE(unauthorized_body_flood_is_refused_from_the_header) {
  TempDir dir;
  ServeChild srv(dir.str("data"), dir.str("serve.log"), tokened({"--no-rate-limit"}));
  constexpr int kClients = 60;
  constexpr size_t kLength = 16000000;
  const int64_t rss0 = rss_kib(srv.pid());
  const std::string head =
      "POST /api/cards HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
      "Content-Length: " +
      std::to_string(kLength) + "\r\n\r\n";
  const std::string chunk(64 << 10, 'x');

  struct Client {
    int fd = -1;
    size_t sent = 0;
    bool send_done = false;
    bool closed = false;
    std::string got;
  };
  std::vector<Client> cs(kClients);
  for (auto& c : cs) {
    c.fd = connect_raw(srv.port());
    ::fcntl(c.fd, F_SETFL, ::fcntl(c.fd, F_GETFL) | O_NONBLOCK);
  }
  // Headers first, all of them, then the bodies as fast as the sockets take them.
  for (auto& c : cs) {
    size_t off = 0;
    auto deadline = Clock::now() + 5s;
    while (off < head.size() && Clock::now() < deadline) {
      ssize_t k = ::send(c.fd, head.data() + off, head.size() - off, MSG_NOSIGNAL);
      if (k > 0) off += static_cast<size_t>(k);
      else if (k < 0 && errno != EAGAIN && errno != EINTR) break;
    }
  }
  int64_t max_rss = rss0;
  const auto deadline = Clock::now() + by_build<ms>(30s, 120s);
  int open = kClients;
  while (open > 0 && Clock::now() < deadline) {
    std::vector<pollfd> pfds;
    std::vector<Client*> who;
    for (auto& c : cs) {
      if (c.closed) continue;
      pfds.push_back(pollfd{c.fd, static_cast<short>(POLLIN | (c.send_done ? 0 : POLLOUT)), 0});
      who.push_back(&c);
    }
    ::poll(pfds.data(), pfds.size(), 20);
    for (size_t i = 0; i < pfds.size(); ++i) {
      Client& c = *who[i];
      if ((pfds[i].revents & POLLOUT) && !c.send_done) {
        size_t want = std::min(chunk.size(), kLength - c.sent);
        ssize_t k = ::send(c.fd, chunk.data(), want, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (k > 0) c.sent += static_cast<size_t>(k);
        else if (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
          c.send_done = true;
        if (c.sent >= kLength) c.send_done = true;
      }
      if (pfds[i].revents & (POLLIN | POLLHUP | POLLERR)) {
        char buf[16384];
        for (;;) {
          ssize_t k = ::recv(c.fd, buf, sizeof buf, MSG_DONTWAIT);
          if (k > 0) {
            c.got.append(buf, static_cast<size_t>(k));
            continue;
          }
          if (k == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
            c.closed = true;
            --open;
          }
          break;
        }
      }
    }
    max_rss = std::max(max_rss, rss_kib(srv.pid()));
  }
  size_t body_bytes = 0;
  int refused = 0;
  for (auto& c : cs) {
    body_bytes += c.sent;
    ::close(c.fd);
    auto rs = parse_responses(c.got);
    if (c.closed && rs.size() == 1 && rs[0].status == 401 && rs[0].code() == "unauthorized")
      ++refused;
    else
      BOOST_TEST_MESSAGE("client: closed=" << c.closed << " sent=" << c.sent << " "
                                           << describe(rs));
  }
  BOOST_TEST_MESSAGE("flood: " << body_bytes / 1000000 << " MB of bodies written; RSS "
                               << rss0 / 1024 << " MB before, max " << max_rss / 1024 << " MB");
  BOOST_TEST(refused == kClients,
             refused << " of " << kClients << " uploads got a 401 and were closed");
  BOOST_TEST(max_rss < by_build<int64_t>(250, 600) * 1024,
             "serve's RSS reached " << max_rss / 1024 << " MB under the unauthorized flood");
  BOOST_TEST(srv.alive());
  BOOST_TEST(log_position(srv.port()) >= 0);
}

// The cap on request-body bytes buffered at once over all connections:
// reserved from the Content-Length (or chunk by chunk), released when the
// handler returns or the connection fails; beyond it 503 busy.
BOOST_AUTO_TEST_CASE(buffered_body_cap_answers_busy) {
  TempDir dir;
  constexpr size_t kCap = 4u << 20;
  constexpr size_t kBody = 900000;  // four fit under the cap, a fifth does not
  ServeChild srv(dir.str("data"), dir.str("serve.log"),
                 tokened({"--max-buffered-body-bytes", std::to_string(kCap), "--max-body-bytes",
                          std::to_string(1u << 20), "--no-rate-limit"}));
  auto body_of = [&](const std::string& id) {
    std::string b = card_json(id);
    b.resize(kBody, ' ');
    return b;
  };
  const std::string framing = "Content-Length: " + std::to_string(kBody) +
                              "\r\nExpect: 100-continue\r\n";
  // Starts an upload and sends half its body; false if it was refused (*refusal).
  auto start_upload = [&](HttpConnection& c, const std::string& id, HttpReply* refusal) {
    c.timeout = by_build<ms>(10s, 30s);
    BOOST_REQUIRE(c.send(cards_head(framing)));
    // The 100 comes only after the server reserved the body: no race below.
    HttpReply cont = c.read_reply(by_build<ms>(5s, 20s));
    if (cont.status != 100) {
      *refusal = cont;
      return false;
    }
    BOOST_REQUIRE(c.send(body_of(id).substr(0, kBody / 2)));
    return true;
  };
  std::vector<HttpConnection> up;
  for (int i = 0; i < 4; ++i) {
    up.emplace_back(srv.port());
    HttpReply refusal;
    BOOST_REQUIRE_MESSAGE(start_upload(up.back(), "cap-" + std::to_string(i), &refusal),
                          "upload " << i << " refused: " << refusal.describe());
  }
  // A fifth, by Content-Length: 503 busy at once, closed.
  {
    HttpConnection c(srv.port());
    BOOST_REQUIRE(c.send(cards_head("Content-Length: " + std::to_string(kBody) + "\r\n")));
    std::string got;
    bool closed = c.wait_closed(by_build<ms>(5s, 20s), &got);
    expect_one_refusal("a fifth upload", got, closed, {503});
  }
  // A chunked one is refused at its first large chunk.
  {
    HttpConnection c(srv.port());
    char size[16];
    std::snprintf(size, sizeof size, "%zx", kBody);
    BOOST_REQUIRE(c.send(cards_head("Transfer-Encoding: chunked\r\n") + size + "\r\n" +
                         std::string(1000, ' ')));
    std::string got;
    bool closed = c.wait_closed(by_build<ms>(5s, 20s), &got);
    expect_one_refusal("a chunked upload", got, closed, {503});
  }
  // Small requests still fit.
  {
    HttpConnection c(srv.port());
    c.default_headers = {{"Authorization", "Bearer " + kAdmin}};
    BOOST_TEST(c.post("/api/cards", std::string_view(card_json("small-1"))).status == 201);
  }
  // One upload completes (its reservation ends with the handler), another is
  // abandoned by its client (its reservation ends with the connection).
  BOOST_REQUIRE(up[0].send(body_of("cap-0").substr(kBody / 2)));
  HttpReply done = up[0].read_reply(by_build<ms>(10s, 30s));
  BOOST_TEST(done.status == 201, done.describe());
  up[1].close();
  // Now two more fit (2 stalled + 2 new = 4 bodies).
  std::vector<HttpConnection> more;
  for (int i = 0; i < 2; ++i) {
    const auto until = Clock::now() + by_build<ms>(5s, 20s);
    HttpReply refusal;
    bool ok = false;
    for (;;) {  // the server may not have seen the abandoned connection's end yet
      HttpConnection c(srv.port());
      if (start_upload(c, "more-" + std::to_string(i), &refusal)) {
        more.push_back(std::move(c));
        ok = true;
        break;
      }
      if (Clock::now() > until) break;
      std::this_thread::sleep_for(50ms);
    }
    BOOST_TEST_REQUIRE(ok, "upload after the releases refused: " << refusal.describe());
  }
  // ... and a third does not.
  {
    HttpConnection c(srv.port());
    HttpReply refusal;
    BOOST_TEST(!start_upload(c, "more-x", &refusal), "a fifth concurrent upload was accepted");
    BOOST_TEST(refusal.status == 503, refusal.describe());
  }
  // Every stalled upload can still finish.
  for (auto* c : {&up[2], &up[3], &more[0], &more[1]}) {
    BOOST_REQUIRE(c->send(std::string(kBody - kBody / 2, ' ')));
    HttpReply r = c->read_reply(by_build<ms>(10s, 30s));
    BOOST_TEST((r.status == 201 || r.status == 400 || r.status == 409), r.describe());
  }
  BOOST_TEST(card_status(srv.port(), "cap-0") == 200);
}

// An event-stream client that never reads is cut: its backfill (several MB
// here) does not fit in the socket buffers, its pending bytes pass their
// bound or its write stalls, and the server closes it within the stall
// timeout (10 s) plus slack. (With the paged EventHub the backfill is read as
// the client reads, so the stall timeout is what cuts it.)
BOOST_AUTO_TEST_CASE(event_stream_client_that_never_reads_is_cut) {
  TempDir dir;
  ServeChild srv(dir.str("data"), dir.str("serve.log"), tokened({"--demo", "--no-rate-limit"}));
  HttpConnection admin(srv.port());
  admin.default_headers = {{"Authorization", "Bearer " + kAdmin}};
  admin.timeout = by_build<ms>(30s, 120s);
  // ~8 MB of history: 32 CodesAdded events of 3,500 60-character codes.
  size_t history = 0;
  for (int b = 0; b < 32; ++b) {
    auto imp = import_filler_codes(admin, "steam-50", "EDGE", b, 3500, 60);
    history += imp.body_bytes;
    BOOST_REQUIRE_MESSAGE(imp.reply.status == 201, "codes: " << imp.reply.describe());
  }
  const int64_t head = log_position(srv.port());
  auto cut_total = [&]() -> int64_t {
    auto r = admin.get("/metrics");
    const std::string key = "\ngiftcard_event_stream_viewers_cut_total ";
    auto at = r.body.find(key);
    return at == std::string::npos ? -1 : std::atoll(r.body.c_str() + at + key.size());
  };
  const int64_t cut_before = cut_total();

  int fd = connect_raw(srv.port(), 4096);
  const std::string req =
      "GET /api/events/stream?from=1 HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " + kAdmin +
      "\r\n\r\n";
  BOOST_REQUIRE(::send(fd, req.data(), req.size(), MSG_NOSIGNAL) ==
                static_cast<ssize_t>(req.size()));
  const auto t0 = Clock::now();
  // Never read; wait until the server reports the viewer cut.
  const auto limit = 10s + by_build<ms>(8s, 30s);
  int64_t cut = cut_before;
  while (Clock::now() - t0 < limit) {
    cut = cut_total();
    if (cut_before >= 0 && cut > cut_before) break;
    std::this_thread::sleep_for(200ms);
  }
  const int64_t cut_ms = ms_since(t0);
  BOOST_TEST_MESSAGE("history " << history / 1000 << " KB; the viewer was cut after " << cut_ms
                                << " ms");
  BOOST_TEST(cut > cut_before, "giftcard_event_stream_viewers_cut_total did not grow within "
                                   << std::chrono::duration_cast<ms>(limit).count() << " ms");
  // What reached the client's socket before the cut, then the end of the
  // connection (EOF or reset) — not the rest of the history.
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  std::string got;
  bool closed = false;
  const auto drain_until = Clock::now() + by_build<ms>(10s, 30s);
  while (!closed && Clock::now() < drain_until) {
    pollfd p{fd, POLLIN, 0};
    ::poll(&p, 1, 100);
    char buf[65536];
    ssize_t k = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (k > 0) got.append(buf, static_cast<size_t>(k));
    else if (k == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) closed = true;
  }
  ::close(fd);
  BOOST_TEST(got.rfind("HTTP/1.1 200", 0) == 0u, "no stream head: " << got.substr(0, 200));
  BOOST_TEST(closed, "the stream of a client that never read was not closed ("
                         << got.size() << " bytes received)");
  BOOST_TEST(got.find("\nid: " + std::to_string(head) + "\n") == std::string::npos,
             "the whole history was delivered: the client was not cut");
  BOOST_TEST(got.size() < history, "received " << got.size() << " of ~" << history << " bytes");
  // The server is fine, and a reading client still gets the whole history.
  BOOST_TEST(srv.alive());
  HttpConnection s(srv.port());
  BOOST_REQUIRE(s.send(
      s.format("GET", "/api/events/stream?from=1", "", {{"Authorization", "Bearer " + kAdmin}})));
  HttpReply h = s.read_reply(by_build<ms>(10s, 30s), true);
  BOOST_TEST_REQUIRE(h.status == 200, h.describe());
  std::string all;
  const auto read_until = Clock::now() + by_build<ms>(20s, 60s);
  const std::string last = "id: " + std::to_string(head) + "\n";
  while (all.find(last) == std::string::npos && Clock::now() < read_until) {
    std::string err;
    if (s.read_some(&all, 1s, &err) == 0) break;
  }
  BOOST_TEST(all.find(last) != std::string::npos,
             "a reading client did not get the whole history (" << all.size() << " bytes)");
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace giftcard::http_edge_test
