#include "events/gift_card.h"

#include <unordered_set>

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
  void operator()(const WalletCredited&) {}
  void operator()(const WalletDebited&) {}
};

Decision decide_create(const CreateCard& c, const CardState& s) {
  if (auto err = check_card_id(c.card_id); !err.empty())
    return Decision::reject(Errc::invalid_request, err);
  if (auto err = check_card_name(c.name); !err.empty())
    return Decision::reject(Errc::invalid_request, err);
  if (auto err = check_amount(c.price, "price"); !err.empty())
    return Decision::reject(Errc::invalid_request, err);
  if (auto err = check_amount(c.value, "value"); !err.empty())
    return Decision::reject(Errc::invalid_request, err);
  if (s.exists) return Decision::reject(Errc::card_exists, "card " + c.card_id + " exists");
  return Decision::accept({CardCreated{c.card_id, c.name, c.price, c.value}});
}

Decision decide_add(const AddCodes& c, const CardState& s) {
  if (!s.exists) return Decision::reject(Errc::card_not_found, "no card " + c.card_id);
  if (c.codes.empty() || c.codes.size() > kMaxCodesPerBatch)
    return Decision::reject(Errc::invalid_request, "codes must hold 1..100000 entries");
  std::unordered_set<std::string_view> seen, reported;
  seen.reserve(c.codes.size());
  Decision d;
  for (size_t i = 0; i < c.codes.size(); ++i) {
    const auto& spec = c.codes[i];
    if (auto err = check_code(spec.code); !err.empty())
      return Decision::reject(Errc::invalid_request, "codes[" + std::to_string(i) + "]: " + err);
    // An expiry at or before now, the epoch and earlier included, is already
    // past: refused rather than stored as a code that can never be sold, whose
    // claim would block a corrected import of the same code for good.
    if (is_expired(spec.expires_at, c.now))
      return Decision::reject(Errc::invalid_request,
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
  return Decision::accept({CodesAdded{c.card_id, c.codes}});
}

Decision decide_revoke(const RevokeCode& c, const CardState& s) {
  if (!s.exists) return Decision::reject(Errc::card_not_found, "no card " + c.card_id);
  auto it = s.index.find(c.code);
  if (it == s.index.end())
    return Decision::reject(Errc::code_not_found, "no such code on card " + c.card_id);
  const CodeSlot& slot = s.slots[it->second];
  if (slot.status != CodeStatus::available || slot.held)
    return Decision::reject(Errc::code_not_available, "code is not available");
  return Decision::accept({CodeRevoked{c.card_id, c.code}});
}

}  // namespace

void evolve_in_place(CardState& s, const Event& e) { std::visit(Evolver{s}, e); }

CardState evolve(CardState s, const Event& e) {
  evolve_in_place(s, e);
  return s;
}

Decision decide(const CardCommand& cmd, const CardState& s) {
  return std::visit(
      [&](const auto& c) -> Decision {
        using T = std::decay_t<decltype(c)>;
        if constexpr (std::is_same_v<T, CreateCard>) return decide_create(c, s);
        else if constexpr (std::is_same_v<T, AddCodes>) return decide_add(c, s);
        else return decide_revoke(c, s);
      },
      cmd);
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
    return r;
  }
  r.error = Errc::out_of_stock;
  return r;
}

bool hold(CardState& s, const std::string& code) {
  auto it = s.index.find(code);
  if (it == s.index.end()) return false;
  CodeSlot& slot = s.slots[it->second];
  if (slot.status != CodeStatus::available || slot.held) return false;
  slot.held = true;
  ++s.held;
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
  return out;
}

}  // namespace giftcard
