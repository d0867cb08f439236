// RELIABILITY.md §8, secrets: after a full mixed workload against a server
// with bearer tokens, neither the server's stderr nor /metrics contains any
// assigned activation code or the token, and no event stores the token.
// (Auth on every route: api_test.http_auth; the viewer's masking: the
// viewer_browser test; CAF TLS peers: api_test.caf_tls.)
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <set>
#include <thread>

#include "tests/reliability/http_workload.h"
#include "tests/reliability/oracle.h"
#include "tests/support/http_client.h"
#include "tests/support/process.h"
#include "tests/support/serve_child.h"

namespace giftcard::reliability {
namespace {

using namespace std::chrono_literals;

size_t hits(const std::string& haystack, const std::set<std::string>& needles, std::string* first) {
  size_t n = 0;
  for (const auto& s : needles)
    if (haystack.find(s) != std::string::npos) {
      if (n++ == 0) *first = s.substr(0, 6) + "...";
    }
  return n;
}

BOOST_AUTO_TEST_SUITE(secrets)

BOOST_AUTO_TEST_CASE(no_code_or_token_in_logs_metrics_or_events) {
  uint64_t seed = 0;
  auto rng = seeded_rng("secrets", &seed);
  test::TempDir dir("giftcard-rel-secrets");
  const std::string token = "tok-" + std::to_string(rng()) + "-secret";
  test::ServeArgs args;
  args.env = {{"GIFTCARD_ADMIN_TOKEN", token}, {"GIFTCARD_API_TOKEN", token}};
  LoadConfig cfg;
  cfg.headers = {{"Authorization", "Bearer " + token}};
  History history;
  std::string metrics;
  Counters c;
  std::vector<std::string> problems;
  {
    test::ServeChild server(dir.str("data"), dir.str("serve.log"), args);
    set_up_shop(server.port(), cfg);
    top_up_codes(server.port(), cfg, 0, 4000, 4000);
    // Failures too: a wrong token, a bad body, an unknown card.
    test::HttpConnection bad(server.port());
    bad.default_headers = {{"Authorization", "Bearer wrong-" + token}};
    BOOST_TEST(
        bad.post("/api/purchases", std::string_view("{}"), {{"Idempotency-Key", "y"}}).status ==
        401);
    test::HttpConnection ok(server.port());
    ok.default_headers = cfg.headers;
    BOOST_TEST(
        ok.post("/api/purchases", std::string_view("{\"card_id\":"), {{"Idempotency-Key", "x"}})
            .status == 400);
    {
      HttpLoad load(server.port(), cfg, &history, rng(), "s");
      load.start();
      std::this_thread::sleep_for(test::by_build(3000ms, 6000ms));
      load.stop();
    }
    auto m = ok.get("/metrics");
    BOOST_REQUIRE_MESSAGE(m.status == 200, m.describe());
    metrics = m.body;
    c = final_check(server, cfg, &history, &problems);
  }
  std::set<std::string> codes;
  for (const auto& call : history.calls())
    if (call.outcome == Call::Outcome::ok && !call.code.empty()) codes.insert(call.code);
  BOOST_REQUIRE(codes.size() > 100);
  const std::string log = test::read_file_text(dir.str("serve.log"));
  auto events = test::run_giftcard({"events", "--data", dir.str("data")}, 120s);
  BOOST_REQUIRE(events.code() == 0);
  std::string which;
  size_t in_log = hits(log, codes, &which) + hits(log, {token}, &which);
  size_t in_metrics = hits(metrics, codes, &which) + hits(metrics, {token}, &which);
  size_t token_in_events = hits(events.out, {token}, &which);
  nlohmann::json figures = c.to_json();
  figures["codes_checked"] = codes.size();
  figures["log_bytes"] = log.size();
  figures["secret_hits_log"] = in_log;
  figures["secret_hits_metrics"] = in_metrics;
  figures["token_hits_events"] = token_in_events;
  report("secrets", figures);
  BOOST_TEST(c.clean(), c.summary());
  BOOST_TEST(in_log == 0u, "a code or the token is in the server's stderr (" << which << ")");
  BOOST_TEST(in_metrics == 0u, "a code or the token is in /metrics (" << which << ")");
  BOOST_TEST(token_in_events == 0u, "the token is in the log of events");
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace giftcard::reliability
