// Reads the log in position order on a background thread, one page ahead of
// its reader: while the caller folds page k, page k+1 is read from RocksDB,
// checked (record CRC, position) and, if asked, its payloads decoded. On this
// 2-core machine that overlaps the scan with the fold instead of alternating
// them (docs/BENCHMARKS.md, "Replay and rebuild").
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "events/envelope.h"
#include "events/events.h"
#include "events/status.h"
#include "store/event_store.h"

namespace giftcard {

// e.decode(out), faster for the two events of a purchase (CodeAssigned,
// WalletDebited: 95 % of a shop's log), which are parsed here without cereal
// and into *out's own strings when it already holds that type (no
// allocation once a page's buffers are warm). The fast path accepts exactly
// what cereal accepts and yields the same value; on anything else it defers
// to e.decode(), so errors and their messages are cereal's. After an error
// *out is unspecified.
Status decode_event(const StoredEvent& e, Event* out);

class LogScanner {
 public:
  struct Options {
    int64_t from = 1;    // first position
    int64_t to = 0;      // last position (0: to the end of the log as it is read)
    size_t page = 8192;  // events per page
    bool decode = true;  // also decode payloads into `decoded`
  };
  LogScanner(EventLog* log, Options options);
  ~LogScanner();  // stops the reader and joins it
  LogScanner(const LogScanner&) = delete;
  LogScanner& operator=(const LogScanner&) = delete;

  // The next page, in order. Empty `events` with OK: the end. The vectors are
  // swapped with the scanner's, so pass the same ones back each time: their
  // buffers are reused. A read or decode error is returned once, at the page
  // where it happened, and ends the scan.
  Status Next(std::vector<StoredEvent>* events, std::vector<Event>* decoded);

 private:
  struct Page {
    std::vector<StoredEvent> events;
    std::vector<Event> decoded;
    Status status;
  };
  void Run();

  EventLog* log_;
  Options opts_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Page> full_;   // GUARDED_BY(mu_)
  std::vector<Page> free_;  // GUARDED_BY(mu_)
  bool stop_ = false;       // GUARDED_BY(mu_)
  bool done_ = false;       // GUARDED_BY(mu_): the reader ended (end or error)
  std::thread thread_;
};

}  // namespace giftcard
