// The bounds of GET /api/events/stream (issue #14 row 7): the EventHub
// (api/event_hub.h) pages a viewer's backfill out of the log as the client
// reads it, so a viewer that never reads costs its sink's pending bound, not a
// copy of the history; the server cuts it when its writes stall; viewers past
// the cap are refused with 503; and none of it slows purchases.
//
// The first cases drive an EventHub in-process (a MemoryEventStore and a fake
// sink whose "client" reads when the test says so); the rest run against a
// real `giftcard serve --demo` child over real sockets.
#include <algorithm>
#include <atomic>
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "api/event_hub.h"
#include "store/memory_event_store.h"
#include "tests/support/http_client.h"
#include "tests/support/process.h"
#include "tests/support/serve_child.h"

namespace giftcard::sse_test {
namespace {

using Clock = std::chrono::steady_clock;
using json = nlohmann::json;
using namespace std::chrono_literals;
using test::by_build;
using test::HttpConnection;
using test::HttpReply;
using test::ms_since;
using test::SseEvent;

// ---------------------------------------------------------------------------
// In-process: a sink whose client reads only when told to.

class FakeSink final : public StreamSink {
 public:
  void push(std::shared_ptr<const std::string> frame) override {
    std::lock_guard lock(mu_);
    if (closed_) return;
    pending_ += frame->size();
    max_pending_ = std::max(max_pending_, pending_);
    pushed_ += frame->size();
    last_frame_ = frame.get();
    queue_.push_back(std::move(frame));
  }
  bool closed() const override { return closed_.load(); }
  size_t pending_bytes() const override {
    std::lock_guard lock(mu_);
    return pending_;
  }
  bool cut() const override { return cut_.load(); }

  // The client reads everything queued.
  std::string read() {
    std::lock_guard lock(mu_);
    std::string out;
    for (auto& f : queue_) out += *f;
    queue_.clear();
    pending_ = 0;
    return out;
  }
  // The server closes the stream (cut: for being too slow).
  void close(bool cut) {
    std::lock_guard lock(mu_);
    cut_ = cut;
    closed_ = true;
    queue_.clear();
    pending_ = 0;
  }
  size_t max_pending() const {
    std::lock_guard lock(mu_);
    return max_pending_;
  }
  size_t pushed() const {
    std::lock_guard lock(mu_);
    return pushed_;
  }
  const void* last_frame() const {
    std::lock_guard lock(mu_);
    return last_frame_;
  }

 private:
  mutable std::mutex mu_;
  std::deque<std::shared_ptr<const std::string>> queue_;
  size_t pending_ = 0;
  size_t max_pending_ = 0;
  size_t pushed_ = 0;
  const void* last_frame_ = nullptr;
  std::atomic<bool> closed_{false};
  std::atomic<bool> cut_{false};
};

// CodesAdded events of `codes` 64-character codes each (~80 bytes of JSON a code).
void append_codes(EventStore& store, int events, int codes, int tag) {
  for (int e = 0; e < events; ++e) {
    CodesAdded ev{"card-x", {}};
    for (int c = 0; c < codes; ++c) {
      std::string code = "T" + std::to_string(tag) + "-" + std::to_string(e) + "-" +
                         std::to_string(c) + "-";
      code.resize(64, 'Z');
      ev.codes.push_back(CodeSpec{code, 0});
    }
    AppendRequest req;
    req.events.push_back(PendingEvent::of("card-x", ev));
    AppendResult res;
    Status s = store.AppendAndWait(std::move(req), &res);
    BOOST_REQUIRE_MESSAGE(s.ok(), "append: " << s.ToString());
  }
}

// Waits until `pred` holds (true) or `limit` passes (false).
bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds limit) {
  auto deadline = Clock::now() + limit;
  while (!pred()) {
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

std::vector<int64_t> ids_of(const std::vector<SseEvent>& evs) {
  std::vector<int64_t> out;
  for (const auto& e : evs) out.push_back(std::atoll(e.id.c_str()));
  return out;
}

// Every id from `first` to `last`, once each, in order.
std::string contiguous_mismatch(const std::vector<int64_t>& ids, int64_t first, int64_t last) {
  int64_t expect = first;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] != expect)
      return "frame " + std::to_string(i) + " has id " + std::to_string(ids[i]) + ", expected " +
             std::to_string(expect);
    ++expect;
  }
  if (expect != last + 1)
    return "ended at id " + std::to_string(expect - 1) + ", expected " + std::to_string(last);
  return {};
}

