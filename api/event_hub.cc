#include "api/event_hub.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <utility>

#include "api/json_views.h"
#include "events/events.h"

namespace giftcard {

namespace {

using Clock = std::chrono::steady_clock;

void append_frame(const StoredEvent& e, std::string* out) {
  out->append("id: ").append(std::to_string(e.position));
  out->append("\nevent: ").append(type_name(e.type));
  out->append("\ndata: ")
      .append(event_json(e).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  out->append("\n\n");
}

}  // namespace

EventHub::EventHub(EventStore* store, EventHubLimits limits)
    : store_(store), limits_(std::move(limits)) {
  // Subscribe first, then read the head: a batch committed in between is
  // announced by the callback, none is missed.
  sub_ = store_->Subscribe([this](const std::vector<StoredEvent>& batch) {
    // The writer thread: publish the head, wake the hub, nothing else.
    if (batch.empty()) return;
    int64_t p = batch.back().position;
    int64_t h = head_.load(std::memory_order_relaxed);
    while (h < p && !head_.compare_exchange_weak(h, p, std::memory_order_release,
                                                 std::memory_order_relaxed)) {
    }
    // Nobody watching: nothing to wake for (attach() wakes the hub itself).
    if (count_.load(std::memory_order_acquire) == 0) return;
    wake();
  });
  int64_t last = store_->LastPosition();
  int64_t h = head_.load(std::memory_order_relaxed);
  while (h < last && !head_.compare_exchange_weak(h, last, std::memory_order_release,
                                                  std::memory_order_relaxed)) {
  }
  sent_ = last;
  thread_ = std::thread([this] { run(); });
}

EventHub::~EventHub() { stop(); }

void EventHub::stop() {
  std::call_once(stop_once_, [this] {
    store_->Unsubscribe(sub_);  // waits for a callback in progress
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
    // Release the viewers' sessions now, while the HTTP server still exists.
    std::vector<Viewer> gone;
    std::vector<std::shared_ptr<StreamSink>> attached;
    {
      std::lock_guard lock(mu_);
      gone.swap(inbox_);
      attached.swap(attached_);
      count_.store(0);
    }
    for (auto& v : viewers_) gone.push_back(std::move(v));
    viewers_.clear();
  });
}

void EventHub::wake() {
  {
    std::lock_guard lock(mu_);
    wake_ = true;
  }
  cv_.notify_one();
}

Status EventHub::attach(std::shared_ptr<StreamSink> sink, int64_t after) {
  if (!sink) return Status::InvalidArgument("no stream");
  return attach([&sink] { return std::move(sink); }, after);
}

Status EventHub::attach(const std::function<std::shared_ptr<StreamSink>()>& open, int64_t after) {
  int64_t last = store_->LastPosition();
  if (after >= 0 && last - after > static_cast<int64_t>(limits_.max_backfill))
    return Status::InvalidArgument("backfill of more than " + std::to_string(limits_.max_backfill) +
                                   " events; page through GET /api/events instead");
  if (after < 0) after = last;  // what is committed from now on
  {
    std::lock_guard lock(mu_);
    if (stopping_) return Status::Busy("the event stream is shutting down");
    if (attached_.size() + reserved_ >= limits_.max_viewers) {
      // Clients that went away while the hub slept still hold a place.
      std::vector<std::shared_ptr<StreamSink>> closed;
      for (const auto& a : attached_)
        if (a->closed()) closed.push_back(a);
      for (const auto& c : closed) forget(c);
    }
    if (attached_.size() + reserved_ >= limits_.max_viewers) {
      refused_.fetch_add(1, std::memory_order_relaxed);
      return Status::Busy(std::to_string(limits_.max_viewers) +
                          " event-stream viewers are connected already");
    }
    ++reserved_;
    count_.store(attached_.size() + reserved_, std::memory_order_release);
  }
  std::shared_ptr<StreamSink> sink = open();
  const bool opened = sink != nullptr;
  {
    std::lock_guard lock(mu_);
    --reserved_;
    if (opened && !stopping_) {
      attached_.push_back(sink);
      inbox_.push_back(Viewer{std::move(sink), after});
      wake_ = true;
    }
    count_.store(attached_.size() + reserved_, std::memory_order_release);
    if (stopping_) return Status::Busy("the event stream is shutting down");
  }
  if (!opened) return Status::InvalidArgument("no stream");
  cv_.notify_one();
  return Status::OK();
}

std::string EventHub::frames(const std::vector<StoredEvent>& evs) {
  std::string out;
  for (const auto& e : evs) append_frame(e, &out);
  return out;
}

int64_t EventHub::read_page(int64_t first, int64_t last, std::string* out, bool* failed) {
  const size_t max_events = std::min<size_t>(std::max<size_t>(limits_.page_events, 1),
                                             static_cast<size_t>(last - first + 1));
  const size_t max_bytes = std::max<size_t>(limits_.pending_high_water, 1);
  size_t done = 0;
  int64_t formatted = 0;
  std::vector<StoredEvent> evs;
  while (done < max_events && out->size() < max_bytes) {
    // Chunks grow from one event, doubling, and are cut to what the events
    // formatted so far say still fits: a page of 150 KB events reads two of
    // them, not page_events.
    size_t n = done + 1;
    if (done > 0)
      n = std::min(n, (max_bytes - out->size()) / std::max<size_t>(out->size() / done, 1) + 1);
    n = std::min(n, max_events - done);
    evs.clear();
    Status s = store_->ReadAll(formatted > 0 ? formatted + 1 : first, n, &evs);
    if (!s.ok() || evs.empty()) {
      s.PermitUncheckedError();
      if (formatted == 0) *failed = true;
      break;
    }
    for (const auto& e : evs) {
      append_frame(e, out);
      formatted = e.position;
      ++done;
      if (out->size() >= max_bytes) break;
    }
    if (evs.size() < n) break;  // the log ends here
  }
  return formatted;
}

bool EventHub::below_high_water(const Viewer& v) const {
  return v.sink->pending_bytes() < limits_.pending_high_water;
}

bool EventHub::fits(const Viewer& v, size_t frame_bytes) const {
  size_t pending = v.sink->pending_bytes();
  // A frame larger than the high-water mark (one huge event) goes only to a
  // sink with nothing pending: the server takes a lone frame of any size, but
  // cuts a client whose queue would pass its bound.
  return pending < limits_.pending_high_water &&
         (frame_bytes <= limits_.pending_high_water || pending == 0);
}

void EventHub::forget(const std::shared_ptr<StreamSink>& sink) {
  auto it = std::find(attached_.begin(), attached_.end(), sink);
  if (it == attached_.end()) return;  // attach() forgot it already
  if (sink->cut()) cut_.fetch_add(1, std::memory_order_relaxed);
  attached_.erase(it);
  count_.store(attached_.size() + reserved_, std::memory_order_release);
}

void EventHub::drop_closed() {
  std::vector<std::shared_ptr<StreamSink>> gone;
  std::erase_if(viewers_, [&](const Viewer& v) {
    if (!v.sink->closed()) return false;
    gone.push_back(v.sink);
    return true;
  });
  if (gone.empty()) return;
  std::lock_guard lock(mu_);
  for (const auto& g : gone) forget(g);
}

bool EventHub::send_live(bool* retry) {
  int64_t h = head_.load(std::memory_order_acquire);
  if (h <= sent_) return false;
  std::vector<Viewer*> live;
  for (auto& v : viewers_)
    if (v.cursor == sent_ && below_high_water(v)) live.push_back(&v);
  if (live.empty()) {
    // Nobody to give it to now: whoever is behind pages through the log.
    sent_ = h;
    return false;
  }
  auto text = std::make_shared<std::string>();
  int64_t last = read_page(sent_ + 1, h, text.get(), retry);
  if (last == 0) return false;
  std::shared_ptr<const std::string> frame = std::move(text);
  for (Viewer* v : live) {
    if (!fits(*v, frame->size())) continue;  // it falls behind, and pages
    v->sink->push(frame);
    v->cursor = last;
  }
  sent_ = last;
  return head_.load(std::memory_order_acquire) > sent_;
}

bool EventHub::send_pages(bool* blocked, bool* retry) {
  *blocked = false;
  std::vector<Viewer*> lag;
  for (auto& v : viewers_) {
    if (v.cursor >= sent_) continue;  // live, or waiting for the log to reach its start
    if (below_high_water(v)) lag.push_back(&v);
    else *blocked = true;
  }
  if (lag.empty()) return false;
  // Viewers at the same cursor (a crowd that attached with the same ?from)
  // share one read and one page.
  std::sort(lag.begin(), lag.end(),
            [](const Viewer* a, const Viewer* b) { return a->cursor < b->cursor; });
  bool more = false;
  for (size_t i = 0; i < lag.size();) {
    size_t j = i;
    int64_t cursor = lag[i]->cursor;
    while (j < lag.size() && lag[j]->cursor == cursor) ++j;
    auto text = std::make_shared<std::string>();
    int64_t last = read_page(cursor + 1, sent_, text.get(), retry);
    if (last == 0) {
      i = j;
      continue;
    }
    std::shared_ptr<const std::string> page = std::move(text);
    for (size_t k = i; k < j; ++k) {
      if (!fits(*lag[k], page->size())) {
        *blocked = true;  // a huge event waits until its sink is empty
        continue;
      }
      lag[k]->sink->push(page);
      lag[k]->cursor = last;
      if (last < sent_) more = true;
    }
    i = j;
  }
  return more;
}

void EventHub::run() {
  auto next_ping = Clock::now() + limits_.ping_interval;
  const auto ping = std::make_shared<const std::string>(": ping\n\n");
  bool more = false;     // work is left that needs no waiting
  bool blocked = false;  // a lagging viewer waits for its sink to drain
  bool retry = false;    // a log read failed
  for (;;) {
    std::vector<Viewer> fresh;
    {
      std::unique_lock lock(mu_);
      if (!more) {
        auto until = next_ping;
        if (blocked || retry) until = std::min(until, Clock::now() + limits_.drain_check);
        cv_.wait_until(lock, until, [this] { return stopping_ || wake_; });
      }
      if (stopping_) return;
      wake_ = false;
      fresh.swap(inbox_);
    }
    if (!fresh.empty()) {
      // A start beyond the head starts at the head.
      int64_t top = std::max(sent_, store_->LastPosition());
      for (auto& v : fresh) {
        v.cursor = std::min(v.cursor, top);
        viewers_.push_back(std::move(v));
      }
    }
    drop_closed();
    if (Clock::now() >= next_ping) {
      // Only to idle streams: one with bytes pending, or a page to come, is
      // not idle, and a ping behind a huge frame would pass the server's bound.
      for (auto& v : viewers_)
        if (v.cursor >= sent_ && v.sink->pending_bytes() == 0) v.sink->push(ping);
      next_ping = Clock::now() + limits_.ping_interval;
    }
    retry = false;
    more = send_live(&retry);
    more = send_pages(&blocked, &retry) || more;
    if (retry) more = false;
  }
}

}  // namespace giftcard
