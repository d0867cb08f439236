// RELIABILITY.md §5: deterministic simulation. The real shop, card, wallet
// actors and projection driver run on CAF's deterministic scheduler
// (scheduler.policy = testing: caf::scheduler::test_coordinator, whose job
// list the loop drives by hand) over SimStore (sim_store.h), a store that
// commits nothing until the loop says so. From one seed the loop decides, step
// by step, which pending actor runs its next message (a uniformly random job
// of test_coordinator::jobs, i.e. the jobs are reshuffled before every
// run_once), when queued appends commit and in which groups, when a commit
// fails (sticky IOError; the failed group lost or on disk anyway), when the
// next client command is issued, when simulated time advances (ticks, expiry
// sweeps, passivation: passivate_after is a few simulated milliseconds) and
// when the node restarts (drain, stop, reopen the store, recover). After
// every step the committed log is checked with the log oracle
// (tests/support/log_oracle.h: invariants 1, 2, 3, 5 and 7 (docs/CONTRACT.md, "Invariants")) and
// every reply so far against it (check_history: an acknowledged purchase or credit is in the log,
// at its position, its code assigned exactly once; repeats of a key answer byte for byte alike); a
// call that is never answered, a drain that never ends or a storage_corruption answer fail the seed
// too. At the end and at every restart the shop is drained and its projections are compared with a
// fold of the log (invariant 6).
//
// Reproduce a failing seed (its number is in the failure message):
//   GIFTCARD_SIM_SEED=<n> <build>/tests/reliability_test
//       --run_test=simulation/seeded_schedules_keep_every_invariant
// runs exactly that seed and prints its figures and every call with its
// answer. GIFTCARD_SEED=<s> repeats a whole run (the seeds are drawn from it),
// GIFTCARD_SOAK=1 runs the nightly count.
//
// Determinism: everything but the projection driver runs on this thread. The
// driver is a *detached* actor (actors/projection_driver.cc), which CAF 0.17.6
// runs on a private thread even under the testing policy; it only reads the
// store and writes the projections, and it sends nothing to another actor
// except its reply to the shop's final DrainMsg, so it cannot change what the
// other actors do. Its one message into the job list is made safe by a
// locked job list (SimScheduler below).
#include <algorithm>
#include <caf/all.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <iostream>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "actors/errors.h"
#include "actors/internal.h"
#include "actors/shop_actor.h"
#include "events/check.h"
#include "projections/projection_db.h"
#include "projections/read_models.h"
#include "tests/reliability/oracle.h"
#include "tests/reliability/sim_scheduler.h"
#include "tests/reliability/sim_store.h"
#include "tests/reliability/simulation.h"
#include "tests/support/log_oracle.h"

namespace giftcard::reliability {
namespace {

using namespace std::chrono_literals;

// One client command of the workload.
struct Op {
  enum class Kind { create, add_codes, credit, purchase, revoke } kind = Kind::purchase;
  std::string card, user, key, code;
  int64_t amount = 0;
  std::vector<CodeSpec> codes;
  int attempts = 0;  // retries so far
};

Op op_of(Op::Kind kind) {
  Op op;
  op.kind = kind;
  return op;
}

// A GIFTCARD_CHECK that fails during a seed (events/check.h) ends the seed as a
// failure instead of aborting the test: the paired assertions are part of
// what catches a broken writer core.
std::mutex g_check_mu;
std::string g_check_failure;  // GUARDED_BY(g_check_mu): the first failed check of the seed

void record_check(const char* file, int line, const char* what, std::string_view detail) {
  std::lock_guard<std::mutex> lock(g_check_mu);
  if (g_check_failure.empty())
    g_check_failure = std::string("GIFTCARD_CHECK failed at ") + file + ":" + std::to_string(line) +
                      ": " + what + " " + std::string(detail);
}

std::string peek_check_failure() {
  std::lock_guard<std::mutex> lock(g_check_mu);
  return g_check_failure;
}

std::string take_check_failure() {
  std::lock_guard<std::mutex> lock(g_check_mu);
  return std::exchange(g_check_failure, {});
}

constexpr Micros kEpoch = 1'780'000'000'000'000;  // 2026-05-28, simulated
constexpr uint64_t kMaxSteps = 200000;

class Simulation {
 public:
  Simulation(uint64_t seed, SimOptions opt)
      : seed_(seed),
        rng_(seed),
        opt_(opt),
        owned_store_(std::make_unique<SimStore>([this] { return now(); })),
        store_(*owned_store_) {
    run_.seed = seed;
    store_.set_bug(opt.bug);
  }