EventHubLimits small_limits() {
  EventHubLimits l;
  l.max_viewers = 8;
  l.page_events = 64;
  l.pending_high_water = 64 << 10;
  return l;
}

// ---------------------------------------------------------------------------
// Against `giftcard serve`.

const std::string kAdmin = "sse-admin-token-0123456789";
using Server = test::ServeChild;

test::ServeArgs serve_args() {
  test::ServeArgs a;
  a.flags = {"--demo"};
  a.env = {{"GIFTCARD_ADMIN_TOKEN", kAdmin}};
  return a;
}

HttpConnection admin_connection(uint16_t port) {
  HttpConnection c(port);
  c.default_headers = {{"Authorization", "Bearer " + kAdmin}};
  return c;
}

using test::log_position;

// Card "big" (price 1) with `batches` imports of 2,000 64-character codes
// (~160 KB of stream each), and a wallet "buyer" funded for every code.
// Returns the bytes of codes imported.
size_t make_backlog(uint16_t port, int batches) {
  auto c = admin_connection(port);
  auto r = c.post("/api/cards", json{{"id", "big"}, {"name", "Big"}, {"price", 1}, {"value", 1}});
  BOOST_REQUIRE_MESSAGE(r.status == 201, "create card: " << r.describe());
  size_t bytes = 0;
  for (int b = 0; b < batches; ++b) {
    auto imp = test::import_filler_codes(c, "big", "B", b, 2000, 64);
    bytes += imp.body_bytes;
    BOOST_REQUIRE_MESSAGE(imp.reply.status == 201, "import " << b << ": " << imp.reply.describe());
  }
  auto f = c.post("/api/wallets/buyer/credits", json{{"amount", 1000000}},
                  {{"Idempotency-Key", "fund"}});
  BOOST_REQUIRE_MESSAGE(f.status == 201, "fund: " << f.describe());
  return bytes;
}

// The server's resident set, in MB.
int64_t rss_mb(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::atoll(line.c_str() + 6) / 1024;
  return -1;
}

// A sample of /metrics (-1 if absent).
int64_t metric(uint16_t port, const std::string& name) {
  auto c = admin_connection(port);
  auto r = c.get("/metrics");
  BOOST_REQUIRE_MESSAGE(r.status == 200, "GET /metrics: " << r.describe());
  std::istringstream lines(r.body);
  std::string line;
  while (std::getline(lines, line))
    if (line.rfind(name + " ", 0) == 0) return std::atoll(line.c_str() + name.size() + 1);
  return -1;
}

// Sends GET /api/events/stream`query` and reads the response head.
HttpReply open_stream(HttpConnection& s, const std::string& query) {
  s.default_headers = {{"Authorization", "Bearer " + kAdmin}};
  if (!s.send(s.format("GET", "/api/events/stream" + query, "", {}))) {
    HttpReply r;
    r.error = "send failed";
    return r;
  }
  return s.read_reply(10s, true);
}

// Purchases of card "big" by "buyer", one after the other, on their own
// connection, until stopped. Every one must be 201 within the command timeout.
class Buyer {
 public:
  Buyer(uint16_t port, std::string tag) : port_(port), tag_(std::move(tag)) {
    thread_ = std::thread([this] { run(); });
  }
  ~Buyer() { stop(); }
  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  int done() const { return done_.load(); }
  std::vector<std::string> failures() const {
    std::lock_guard lock(mu_);
    return failures_;
  }
  int64_t max_ms() const { return max_ms_.load(); }
  int slowest() const { return slowest_.load(); }

