#include "fuzz/api_world.h"

#include <caf/all.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "actors/shop_actor.h"
#include "fuzz/fuzz_util.h"
#include "projections/history.h"
#include "projections/projection_db.h"
#include "store/memory_event_store.h"

namespace giftcard::fuzz {
namespace {

using json = nlohmann::json;

// ------------------------------------------------------------ capturing the answer

struct Slot {
  std::mutex mu;
  std::condition_variable cv;
  Answer answer;  // GUARDED_BY(mu)
};

class CaptureSink final : public StreamSink {
 public:
  explicit CaptureSink(std::shared_ptr<Slot> slot) : slot_(std::move(slot)) {}
  void push(std::shared_ptr<const std::string> frame) override {
    FUZZ_CHECK(frame != nullptr, "a null event-stream frame");
    std::lock_guard lock(slot_->mu);
    ++slot_->answer.frames;
  }
  // The client is gone at once: the hub drops this sink on its next pass.
  bool closed() const override { return true; }
  size_t pending_bytes() const override { return 0; }
  bool cut() const override { return false; }

 private:
  std::shared_ptr<Slot> slot_;
};

// Like the server's SessionResponder: the first answer counts, later ones are
// ignored, and a responder released unanswered is a dropped request.
class CaptureResponder final : public Responder {
 public:
  explicit CaptureResponder(std::shared_ptr<Slot> slot) : slot_(std::move(slot)) {}
  ~CaptureResponder() override { finish(Answer::Kind::dropped, HttpResponse{}); }
  void send(HttpResponse res) override { finish(Answer::Kind::sent, std::move(res)); }
  std::shared_ptr<StreamSink> stream(HttpResponse head) override {
    finish(Answer::Kind::streamed, std::move(head));
    return std::make_shared<CaptureSink>(slot_);
  }
  const std::string& peer() const override { return peer_; }

 private:
  void finish(Answer::Kind kind, HttpResponse res) {
    {
      std::lock_guard lock(slot_->mu);
      if (slot_->answer.kind != Answer::Kind::none) return;
      slot_->answer.kind = kind;
      slot_->answer.res = std::move(res);
    }
    slot_->cv.notify_all();
  }
  std::shared_ptr<Slot> slot_;
  const std::string peer_ = "127.0.0.1";
};

// ------------------------------------------------------------ the world

class World {
 public:
  World() {
    store_ = NewMemoryEventStore();
    must(ProjectionDb::Open(store_.get(), &projections_), "projections");
    must(ProjectionHistory::Open(store_.get(), &history_), "history");
    ctx_ = std::make_unique<ShopContext>();
    ctx_->store = store_.get();
    ctx_->projections = projections_.get();
    ctx_->history = history_.get();
    // Short, so that card and wallet actors passivate (and are recovered from
    // their snapshots) within a fuzzing run.
    ctx_->config.passivate_after = std::chrono::milliseconds(1000);
    cfg_ = std::make_unique<caf::actor_system_config>();
    register_message_types(*cfg_);
    cfg_->set("logger.console", caf::atom("none"));
    cfg_->set("scheduler.max-threads", 2);
    sys_ = std::make_unique<caf::actor_system>(*cfg_);
    shop_ = spawn_shop(*sys_, ctx_.get());
    seed();
    HttpApiOptions o;
    o.admin_token = kAdminToken;
    o.api_token = kApiToken;
    o.command_timeout = std::chrono::milliseconds(3000);
    // Millions of calls from one "peer": the limits would answer most of
    // them 429 and hide the routes from the fuzzer (they are tested in
    // tests/api/doors_test.cc).
    o.rate_limit.rate = 0;
    o.refusal_limit.rate = 0;
    api_ = std::make_unique<HttpApi>(*sys_, caf::actor_cast<shop_actor>(shop_), ctx_.get(), o);
  }

