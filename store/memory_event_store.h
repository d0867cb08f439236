// MemoryEventStore: the EventStore contract over in-memory maps, with the same
// Writer (group commit, versions, claims, hash chain) as RocksEventStore. For
// tests and simulation; nothing survives the process. Thread-safe.
#pragma once

#include <memory>

#include "store/event_store.h"

namespace giftcard {

std::unique_ptr<EventStore> NewMemoryEventStore();

}  // namespace giftcard