  SeedRun run() {
    set_check_handler_for_testing(&record_check);
    take_check_failure();
    plan();
    start_node();
    loop();
    if (node_) {
      if (stuck_) abandon_node();
      else stop_node();
    }
    mix_answers();
    set_check_handler_for_testing(nullptr);
    if (auto c = take_check_failure(); !c.empty() && run_.failure.empty()) run_.failure = c;
    if (opt_.verbose) print_calls();
    run_.store = store_.counters();
    run_.bug_fired = store_.bug_fired();
    run_.events = static_cast<uint64_t>(store_.LastPosition());
    return run_;
  }

 private:
  struct Node {
    std::unique_ptr<caf::actor_system_config> cfg;
    std::unique_ptr<caf::actor_system> sys;
    SimScheduler* sched = nullptr;
    std::unique_ptr<ProjectionDb> projections;
    std::unique_ptr<ShopContext> ctx;
    shop_internal_actor shop;
  };

  // A call in flight or answered.
  struct Pending {
    Op op;
    bool answered = false;
    bool history = false;  // purchase or credit: checked by check_history
    bool setup = false;    // part of the set-up (cards, codes, first credits)
    Call call;
  };

  // ---- time -------------------------------------------------------------

  Micros node_elapsed() const {
    if (!node_) return 0;
    auto d = node_->sched->clock().current_time.time_since_epoch();
    return std::chrono::duration_cast<std::chrono::microseconds>(d).count();
  }
  Micros now() const { return kEpoch + offset_ + node_elapsed(); }

  // The trace records the decisions of the main loop; a drain's tail (see
  // stop_node) is not part of it.
  void mix(uint64_t x) {
    if (rng_now_ != &rng_) return;
    for (int i = 0; i < 8; ++i) {
      run_.trace ^= (x >> (8 * i)) & 0xff;
      run_.trace *= 1099511628211ull;
    }
  }

  uint64_t pick(uint64_t n) { return n == 0 ? 0 : (*rng_now_)() % n; }
  bool chance(int permille) { return static_cast<int>((*rng_now_)() % 1000) < permille; }

  // ---- the workload -----------------------------------------------------

