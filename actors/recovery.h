// Recovery of an aggregate from its snapshot plus the stream's tail.
#pragma once

#include "events/snapshot.h"
#include "store/event_store.h"

namespace giftcard {

// Loads the snapshot of `stream` (ignored if missing or damaged), then folds
// every later event. *version is the last folded stream version; *tail the
// number of events folded after the snapshot.
template <class State>
Status recover(EventStore* store, const std::string& stream, State* state, int64_t* version,
               int64_t* tail) {
  *version = 0;
  *tail = 0;
  Snapshot snap;
  if (store->LoadSnapshot(stream, &snap).ok()) {
    State s;
    if (decode_snapshot(snap.data, &s).ok()) {
      *state = std::move(s);
      *version = snap.version;
    }
  }
  std::vector<StoredEvent> batch;
  for (;;) {
    if (Status st = store->ReadStream(stream, *version + 1, 4096, &batch); !st.ok()) return st;
    if (batch.empty()) return Status::OK();
    for (const auto& e : batch) {
      if (e.version != *version + 1)
        return Status::Corruption("stream " + stream + " skips from version " +
                                  std::to_string(*version) + " to " + std::to_string(e.version));
      Event ev;
      if (Status st = e.decode(&ev); !st.ok()) return st;
      // fold: Corruption if the stream holds another aggregate's event.
      if (Status st = fold(*state, std::move(ev)); !st.ok())
        return Status::Corruption("stream " + stream + " version " + std::to_string(e.version) +
                                  ": " + st.message());
      *version = e.version;
      if constexpr (requires { state->version; }) {
        if (state->version != *version)  // a wallet counts its own versions
          return Status::Corruption("stream " + stream + " folds to version " +
                                    std::to_string(state->version) + " at " +
                                    std::to_string(*version));
      }
      ++*tail;
    }
  }
}

}  // namespace giftcard
