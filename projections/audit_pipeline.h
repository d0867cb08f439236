// The reading half of `giftcard verify` (projections/audit.cc), on a thread of
// its own: it reads the log page by page (EventLog::ReadAll), and for each
// event recomputes its SHA-256 hash and decodes its payload ("prepares" it),
// while the caller's thread checks the previous page's invariants. Two pages
// are in flight at most (bounded memory).
//
// What it hands over is exactly what verify's old single loop saw, in the
// same order: every event it could read, and a marker for every position it
// could not. A page ReadAll refuses (a record that does not decode, a chain
// broken inside the page) is re-read one event at a time over its range, so
// the bad event is named exactly; then paging resumes. Single reads never
// see a chain break (the caller checks prev_hash itself), so the events
// handed over are the ones the old loop checked.
//
// Preparing also hashes the keys the checks and the fold will look up
// (EventKeys), so the checking thread probes its hash maps without hashing.
//
// Balance: preparing costs about as much as the caller's checks. The reader
// prepares the first `prepared` events of a page and the caller the rest
// (AuditPage::prepare); the split follows who waited for whom, so both cores
// stay busy whichever side is slower on a given log.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "events/envelope.h"
#include "events/events.h"
#include "events/status.h"
#include "projections/flat_models.h"
#include "store/event_store.h"

namespace giftcard {

struct AuditPage {
  // Events read, in position order, and per event (once prepared):
  std::vector<StoredEvent> events;
  std::vector<Event> decoded;    // the payload (if it decoded)
  std::vector<uint8_t> hash_ok;  // 1: the hash recomputed matches e.hash
  std::vector<Status> decode;    // OK, or why the payload did not decode
  std::vector<EventKeys> keys;   // the hashes of its keys (the stream's even if undecoded)
  size_t prepared = 0;           // events[0, prepared) are prepared
  // Or, with `events` empty: a position that could not be read.
  int64_t unreadable = 0;
  std::string why;

  // Prepares event i (hash, decode and its keys' hashes) unless the reader did.
  void prepare(size_t i);
};

class AuditReader {
 public:
  struct Options {
    size_t page = 8192;
    int max_unreadable = 1000;  // then the reader stops: a wrecked store
  };
  AuditReader(EventLog* log, Options options);
  ~AuditReader();  // stops the reader and joins it
  AuditReader(const AuditReader&) = delete;
  AuditReader& operator=(const AuditReader&) = delete;

  // The next page or marker; false at the end. The page is swapped with the
  // scanner's: pass the same one back each time, its buffers are reused.
  bool Next(AuditPage* page);

 private:
  void Run();
  bool Emit(AuditPage&& page, bool last);  // false: stop
  bool TakeFree(AuditPage* page);          // false: stop

  EventLog* log_;
  Options opts_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<AuditPage> full_;   // GUARDED_BY(mu_)
  std::vector<AuditPage> free_;  // GUARDED_BY(mu_)
  bool stop_ = false;            // GUARDED_BY(mu_)
  bool done_ = false;            // GUARDED_BY(mu_)
  // Share of a page the reader prepares, in 1/64ths; adjusted by who waits.
  int share_ = 32;  // GUARDED_BY(mu_)
  std::thread thread_;
};

}  // namespace giftcard
