// The GiftCard aggregate: state, evolve and decide (pure; no CAF, no I/O).
//
// CardState keeps exactly what decisions need: the card's terms and its code
// pool. The pool hands codes out FIFO in import order. Besides the committed
// status of every code, the pool has *holds*: a code is held while a purchase,
// revocation or expiry that will change it is being committed. Holds are not
// events; they are the card actor's in-memory reservations (SPEC §7) and are
// never persisted — after a restart nothing is held. reserve()/hold()/release()
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
CardState evolve(CardState s, const Event& e);
void evolve_in_place(CardState& s, const Event& e);

// Validates and decides. AddCodes reports duplicates within the batch and
// against this card in `conflicts` (system-wide uniqueness is enforced by the
// store's claims, see store/event_store.h). AddCodes refuses (invalid_request,
// nothing added) a batch holding a code already expired at `now`, i.e. with
// expires_at <= now — the epoch and earlier included.
Decision decide(const CardCommand& cmd, const CardState& s);

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

}  // namespace giftcard
