#include "events/gift_card.h"

#include <sstream>
#include <unordered_set>

#include "events/check.h"
#include "events/time_util.h"
#include "events/validate.h"

namespace giftcard {
namespace {

// Marks a committed status change of one code; drops its hold.
void set_status(CardState& s, const std::string& code, CodeStatus to) {
  auto it = s.index.find(code);
  if (it == s.index.end()) return;
  CodeSlot& slot = s.slots[it->second];
  if (slot.status != CodeStatus::available) return;  // already final
  slot.status = to;
  if (slot.held) {
    slot.held = false;
    --s.held;
  }
  --s.available;
  switch (to) {
    case CodeStatus::assigned: ++s.assigned; break;
    case CodeStatus::revoked: ++s.revoked; break;
    case CodeStatus::expired: ++s.expired; break;
    case CodeStatus::available: break;
  }
}

struct Evolver {
  CardState& s;
  void operator()(const CardCreated& e) {
    if (s.exists) return;
    s.exists = true;
    s.id = e.card_id;
    s.name = e.name;
    s.price = e.price;
    s.value = e.value;
  }
  void operator()(const CodesAdded& e) {
    if (!s.exists || e.card_id != s.id) return;
    s.slots.reserve(s.slots.size() + e.codes.size());
    for (const auto& c : e.codes) {
      if (s.index.count(c.code)) continue;
      auto idx = static_cast<uint32_t>(s.slots.size());
      s.slots.push_back(CodeSlot{c.code, c.expires_at, CodeStatus::available, false, true});
      s.index.emplace(c.code, idx);
      s.queue.push_back(idx);
      ++s.available;
    }
  }
  void operator()(const CodeAssigned& e) {
    if (e.card_id == s.id) set_status(s, e.code, CodeStatus::assigned);
  }
  void operator()(const CodeRevoked& e) {
    if (e.card_id == s.id) set_status(s, e.code, CodeStatus::revoked);
  }
  void operator()(const CodesExpired& e) {
    if (e.card_id != s.id) return;
    for (const auto& c : e.codes) set_status(s, c, CodeStatus::expired);
  }
};

// After every change of the pool: the cheap invariants always, the full ones
// in debug builds on small pools.
void check_pool(const CardState& s) {
  GIFTCARD_CHECK_EMPTY(pool_counters_violation(s));
#ifndef NDEBUG
  if (s.slots.size() <= kFullCheckSlots) GIFTCARD_CHECK_EMPTY(pool_violation(s));
#endif
}

CardDecision decide_create(const CreateCard& c, const CardState& s) {
  if (auto err = check_card_id(c.card_id); !err.empty())
    return CardDecision::reject(Errc::invalid_request, err);
  if (auto err = check_card_name(c.name); !err.empty())
    return CardDecision::reject(Errc::invalid_request, err);
  if (auto err = check_amount(c.price, "price"); !err.empty())
    return CardDecision::reject(Errc::invalid_request, err);
  if (auto err = check_amount(c.value, "value"); !err.empty())
    return CardDecision::reject(Errc::invalid_request, err);
  if (s.exists) return CardDecision::reject(Errc::card_exists, "card " + c.card_id + " exists");
  return CardDecision::accept({CardCreated{c.card_id, c.name, c.price, c.value}});
}

CardDecision decide_add(const AddCodes& c, const CardState& s) {
  if (!s.exists) return CardDecision::reject(Errc::card_not_found, "no card " + c.card_id);
  if (c.codes.empty() || c.codes.size() > kMaxCodesPerBatch)
    return CardDecision::reject(Errc::invalid_request, "codes must hold 1..100000 entries");
  std::unordered_set<std::string_view> seen, reported;
  seen.reserve(c.codes.size());
  CardDecision d;
  for (size_t i = 0; i < c.codes.size(); ++i) {
    const auto& spec = c.codes[i];
    if (auto err = check_code(spec.code); !err.empty())
      return CardDecision::reject(Errc::invalid_request,
                                  "codes[" + std::to_string(i) + "]: " + err);
    // An expiry at or before now, the epoch and earlier included, is already
    // past: refused rather than stored as a code that can never be sold, whose
    // claim would block a corrected import of the same code for good.
    if (is_expired(spec.expires_at, c.now))
      return CardDecision::reject(Errc::invalid_request,
                                  "codes[" + std::to_string(i) + "]: expires_at " +
                                      format_rfc3339(*spec.expires_at) +
                                      " is not in the future (the code is already expired)"
                                      "; nothing was added");
    if ((!seen.insert(spec.code).second || s.index.count(spec.code)) &&
        reported.insert(spec.code).second)
      d.conflicts.push_back(spec.code);
  }
  if (!d.conflicts.empty()) {
    d.error = Errc::duplicate_codes;
    d.detail = std::to_string(d.conflicts.size()) +
               " code(s) repeated in this batch or already on this card; nothing was added";
    return d;
  }
  return CardDecision::accept({CodesAdded{c.card_id, c.codes}});
}

CardDecision decide_revoke(const RevokeCode& c, const CardState& s) {
  if (!s.exists) return CardDecision::reject(Errc::card_not_found, "no card " + c.card_id);
  auto it = s.index.find(c.code);
  if (it == s.index.end())
    return CardDecision::reject(Errc::code_not_found, "no such code on card " + c.card_id);
  const CodeSlot& slot = s.slots[it->second];
  if (slot.status != CodeStatus::available || slot.held)
    return CardDecision::reject(Errc::code_not_available, "code is not available");
  return CardDecision::accept({CodeRevoked{c.card_id, c.code}});
}

}  // namespace

void evolve_in_place(CardState& s, const CardEvent& e) {
  std::visit(Evolver{s}, e);
  check_pool(s);
}

CardState evolve(CardState s, const CardEvent& e) {
  evolve_in_place(s, e);
  return s;
}

Status fold(CardState& s, Event e) {
  const EventType type = type_of(e);
  auto card_event = to_card_event(std::move(e));
  if (!card_event)
    return Status::Corruption("a card stream holds a " + std::string(type_name(type)) + " event");
  evolve_in_place(s, *card_event);
  return Status::OK();
}

CardDecision decide(const CardCommand& cmd, const CardState& s) {
  return std::visit(overloaded{
                        [&](const CreateCard& c) { return decide_create(c, s); },
                        [&](const AddCodes& c) { return decide_add(c, s); },
                        [&](const RevokeCode& c) { return decide_revoke(c, s); },
                    },
                    cmd);
}

std::string pool_counters_violation(const CardState& s) {
  const auto slots = static_cast<int64_t>(s.slots.size());
  if (s.available < 0 || s.assigned < 0 || s.revoked < 0 || s.expired < 0)
    return "a status counter is negative";
  if (s.available + s.assigned + s.revoked + s.expired != slots)
    return "status counters do not add up to " + std::to_string(slots) + " slots";
  if (s.held < 0 || s.held > s.available)
    return "held " + std::to_string(s.held) + " outside 0.." + std::to_string(s.available);
  return {};
}

std::string pool_violation(const CardState& s) {
  if (auto bad = pool_counters_violation(s); !bad.empty()) return bad;
  if (s.index.size() != s.slots.size()) return "index size != slots size";
  std::vector<bool> queued(s.slots.size(), false);
  for (auto q : s.queue) {
    if (q >= s.slots.size()) return "queue entry out of range";
    queued[q] = true;
  }
  int64_t count[4] = {0, 0, 0, 0};
  int64_t held = 0;
  for (uint32_t i = 0; i < s.slots.size(); ++i) {
    const CodeSlot& sl = s.slots[i];
    auto it = s.index.find(sl.code);
    if (it == s.index.end() || it->second != i)
      return "index does not point at slot " + std::to_string(i);
    ++count[static_cast<int>(sl.status)];
    if (sl.held) {
      ++held;
      if (sl.status != CodeStatus::available)
        return "slot " + std::to_string(i) + " is held but not available";
    }
    if (sl.queued != queued[i]) return "slot " + std::to_string(i) + "'s queued flag is wrong";
    if (sl.status == CodeStatus::available && !sl.held && !sl.queued)
      return "available slot " + std::to_string(i) + " is lost from the queue";
  }
  std::ostringstream o;
  auto cmp = [&](const char* what, int64_t have, int64_t want) {
    if (have != want) o << what << ' ' << have << " != " << want << ' ';
  };
  cmp("available", s.available, count[static_cast<int>(CodeStatus::available)]);
  cmp("assigned", s.assigned, count[static_cast<int>(CodeStatus::assigned)]);
  cmp("revoked", s.revoked, count[static_cast<int>(CodeStatus::revoked)]);
  cmp("expired", s.expired, count[static_cast<int>(CodeStatus::expired)]);
  cmp("held", s.held, held);
  return o.str();
}

Status rebuild_pool(CardState& s) {
  s.index.clear();
  s.queue.clear();
  s.available = s.assigned = s.revoked = s.expired = s.held = 0;
  s.index.reserve(s.slots.size());
  for (uint32_t i = 0; i < s.slots.size(); ++i) {
    CodeSlot& slot = s.slots[i];
    slot.held = false;
    slot.queued = false;
    if (!s.index.emplace(slot.code, i).second) return Status::Corruption("duplicate code in pool");
    switch (slot.status) {
      case CodeStatus::available:
        ++s.available;
        slot.queued = true;
        s.queue.push_back(i);
        break;
      case CodeStatus::assigned: ++s.assigned; break;
      case CodeStatus::revoked: ++s.revoked; break;
      case CodeStatus::expired: ++s.expired; break;
    }
  }
  if (auto bad = pool_violation(s); !bad.empty()) return Status::Corruption("pool: " + bad);
  return Status::OK();
}

Reservation reserve(CardState& s, Micros now) {
  Reservation r;
  while (!s.queue.empty()) {
    uint32_t idx = s.queue.front();
    s.queue.pop_front();
    CodeSlot& slot = s.slots[idx];
    slot.queued = false;
    if (slot.status != CodeStatus::available || slot.held) continue;
    slot.held = true;
    ++s.held;
    if (is_expired(slot.expires_at, now)) {
      r.expired.push_back(slot.code);
      continue;
    }
    r.code = slot.code;
    check_pool(s);
    return r;
  }
  r.error = Errc::out_of_stock;
  check_pool(s);
  return r;
}

bool hold(CardState& s, const std::string& code) {
  auto it = s.index.find(code);
  if (it == s.index.end()) return false;
  CodeSlot& slot = s.slots[it->second];
  if (slot.status != CodeStatus::available || slot.held) return false;
  slot.held = true;
  ++s.held;
  check_pool(s);
  return true;
}

void release(CardState& s, const std::string& code) {
  auto it = s.index.find(code);
  if (it == s.index.end()) return;
  CodeSlot& slot = s.slots[it->second];
  if (!slot.held) return;
  slot.held = false;
  --s.held;
  // A code taken by reserve() goes back to the front; one held in place
  // (hold(), sweep) never left the queue and keeps its FIFO position.
  if (slot.status == CodeStatus::available && !slot.queued) {
    slot.queued = true;
    s.queue.push_front(it->second);
  }
  check_pool(s);
}

std::vector<std::string> sweep_expired(CardState& s, Micros now) {
  std::vector<std::string> out;
  for (auto& slot : s.slots) {
    if (slot.status == CodeStatus::available && !slot.held && is_expired(slot.expires_at, now)) {
      slot.held = true;
      ++s.held;
      out.push_back(slot.code);
    }
  }
  check_pool(s);
  return out;
}

}  // namespace giftcard
