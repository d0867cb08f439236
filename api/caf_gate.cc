#include "api/caf_gate.h"

#include <iostream>
#include <list>
#include <mutex>
#include <tuple>

#include "actors/errors.h"
#include "api/http_api.h"

namespace giftcard {
namespace {

// Local-only messages (never registered: a peer cannot send them).
struct SessionTick {};
struct SessionStop {};
struct GateStop {};

}  // namespace
}  // namespace giftcard

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(giftcard::SessionTick)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(giftcard::SessionStop)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(giftcard::GateStop)

namespace giftcard {
namespace {

using api_session_impl =
    api_session_actor::extend<caf::reacts_to<SessionTick>, caf::reacts_to<SessionStop>>;
using admin_session_impl =
    admin_session_actor::extend<caf::reacts_to<SessionTick>, caf::reacts_to<SessionStop>>;
using gate_impl = gate_actor::extend<caf::reacts_to<GateStop>>;

// An actor that no outsider can stop: exit messages (also exit_reason::kill,
// which CAF's handlers cannot trap), error messages and down messages are
// dropped before they reach the mailbox. Responses to our own requests (which
// may carry an error) pass.
template <class Base>
class Guarded : public Base {
 public:
  Guarded(caf::actor_config& cfg, GateStats* stats) : Base(cfg), stats_(stats) {}

  void enqueue(caf::mailbox_element_ptr ptr, caf::execution_unit* eu) override {
    if (ptr && !ptr->mid.is_response() && !admit(ptr->content())) {
      ++stats_->dropped_system_messages;
      return;
    }
    Base::enqueue(std::move(ptr), eu);
  }

 protected:
  GateStats* stats_;

 private:
  bool admit(const caf::type_erased_tuple& c) const {
    return !(c.match_elements<caf::exit_msg>() || c.match_elements<caf::error>() ||
             c.match_elements<caf::down_msg>());
  }
};

// A rate-limited line on the server's log (a failing disk must not flood it).
void log_storage_failure(Errc code, const std::string& detail) {
  static std::mutex mu;
  static auto last = std::chrono::steady_clock::time_point{};
  static uint64_t suppressed = 0;
  std::lock_guard lock(mu);
  auto now = std::chrono::steady_clock::now();
  if (now - last < std::chrono::seconds(1)) {
    ++suppressed;
    return;
  }
  last = now;
  std::cerr << "giftcard: " << to_string(code) << ": " << detail;
  if (suppressed) std::cerr << " (" << suppressed << " more since the last line)";
  std::cerr << "\n";
  suppressed = 0;
}

// One client's session: forwards what its role may do to the shop and
// answers from the shop's reply, so the shop's address never reaches a peer.
// It ends when it has been silent for `idle` (CAF 0.17 tells a node when a
// remote actor ends, but a login usually comes from a short-lived helper
// actor of the client, so the client's lifetime is not observable here).
template <class Impl, bool Admin>
class Session : public Guarded<typename Impl::base> {
  using Super = Guarded<typename Impl::base>;

 public:
  using behavior_type = typename Impl::behavior_type;

  Session(caf::actor_config& cfg, GateStats* stats, shop_actor shop, std::chrono::milliseconds idle)
      : Super(cfg, stats), shop_(std::move(shop)), idle_(idle) {}

  void on_exit() override {
    --this->stats_->sessions;
    shop_ = nullptr;
  }

  const char* name() const override {
    return Admin ? "giftcard.admin_session" : "giftcard.api_session";
  }

 protected:
  behavior_type make_behavior() override {
    // Not CAF's default (print_and_drop): a peer's junk must not reach our
    // stdout. The sender of a request still gets unexpected_message.
    this->set_default_handler(caf::drop);
    last_ = std::chrono::steady_clock::now();
    this->delayed_send(this, tick(), SessionTick{});
    auto common = std::make_tuple(
        [this](credit_atom a, std::string& user, int64_t amount,
               std::string& key) -> caf::result<CreditReply> {
          return fwd<CreditReply>(a, std::move(user), amount, std::move(key));
        },
        [this](purchase_atom a, std::string& card, std::string& user,
               std::string& key) -> caf::result<Purchase> {
          return fwd<Purchase>(a, std::move(card), std::move(user), std::move(key));
        },
        [this](card_atom a, std::string& id, int64_t after) -> caf::result<CardInfo> {
          return fwd<CardInfo>(a, std::move(id), after);
        },
        [this](cards_atom a, std::string& from, int64_t limit, int64_t after)
            -> caf::result<CardPage> { return fwd<CardPage>(a, std::move(from), limit, after); },
        [this](wallet_atom a, std::string& user, int64_t after) -> caf::result<WalletView> {
          return fwd<WalletView>(a, std::move(user), after);
        },
        [this](lookup_atom a, std::string& id, int64_t after) -> caf::result<Purchase> {
          return fwd<Purchase>(a, std::move(id), after);
        },
        [this](history_atom a, std::string& user, int64_t from, int64_t limit,
               int64_t after) -> caf::result<PurchasePage> {
          return fwd<PurchasePage>(a, std::move(user), from, limit, after);
        },
        [this](status_atom a) -> caf::result<ShopStatus> { return fwd<ShopStatus>(a); },
        [this](SessionTick) {
          if (std::chrono::steady_clock::now() - last_ >= idle_) return this->quit();
          this->delayed_send(this, tick(), SessionTick{});
        },
        [this](SessionStop) { this->quit(); });
    if constexpr (Admin) {
      return std::apply(
          [this](auto&... hs) {
            return behavior_type{
                hs...,
                [this](create_atom a, CardSpec& spec) -> caf::result<CardInfo> {
                  return fwd<CardInfo>(a, std::move(spec));
                },
                [this](add_codes_atom a, std::string& card,
                       std::vector<CodeSpec>& codes) -> caf::result<AddCodesReply> {
                  return fwd<AddCodesReply>(a, std::move(card), std::move(codes));
                },
                [this](revoke_atom a, std::string& card,
                       std::string& code) -> caf::result<int64_t> {
                  return fwd<int64_t>(a, std::move(card), std::move(code));
                },
                [this](rebuild_atom a) -> caf::result<RebuildInfo> { return fwd<RebuildInfo>(a); },
            };
          },
          common);
    } else {
      return std::apply([](auto&... hs) { return behavior_type{hs...}; }, common);
    }
  }

