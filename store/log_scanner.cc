#include "store/log_scanner.h"

#include <algorithm>
#include <string>

#include "events/codec.h"

namespace giftcard {

namespace {
constexpr size_t kPagesAhead = 2;
}

LogScanner::LogScanner(EventLog* log, Options options) : log_(log), opts_(options) {
  free_.resize(kPagesAhead);
  thread_ = std::thread([this] { Run(); });
}

LogScanner::~LogScanner() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void LogScanner::Run() {
  int64_t next = std::max<int64_t>(opts_.from, 1);
  for (;;) {
    Page page;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stop_ || !free_.empty(); });
      if (stop_) return;
      page = std::move(free_.back());
      free_.pop_back();
    }
    size_t want = opts_.page;
    if (opts_.to > 0)
      want = static_cast<size_t>(
          std::clamp<int64_t>(opts_.to - next + 1, 0, static_cast<int64_t>(want)));
    page.status = want == 0 ? Status::OK() : log_->ReadAll(next, want, &page.events);
    if (want == 0 || !page.status.ok()) page.events.clear();
    if (opts_.decode && page.status.ok()) {
      page.decoded.resize(page.events.size());
      for (size_t i = 0; i < page.events.size(); ++i)
        if (Status s = page.events[i].decode(&page.decoded[i]); !s.ok()) {
          page.status = Status::Corruption("position " + std::to_string(page.events[i].position) +
                                           ": " + s.message());
          break;
        }
    } else {
      page.decoded.clear();
    }
    const bool last = !page.status.ok() || page.events.empty();
    if (!last) next = page.events.back().position + 1;
    {
      std::lock_guard lock(mu_);
      full_.push_back(std::move(page));
      if (last) done_ = true;
    }
    cv_.notify_all();
    if (last) return;
  }
}

Status LogScanner::Next(std::vector<StoredEvent>* events, std::vector<Event>* decoded) {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return !full_.empty() || (done_ && full_.empty()); });
  if (full_.empty()) {  // after the end (or an error) was already handed out
    events->clear();
    decoded->clear();
    return Status::OK();
  }
  Page page = std::move(full_.front());
  full_.pop_front();
  events->swap(page.events);
  decoded->swap(page.decoded);
  Status s = page.status;
  page.status = Status::OK();
  free_.push_back(std::move(page));  // the caller's old buffers, for a later page
  lock.unlock();
  cv_.notify_all();
  return s;
}

}  // namespace giftcard