  // The order of api/serve.cc: drain the shop, stop it and the API, then the
  // actor system, then the store.
  ~World() {
    {
      caf::scoped_actor self{*sys_};
      self->request(shop_, std::chrono::seconds(30), DrainMsg{}).receive([](bool) {}, [](caf::error&) {});
      self->send_exit(shop_, caf::exit_reason::user_shutdown);
    }
    api_->stop();
    api_.reset();
    shop_ = nullptr;
    sys_.reset();
    store_->Close();
  }

  HttpApi& api() { return *api_; }
  int64_t events() const { return store_->LastPosition(); }

 private:
  static void must(const Status& s, const char* what) {
    if (!s.ok()) fail(__FILE__, __LINE__, what, s.ToString());
  }

  template <class R, class... Ts>
  void ask(Ts&&... xs) {
    caf::scoped_actor self{*sys_};
    std::string failure;
    self->request(caf::actor_cast<shop_actor>(shop_), std::chrono::seconds(10), std::forward<Ts>(xs)...)
        .receive([](R&) {}, [&](caf::error& e) { failure = sys_->render(e); });
    if (!failure.empty()) fail(__FILE__, __LINE__, "seeding the fuzz shop", failure);
  }

  static std::vector<CodeSpec> codes(const std::string& prefix, int n) {
    std::vector<CodeSpec> out;
    for (int i = 1; i <= n; ++i) {
      std::string num = std::to_string(i);
      out.push_back(CodeSpec{prefix + std::string(4 - num.size(), '0') + num, 0});
    }
    return out;
  }

  void seed() {
    ask<CardInfo>(create_atom::value, CardSpec{kCard, "Fuzz Card 5 EUR", 500, 500});
    ask<AddCodesReply>(add_codes_atom::value, std::string(kCard), codes("FZ-", 20));
    ask<CardInfo>(create_atom::value, CardSpec{kCheapCard, "Fuzz Cheap", 1, 1});
    ask<AddCodesReply>(add_codes_atom::value, std::string(kCheapCard), codes("CHEAP-", 5));
    ask<CreditReply>(credit_atom::value, std::string(kUser), int64_t{1000000}, std::string("seed-credit"));
    ask<Purchase>(purchase_atom::value, std::string(kCard), std::string(kUser), std::string("seed-purchase"));
  }

