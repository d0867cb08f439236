// Recovery of an aggregate from its snapshot plus the stream's tail.
#pragma once

#include <optional>
#include <set>
#include <type_traits>

#include "events/snapshot.h"
#include "store/event_store.h"

namespace giftcard {

// Where part `part` of a card's snapshot is kept: a snapshot of its own, under
// a name no stream can have (ids never hold '\0').
inline std::string card_part_name(const std::string& stream, uint32_t part) {
  return stream + std::string(1, '\0') + std::to_string(part);
}

// A card's snapshot in parts (events/snapshot.h); *parts: what its head names.
inline Status load_card_snapshot(EventStore* store, const std::string& stream, const Snapshot& head,
                                 CardState* s, std::vector<CardPartRef>* parts) {
  return decode_card_snapshot(
      head.data,
      [&](uint32_t part, std::string* bytes, int64_t* version) {
        Snapshot p;
        Status l = store->LoadSnapshot(card_part_name(stream, part), &p);
        *bytes = std::move(p.data);
        *version = p.version;
        return l;
      },
      s, parts);
}

// A card's snapshot parts: those the loaded head names, and those the events
// folded after it changed (the next save rewrites them).
struct CardSnapshotTrack {
  std::vector<CardPartRef>* parts;
  std::set<uint32_t>* dirty;
};

// Loads the snapshot of `stream` (ignored if missing or damaged), then folds
// every later event. *version is the last folded stream version; *tail the
// number of events folded after the snapshot. For a card, `track` (if given)
// learns its parts.
template <class State>
Status recover(EventStore* store, const std::string& stream, State* state, int64_t* version,
               int64_t* tail, CardSnapshotTrack* track = nullptr) {
  *version = 0;
  *tail = 0;
  Snapshot snap;
  if (store->LoadSnapshot(stream, &snap).ok()) {
    State s;
    Status d;
    if constexpr (std::is_same_v<State, CardState>) {
      std::vector<CardPartRef> loaded;
      d = load_card_snapshot(store, stream, snap, &s, &loaded);
      if (d.ok() && track) *track->parts = std::move(loaded);
    } else {
      d = decode_snapshot(snap.data, &s);
    }
    if (d.ok()) {
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
      std::optional<CardEvent> changed;  // a card's event, to mark its parts
      size_t slots_before = 0;
      if constexpr (std::is_same_v<State, CardState>) {
        if (track) {
          changed = to_card_event(ev);
          slots_before = state->slots.size();
        }
      }
      // fold: Corruption if the stream holds another aggregate's event.
      if (Status st = fold(*state, std::move(ev)); !st.ok())
        return Status::Corruption("stream " + stream + " version " + std::to_string(e.version) +
                                  ": " + st.message());
      if constexpr (std::is_same_v<State, CardState>) {
        if (changed) card_parts_changed(*state, slots_before, *changed, track->dirty);
      }
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