 private:
  void run() {
    auto c = admin_connection(port_);
    c.timeout = 30s;  // the server's command timeout
    for (int i = 0; !stop_; ++i) {
      auto t0 = Clock::now();
      auto r = c.post("/api/purchases", json{{"card_id", "big"}, {"user_id", "buyer"}},
                      {{"Idempotency-Key", tag_ + std::to_string(i)}});
      int64_t ms = ms_since(t0);
      if (ms > max_ms_.load()) slowest_ = i;
      max_ms_ = std::max<int64_t>(max_ms_.load(), ms);
      if (r.status != 201) {
        std::lock_guard lock(mu_);
        failures_.push_back("purchase " + std::to_string(i) + " after " + std::to_string(ms) +
                            " ms: " + r.describe());
        if (failures_.size() > 5) return;
      } else {
        ++done_;
      }
      std::this_thread::sleep_for(20ms);
    }
  }
  uint16_t port_;
  std::string tag_;
  std::atomic<bool> stop_{false};
  std::atomic<int> done_{0};
  std::atomic<int64_t> max_ms_{0};
  std::atomic<int> slowest_{0};
  mutable std::mutex mu_;
  std::vector<std::string> failures_;
  std::thread thread_;
};

}  // namespace
}  // namespace giftcard::sse_test

using namespace giftcard;
using namespace giftcard::sse_test;

BOOST_AUTO_TEST_SUITE(sse_bounds)

// A reader gets 1..head once each and in order while the log grows; a viewer
// that never reads holds at most about two pages; cutting it frees its slot.
BOOST_AUTO_TEST_CASE(hub_pages_the_backfill_as_the_client_reads) {
  auto store = NewMemoryEventStore();
  append_codes(*store, 300, 40, 0);  // ~1 MB of stream
  EventHubLimits limits = small_limits();
  EventHub hub(store.get(), limits);
  auto reader = std::make_shared<FakeSink>();
  auto idle = std::make_shared<FakeSink>();
  BOOST_REQUIRE(hub.attach(reader, 0).ok());
  BOOST_REQUIRE(hub.attach(idle, 0).ok());
  BOOST_TEST(hub.viewers() == 2u);

  std::atomic<bool> written{false};
  std::thread writer([&] {
    append_codes(*store, 200, 5, 1);
    written = true;
  });
  std::string buf;
  std::vector<SseEvent> got;
  auto read_until = [&](const std::function<int64_t()>& last) {
    return eventually(
        [&] {
          buf += reader->read();
          for (auto& e : test::take_sse_events(&buf)) got.push_back(std::move(e));
          int64_t want = last();
          return want > 0 && !got.empty() && std::atoll(got.back().id.c_str()) >= want;
        },
        10s);
  };
  // The reader reads while the log grows.
  bool complete = read_until([&] { return written ? store->LastPosition() : int64_t{0}; });
  writer.join();
  int64_t head = store->LastPosition();
  BOOST_REQUIRE_MESSAGE(complete, "the reader got " << got.size() << " of " << head << " events");
  std::string why = contiguous_mismatch(ids_of(got), 1, head);
  BOOST_TEST(why.empty(), why);
  BOOST_TEST(got.front().event == "CodesAdded");
  BOOST_TEST(json::parse(got.front().data)["position"] == 1);

  // The idle viewer was given a page or two, never the history.
  size_t bound = 2 * limits.pending_high_water + (8u << 10);
  BOOST_TEST(idle->max_pending() <= bound,
             "an idle viewer holds " << idle->max_pending() << " bytes");
  BOOST_TEST(idle->pushed() > 0u);

  // The server cuts it: the hub drops it and counts it.
  idle->close(true);
  BOOST_TEST(eventually([&] { return hub.viewers() == 1; }, 5s), "the cut viewer was not dropped");
  BOOST_TEST(hub.cut_viewers() == 1u);

  // Live again: the reader gets what follows.
  append_codes(*store, 3, 2, 2);
  BOOST_TEST(read_until([&] { return store->LastPosition(); }));
  why = contiguous_mismatch(ids_of(got), 1, store->LastPosition());
  BOOST_TEST(why.empty(), why);
  hub.stop();
  BOOST_TEST(hub.viewers() == 0u);
}

