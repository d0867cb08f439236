// The CAF door under attack (issue #14 rows 1 and 2), against the real
// `giftcard serve`: a peer that sends exit (also kill), error and down
// messages to the published gate or to its own session stops nothing; every
// command needs a login whose token grants its role; the CLI clients take
// --token / GIFTCARD_API_TOKEN.
#include <sys/stat.h>

#include <boost/test/unit_test.hpp>
#include <caf/io/all.hpp>
#include <chrono>
#include <thread>

#include "actors/errors.h"
#include "api/node_config.h"
#include "tests/support/http_client.h"
#include "tests/support/process.h"
#include "tests/support/serve_child.h"

namespace giftcard {
namespace {

using namespace std::chrono_literals;

const std::string kAdmin = "admin-secret-0123456789";
const std::string kApi = "api-secret-9876543210";

test::ServeArgs with_tokens(std::vector<std::string> flags = {}) {
  test::ServeArgs a;
  a.flags = {"--demo"};
  a.flags.insert(a.flags.end(), flags.begin(), flags.end());
  a.env = {{"GIFTCARD_ADMIN_TOKEN", kAdmin}, {"GIFTCARD_API_TOKEN", kApi}};
  return a;
}

// A remote client node in this process.
struct Peer {
  NodeConfig cfg{TlsOptions{}};
  caf::actor_system sys{cfg};

