#include "tests/reliability/http_workload.h"

#include <boost/test/unit_test.hpp>
#include <chrono>
#include <memory>

#include "store/rocks_event_store.h"
#include "tests/support/http_client.h"

namespace giftcard::reliability {

using namespace std::chrono_literals;
using test::HttpConnection;
using test::HttpReply;
using json = nlohmann::json;

std::string card_id(int i) { return "hot" + std::to_string(i); }
std::string user_id(int i) { return "u" + std::to_string(i); }

namespace {

HttpReply send_on(HttpConnection& conn, const Call& call) {
  test::Headers h{{"Idempotency-Key", call.key}};
  if (call.kind == Call::Kind::purchase)
    return conn.post("/api/purchases", json{{"card_id", call.card}, {"user_id", call.user}}, h);
  return conn.post("/api/wallets/" + call.user + "/credits", json{{"amount", call.amount}}, h);
}

// 2xx: ok; 5xx or no answer: info (it may or may not have happened); other: fail.
void classify(const HttpReply& r, Call* call) {
  call->status = r.status;
  if (r.status == 0) {
    call->outcome = Call::Outcome::info;
    call->error = r.error;
    return;
  }
  call->body = r.body;
  if (r.status >= 200 && r.status < 300) {
    call->outcome = Call::Outcome::ok;
    auto j = r.json();
    if (j.is_object()) {
      call->position = j.value("position", int64_t{0});
      call->purchase_id = j.value("purchase_id", "");
      call->code = j.value("code", "");
    }
  } else if (r.status >= 500) {
    call->outcome = Call::Outcome::info;
    call->error = "HTTP " + std::to_string(r.status) + " " + r.body.substr(0, 200);
  } else {
    call->outcome = Call::Outcome::fail;
  }
}

HttpReply must(HttpReply r, const std::string& what) {
  BOOST_REQUIRE_MESSAGE(r.status >= 200 && r.status < 300, what << ": " << r.describe());
  return r;
}

}  // namespace

void send_call(uint16_t port, Call* call, const test::Headers& headers) {
  HttpConnection conn(port);
  conn.default_headers = headers;
  conn.timeout = 30s;
  classify(send_on(conn, *call), call);
}

HttpLoad::HttpLoad(uint16_t port, const LoadConfig& cfg, History* history, uint64_t seed,
                   std::string tag)
    : port_(port), cfg_(cfg), history_(history), seed_(seed), tag_(std::move(tag)) {}

HttpLoad::~HttpLoad() { stop(); }

void HttpLoad::start() {
  std::seed_seq seq{seed_};
  std::vector<uint64_t> seeds(static_cast<size_t>(cfg_.clients));
  std::mt19937_64 g(seed_);
  for (auto& s : seeds) s = g();
  for (int i = 0; i < cfg_.clients; ++i)
    threads_.emplace_back([this, i, s = seeds[i]] { client(i, s); });
}

void HttpLoad::stop() {
  stop_ = true;
  for (auto& t : threads_) t.join();
  threads_.clear();
}

void HttpLoad::client(int i, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> mix(0.0, 1.0);
  HttpConnection conn(port_);
  conn.timeout = 30s;
  conn.default_headers = cfg_.headers;
  const std::string user = user_id(i % cfg_.users);
  int64_t n = 0;
  while (!stop_) {
    Call call;
    double r = mix(rng);
    std::optional<Recent> again;
    if (r >= cfg_.purchase_share + cfg_.credit_share) {
      std::lock_guard<std::mutex> lock(recent_mu_);
      // A recent call of this user: possibly one another client still has in flight.
      for (int tries = 0; tries < 8 && !recent_.empty() && !again; ++tries) {
        const Recent& c = recent_[rng() % recent_.size()];
        if (c.user == user) again = c;
      }
    }
    if (again) {
      call.kind = again->kind;
      call.user = again->user;
      call.key = again->key;
      call.card = again->card;
      call.amount = again->amount;
    } else {
      call.user = user;
      call.key = tag_ + "-c" + std::to_string(i) + "-" + std::to_string(++n);
      if (r < cfg_.purchase_share || r >= cfg_.purchase_share + cfg_.credit_share) {
        call.kind = Call::Kind::purchase;
        call.card = card_id(static_cast<int>(rng() % static_cast<uint64_t>(cfg_.cards)));
      } else {
        call.kind = Call::Kind::credit;
        call.amount = cfg_.credit;
      }
      std::lock_guard<std::mutex> lock(recent_mu_);
      Recent rec{call.kind, call.user, call.key, call.card, call.amount};
      if (recent_.size() < 256) recent_.push_back(rec);
      else recent_[rng() % recent_.size()] = rec;
    }
    // Not connected: the call was never sent, so it is not in the history.
    if (!conn.connect()) {
      std::this_thread::sleep_for(5ms);
      continue;
    }
    HttpReply reply = send_on(conn, call);
    classify(reply, &call);
    if (call.outcome == Call::Outcome::ok) ++acked_;
    if (reply.status == 0 || !reply.keep_alive) conn.close();
    history_->add(std::move(call));
  }
}

void set_up_shop(uint16_t port, const LoadConfig& cfg) {
  HttpConnection conn(port);
  conn.default_headers = cfg.headers;
  for (int c = 0; c < cfg.cards; ++c)
    must(conn.post("/api/cards", json{{"id", card_id(c)},
                                      {"name", "Hot card " + std::to_string(c)},
                                      {"price", cfg.price},
                                      {"value", cfg.price}}),
         "create " + card_id(c));
  for (int u = 0; u < cfg.users; ++u)
    must(conn.post("/api/wallets/" + user_id(u) + "/credits", json{{"amount", 100'000'000}},
                   {{"Idempotency-Key", "seed-" + user_id(u)}}),
         "fund " + user_id(u));
}

void top_up_codes(uint16_t port, const LoadConfig& cfg, int round, int64_t low, int64_t add) {
  HttpConnection conn(port);
  conn.default_headers = cfg.headers;
  for (int c = 0; c < cfg.cards; ++c) {
    auto view = must(conn.get("/api/cards/" + card_id(c)), "card view").json();
    if (view.value("available", int64_t{0}) >= low) continue;
    json codes = json::array();
    for (int64_t k = 0; k < add; ++k)
      codes.push_back({{"code", "R" + std::to_string(round) + "C" + std::to_string(c) + "-" +
                                    std::to_string(k)}});
    must(conn.post("/api/cards/" + card_id(c) + "/codes", json{{"codes", codes}}), "add codes");
  }
}

void resolve_infos(uint16_t port, History* history, const test::Headers& headers) {
  std::vector<Call> acked_retries;
  for (auto& call : history->calls()) {
    if (call.outcome != Call::Outcome::info || call.retried) continue;
    Call retry = call;
    retry.outcome = Call::Outcome::info;
    retry.body.clear();
    send_call(port, &retry, headers);
    call.retried = true;
    call.retry_outcome = retry.outcome;
    call.retry_status = retry.status;
    if (retry.outcome == Call::Outcome::ok) acked_retries.push_back(std::move(retry));
  }
  for (auto& r : acked_retries) history->add(std::move(r));
}

Counters final_check(test::ServeChild& server, const LoadConfig& cfg, History* history,
                     std::vector<std::string>* problems) {
  const uint16_t port = server.port();
  resolve_infos(port, history, cfg.headers);

  // Live views, read at the log's head (read-your-writes: ?after=).
  HttpConnection conn(port);
  conn.default_headers = cfg.headers;
  auto health = must(conn.get("/healthz"), "healthz").json();
  const int64_t head = health.value("position", int64_t{0});
  const std::string after = "?after=" + std::to_string(head);
  Views live;
  for (int u = 0; u < cfg.users; ++u)
    live.balances[user_id(u)] = must(conn.get("/api/wallets/" + user_id(u) + after), "wallet")
                                    .json()
                                    .value("balance", int64_t{0});
  for (int c = 0; c < cfg.cards; ++c)
    live.assigned[card_id(c)] = must(conn.get("/api/cards/" + card_id(c) + after), "card")
                                    .json()
                                    .value("assigned", int64_t{0});
  live.position = head;
  conn.close();

  server.stop_clean(
      test::by_build(std::chrono::milliseconds(10000), std::chrono::milliseconds(60000)));

  Counters c;
  auto verify = test::run_giftcard({"verify", "--data", server.data()}, std::chrono::minutes(10));
  if (verify.code() != 0) {
    ++c.gaps;
    if (problems) problems->push_back("gaps: giftcard verify: " + verify.describe());
  }
  auto replay = test::run_giftcard({"replay", "--data", server.data()}, std::chrono::minutes(10));
  Views replayed;
  if (replay.code() != 0) {
    ++c.replay_diff;
    if (problems) problems->push_back("replay_diff: giftcard replay: " + replay.describe());
  } else {
    replayed = views_from_replay(json::parse(replay.out, nullptr, false));
  }

  StoreOptions so;
  so.path = server.data();
  so.create_if_missing = false;
  std::unique_ptr<EventStore> store;
  Status s = OpenRocksEventStore(so, &store);
  BOOST_REQUIRE_MESSAGE(s.ok(), "open the store for the check: " << s.ToString());
  test::OracleReport log = test::check_log(store.get());
  store->Close();

  c += check_history(history->calls(), log, problems);
  c.replay_diff += diff_views(live, log, "live", problems);
  c.replay_diff += diff_views(replayed, log, "giftcard replay", problems);
  return c;
}

}  // namespace giftcard::reliability
