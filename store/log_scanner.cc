#include "store/log_scanner.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "events/codec.h"

namespace giftcard {

namespace {
constexpr size_t kPagesAhead = 2;

// Reads cereal's binary encoding (events/bounded_archive.h): arithmetic
// values in host byte order, a string as its u64 length and its bytes.
struct PayloadReader {
  std::string_view in;
  template <class T>
  bool num(T* v) {
    if (in.size() < sizeof(T)) return false;
    std::memcpy(v, in.data(), sizeof(T));
    in.remove_prefix(sizeof(T));
    return true;
  }
  bool str(std::string* s) {
    uint64_t n = 0;
    if (!num(&n) || n > in.size()) return false;
    s->assign(in.data(), static_cast<size_t>(n));
    in.remove_prefix(static_cast<size_t>(n));
    return true;
  }
  // The class version, written first: one this reader knows.
  bool version() {
    uint32_t v = 0;
    return num(&v) && v <= kEventClassVersion;
  }
};

template <class T>
T& alternative(Event* out) {
  if (!std::holds_alternative<T>(*out)) out->emplace<T>();
  return std::get<T>(*out);
}

// The fast path of decode_event(); false: let cereal decode it.
bool decode_purchase_event(const StoredEvent& e, Event* out) {
  PayloadReader r{e.payload};
  if (e.type == EventType::CodeAssigned) {
    if (!r.version()) return false;
    auto& x = alternative<CodeAssigned>(out);
    return r.str(&x.card_id) && r.str(&x.code) && r.str(&x.purchase_id) && r.str(&x.user_id) &&
           r.num(&x.price) && r.str(&x.idempotency_key) && r.in.empty();
  }
  if (e.type == EventType::WalletDebited) {
    if (!r.version()) return false;
    auto& x = alternative<WalletDebited>(out);
    return r.str(&x.user_id) && r.num(&x.amount) && r.num(&x.balance_after) &&
           r.str(&x.purchase_id) && r.str(&x.card_id) && r.in.empty();
  }
  return false;
}

}  // namespace

Status decode_event(const StoredEvent& e, Event* out) {
  if (decode_purchase_event(e, out)) return Status::OK();
  return e.decode(out);
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
        if (Status s = decode_event(page.events[i], &page.decoded[i]); !s.ok()) {
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