BOOST_AUTO_TEST_CASE(hub_refuses_viewers_past_the_cap) {
  auto store = NewMemoryEventStore();
  append_codes(*store, 10, 2, 0);
  EventHubLimits limits = small_limits();
  limits.max_viewers = 3;
  limits.max_backfill = 5;
  EventHub hub(store.get(), limits);
  std::vector<std::shared_ptr<FakeSink>> sinks;
  for (int i = 0; i < 3; ++i) {
    sinks.push_back(std::make_shared<FakeSink>());
    BOOST_REQUIRE(hub.attach(sinks.back(), -1).ok());
  }
  auto extra = std::make_shared<FakeSink>();
  Status s = hub.attach(extra, -1);
  BOOST_TEST(s.IsBusy(), s.ToString());
  BOOST_TEST(hub.refused_viewers() == 1u);
  // The route's form: refused before the stream is opened (no 200 head sent).
  bool opened = false;
  s = hub.attach([&] { return opened = true, std::shared_ptr<StreamSink>(extra); }, -1);
  BOOST_TEST(s.IsBusy(), s.ToString());
  BOOST_TEST(!opened, "the stream was opened for a refused viewer");
  BOOST_TEST(hub.refused_viewers() == 2u);
  // Too far back: refused, not counted as busy.
  Status far = hub.attach(extra, 2);
  BOOST_TEST(!far.ok());
  // A client that went away (not cut) frees its place at once, even while
  // the log is quiet and the hub sleeps.
  sinks[0]->close(false);
  BOOST_TEST(
      hub.attach([&] { return opened = true, std::shared_ptr<StreamSink>(extra); }, -1).ok());
  BOOST_TEST(opened);
  BOOST_TEST(hub.viewers() == 3u);
  BOOST_TEST(hub.refused_viewers() == 2u);
  BOOST_TEST(hub.cut_viewers() == 0u);
  // One the server cut is counted, once.
  sinks[1]->close(true);
  BOOST_TEST(hub.attach(std::make_shared<FakeSink>(), -1).ok());
  BOOST_TEST(hub.cut_viewers() == 1u);
  append_codes(*store, 1, 2, 1);  // wakes the hub: it drops the closed viewers too
  BOOST_TEST(eventually([&] { return extra->pushed() > 0; }, 5s));
  BOOST_TEST(hub.cut_viewers() == 1u);
  BOOST_TEST(hub.viewers() == 3u);
}

// after = -1: only what is committed from now on; a start beyond the head
// starts at the head; live viewers share one frame.
BOOST_AUTO_TEST_CASE(hub_live_viewers_share_frames) {
  auto store = NewMemoryEventStore();
  append_codes(*store, 20, 2, 0);
  EventHub hub(store.get(), small_limits());
  auto a = std::make_shared<FakeSink>();
  auto b = std::make_shared<FakeSink>();
  auto ahead = std::make_shared<FakeSink>();
  BOOST_REQUIRE(hub.attach(a, -1).ok());
  BOOST_REQUIRE(hub.attach(b, -1).ok());
  BOOST_REQUIRE(hub.attach(ahead, 1000).ok());
  std::this_thread::sleep_for(50ms);
  BOOST_TEST(a->pushed() == 0u, "after=-1 got old events");
  append_codes(*store, 1, 2, 1);
  BOOST_REQUIRE(
      eventually([&] { return a->pushed() > 0 && b->pushed() > 0 && ahead->pushed() > 0; }, 5s));
  BOOST_TEST(a->last_frame() == b->last_frame(), "live viewers got separate copies");
  for (auto* s : {a.get(), b.get(), ahead.get()}) {
    std::string buf = s->read();
    auto evs = test::take_sse_events(&buf);
    BOOST_REQUIRE(evs.size() == 1u);
    BOOST_TEST(evs[0].id == "21");
    BOOST_TEST(evs[0].event == "CodesAdded");
  }
}

// An event larger than the high-water mark goes only to a sink with nothing
// pending (the server takes a lone frame of any size, but cuts a queue that
// passes its bound).
BOOST_AUTO_TEST_CASE(hub_gives_a_huge_event_only_to_an_empty_sink) {
  auto store = NewMemoryEventStore();
  append_codes(*store, 5, 2, 0);
  EventHubLimits limits = small_limits();
  EventHub hub(store.get(), limits);
  auto empty = std::make_shared<FakeSink>();
  auto busy = std::make_shared<FakeSink>();
  BOOST_REQUIRE(hub.attach(empty, -1).ok());
  BOOST_REQUIRE(hub.attach(busy, 4).ok());  // one small event pending, unread
  BOOST_REQUIRE(eventually([&] { return busy->pending_bytes() > 0; }, 5s));
  const size_t small = busy->pending_bytes();
  append_codes(*store, 1, 2000, 1);  // ~160 KB of JSON: more than the high-water mark
  BOOST_REQUIRE(eventually([&] { return empty->pushed() > limits.pending_high_water; }, 5s));
  std::this_thread::sleep_for(200ms);
  BOOST_TEST(busy->pending_bytes() == small, "the huge event was queued behind another frame");
  BOOST_TEST(busy->max_pending() == small);
  // Once the client has read, it gets the event.
  std::string buf = busy->read();
  BOOST_REQUIRE(eventually([&] { return busy->pending_bytes() > limits.pending_high_water; }, 5s));
  buf += busy->read();
  auto evs = test::take_sse_events(&buf);
  BOOST_REQUIRE(evs.size() == 2u);
  BOOST_TEST(evs[0].id == "5");
  BOOST_TEST(evs[1].id == "6");
  buf = empty->read();
  evs = test::take_sse_events(&buf);
  BOOST_REQUIRE(evs.size() == 1u);
  BOOST_TEST(evs[0].id == "6");
  BOOST_TEST(buf.empty());
}