  void plan() {
    const int cards = 1 + static_cast<int>(pick(3));
    const int users = 2 + static_cast<int>(pick(3));
    fail_permille_ = chance(400) ? 0 : 10 + static_cast<int>(pick(50));
    config_.passivate_after = std::chrono::milliseconds(2 + pick(40));
    config_.tick = std::chrono::milliseconds(1 + pick(10));
    config_.expiry_sweep = std::chrono::milliseconds(5 + pick(50));
    config_.snapshot_every = chance(500) ? 1 + static_cast<int64_t>(pick(4)) : 1024;
    config_.clock = [this] { return now(); };
    config_.TEST_passivate_with_holds = opt_.second_decider;
    const int64_t prices[] = {200, 300, 500};
    std::vector<Op> rest;
    int code_no = 0;
    std::vector<std::string> all_codes;
    for (int c = 0; c < cards; ++c) {
      Op create = op_of(Op::Kind::create);
      create.card = "card-" + std::to_string(c);
      create.amount = prices[pick(3)];
      setup_.push_back(create);
      card_ids_.push_back(create.card);
      Op add = op_of(Op::Kind::add_codes);
      add.card = create.card;
      const int n = 1 + static_cast<int>(pick(4));
      for (int i = 0; i < n; ++i) {
        CodeSpec spec{"CODE-" + std::to_string(++code_no), 0};
        if (chance(150)) spec.expires_at = kEpoch + 1000 * static_cast<Micros>(5 + pick(150));
        all_codes.push_back(spec.code);
        add.codes.push_back(spec);
      }
      setup_.push_back(add);
    }
    if (chance(200)) {  // a batch with a code another card owns: rejected whole
      Op dup = op_of(Op::Kind::add_codes);
      dup.card = card_ids_[pick(card_ids_.size())];
      dup.codes = {CodeSpec{"CODE-" + std::to_string(++code_no), 0},
                   CodeSpec{all_codes[pick(all_codes.size())], 0}};
      rest.push_back(dup);
    }
    for (int u = 0; u < users; ++u) {
      const std::string user = "user-" + std::to_string(u);
      user_ids_.push_back(user);
      const int credits = 1 + static_cast<int>(pick(2));
      for (int k = 0; k < credits; ++k) {
        Op credit = op_of(Op::Kind::credit);
        credit.user = user;
        credit.key = "c" + std::to_string(k);
        credit.amount = 100 * static_cast<int64_t>(1 + pick(8));
        if (k == 0) setup_.push_back(credit);
        else rest.push_back(credit);
        if (chance(200)) rest.push_back(credit);  // the same credit again
        if (chance(50)) {                         // the same key, another amount
          credit.amount += 100;
          rest.push_back(credit);
        }
      }
    }
    const int purchases = 4 + static_cast<int>(pick(11));
    for (int i = 0; i < purchases; ++i) {
      Op p = op_of(Op::Kind::purchase);
      p.user = user_ids_[pick(user_ids_.size())];
      p.card = card_ids_[pick(card_ids_.size())];
      p.key = "k" + std::to_string(pick(4));
      rest.push_back(p);
      if (chance(250)) rest.push_back(p);  // a repeat, often concurrent
    }
    if (chance(300)) {
      Op r = op_of(Op::Kind::revoke);
      r.card = card_ids_[pick(card_ids_.size())];
      r.code = all_codes[pick(all_codes.size())];
      rest.push_back(r);
    }
    std::shuffle(rest.begin(), rest.end(), rng_);
    ops_.assign(rest.begin(), rest.end());
  }

  // ---- the node -----------------------------------------------------------

  void start_node() {
    node_ = std::make_unique<Node>();
    Node& n = *node_;
    n.cfg = std::make_unique<caf::actor_system_config>();
    register_message_types(*n.cfg);
    n.cfg->set("scheduler.policy", caf::atom("testing"));
    n.cfg->set("logger.file-verbosity", caf::atom("quiet"));
    n.cfg->set("logger.console", caf::atom("none"));
    // The testing policy's coordinator, with a locked job list (see above).
    n.cfg->module_factories.push_back(
        [](caf::actor_system& sys) -> caf::actor_system::module* { return new SimScheduler(sys); });
    n.sys = std::make_unique<caf::actor_system>(*n.cfg);
    n.sched = &dynamic_cast<SimScheduler&>(n.sys->scheduler());
    if (Status s = ProjectionDb::Open(&store_, &n.projections); !s.ok()) {
      fail("cannot open projections: " + s.ToString());
      node_.reset();  // no actor runs yet
      return;
    }
    n.ctx = std::make_unique<ShopContext>();
    n.ctx->store = &store_;
    n.ctx->projections = n.projections.get();
    n.ctx->config = config_;
    n.shop = spawn_shop(*n.sys, n.ctx.get());
  }

