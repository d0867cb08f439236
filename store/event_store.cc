#include "store/event_store.h"

#include <condition_variable>
#include <mutex>

#include "events/codec.h"

namespace giftcard {

PendingEvent PendingEvent::of(std::string stream, const Event& e) {
  return PendingEvent{std::move(stream), type_of(e), encode_payload(e)};
}

Status EventLog::AppendAndWait(AppendRequest req, AppendResult* result) {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  Status status;
  Append(std::move(req), [&](const Status& s, const AppendResult& r) {
    std::lock_guard<std::mutex> lock(mu);
    status = s;
    if (result) *result = r;
    done = true;
    cv.notify_one();
  });
  std::unique_lock<std::mutex> lock(mu);
  cv.wait(lock, [&] { return done; });
  return status;
}

Status EventLog::ReadEvent(int64_t position, StoredEvent* out) {
  std::vector<StoredEvent> one;
  if (Status s = ReadAll(position, 1, &one); !s.ok()) return s;
  if (one.empty() || one.front().position != position)
    return Status::NotFound("no event at position " + std::to_string(position));
  *out = std::move(one.front());
  return Status::OK();
}

// Claim namespaces. '\x1f' (unit separator) cannot occur in a validated user id.
std::string code_claim(const std::string& code) { return "code/" + code; }
std::string purchase_idem_claim(const std::string& user, const std::string& key) {
  return "idem/p/" + user + '\x1f' + key;
}
std::string credit_idem_claim(const std::string& user, const std::string& key) {
  return "idem/c/" + user + '\x1f' + key;
}

}  // namespace giftcard