// 150 viewers with ?from=1 that never read: past the cap they get 503, the
// others are cut when their writes stall; RSS stays bounded and purchases go on.
BOOST_AUTO_TEST_CASE(idle_backfill_viewers_are_refused_or_cut) {
  test::TempDir dir;
  Server srv(dir.str("data"), dir.str("serve.log"), serve_args());
  const int kViewers = 150;
  const int kCap = 64;  // EventHubLimits::max_viewers
  // ~13 MB of stream: more than the kernel buffers of one connection hold (~4 MB).
  size_t backlog = make_backlog(srv.port(), by_build(80, 60));
  int64_t rss0 = rss_mb(srv.pid());
  BOOST_TEST_MESSAGE("backlog " << backlog / 1000000 << " MB of codes; server RSS " << rss0
                                << " MB");

  Buyer buyer(srv.port(), "idle-");
  std::vector<HttpConnection> viewers;
  viewers.reserve(kViewers);
  std::vector<size_t> streaming;
  int refused = 0;
  std::vector<std::string> other;
  auto t_attach = Clock::now();
  for (int i = 0; i < kViewers; ++i) {
    viewers.emplace_back(srv.port());
    HttpReply head = open_stream(viewers.back(), "?from=1");
    if (head.status == 200) streaming.push_back(viewers.size() - 1);
    else if (head.status == 503) ++refused, viewers.back().close();
    else other.push_back(std::to_string(i) + ": " + head.describe());
  }
  BOOST_TEST_MESSAGE(streaming.size() << " viewers streaming, " << refused << " refused, in "
                                      << ms_since(t_attach) << " ms");
  BOOST_TEST(other.empty(), "unexpected answers: " << (other.empty() ? "" : other.front()));
  BOOST_TEST(streaming.size() == static_cast<size_t>(kCap));
  BOOST_TEST(refused == kViewers - kCap);

  // Every streaming viewer is cut within the stall timeout (10 s) plus slack.
  int64_t max_rss = rss0;
  bool all_cut = false;
  for (auto deadline = Clock::now() + by_build(25s, 60s); !all_cut && Clock::now() < deadline;) {
    max_rss = std::max(max_rss, rss_mb(srv.pid()));
    all_cut = metric(srv.port(), "giftcard_event_stream_viewers") == 0;
    if (!all_cut) std::this_thread::sleep_for(100ms);
  }
  int64_t cut_ms = ms_since(t_attach);
  BOOST_TEST(all_cut, "viewers still attached after "
                          << cut_ms
                          << " ms: " << metric(srv.port(), "giftcard_event_stream_viewers"));
  BOOST_TEST_MESSAGE("every idle viewer dropped "
                     << cut_ms << " ms after the first attached; max RSS " << max_rss << " MB");
  BOOST_TEST(max_rss < by_build<int64_t>(300, 1200), "server RSS reached " << max_rss << " MB");

  // The client, reading at last, gets what was sent and then the end.
  size_t most = 0;
  for (size_t i : streaming) {
    std::string got;
    std::string how;
    bool closed = viewers[i].wait_closed(10s, &got, &how);
    BOOST_TEST(closed, "viewer " << i << " was not closed (" << got.size() << " bytes read)");
    most = std::max(most, got.size());
  }
  BOOST_TEST_MESSAGE("a cut viewer had at most " << most / 1000 << " KB in flight");
  BOOST_TEST(most < backlog, "a viewer that never read was sent the whole backlog");

  // The counters.
  BOOST_TEST(metric(srv.port(), "giftcard_event_stream_viewers_cut_total") == kCap);
  BOOST_TEST(metric(srv.port(), "giftcard_event_stream_viewers_refused_total") == kViewers - kCap);

  // Purchases went on meanwhile.
  buyer.stop();
  auto failures = buyer.failures();
  BOOST_TEST(failures.empty(), failures.size() << " purchases failed; the first: "
                                               << (failures.empty() ? "" : failures.front()));
  BOOST_TEST(buyer.done() > 20, "only " << buyer.done() << " purchases");
  BOOST_TEST_MESSAGE(buyer.done() << " purchases meanwhile, the slowest " << buyer.max_ms()
                                  << " ms (purchase " << buyer.slowest() << ")");

  // The places are free again.
  HttpConnection again(srv.port());
  BOOST_TEST(open_stream(again, "?from=1").status == 200);
  srv.stop_clean(by_build(15s, 60s));
}