  // Drains the shop (every actor finishes its in-flight work and snapshots,
  // the projections catch up), compares the projections with the log, lets
  // the store commit what is queued (as Close does) and stops the node.
  // False if the drain did not end: the node is then abandoned.
  //
  // Determinism: once the shop has sent its DrainMsg to the detached
  // projection driver, the driver's reply lands at a moment this thread does
  // not choose. Nothing it can reorder changes the log or any answer (every
  // card and wallet actor has drained by then), but it could change how many
  // random numbers the drain draws; so a drain draws from its own generator,
  // seeded from the main one, and retries are queued in call order (below).
  bool stop_node() {
    Node& n = *node_;
    std::mt19937_64 drain_rng(rng_());
    rng_now_ = &drain_rng;
    struct Restore {
      Simulation* sim;
      ~Restore() { sim->rng_now_ = &sim->rng_; }
    } restore{this};
    auto drained = std::make_shared<int>(0);  // 1 ok, 2 error
    // The unused int: CAF 0.17.6 spawns a function actor without arguments by
    // dereferencing a null std::tuple<> pointer (UBSan: reference binding to null).
    n.sys->spawn(
        [shop = n.shop, drained](caf::event_based_actor* self, int) {
          self->request(shop, caf::infinite, DrainMsg{})
              .then([drained](bool ok) { *drained = ok ? 1 : 2; },
                    [drained](caf::error&) { *drained = 2; });
        },
        0);
    uint64_t steps = 0;
    std::string stuck;
    while (*drained == 0 && stuck.empty()) {
      if (++steps > kMaxSteps) {
        stuck = "the drain did not finish";
      } else if (n.sched->pending() > 0) {
        run_job();
      } else if (store_.has_work()) {
        commit();
      } else if (const int64_t live = n.ctx->metrics.live_cards + n.ctx->metrics.live_wallets;
                 live > 0) {
        // Nothing can wake them: the driver sends them nothing, and a drain
        // waits for no timer.
        stuck = "the drain hangs: " + std::to_string(n.ctx->metrics.live_cards.load()) +
                " card and " + std::to_string(n.ctx->metrics.live_wallets.load()) +
                " wallet actor(s) never finished, with nothing left to run";
      } else if (!n.sched->wait_for_job(10s)) {
        // Only the detached driver can still be at work; it had 10 s.
        stuck = "the drain stalled: the projection driver did not answer (projections at " +
                std::to_string(n.projections->position()) + " of " +
                std::to_string(store_.LastPosition()) + ")";
      }
      check();
    }
    if (!stuck.empty()) {
      fail(stuck);
      abandon_node();
      return false;
    }
    while (n.sched->pending() > 0) run_job();
    queue_retries();
    if (*drained != 1) fail("the drain failed (projection driver error)");
    if (run_.failure.empty()) check_projections();
    caf::anon_send_exit(n.shop, caf::exit_reason::user_shutdown);
    while (n.sched->pending() > 0) run_job();
    while (store_.has_work()) store_.CommitGroup(store_.queued(), CommitFault::none);
    check();
    run_.passivations += n.ctx->metrics.passivations.load();
    offset_ += node_elapsed();
    n.shop = nullptr;
    n.sys.reset();  // the driver (linked to the shop) is gone; waits for its thread
    node_.reset();
    return true;
  }

  // After a failure: the node may be stuck, so it is neither drained nor
  // destroyed (destroying an actor system waits for every actor). It leaks,
  // and with it the store its projection driver (a thread) may still use.
  void abandon_node() {
    if (!node_) return;
    (void)owned_store_.release();
    node_->shop = nullptr;
    (void)node_->sys.release();
    (void)node_->ctx.release();
    (void)node_->projections.release();
    (void)node_->cfg.release();
    node_.reset();
  }

  void restart() {
    ++run_.restarts;
    mix(0x5e5e);
    if (!stop_node() || !run_.failure.empty()) return;
    store_.Reopen();
    start_node();
  }

  // ---- steps ----------------------------------------------------------------

  void run_job() {
    const size_t n = node_->sched->pending();
    const size_t i = pick(n);
    mix(i);
    ++run_.jobs;
    node_->sched->run_job(i);
  }

  void commit() {
    const size_t queued = store_.queued();
    size_t n = queued == 0 ? 0 : (chance(300) ? queued : 1 + pick(queued));
    CommitFault fault = CommitFault::none;
    if (queued > 0 && chance(fail_permille_))
      fault = chance(500) ? CommitFault::lost : CommitFault::persisted;
    mix(0xc0 + n * 4 + static_cast<uint64_t>(fault));
    store_.CommitGroup(n, fault);
  }

