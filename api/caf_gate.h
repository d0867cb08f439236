// The CAF door (docs/CONTRACT.md, CAF remote API; docs/SECURITY.md): the
// only actor a node publishes.
//
// The gate answers nothing but `login(role, token)`. A token that grants the
// role gets a session actor of its own: an api session exposes exactly the
// API role's interface (money, purchases, reads), an admin session the whole
// shop. Sessions forward to the shop with request/then, so a client only ever
// learns the addresses of the gate and of its own session — never the shop's,
// a card's or a wallet's.
//
// Neither the gate nor a session can be stopped from outside: CAF delivers
// exit messages (even exit_reason::kill), down messages and error messages
// from any peer that knows an actor's id, so both drop every such message in
// enqueue(), before CAF's own handlers see it. Sessions end after an idle
// period and are capped in number; their errors reach the client without
// server internals (a storage failure says "storage unavailable"; the cause
// goes to the server's log).
#pragma once

#include <atomic>
#include <caf/all.hpp>
#include <chrono>
#include <cstdint>
#include <string>

#include "actors/messages.h"

namespace giftcard {

struct GateOptions {
  // Both empty: every login is granted (loopback only). Otherwise a role
  // needs its token (the admin token also opens the api role); a role
  // without a configured token is closed.
  std::string admin_token;
  std::string api_token;
  size_t max_sessions = 4096;                      // logins beyond it: busy
  std::chrono::milliseconds session_idle{600000};  // a silent session ends
};

struct GateStats {
  std::atomic<uint64_t> logins{0};
  std::atomic<uint64_t> logins_refused{0};
  std::atomic<int64_t> sessions{0};
  std::atomic<uint64_t> dropped_system_messages{0};  // exit/down/error from outside
};

// `stats` must outlive the gate and every session.
gate_actor spawn_gate(caf::actor_system& sys, shop_actor shop, GateOptions options,
                      GateStats* stats);

// Ends the gate and every session (serve's shutdown; a local-only message:
// no peer can send it).
void stop_gate(const gate_actor& gate);

// The reply a client gets for a failed command: domain errors as they are,
// storage errors without their cause (logged here instead), anything else
// (a dead actor, a broken connection) as unavailable.
caf::error client_error(const caf::error& e);

}  // namespace giftcard