  template <class Reply, class Handle, class... Ts>
  caf::expected<Reply> ask(const Handle& h, Ts&&... xs) {
    caf::expected<Reply> out{caf::make_error(caf::sec::request_timeout)};
    caf::scoped_actor self{sys};
    self->request(h, std::chrono::seconds(30), std::forward<Ts>(xs)...)
        .receive([&](Reply& r) { out = std::move(r); }, [&](caf::error& e) { out = std::move(e); });
    return out;
  }
};

Errc code_of(const caf::error& e) { return errc_of(e); }

int64_t metric(test::HttpConnection& c, const std::string& name) {
  auto m = c.get("/metrics", {{"Authorization", "Bearer " + kAdmin}});
  BOOST_REQUIRE_MESSAGE(m.status == 200, m.describe());
  auto at = m.body.find("\n" + name + " ");
  BOOST_REQUIRE_MESSAGE(at != std::string::npos, name << " not in /metrics");
  return std::stoll(m.body.substr(at + name.size() + 2));
}

test::HttpReply http_purchase(uint16_t port, const std::string& key) {
  test::HttpConnection c(port);
  return c.post("/api/purchases", nlohmann::json{{"card_id", "steam-50"}, {"user_id", "alice"}},
                {{"Authorization", "Bearer " + kApi}, {"Idempotency-Key", key}});
}

}  // namespace

BOOST_AUTO_TEST_SUITE(caf_door)

// Row 1: one exit message used to stop the shop for good, /healthz stayed
// "ok" and SIGTERM hung. Now the gate and the sessions drop them all.
BOOST_AUTO_TEST_CASE(exit_kill_error_and_down_from_a_peer_stop_nothing) {
  test::TempDir dir("giftcard-caf-door");
  test::ServeChild server(dir.str("data"), dir.str("serve.log"), with_tokens());
  const HostPort node{"127.0.0.1", server.caf_port()};
  {
    Peer peer;
    auto gate = connect_gate(peer.sys, node, false);
    BOOST_REQUIRE(gate);
    auto session = connect_api(peer.sys, node, false, kApi);
    BOOST_REQUIRE(session);
    auto g = caf::actor_cast<caf::actor>(*gate);
    auto s = caf::actor_cast<caf::actor>(*session);
    for (const auto& target : {g, s}) {
      caf::anon_send_exit(target, caf::exit_reason::user_shutdown);
      caf::anon_send_exit(target, caf::exit_reason::kill);
      caf::anon_send(target, caf::make_error(caf::sec::runtime_error));
      caf::anon_send(target, caf::down_msg{target.address(), caf::exit_reason::kill});
      caf::anon_send(target,
                     caf::exit_msg{target.address(), caf::exit_reason::unhandled_exception});
    }
    std::this_thread::sleep_for(500ms);
    // The same session still answers, and a new login works.
    auto w = peer.ask<WalletView>(*session, wallet_atom::value, std::string("alice"), int64_t{0});
    BOOST_TEST_REQUIRE(static_cast<bool>(w), "the session died");
    BOOST_TEST(w->balance == 100000);
    auto again = connect_api(peer.sys, node, false, kApi);
    BOOST_REQUIRE_MESSAGE(again, "the gate died");
    auto p = peer.ask<Purchase>(*again, purchase_atom::value, std::string("steam-50"),
                                std::string("alice"), std::string("caf-after-exit"));
    BOOST_TEST_REQUIRE(static_cast<bool>(p));
    BOOST_TEST(!p->code.empty());
  }
  // HTTP purchases work, /healthz is honest, the drops are counted.
  auto r = http_purchase(server.port(), "http-after-exit");
  BOOST_TEST(r.status == 201, r.describe());
  test::HttpConnection c(server.port());
  auto h = c.get("/healthz");
  BOOST_TEST(h.status == 200, h.describe());
  BOOST_TEST(metric(c, "giftcard_caf_dropped_system_messages_total") >= 10);
  // And SIGTERM still ends it, cleanly.
  server.stop_clean(test::by_build(20000ms, 60000ms));
  BOOST_TEST(server.log().find("drain incomplete") == std::string::npos, server.log());
}

// Row 2: every CAF command used to work without any token.
BOOST_AUTO_TEST_CASE(every_command_needs_a_login_with_its_role) {
  test::TempDir dir("giftcard-caf-roles");
  test::ServeChild server(dir.str("data"), dir.str("serve.log"), with_tokens());
  const HostPort node{"127.0.0.1", server.caf_port()};
  Peer peer;
  // No token, a wrong token, the api token for the admin role: refused.
  for (const std::string& t : {std::string(), std::string("wrong"), kApi + "x"}) {
    auto a = connect_api(peer.sys, node, false, t);
    BOOST_REQUIRE(!a);
    BOOST_TEST(code_of(a.error()) == Errc::unauthorized);
  }
  for (const std::string& t : {std::string(), std::string("wrong"), kApi}) {
    auto a = connect_shop(peer.sys, node, false, t);
    BOOST_REQUIRE(!a);
    BOOST_TEST(code_of(a.error()) == Errc::unauthorized);
  }
  // The gate itself answers nothing but login: a command sent to it straight
  // (re-declaring the interface) is refused and changes nothing.
  auto gate = connect_gate(peer.sys, node, false);
  BOOST_REQUIRE(gate);
  auto forged = caf::actor_cast<shop_actor>(*gate);
  auto minted = peer.ask<CreditReply>(forged, credit_atom::value, std::string("mallory"),
                                      int64_t{9223372036854775000}, std::string("mint"));
  BOOST_TEST(!minted);
  auto stolen = peer.ask<Purchase>(forged, purchase_atom::value, std::string("steam-50"),
                                   std::string("alice"), std::string("steal"));
  BOOST_TEST(!stolen);

  // The api role: money, purchases and reads; nothing of the admin's.
  auto api = connect_api(peer.sys, node, false, kApi);
  BOOST_REQUIRE(api);
  auto credit = peer.ask<CreditReply>(*api, credit_atom::value, std::string("bob"), int64_t{700},
                                      std::string("api-credit"));
  BOOST_TEST_REQUIRE(static_cast<bool>(credit));
  auto page = peer.ask<PurchasePage>(*api, history_atom::value, std::string("alice"), int64_t{0},
                                     int64_t{10}, int64_t{0});
  BOOST_TEST(static_cast<bool>(page));
  auto as_admin = caf::actor_cast<shop_actor>(*api);
  auto created = peer.ask<CardInfo>(as_admin, create_atom::value,
                                    CardSpec{"api-made", "by the api role", 1, 1});
  BOOST_TEST(!created, "the api session created a card");
  auto rebuilt = peer.ask<RebuildInfo>(as_admin, rebuild_atom::value);
  BOOST_TEST(!rebuilt, "the api session started a rebuild");
  test::HttpConnection c(server.port());
  BOOST_TEST(c.get("/api/cards/api-made").status == 404);

  // The admin role: everything; its token also opens the api role.
  auto admin = connect_shop(peer.sys, node, false, kAdmin);
  BOOST_REQUIRE(admin);
  auto made = peer.ask<CardInfo>(*admin, create_atom::value,
                                 CardSpec{"admin-made", "by the admin role", 1, 1});
  BOOST_TEST(static_cast<bool>(made));
  BOOST_TEST(static_cast<bool>(connect_api(peer.sys, node, false, kAdmin)));
  BOOST_TEST(metric(c, "giftcard_caf_logins_refused_total") >= 6);
}

BOOST_AUTO_TEST_CASE(cli_clients_take_the_token) {
  test::TempDir dir("giftcard-caf-cli");
  test::ServeChild server(dir.str("data"), dir.str("serve.log"), with_tokens());
  const std::string node = "127.0.0.1:" + std::to_string(server.caf_port());
  auto none = test::run_giftcard({"credit", "--node", node, "--user", "mallory", "--amount",
                                  "9223372036854775000", "--key", "m"});
  BOOST_TEST(none.code() == 1, none.describe());
  BOOST_TEST(none.out.find("unauthorized") != std::string::npos, none.describe());
  auto buy = test::run_giftcard(
      {"purchase", "--node", node, "--card", "steam-50", "--user", "alice", "--key", "cli-1"});
  BOOST_TEST(buy.code() == 1, buy.describe());
  auto with_env = test::run_giftcard(
      {"purchase", "--node", node, "--card", "steam-50", "--user", "alice", "--key", "cli-2"},
      test::EnvVars{{"GIFTCARD_API_TOKEN", kApi}});
  BOOST_TEST(with_env.code() == 0, with_env.describe());
  auto with_flag = test::run_giftcard({"credit", "--node", node, "--user", "carol", "--amount", "5",
                                       "--key", "cli-3", "--token", kApi});
  BOOST_TEST(with_flag.code() == 0, with_flag.describe());
  test::HttpConnection c(server.port());
  auto w = c.get("/api/wallets/mallory", {{"Authorization", "Bearer " + kApi}});
  BOOST_TEST(w.status == 200);
  BOOST_TEST(w.json()["balance"] == 0, w.body);
}

BOOST_AUTO_TEST_CASE(sessions_are_capped) {
  test::TempDir dir("giftcard-caf-cap");
  test::ServeChild server(dir.str("data"), dir.str("serve.log"),
                          with_tokens({"--max-caf-sessions", "3"}));
  const HostPort node{"127.0.0.1", server.caf_port()};
  Peer peer;
  std::vector<api_session_actor> held;
  for (int i = 0; i < 3; ++i) {
    auto s = connect_api(peer.sys, node, false, kApi);
    BOOST_REQUIRE(s);
    held.push_back(*s);
  }
  auto more = connect_api(peer.sys, node, false, kApi);
  BOOST_REQUIRE(!more);
  BOOST_TEST(code_of(more.error()) == Errc::busy);
  // The sessions held still work.
  auto w = peer.ask<WalletView>(held[0], wallet_atom::value, std::string("alice"), int64_t{0});
  BOOST_TEST(static_cast<bool>(w));
}

// Row 6: the data directory is the owner's alone.
BOOST_AUTO_TEST_CASE(data_files_are_private) {
  test::TempDir dir("giftcard-modes");
  {
    test::ServeChild server(dir.str("data"), dir.str("serve.log"), with_tokens());
    BOOST_TEST(http_purchase(server.port(), "modes-1").status == 201);
    server.stop_clean(test::by_build(20000ms, 60000ms));
  }
  struct stat st {};
  BOOST_REQUIRE(::stat(dir.str("data").c_str(), &st) == 0);
  BOOST_TEST((st.st_mode & 0777) == 0700u);
  size_t files = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir.str("data"))) {
    BOOST_REQUIRE(::stat(e.path().c_str(), &st) == 0);
    BOOST_TEST((st.st_mode & 077) == 0u, e.path() << " is readable by others");
    ++files;
  }
  BOOST_TEST(files > 3);
  // An existing directory readable by others is reported.
  ::chmod(dir.str("data").c_str(), 0755);
  test::ServeChild again(dir.str("data"), dir.str("serve2.log"), with_tokens());
  BOOST_TEST(again.log().find("other local users may read") != std::string::npos, again.log());
}