  void advance_time() {
    ++run_.time_steps;
    if (chance(500)) {
      auto d = std::chrono::milliseconds(1 + pick(20));
      mix(0x7100 + static_cast<uint64_t>(d.count()));
      node_->sched->advance_time(d);
    } else {
      mix(0x7200);
      node_->sched->trigger_timeout();
    }
  }

  template <class R, class... Ts>
  void send(size_t idx, Ts... xs) {
    auto shop = caf::actor_cast<shop_actor>(node_->shop);
    node_->sys->spawn(
        [this, shop, idx, xs...](caf::event_based_actor* self, int) {
          self->request(shop, caf::infinite, xs...)
              .then([this, idx](R& r) { on_ok(idx, r); },
                    [this, idx](caf::error& e) { on_error(idx, e); });
        },
        0);
  }

  void issue(const Op& op, bool setup) {
    const size_t idx = calls_.size();
    Pending p;
    p.op = op;
    p.setup = setup;
    if (setup) ++setup_calls_;
    p.history = op.kind == Op::Kind::purchase || op.kind == Op::Kind::credit;
    p.call.kind = op.kind == Op::Kind::purchase ? Call::Kind::purchase : Call::Kind::credit;
    p.call.user = op.user;
    p.call.key = op.key;
    p.call.card = op.kind == Op::Kind::purchase ? op.card : "";
    p.call.amount = op.amount;
    calls_.push_back(std::move(p));
    ++run_.calls;
    switch (op.kind) {
      case Op::Kind::create:
        send<CardInfo>(idx, create_atom::value,
                       CardSpec{op.card, "Card " + op.card, op.amount, op.amount});
        break;
      case Op::Kind::add_codes:
        send<AddCodesReply>(idx, add_codes_atom::value, op.card, op.codes);
        break;
      case Op::Kind::credit:
        send<CreditReply>(idx, credit_atom::value, op.user, op.amount, op.key);
        break;
      case Op::Kind::purchase:
        send<Purchase>(idx, purchase_atom::value, op.card, op.user, op.key);
        break;
      case Op::Kind::revoke: send<int64_t>(idx, revoke_atom::value, op.card, op.code); break;
    }
  }

  void answered(size_t idx, bool ok) {
    Pending& p = calls_[idx];
    if (p.answered) {
      fail("call " + std::to_string(idx) + " answered twice");
      return;
    }
    p.answered = true;
    ++answers_;
    if (p.setup) ++setup_answers_;
    ++(ok ? run_.ok : run_.fail);
  }

  template <class R>
  void on_ok(size_t idx, R& r) {
    answered(idx, true);
    Call& c = calls_[idx].call;
    c.outcome = Call::Outcome::ok;
    c.status = 200;
    if constexpr (std::is_same_v<R, Purchase>) {
      ++run_.purchases_ok;
      if (r.replayed) ++run_.replayed;
      c.position = r.position;
      c.purchase_id = r.purchase_id;
      c.code = r.code;
      // What a client sees; a repeat must be byte for byte the same (I5).
      c.body = r.purchase_id + "|" + r.card_id + "|" + r.user_id + "|" + r.code + "|" +
               std::to_string(r.price) + "|" + std::to_string(r.purchased_at) + "|" +
               std::to_string(r.position);
      if (r.user_id != c.user || r.card_id != c.card)
        fail("purchase " + c.key + " answered for another user or card");
    } else if constexpr (std::is_same_v<R, CreditReply>) {
      ++run_.credits_ok;
      if (r.replayed) ++run_.replayed;
      c.position = r.position;
      c.body = r.user_id + "|" + std::to_string(r.balance) + "|" + std::to_string(r.position);
    }
  }