 private:
  std::chrono::milliseconds tick() const {
    return std::max(std::chrono::milliseconds(10),
                    std::min(idle_ / 2, std::chrono::milliseconds(60000)));
  }

  template <class T, class... Ts>
  caf::result<T> fwd(Ts&&... xs) {
    last_ = std::chrono::steady_clock::now();
    if (!shop_) return make_error(Errc::unavailable, "the session is closing");
    auto rp = this->template make_response_promise<T>();
    this->request(shop_, caf::infinite, std::forward<Ts>(xs)...)
        .then([rp](T& x) mutable { rp.deliver(std::move(x)); },
              [rp](caf::error& e) mutable { rp.deliver(client_error(e)); });
    return rp;
  }

  shop_actor shop_;
  const std::chrono::milliseconds idle_;
  std::chrono::steady_clock::time_point last_;
};

using ApiSession = Session<api_session_impl, false>;
using AdminSession = Session<admin_session_impl, true>;

class Gate : public Guarded<gate_impl::base> {
 public:
  Gate(caf::actor_config& cfg, GateStats* stats, shop_actor shop, GateOptions options)
      : Guarded(cfg, stats), shop_(std::move(shop)), opts_(std::move(options)) {}

  const char* name() const override { return "giftcard.gate"; }

  void on_exit() override {
    stop_sessions();
    shop_ = nullptr;
  }

 protected:
  behavior_type make_behavior() override {
    set_default_handler(caf::drop);
    return {
        [this](login_atom, api_atom, std::string& token) -> caf::result<api_session_actor> {
          bool ok = open() ||
                    (!opts_.api_token.empty() && constant_time_equal(token, opts_.api_token));
          if (!opts_.admin_token.empty()) ok = constant_time_equal(token, opts_.admin_token) | ok;
          if (!ok) return refuse("api");
          if (auto e = make_room()) return e;
          auto s = system().spawn<ApiSession>(stats_, shop_, opts_.session_idle);
          return admit(caf::actor_cast<api_session_actor>(s));
        },
        [this](login_atom, admin_atom, std::string& token) -> caf::result<admin_session_actor> {
          bool ok = open() ||
                    (!opts_.admin_token.empty() && constant_time_equal(token, opts_.admin_token));
          if (!ok) return refuse("admin");
          if (auto e = make_room()) return e;
          auto s = system().spawn<AdminSession>(stats_, shop_, opts_.session_idle);
          return admit(caf::actor_cast<admin_session_actor>(s));
        },
        [this](GateStop) { quit(); },
    };
  }

 private:
  // No token configured at all (loopback only): every login is granted. Once
  // one is configured, a role without a token is closed, never left open.
  bool open() const { return opts_.admin_token.empty() && opts_.api_token.empty(); }

  caf::error refuse(const char* role) {
    ++stats_->logins_refused;
    return make_error(Errc::unauthorized,
                      std::string("a valid token is required for the ") + role + " role");
  }

  // Forgets ended sessions; busy at the cap.
  caf::error make_room() {
    if (stats_->sessions.load() < static_cast<int64_t>(opts_.max_sessions)) return {};
    sessions_.remove_if([](const caf::actor_addr& a) { return !caf::actor_cast<caf::actor>(a); });
    return make_error(Errc::busy, "too many open sessions; retry later");
  }

  template <class Handle>
  Handle admit(Handle h) {
    ++stats_->logins;
    ++stats_->sessions;
    if (sessions_.size() >= 2 * opts_.max_sessions)
      sessions_.remove_if([](const caf::actor_addr& a) { return !caf::actor_cast<caf::actor>(a); });
    sessions_.push_back(h.address());
    return h;
  }

  void stop_sessions() {
    for (auto& a : sessions_)
      if (auto s = caf::actor_cast<caf::actor>(a)) caf::anon_send(s, SessionStop{});
    sessions_.clear();
  }

  shop_actor shop_;
  GateOptions opts_;
  std::list<caf::actor_addr> sessions_;
};

}  // namespace

caf::error client_error(const caf::error& e) {
  if (e.category() != kErrorCategory)
    return make_error(Errc::unavailable, "the shop did not answer; retry with the same key");
  Errc code = errc_of(e);
  if (code == Errc::storage_unavailable) {
    log_storage_failure(code, detail_of(e));
    return make_error(code, "storage unavailable");
  }
  if (code == Errc::storage_corruption) {
    log_storage_failure(code, detail_of(e));
    return make_error(code, "the store is damaged; see the server's log");
  }
  return e;
}

gate_actor spawn_gate(caf::actor_system& sys, shop_actor shop, GateOptions options,
                      GateStats* stats) {
  return caf::actor_cast<gate_actor>(sys.spawn<Gate>(stats, std::move(shop), std::move(options)));
}

void stop_gate(const gate_actor& gate) {
  caf::anon_send(caf::actor_cast<caf::actor>(gate), GateStop{});
}

}  // namespace giftcard