  std::unique_ptr<EventStore> store_;
  std::unique_ptr<ProjectionDb> projections_;
  std::unique_ptr<ProjectionHistory> history_;
  std::unique_ptr<ShopContext> ctx_;
  std::unique_ptr<caf::actor_system_config> cfg_;
  std::unique_ptr<caf::actor_system> sys_;
  shop_internal_actor shop_;
  std::unique_ptr<HttpApi> api_;
};

World* g_world = nullptr;

World& world() {
  if (!g_world) g_world = new World;
  return *g_world;
}

bool clean_header_text(std::string_view s) {
  return s.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
}

}  // namespace

HttpRequest make_request(http::verb method, const std::string& target, const std::string& body,
                         const std::string& content_type, const std::string& token) {
  HttpRequest req{method, target, 11};
  req.set(http::field::host, "fuzz");
  if (!token.empty()) req.set(http::field::authorization, "Bearer " + token);
  if (!body.empty() || method == http::verb::post) {
    req.set(http::field::content_type, content_type);
    req.body() = body;
    req.prepare_payload();
  }
  return req;
}

Answer call_api(HttpRequest req) {
  static const bool verbose = std::getenv("GIFTCARD_FUZZ_VERBOSE") != nullptr;
  std::string what;
  if (verbose) what = std::string(req.method_string()) + " " + std::string(req.target());
  World& w = world();
  auto slot = std::make_shared<Slot>();
  // As the server does: the header check first (rate limit, token), then
  // the handler only if the check lets the request through.
  if (auto early = w.api().check_header(req.base(), "127.0.0.1")) {
    CaptureResponder(slot).send(std::move(*early));
  } else {
    w.api().handle(std::move(req), std::make_shared<CaptureResponder>(slot));
  }
  Answer out;
  {
    std::unique_lock lock(slot->mu);
    bool answered = slot->cv.wait_for(lock, std::chrono::seconds(4),
                                      [&] { return slot->answer.kind != Answer::Kind::none; });
    FUZZ_CHECK(answered, "no answer within 4 s (the command timeout is 3 s)");
    out = slot->answer;
  }
  if (verbose)
    std::fprintf(stderr, "fuzz: %s -> %d %s\n", printable(what, 200).c_str(), out.res.result_int(),
                 printable(out.res.body(), 300).c_str());
  if (w.events() > kMaxEvents) {  // start over with a fresh, small shop
    delete g_world;
    g_world = nullptr;
  }
  return out;
}

void check_answer(const Answer& a, const std::string& what) {
  static const std::set<int> kStatuses = {200, 201, 204, 400, 401, 402, 404, 405,
                                          409, 413, 415, 422, 431, 503};
  FUZZ_CHECK(a.kind != Answer::Kind::dropped,
             "the handler released the responder without answering: " + what);
  HttpResponse res = a.res;
  const int status = res.result_int();
  std::string body = res.body();
  FUZZ_CHECK(status != 500, "500 for " + what + "\nbody: " + printable(body));
  FUZZ_CHECK(kStatuses.count(status), "undocumented status " + std::to_string(status) + " for " + what);
  for (const auto& f : res) {
    std::string_view name(f.name_string().data(), f.name_string().size());
    std::string_view value(f.value().data(), f.value().size());
    FUZZ_CHECK(clean_header_text(name) && clean_header_text(value),
               "CR/LF/NUL in response header " + printable(name) + ": " + printable(value) + " for " + what);
  }
  std::string type(res[http::field::content_type]);
  if (status >= 400) {
    FUZZ_CHECK(type == "application/problem+json", "error " + std::to_string(status) +
                                                       " with Content-Type '" + type + "' for " + what);
    json j = json::parse(body, nullptr, false);
    FUZZ_CHECK(j.is_object(), "problem body is not a JSON object: " + printable(body));
    FUZZ_CHECK(j.contains("status") && j["status"] == status, "problem status != HTTP status: " + printable(body));
    FUZZ_CHECK(j.contains("code") && j["code"].is_string() && !j["code"].get<std::string>().empty(),
               "problem without a code: " + printable(body));
    const std::string code = j["code"].get<std::string>();
    FUZZ_CHECK(j.contains("type") && j["type"] == "https://giftcard.example/problems/" + code,
               "problem type does not name its code: " + printable(body));
    FUZZ_CHECK(j.contains("title") && j["title"].is_string(), "problem without a title: " + printable(body));
    FUZZ_CHECK(j.contains("detail") && j["detail"].is_string(), "problem without a detail: " + printable(body));
    if (status == 405) FUZZ_CHECK(res.count(http::field::allow), "405 without Allow for " + what);
    if (status == 401)
      FUZZ_CHECK(res[http::field::www_authenticate] == "Bearer", "401 without WWW-Authenticate: Bearer");
  } else if (a.kind == Answer::Kind::streamed) {
    FUZZ_CHECK(status == 200 && type == "text/event-stream", "an event stream that is not 200 text/event-stream");
  } else if (type == "application/json") {
    FUZZ_CHECK(json::accept(body), "invalid JSON body for " + what + ": " + printable(body));
  } else if (status == 204) {
    FUZZ_CHECK(body.empty(), "204 with a body");
  }
  // What the server would write (it sets Content-Length and keep-alive).
  res.keep_alive(true);
  res.prepare_payload();
  std::ostringstream os;
  os << res;
  FUZZ_CHECK(os.str().rfind("HTTP/1.1 " + std::to_string(status) + " ", 0) == 0,
             "bad status line: " + printable(os.str().substr(0, 64)));
}

}  // namespace giftcard::fuzz

// Called by the replay driver before it returns (fuzz/replay_main.cc); under
// libFuzzer the world lives until the process exits.
extern "C" void GiftcardFuzzShutdown() {
  delete giftcard::fuzz::g_world;
  giftcard::fuzz::g_world = nullptr;
}
