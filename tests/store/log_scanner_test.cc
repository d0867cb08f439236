// LogScanner: the log read one page ahead on a reader thread (replay, rebuild).
#include <boost/test/unit_test.hpp>
#include <memory>
#include <string>
#include <vector>

#include "events/events.h"
#include "store/log_scanner.h"
#include "store/memory_event_store.h"

namespace giftcard {
namespace {

// A store with `n` wallet events, in requests of up to 7 events.
std::unique_ptr<EventStore> wallet_log(int n) {
  auto store = NewMemoryEventStore();
  for (int i = 0; i < n;) {
    AppendRequest r;
    for (int k = 0; k < 7 && i < n; ++k, ++i)
      r.events.push_back(PendingEvent::of(
          "wallet-u" + std::to_string(i % 13),
          WalletCredited{"u" + std::to_string(i % 13), i + 1, 0, "t" + std::to_string(i)}));
    Status s = store->AppendAndWait(std::move(r), nullptr);
    BOOST_REQUIRE_MESSAGE(s.ok(), s.ToString());
  }
  return store;
}

// Every event the scanner hands out, with its decoded amount.
struct Scanned {
  std::vector<int64_t> positions;
  std::vector<int64_t> amounts;
  int pages = 0;
  Status status;
};
Scanned scan_all(EventStore* store, LogScanner::Options o) {
  LogScanner scanner(store, o);
  Scanned out;
  std::vector<StoredEvent> page;
  std::vector<Event> decoded;
  for (;;) {
    out.status = scanner.Next(&page, &decoded);
    if (!out.status.ok() || page.empty()) break;
    ++out.pages;
    BOOST_REQUIRE_EQUAL(decoded.size(), o.decode ? page.size() : 0u);
    for (size_t i = 0; i < page.size(); ++i) {
      out.positions.push_back(page[i].position);
      if (o.decode) out.amounts.push_back(std::get<WalletCredited>(decoded[i]).amount);
    }
  }
  return out;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(log_scanner)

BOOST_AUTO_TEST_CASE(hands_out_every_event_in_order_with_its_payload) {
  auto store = wallet_log(1000);
  for (size_t page : {size_t{1}, size_t{7}, size_t{64}, size_t{1000}, size_t{5000}}) {
    Scanned s = scan_all(store.get(), {.from = 1, .to = 0, .page = page, .decode = true});
    BOOST_TEST_REQUIRE(s.status.ok(), s.status.ToString());
    BOOST_REQUIRE_EQUAL(s.positions.size(), 1000u);
    for (int i = 0; i < 1000; ++i) {
      BOOST_CHECK_EQUAL(s.positions[static_cast<size_t>(i)], i + 1);
      BOOST_CHECK_EQUAL(s.amounts[static_cast<size_t>(i)], i + 1);
    }
    BOOST_CHECK_EQUAL(s.pages, static_cast<int>((1000 + page - 1) / page));
  }
}

BOOST_AUTO_TEST_CASE(from_and_to_bound_the_scan) {
  auto store = wallet_log(300);
  Scanned s = scan_all(store.get(), {.from = 41, .to = 250, .page = 32, .decode = false});
  BOOST_TEST_REQUIRE(s.status.ok(), s.status.ToString());
  BOOST_REQUIRE_EQUAL(s.positions.size(), 210u);
  BOOST_CHECK_EQUAL(s.positions.front(), 41);
  BOOST_CHECK_EQUAL(s.positions.back(), 250);
  // Past the end, and an empty log: no pages, OK.
  BOOST_CHECK(
      scan_all(store.get(), {.from = 301, .to = 0, .page = 8, .decode = true}).positions.empty());
  auto empty = NewMemoryEventStore();
  Scanned e = scan_all(empty.get(), {.from = 1, .to = 0, .page = 8, .decode = true});
  BOOST_CHECK(e.status.ok());
  BOOST_CHECK_EQUAL(e.pages, 0);
}

BOOST_AUTO_TEST_CASE(a_payload_that_does_not_decode_stops_the_scan_naming_its_position) {
  auto store = wallet_log(100);
  AppendRequest bad;
  bad.events.push_back(PendingEvent{"wallet-x", EventType::WalletCredited, "not cereal"});
  BOOST_REQUIRE(store->AppendAndWait(std::move(bad), nullptr).ok());
  Scanned s = scan_all(store.get(), {.from = 1, .to = 0, .page = 16, .decode = true});
  BOOST_CHECK_MESSAGE(s.status.IsCorruption(), s.status.ToString());
  BOOST_CHECK_MESSAGE(s.status.ToString().find("position 101") != std::string::npos,
                      s.status.ToString());
  BOOST_CHECK_EQUAL(s.positions.size(), 96u);  // the six whole pages before the bad one
  // Without decoding, the same log scans to its end.
  Scanned raw = scan_all(store.get(), {.from = 1, .to = 0, .page = 16, .decode = false});
  BOOST_CHECK(raw.status.ok());
  BOOST_CHECK_EQUAL(raw.positions.size(), 101u);
}

BOOST_AUTO_TEST_CASE(a_reader_that_stops_early_does_not_hang) {
  auto store = wallet_log(5000);
  for (int round = 0; round < 20; ++round) {
    LogScanner scanner(store.get(), {.from = 1, .to = 0, .page = 64, .decode = true});
    std::vector<StoredEvent> page;
    std::vector<Event> decoded;
    for (int k = 0; k < round % 4; ++k) BOOST_REQUIRE(scanner.Next(&page, &decoded).ok());
  }  // destroyed with pages ahead and the reader waiting for a free buffer
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace giftcard