  void on_error(size_t idx, const caf::error& e) {
    answered(idx, false);
    Call& c = calls_[idx].call;
    const Errc code = errc_of(e);
    c.outcome = Call::Outcome::fail;
    c.status = http_status(code);
    c.body = std::string(to_string(code));
    if (code == Errc::storage_corruption)
      fail("call " + std::to_string(idx) + " answered storage_corruption: " + detail_of(e));
    // A client retries what may have failed for want of storage, with the
    // same key; the admin retries codes sent before their card committed.
    Op op = calls_[idx].op;
    const bool transient = code == Errc::storage_unavailable || code == Errc::unavailable;
    bool retry = false;
    switch (op.kind) {
      case Op::Kind::purchase:
      case Op::Kind::credit:
        retry = transient && (seed_ ^ (idx * 0x9e3779b97f4a7c15ull)) % 1000 < 700;
        break;
      case Op::Kind::create: retry = transient; break;
      case Op::Kind::add_codes: retry = transient || code == Errc::card_not_found; break;
      case Op::Kind::revoke: break;
    }
    if (retry && ++op.attempts <= 20) {
      ++run_.retries;
      retries_.emplace_back(idx, std::move(op));
    }
  }

  bool all_answered() const { return answers_ == calls_.size(); }

  // Retries join their queue in call order, whatever order the answers came in.
  void queue_retries() {
    std::sort(retries_.begin(), retries_.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    for (auto& [idx, op] : retries_) (calls_[idx].setup ? setup_ : ops_).push_back(std::move(op));
    retries_.clear();
  }

  // Every answer, in call order (not arrival order), into the trace.
  void mix_answers() {
    for (const auto& p : calls_) {
      mix(p.answered ? 1 + static_cast<uint64_t>(p.call.outcome) : 0);
      mix(static_cast<uint64_t>(p.call.status) * 1000003 + static_cast<uint64_t>(p.call.position));
      mix(std::hash<std::string>{}(p.call.code));
    }
  }

  void print_calls() const {
    static const char* kinds[] = {"create", "add_codes", "credit", "purchase", "revoke"};
    for (size_t i = 0; i < calls_.size(); ++i) {
      const auto& p = calls_[i];
      std::cout << "  call " << i << ": " << kinds[static_cast<int>(p.op.kind)]
                << " card=" << p.op.card << " user=" << p.op.user << " key=" << p.op.key
                << " amount=" << p.op.amount << " -> "
                << (!p.answered                           ? "(no answer)"
                    : p.call.outcome == Call::Outcome::ok ? "ok"
                                                          : "fail")
                << " " << p.call.body << std::endl;
    }
  }

  // ---- checks ----------------------------------------------------------------

  void fail(const std::string& why) {
    if (run_.failure.empty()) run_.failure = why;
  }

  // A liveness failure: the node cannot be drained (run() abandons it).
  void hang(const std::string& why) {
    stuck_ = true;
    fail(why);
  }

  // After every step: the log (when it changed) and every answer against it.
  void check() {
    const int64_t last = store_.LastPosition();
    const bool log_changed = last != checked_position_;
    if (log_changed) {
      ++run_.checks;
      log_ = test::check_log(&store_);
      checked_position_ = last;
      if (!log_.clean()) return fail("the log breaks an invariant: " + log_.summary());
    }
    if (!log_changed && answers_ == checked_answers_) return;
    checked_answers_ = answers_;
    std::vector<Call> calls;
    for (const auto& p : calls_)
      if (p.history && p.answered) calls.push_back(p.call);
    std::vector<std::string> problems;
    Counters c = check_history(calls, log_, &problems);
    if (!c.clean())
      fail("acknowledged calls disagree with the log: " + c.summary() + join(problems));
  }

  // Invariant 6: the drained projections equal a fold of the log, both the
  // product's own fold (read_models.h) and the oracle's.
  void check_projections() {
    Node& n = *node_;
    const int64_t head = store_.LastPosition();
    if (n.projections->position() != head)
      return fail("after the drain the projections are at " +
                  std::to_string(n.projections->position()) + ", the log at " +
                  std::to_string(head));
    ReadModels live, fold;
    if (Status s = n.projections->LoadAll(&live); !s.ok())
      return fail("cannot load the projections: " + s.ToString());
    std::vector<StoredEvent> events;
    store_.ReadAll(1, SIZE_MAX, &events).PermitUncheckedError();
    for (const auto& e : events)
      if (Status s = apply(fold, e); !s.ok()) return fail("fold: " + s.ToString());
    if (auto d = first_difference(live, fold); !d.empty())
      return fail("projections differ from a fold of the log: " + d);
    log_ = test::check_log(&store_);
    Views v;
    for (const auto& [user, balance] : live.balances) v.balances[user] = balance;
    for (const auto& [id, card] : live.cards) v.assigned[id] = card.assigned;
    v.purchases = static_cast<int64_t>(live.purchases.size());
    v.position = live.position;
    std::vector<std::string> problems;
    if (diff_views(v, log_, "projections", &problems) != 0)
      fail("projections differ from the oracle's fold:" + join(problems));
  }

  // ---- the loop ---------------------------------------------------------------

  void loop() {
    uint64_t idle = 0;
    while (run_.failure.empty()) {
      if (auto c = peek_check_failure(); !c.empty()) return fail(c);
      if (++run_.steps > kMaxSteps)
        return hang("not quiescent after " + std::to_string(kMaxSteps) + " steps");
      const bool jobs = node_->sched->pending() > 0;
      const bool store_work = store_.has_work();
      // The workload starts once the cards, codes and first credits are in.
      const bool setting_up = !setup_.empty() || setup_answers_ < setup_calls_;
      const bool more = setting_up ? !setup_.empty() : !ops_.empty();
      const bool sticky = !store_.Health().ok();
      if (!jobs && !store_work && !more) {
        if (all_answered()) break;
        // Nothing to run and calls unanswered: no reply may depend on a timer,
        // but let time pass a while before calling it a hang.
        if (++idle > 100)
          return hang(std::to_string(calls_.size() - answers_) +
                      " call(s) never answered (the system is idle)");
        advance_time();
        queue_retries();
        check();
        continue;
      }
      idle = 0;
      // Weighted choice of the next step.
      const uint64_t w_job = jobs ? 600 : 0;
      const uint64_t w_commit = store_work ? 150 : 0;
      const uint64_t w_issue = more ? 120 : 0;
      const uint64_t w_time = 50;
      const uint64_t w_restart = sticky ? 40 : 1;
      uint64_t r = pick(w_job + w_commit + w_issue + w_time + w_restart);
      if (r < w_job) {
        run_job();
      } else if ((r -= w_job) < w_commit) {
        commit();
      } else if ((r -= w_commit) < w_issue) {
        auto& queue = setting_up ? setup_ : ops_;
        Op op = std::move(queue.front());
        queue.pop_front();
        mix(0x1550 + calls_.size());
        issue(op, setting_up);
      } else if ((r -= w_issue) < w_time) {
        advance_time();
      } else {
        restart();
        if (!node_) return;
      }
      queue_retries();
      check();
    }
  }

  uint64_t seed_;
  std::mt19937_64 rng_;
  std::mt19937_64* rng_now_ = &rng_;  // the main loop's, or a drain's own
  SimOptions opt_;
  // The store outlives an abandoned node's driver thread, which may still
  // read it: an abandoned node leaks its store too (abandon_node).
  std::unique_ptr<SimStore> owned_store_;
  SimStore& store_;
  ShopConfig config_;
  int fail_permille_ = 0;
  bool stuck_ = false;  // hang(): the node cannot be drained
  Micros offset_ = 0;
  std::unique_ptr<Node> node_;
  std::deque<Op> setup_, ops_;                  // not yet issued
  std::vector<std::pair<size_t, Op>> retries_;  // (call, op) answered since the last step
  size_t setup_calls_ = 0, setup_answers_ = 0;
  std::vector<std::string> card_ids_, user_ids_;
  std::vector<Pending> calls_;
  size_t answers_ = 0, checked_answers_ = 0;
  int64_t checked_position_ = -1;
  test::OracleReport log_;
  SeedRun run_;
};

}  // namespace

SeedRun run_seed(uint64_t seed, SimOptions opt) { return Simulation(seed, opt).run(); }

}  // namespace giftcard::reliability
