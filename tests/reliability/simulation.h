// The deterministic simulation's harness (simulation.cc): one seed runs the
// real shop over SimStore under a seeded schedule; simulation_test.cc draws
// the seeds and checks what they did.
#pragma once

#include <cstdint>
#include <string>

#include "tests/reliability/sim_store.h"

namespace giftcard::reliability {

struct SimOptions {
  SimStore::Bug bug = SimStore::Bug::none;
  bool verbose = false;         // print every call and its answer
  bool second_decider = false;  // ShopConfig::TEST_passivate_with_holds
};

// What one seed did. `failure` is empty when every check passed.
struct SeedRun {
  uint64_t seed = 0;
  std::string failure;
  uint64_t steps = 0, jobs = 0, time_steps = 0, restarts = 0, passivations = 0;
  uint64_t calls = 0, ok = 0, fail = 0, replayed = 0, retries = 0;
  uint64_t purchases_ok = 0, credits_ok = 0, events = 0, checks = 0;
  SimStore::Counters store;
  int bug_fired = 0;
  uint64_t trace = 1469598103934665603ull;  // FNV-1a over the loop's decisions and every answer
};

// Runs one seed to the end (or to its first failure).
SeedRun run_seed(uint64_t seed, SimOptions opt = {});

}  // namespace giftcard::reliability