BOOST_AUTO_TEST_SUITE_END()

// The HTTP doors the API decides (the framing ones are in http_edge).
BOOST_AUTO_TEST_SUITE(http_doors)

// Row 9: everything after a NUL used to be ignored.
BOOST_AUTO_TEST_CASE(a_body_is_one_json_value_and_nothing_after_it) {
  test::TempDir dir("giftcard-json-tail");
  test::ServeChild server(dir.str("data"), dir.str("serve.log"), with_tokens());
  test::HttpConnection c(server.port());
  c.default_headers = {{"Authorization", "Bearer " + kAdmin}};
  const std::string card = R"({"id":"j-7","name":"J","price":100,"value":100})";
  for (const std::string& tail :
       {std::string("\0{\"price\":-1}", 13), std::string("\0", 1), std::string(" {}"),
        std::string("x"), std::string("]"), std::string(" \"more\"")}) {
    auto r = c.post("/api/cards", std::string_view(card + tail));
    BOOST_TEST(r.status == 400, r.describe());
  }
  BOOST_TEST(c.get("/api/cards/j-7").status == 404);
  auto ok = c.post("/api/cards", std::string_view(card + " \r\n"));  // whitespace is fine
  BOOST_TEST(ok.status == 201, ok.describe());
}

BOOST_AUTO_TEST_CASE(over_the_rate_a_caller_gets_429_and_others_do_not) {
  test::TempDir dir("giftcard-rate");
  test::ServeChild server(dir.str("data"), dir.str("serve.log"),
                          with_tokens({"--rate-limit", "2", "--rate-burst", "5"}));
  test::HttpConnection api(server.port());
  api.default_headers = {{"Authorization", "Bearer " + kApi}};
  int ok = 0, limited = 0;
  std::string retry_after;
  for (int i = 0; i < 20; ++i) {
    auto r = api.get("/api/wallets/alice");
    if (r.status == 200) ++ok;
    if (r.status == 429) {
      ++limited;
      retry_after = r.header("Retry-After");
      BOOST_TEST(r.json()["code"] == "rate_limited", r.body);
    }
  }
  BOOST_TEST(ok >= 5);
  BOOST_TEST(ok <= 8);  // the burst plus what 2/s refills meanwhile
  BOOST_TEST(limited >= 12);
  BOOST_TEST(!retry_after.empty());
  BOOST_TEST(std::stoi(retry_after) >= 1);
  // Another caller (the admin token) has its own bucket.
  test::HttpConnection admin(server.port());
  admin.default_headers = {{"Authorization", "Bearer " + kAdmin}};
  BOOST_TEST(admin.get("/api/wallets/alice").status == 200);
  // Probes are never limited.
  BOOST_TEST(api.get("/healthz").status == 200);
  // Refill: a second later the api caller is served again.
  std::this_thread::sleep_for(1200ms);
  BOOST_TEST(api.get("/api/wallets/alice").status == 200);
  BOOST_TEST(metric(admin, "giftcard_http_rate_limited_total") >= 12);
}