// A reading viewer with ?from=1 gets every event 1..head once, in order,
// while purchases run.
BOOST_AUTO_TEST_CASE(reading_viewer_gets_every_event_once_in_order) {
  test::TempDir dir;
  Server srv(dir.str("data"), dir.str("serve.log"), serve_args());
  make_backlog(srv.port(), by_build(30, 10));

  HttpConnection v(srv.port());
  HttpReply head = open_stream(v, "?from=1");
  BOOST_REQUIRE_MESSAGE(head.status == 200, head.describe());
  std::vector<int64_t> ids;
  std::string buf;
  std::string bad;
  auto take = [&](std::chrono::milliseconds limit) {
    std::string err;
    int n = v.read_some(&buf, limit, &err);
    for (auto& e : test::take_sse_events(&buf)) {
      int64_t id = std::atoll(e.id.c_str());
      ids.push_back(id);
      json d = json::parse(e.data, nullptr, false);
      if (bad.empty() && (!d.is_object() || d.value("position", int64_t{-1}) != id ||
                          d.value("type", std::string()) != e.event))
        bad = "frame " + e.id + " " + e.event + ": " + e.data.substr(0, 200);
    }
    return n;
  };

  Buyer buyer(srv.port(), "read-");
  auto t0 = Clock::now();
  while (ms_since(t0) < 3000) take(100ms);  // the backfill, then live, while buying
  buyer.stop();
  BOOST_TEST(buyer.failures().empty());
  int64_t last = log_position(srv.port());
  auto deadline = Clock::now() + 20s;
  while ((ids.empty() || ids.back() < last) && Clock::now() < deadline)
    if (take(1s) == 0) break;
  BOOST_TEST_MESSAGE(buyer.done() << " purchases; the viewer got " << ids.size() << " events, head "
                                  << last);
  BOOST_TEST(buyer.done() > 20);
  std::string why = contiguous_mismatch(ids, 1, last);
  BOOST_TEST(why.empty(), why);
  BOOST_TEST(bad.empty(), bad);
  srv.stop_clean(by_build(15s, 60s));
}

// 20 viewers attaching with ?from=1 (and not reading) do not hold purchases up.
BOOST_AUTO_TEST_CASE(purchases_go_on_while_viewers_attach) {
  test::TempDir dir;
  Server srv(dir.str("data"), dir.str("serve.log"), serve_args());
  make_backlog(srv.port(), by_build(40, 15));
  Buyer buyer(srv.port(), "attach-");
  std::this_thread::sleep_for(200ms);
  std::vector<HttpConnection> viewers;
  viewers.reserve(20);
  for (int i = 0; i < 20; ++i) {
    viewers.emplace_back(srv.port());
    HttpReply head = open_stream(viewers.back(), "?from=1");
    BOOST_TEST(head.status == 200, "viewer " << i << ": " << head.describe());
  }
  std::this_thread::sleep_for(1500ms);
  buyer.stop();
  auto failures = buyer.failures();
  BOOST_TEST(failures.empty(), failures.size() << " purchases failed; the first: "
                                               << (failures.empty() ? "" : failures.front()));
  BOOST_TEST(buyer.done() > 10);
  BOOST_TEST_MESSAGE(buyer.done() << " purchases beside 20 attaching viewers; the slowest "
                                  << buyer.max_ms() << " ms");
  for (auto& v : viewers) v.close();
  srv.stop_clean(by_build(15s, 60s));
}

BOOST_AUTO_TEST_SUITE_END()
