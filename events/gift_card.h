// The GiftCard aggregate: state, evolve and decide (pure; no CAF, no I/O).
//
// CardState keeps exactly what decisions need: the card's terms and its code
// pool. The pool hands codes out FIFO in import order. Besides the committed
// status of every code, the pool has *holds*: a code is held while a purchase,
// revocation or expiry that will change it is being committed. Holds are not
// events; they are the card actor's in-memory reservations (docs/ARCHITECTURE.md,
// "One decider per stream") and are never persisted — after a restart nothing
// is held. reserve()/hold()/release()
// change holds only; evolve() changes committed status and drops the hold.
//
// Thread-compatible: owned by one card actor.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <unordered_map>
#include <variant>
#include <vector>

#include "events/decision.h"
#include "events/events.h"
#include "events/status.h"

namespace giftcard {

enum class CodeStatus : uint8_t { available, assigned, revoked, expired };

struct CodeSlot {
  std::string code;
  Expiry expires_at;  // std::nullopt: never expires
  CodeStatus status = CodeStatus::available;
  bool held = false;
  bool queued = false;  // has an entry in CardState::queue
};

struct CardState {
  bool exists = false;
  std::string id;
  std::string name;
  int64_t price = 0;
  int64_t value = 0;
  std::vector<CodeSlot> slots;                      // import order
  std::unordered_map<std::string, uint32_t> index;  // code -> slot
  std::deque<uint32_t> queue;  // purchase candidates, FIFO; stale entries are skipped
  int64_t available = 0;       // committed status "available" (held or not)
  int64_t assigned = 0;
  int64_t revoked = 0;
  int64_t expired = 0;
  int64_t held = 0;
};

// Commands (imperative). `now` and ids arrive in the command: decide is pure.
struct CreateCard {
  std::string card_id, name;
  int64_t price = 0, value = 0;
};
struct AddCodes {
  std::string card_id;
  std::vector<CodeSpec> codes;
  Micros now = 0;
};
struct RevokeCode {
  std::string card_id, code;
};
using CardCommand = std::variant<CreateCard, AddCodes, RevokeCode>;

// Folds one committed event into the state. Total: an event that does not
// apply (another card, unknown code) leaves the state unchanged.
CardState evolve(CardState s, const CardEvent& e);
void evolve_in_place(CardState& s, const CardEvent& e);
// Folds an event read back from the card's stream: Corruption if it is a
// wallet's event (a card stream holds only card events).
Status fold(CardState& s, Event e);

// The pool's invariants:
//  - every slot is in `index` under its code, and nothing else is;
//  - available + assigned + revoked + expired == slots, each counter equal to
//    the number of slots with that status;
//  - only available codes are held; held == held slots, 0 <= held <= available;
//  - every available, unheld code is reachable through `queue` (none is lost).
// Returns "" if they hold, else what is broken, naming slots by index (never a
// code: the message may reach a log). O(slots).
std::string pool_violation(const CardState& s);
// The O(1) part: the counters add up and 0 <= held <= available. Checked
// (GIFTCARD_CHECK) after every evolve, reserve, release and sweep; the full
// pool_violation after a snapshot decode and, in debug builds, after every
// change of a pool of up to kFullCheckSlots codes.
std::string pool_counters_violation(const CardState& s);
constexpr size_t kFullCheckSlots = 4096;

// Validates and decides. AddCodes reports duplicates within the batch and
// against this card in `conflicts` (system-wide uniqueness is enforced by the
// store's claims, see store/event_store.h). AddCodes refuses (invalid_request,
// nothing added) a batch holding a code already expired at `now`, i.e. with
// expires_at <= now — the epoch and earlier included.
CardDecision decide(const CardCommand& cmd, const CardState& s);

// The result of reserve(): a held code, or out_of_stock; in both cases the
// codes found expired on the way (now held, to be recorded as CodesExpired).
struct Reservation {
  Errc error = Errc::ok;
  std::string code;
  std::vector<std::string> expired;
};

// Takes the next available, unexpired, unheld code and holds it.
// REQUIRES: s.exists.
Reservation reserve(CardState& s, Micros now);
// Holds a specific available code (e.g. while its revocation commits).
// Returns false if it is unknown, not available, or already held.
bool hold(CardState& s, const std::string& code);
// Drops a hold without a status change (rejected or failed commit): the code
// goes back to the front of the queue.
void release(CardState& s, const std::string& code);
// Available, unheld codes whose expires_at <= now (is_expired); holds them.
std::vector<std::string> sweep_expired(CardState& s, Micros now);

// Builds index, queue and counters from `slots` (import order, statuses as
// committed, nothing held): what a snapshot decode restores. Corruption if
// two slots hold the same code.
Status rebuild_pool(CardState& s);

}  // namespace giftcard