BOOST_AUTO_TEST_CASE(a_token_hunt_is_slowed_down) {
  test::TempDir dir("giftcard-hunt");
  test::ServeChild server(dir.str("data"), dir.str("serve.log"), with_tokens());
  int unauthorized = 0, limited = 0;
  for (int i = 0; i < 300; ++i) {
    test::HttpConnection c(server.port());
    auto r = c.get("/api/wallets/alice", {{"Authorization", "Bearer guess-" + std::to_string(i)}});
    if (r.status == 401) ++unauthorized;
    if (r.status == 429) ++limited;
  }
  BOOST_TEST(unauthorized >= 100);
  BOOST_TEST(limited > 0, "300 wrong tokens in a row were all answered 401");
  // The right token from the same address is not locked out.
  test::HttpConnection c(server.port());
  BOOST_TEST(c.get("/api/wallets/alice", {{"Authorization", "Bearer " + kApi}}).status == 200);
}

// "/admin answers without a token while API.md says otherwise": the page is
// public by design (it holds no data) and locked down; its data is not.
BOOST_AUTO_TEST_CASE(the_viewer_is_static_and_locked_down_its_data_is_not_public) {
  test::TempDir dir("giftcard-viewer-doors");
  test::ServeChild server(dir.str("data"), dir.str("serve.log"), with_tokens());
  test::HttpConnection c(server.port());
  for (const char* path : {"/admin", "/admin/app.js", "/admin/app.css"}) {
    auto r = c.get(path);
    BOOST_TEST(r.status == 200, path << ": " << r.describe());
    std::string csp = r.header("Content-Security-Policy");
    BOOST_TEST(csp.find("unsafe-inline") == std::string::npos, csp);
    BOOST_TEST(csp.find("frame-ancestors 'none'") != std::string::npos, csp);
    BOOST_TEST(r.header("X-Content-Type-Options") == "nosniff");
    BOOST_TEST(r.header("Referrer-Policy") == "no-referrer");
    BOOST_TEST(r.header("X-Frame-Options") == "DENY");
  }
  auto html = c.get("/admin").body;
  BOOST_TEST(html.find("<script>") == std::string::npos);
  BOOST_TEST(html.find("<style") == std::string::npos);
  for (const char* path : {"/api/admin/state", "/api/admin/wallets", "/api/admin/purchases",
                           "/api/events", "/metrics"})
    BOOST_TEST(c.get(path).status == 401, path);
  BOOST_TEST(c.get("/api/admin/state", {{"Authorization", "Bearer " + kApi}}).status == 401);
  BOOST_TEST(c.get("/api/admin/state", {{"Authorization", "Bearer " + kAdmin}}).status == 200);
}

