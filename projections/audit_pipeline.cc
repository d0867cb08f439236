#include "projections/audit_pipeline.h"

#include <algorithm>
#include <utility>

#include "store/log_scanner.h"

namespace giftcard {
namespace {

constexpr size_t kPagesAhead = 2;
constexpr int kShareSteps = 64;  // share_ is in 1/kShareSteps of a page
constexpr int kShareStep = 2;    // moved by this much each time one side waits

}  // namespace

void AuditPage::prepare(size_t i) {
  const StoredEvent& e = events[i];
  hash_ok[i] = compute_hash(e) == e.hash;
  decode[i] = decode_event(e, &decoded[i]);
  keys[i].compute(e, decode[i].ok() ? &decoded[i] : nullptr);
}

AuditReader::AuditReader(EventLog* log, Options options) : log_(log), opts_(options) {
  free_.resize(kPagesAhead);
  thread_ = std::thread([this] { Run(); });
}

AuditReader::~AuditReader() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool AuditReader::TakeFree(AuditPage* page) {
  std::unique_lock lock(mu_);
  if (free_.empty() && !stop_) share_ = std::min(kShareSteps, share_ + kShareStep);  // we wait
  cv_.wait(lock, [&] { return stop_ || !free_.empty(); });
  if (stop_) return false;
  *page = std::move(free_.back());
  free_.pop_back();
  page->unreadable = 0;
  page->why.clear();
  return true;
}

bool AuditReader::Emit(AuditPage&& page, bool last) {
  if (!page.events.empty()) {
    const size_t n = page.events.size();
    page.decoded.resize(n);
    page.hash_ok.assign(n, 0);
    page.decode.resize(n);
    page.keys.resize(n);
    int share;
    {
      std::lock_guard lock(mu_);
      share = share_;
    }
    page.prepared = n * static_cast<size_t>(share) / kShareSteps;
    for (size_t i = 0; i < page.prepared; ++i) page.prepare(i);
  } else {
    page.prepared = 0;
  }
  {
    std::lock_guard lock(mu_);
    if (stop_) return false;
    if (!page.events.empty() || page.unreadable != 0) full_.push_back(std::move(page));
    else free_.push_back(std::move(page));  // nothing to hand over: keep the buffers
    if (last) done_ = true;
  }
  cv_.notify_all();
  return !last;
}

void AuditReader::Run() {
  int64_t next = 1;
  int unreadable = 0;
  std::vector<StoredEvent> one;
  for (;;) {
    AuditPage page;
    if (!TakeFree(&page)) return;
    Status s = log_->ReadAll(next, opts_.page, &page.events);
    if (s.ok()) {
      if (page.events.empty()) {
        Emit(std::move(page), true);
        return;
      }
      next = page.events.back().position + 1;
      if (!Emit(std::move(page), false)) return;
      continue;
    }
    // Name the exact event: re-read the page's range one event at a time.
    page.events.clear();
    bool end = false, marker = false;
    Status e1;
    for (size_t steps = 0; steps < opts_.page; ++steps) {
      if (e1 = log_->ReadAll(next, 1, &one); !e1.ok()) {
        marker = true;
        break;
      }
      if (one.empty()) {
        end = true;
        break;
      }
      next = one.front().position + 1;
      page.events.push_back(std::move(one.front()));
    }
    if (!Emit(std::move(page), end)) return;
    if (end) return;
    if (!marker) continue;
    AuditPage m;
    if (!TakeFree(&m)) return;
    m.events.clear();
    m.unreadable = next;
    m.why = "unreadable: " + e1.message();
    next += 1;
    const bool last = ++unreadable > opts_.max_unreadable;  // a wrecked store: enough named
    if (!Emit(std::move(m), last) || last) return;
  }
}

bool AuditReader::Next(AuditPage* page) {
  std::unique_lock lock(mu_);
  if (full_.empty() && !done_) share_ = std::max(0, share_ - kShareStep);  // we wait
  cv_.wait(lock, [&] { return !full_.empty() || done_; });
  if (full_.empty()) return false;
  AuditPage p = std::move(full_.front());
  full_.pop_front();
  std::swap(*page, p);
  free_.push_back(std::move(p));  // the caller's old buffers, for a later page
  lock.unlock();
  cv_.notify_all();
  return true;
}

}  // namespace giftcard
