// The audit commands beside a live server (docs/CONTRACT.md, "Command line"): while a serve child
// commits purchases, `giftcard verify` and `giftcard events` open the store as
// a secondary instance, see a consistent prefix of the log, and change nothing.
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <boost/test/unit_test.hpp>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "actors/errors.h"
#include "api/node_config.h"
#include "tests/support/run_command.h"

namespace {

namespace fs = std::filesystem;

struct ServeChild {
  pid_t pid = -1;
  uint16_t port = 0;
  explicit ServeChild(const std::string& data) {
    int fds[2];
    BOOST_REQUIRE(::pipe(fds) == 0);
    pid = ::fork();
    BOOST_REQUIRE(pid >= 0);
    if (pid == 0) {
      ::dup2(fds[1], 1);
      ::close(fds[0]);
      ::execl(GIFTCARD_BINARY, GIFTCARD_BINARY, "serve", "--data", data.c_str(), "--caf",
              "127.0.0.1:0", "--http", "127.0.0.1:0", "--demo", static_cast<char*>(nullptr));
      ::_exit(127);
    }
    ::close(fds[1]);
    FILE* f = ::fdopen(fds[0], "r");
    char line[256] = {0};
    BOOST_REQUIRE_MESSAGE(std::fgets(line, sizeof line, f) != nullptr, "no ready line");
    std::string l(line);
    port = static_cast<uint16_t>(std::stoi(l.substr(l.rfind(':') + 1)));
    std::fclose(f);
  }
  int stop() {
    ::kill(pid, SIGTERM);
    int status = 0;
    ::waitpid(pid, &status, 0);
    pid = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  ~ServeChild() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(audit_live)

BOOST_AUTO_TEST_CASE(verify_and_events_beside_a_writing_server) {
  using namespace giftcard;
  fs::path dir = fs::temp_directory_path() / ("gc-audit-live-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  std::string data = (dir / "data").string();
  fs::create_directories(dir);
  ServeChild serve(data);

  // A remote client buying continuously (the demo's alice can afford 20 steam-50 codes;
  // credit her more so the load lasts).
  std::atomic<bool> stop{false};
  std::atomic<int> bought{0};
  std::thread load([&] {
    NodeConfig cfg(TlsOptions{});
    caf::actor_system sys{cfg};
    auto shop = connect_shop(sys, HostPort{"127.0.0.1", serve.port}, false);
    if (!shop) return;
    caf::scoped_actor self{sys};
    self->request(*shop, std::chrono::seconds(10), credit_atom::value, std::string("alice"),
                  int64_t{10'000'000}, std::string("audit-topup"))
        .receive([](CreditReply&) {}, [](caf::error&) {});
    for (int i = 0; !stop && i < 100000; ++i)
      self->request(*shop, std::chrono::seconds(10), purchase_atom::value,
                    std::string("spotify-10"), std::string("alice"), "live-" + std::to_string(i))
          .receive([&](Purchase&) { ++bought; }, [&](caf::error&) { stop = true; });
  });

  std::string bin = GIFTCARD_BINARY;
  int64_t last_seen = 0;
  for (int round = 0; round < 6; ++round) {
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
    std::string out;
    int rc = test::run_command(bin + " verify --data " + data, &out);
    BOOST_TEST(rc == 0, "round " << round << ": " << out);
    auto at = out.find("last position:");
    BOOST_REQUIRE(at != std::string::npos);
    int64_t pos = std::stoll(out.substr(at + 14));
    BOOST_TEST(pos >= last_seen);  // each audit sees a longer (or equal) prefix
    last_seen = pos;
    std::string lines;
    BOOST_TEST(test::run_command(bin + " events --data " + data + " --from 1", &lines) == 0);
    BOOST_TEST(std::count(lines.begin(), lines.end(), '\n') >= pos);
  }
  stop = true;
  load.join();
  BOOST_TEST(bought > 0);
  BOOST_TEST(serve.stop() == 0);  // the server never noticed the auditors
  std::string out;
  BOOST_TEST(test::run_command(bin + " verify --data " + data, &out) == 0, out);
  BOOST_TEST(out.find("purchases:       " + std::to_string(bought.load())) != std::string::npos,
             out);
  fs::remove_all(dir);
}

BOOST_AUTO_TEST_SUITE_END()