// "With only the API token set, admin routes stay open on loopback": a role
// without a token is closed once any token is configured.
BOOST_AUTO_TEST_CASE(one_token_set_closes_the_other_role) {
  test::TempDir dir("giftcard-one-token");
  test::ServeArgs a;
  a.flags = {"--demo"};
  a.env = {{"GIFTCARD_API_TOKEN", kApi}};
  test::ServeChild server(dir.str("data"), dir.str("serve.log"), a);
  test::HttpConnection c(server.port());
  auto create = c.post("/api/cards",
                       nlohmann::json{{"id", "x"}, {"name", "x"}, {"price", 1}, {"value", 1}});
  BOOST_TEST(create.status == 401, create.describe());
  BOOST_TEST(c.get("/api/events").status == 401);
  BOOST_TEST(c.get("/api/events", {{"Authorization", "Bearer " + kApi}}).status == 401);
  BOOST_TEST(c.get("/api/wallets/alice", {{"Authorization", "Bearer " + kApi}}).status == 200);
  BOOST_TEST(server.log().find("only the api token is set") != std::string::npos, server.log());
  Peer peer;
  const HostPort node{"127.0.0.1", server.caf_port()};
  BOOST_TEST(!connect_shop(peer.sys, node, false, ""));
  BOOST_TEST(!connect_shop(peer.sys, node, false, kApi));
  BOOST_TEST(static_cast<bool>(connect_api(peer.sys, node, false, kApi)));
}

BOOST_AUTO_TEST_SUITE_END()

// Row 10: a full disk used to put "While appending to file: <datadir>/...log"
// into the 503 a client got. The cause goes to the server's log only.
BOOST_AUTO_TEST_SUITE(storage_errors)

BOOST_AUTO_TEST_CASE(a_full_disk_says_storage_unavailable_and_nothing_more) {
  test::TempDir dir("giftcard-full-disk");
  test::ServeArgs a = with_tokens();
  a.max_file_bytes = 2u << 20;  // every file of the store stops growing at 2 MiB
  test::ServeChild server(dir.str("data"), dir.str("serve.log"), a);
  test::HttpConnection c(server.port());
  c.default_headers = {{"Authorization", "Bearer " + kAdmin}};
  test::HttpReply failed;
  for (int batch = 0; batch < 40 && failed.status == 0; ++batch) {
    auto imp = test::import_filler_codes(c, "steam-50", "FULL", batch, 5000, 40);
    if (imp.reply.status != 201) failed = imp.reply;
  }
  BOOST_REQUIRE_MESSAGE(failed.status != 0, "the store never filled up: " << server.log());
  BOOST_TEST(failed.status == 503, failed.describe());
  auto body = failed.json();
  BOOST_TEST(body["code"] == "storage_unavailable", failed.body);
  BOOST_TEST(body["detail"] == "storage unavailable", failed.body);
  BOOST_TEST(failed.body.find(dir.str("data")) == std::string::npos, failed.body);
  // Every later command says the same, and no more.
  auto p = c.post("/api/wallets/alice/credits", nlohmann::json{{"amount", 1}},
                  {{"Idempotency-Key", "after-full"}});
  BOOST_TEST(p.status == 503, p.describe());
  BOOST_TEST(p.body.find(dir.str("data")) == std::string::npos, p.body);
  BOOST_TEST(p.body.find("append") == std::string::npos, p.body);
  // The operator learns the cause.
  BOOST_TEST(server.log().find(dir.str("data")) != std::string::npos, server.log());
  auto h = c.get("/healthz");
  BOOST_TEST(h.status == 503, h.describe());
  BOOST_TEST(h.body.find(dir.str("data")) == std::string::npos, h.body);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace giftcard
