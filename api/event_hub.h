// EventHub: the Server-Sent-Events fan-out of the log (GET /api/events/stream).
//
// One thread serves every viewer. Each viewer has its own cursor (the last
// position it was given):
//
//  * live viewers (cursor == what the hub has sent) share one formatted frame
//    per new stretch of the log;
//  * a lagging viewer (a backfill, or a live viewer that fell behind) is given
//    its next page of the log (page_events events, at most about
//    pending_high_water bytes) only while its sink holds fewer than
//    pending_high_water bytes not yet written, so that the history is read
//    from RocksDB as the client reads it, never copied per viewer. Lagging
//    viewers at the same cursor share their page.
//
// A page stops at pending_high_water bytes, so a sink holds less than twice
// that — or one event larger than it, given only to a sink with nothing
// pending (the server accepts a lone frame of any size). The ": ping"
// keep-alive goes to idle streams only.
//
// A viewer that does not read stops getting pages; the HTTP server cuts it
// (StreamSink::cut) when a write stalls or its queue passes its bound, and
// the hub drops it (cut_viewers counts it). Memory per viewer is therefore
// bounded by the sink's pending bound, whatever the backfill.
//
// Threads: the store's subscriber callback runs on the writer thread and only
// publishes the new head (an atomic) and sets a wake-up flag under a mutex
// that nobody holds for more than a few instructions (never while reading or
// formatting). attach() is O(1) in the log: it queues the viewer for the hub
// thread (at the cap it also forgets the viewers whose clients are gone: a
// look at at most max_viewers flags). The hub thread reads RocksDB and formats
// frames holding no lock at all. It sleeps while there is nothing to do: it
// wakes on a commit, an attach, the next ping, or — only while some viewer
// waits for its sink to drain — every drain_check.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "api/http_server.h"
#include "events/envelope.h"
#include "events/status.h"
#include "store/event_store.h"

namespace giftcard {

struct EventHubLimits {
  size_t max_viewers = 64;       // attach() beyond it: Status::Busy -> the route answers 503 busy
  size_t max_backfill = 100000;  // kept: a start further back is refused (the route checks it)
  size_t page_events = 512;      // events read per backfill step for one viewer
  // Don't give a viewer more while its sink has this many bytes pending. A
  // viewer's sink then holds less than twice this (a page stops at it), or
  // one event larger than it alone: keep it at most half the server's
  // HttpLimits::max_stream_pending_bytes.
  size_t pending_high_water = 256 << 10;
  std::chrono::milliseconds ping_interval{15000};  // the ": ping" keep-alive comment
  // How often the hub looks again at viewers that wait for their sink to
  // drain (the sink has no "drained" notification): a safety net, not a poll
  // of the log.
  std::chrono::milliseconds drain_check{50};
};

class EventHub {
 public:
  EventHub(EventStore* store, EventHubLimits limits);
  ~EventHub();  // stop()
  EventHub(const EventHub&) = delete;
  EventHub& operator=(const EventHub&) = delete;

  // Ends the thread and releases every sink (call it while the HTTP server
  // still exists). Idempotent. attach() after it: Busy.
  void stop();

  // Registers a viewer that gets the events after position `after` (-1: the
  // events committed from now on). A start beyond the log's head starts at
  // the head. O(1): no log read and no formatting here. Busy when
  // max_viewers are attached; InvalidArgument when `after` is more than
  // max_backfill events back.
  Status attach(std::shared_ptr<StreamSink> sink, int64_t after);
  // The same, for a route that must answer 503 *before* it sends the
  // stream's 200 head: `open` (e.g. `[&] { return r->stream(head); }`) is
  // called only once the viewer is admitted — outside the hub's lock — and
  // its sink is attached. On Busy or InvalidArgument `open` is not called.
  Status attach(const std::function<std::shared_ptr<StreamSink>()>& open, int64_t after);

  // Viewers attached and not yet dropped (a client that left while the log
  // was quiet is dropped when the hub next wakes; attach() at the cap does
  // not wait for that).
  size_t viewers() const { return count_.load(std::memory_order_relaxed); }
  // Viewers the server cut for being too slow (sink->cut()), total.
  uint64_t cut_viewers() const { return cut_.load(std::memory_order_relaxed); }
  // attach() refused at the cap, total.
  uint64_t refused_viewers() const { return refused_.load(std::memory_order_relaxed); }
  const EventHubLimits& limits() const { return limits_; }

  // `id: <pos>\nevent: <type>\ndata: <json>\n\n` per event.
  static std::string frames(const std::vector<StoredEvent>& evs);

 private:
  struct Viewer {
    std::shared_ptr<StreamSink> sink;
    int64_t cursor = 0;  // the last position it was given
  };

  void run();
  void wake();
  // Drops closed viewers (counting the cut ones).
  void drop_closed();
  // Removes `sink` from attached_ (mu_ held); counts it if it was cut.
  void forget(const std::shared_ptr<StreamSink>& sink);
  // Gives live viewers the next stretch of the log. True if there is more to do.
  bool send_live(bool* retry);
  // Gives lagging viewers below the high-water mark their next page. True if
  // one of them may take another page at once; *blocked: some wait to drain.
  bool send_pages(bool* blocked, bool* retry);
  // Reads and formats the events first..last: at most page_events of them,
  // stopping once the text reaches pending_high_water (at least one event).
  // Returns the position of the last event formatted; 0 (and *failed) if the
  // log could not be read.
  int64_t read_page(int64_t first, int64_t last, std::string* out, bool* failed);
  bool below_high_water(const Viewer& v) const;
  // Whether `v` may be given a frame of this size now.
  bool fits(const Viewer& v, size_t frame_bytes) const;

  EventStore* store_;
  const EventHubLimits limits_;
  uint64_t sub_ = 0;
  // The last committed position the writer announced.
  std::atomic<int64_t> head_{0};

  // Held only for a few instructions (never while reading or formatting).
  std::mutex mu_;
  std::condition_variable cv_;
  bool wake_ = false;          // GUARDED_BY(mu_)
  bool stopping_ = false;      // GUARDED_BY(mu_)
  std::vector<Viewer> inbox_;  // GUARDED_BY(mu_): attached, not yet adopted (cursor = after)
  // GUARDED_BY(mu_): every attached sink not yet dropped (at most max_viewers):
  // attach() at the cap first forgets the closed ones, so that a client gone
  // while the log was quiet never keeps a newcomer out.
  std::vector<std::shared_ptr<StreamSink>> attached_;
  size_t reserved_ = 0;           // GUARDED_BY(mu_): admitted, their `open` still running
  std::atomic<size_t> count_{0};  // attached_.size() + reserved_, for viewers() and the writer
  std::atomic<uint64_t> cut_{0};
  std::atomic<uint64_t> refused_{0};

  // The hub thread's own (after the thread ends: stop()'s).
  std::vector<Viewer> viewers_;
  int64_t sent_ = 0;  // live viewers have been given every event up to here

  std::once_flag stop_once_;
  std::thread thread_;
};

}  // namespace giftcard
