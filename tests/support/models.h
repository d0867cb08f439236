// Read models in tests: appending a request and waiting for it, the pure fold
// of the log (projections/read_models.h apply(), event by event: the
// definition of "correct" the persisted projections are checked against), a
// ProjectionDb's whole active generation, and CHECK_MODELS_EQUAL, whose
// failure message is the product's first_difference().
#pragma once

#include <algorithm>
#include <boost/test/unit_test.hpp>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "projections/projection_db.h"
#include "projections/read_models.h"
#include "store/event_store.h"

namespace giftcard::test {

// One append request of `evs` (stream, event), waited for; it must commit.
inline AppendResult append(EventStore* s, const std::vector<std::pair<std::string, Event>>& evs) {
  AppendRequest r;
  for (const auto& [stream, e] : evs) r.events.push_back(PendingEvent::of(stream, e));
  AppendResult res;
  Status st = s->AppendAndWait(std::move(r), &res);
  BOOST_REQUIRE_MESSAGE(st.ok(), st.ToString());
  return res;
}

// The pure fold (read_models.h) of the log from position 1 up to `up_to`.
inline ReadModels fold_log(EventStore* s, int64_t up_to = INT64_MAX) {
  ReadModels m;
  std::vector<StoredEvent> batch;
  int64_t next = 1;
  while (next <= up_to) {
    size_t want = static_cast<size_t>(std::min<int64_t>(4096, up_to - next + 1));
    Status st = s->ReadAll(next, want, &batch);
    BOOST_REQUIRE_MESSAGE(st.ok(), "reading the log: " << st.ToString());
    if (batch.empty()) break;
    for (const auto& e : batch) {
      Status a = apply(m, e);
      BOOST_REQUIRE_MESSAGE(a.ok(), "fold at " << e.position << ": " << a.ToString());
    }
    next = batch.back().position + 1;
  }
  return m;
}

// The whole active generation of `db`.
inline ReadModels load(const ProjectionDb& db) {
  ReadModels m;
  Status st = db.LoadAll(&m);
  BOOST_REQUIRE_MESSAGE(st.ok(), st.ToString());
  return m;
}

}  // namespace giftcard::test

#define CHECK_MODELS_EQUAL(a, b) \
  BOOST_TEST(((a) == (b)), "models differ: " << ::giftcard::first_difference((a), (b)))
