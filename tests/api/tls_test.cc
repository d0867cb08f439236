// CAF remote over TLS (libcaf_openssl): a serve child with its own CA; a
// client with a certificate from that CA is served, a client without TLS or
// with a certificate from a foreign CA is rejected.
#include <sys/wait.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "tests/support/run_command.h"

namespace {

namespace fs = std::filesystem;

std::string run(const std::string& cmd, int* rc) {
  std::string out;
  *rc = giftcard::test::run_command(cmd, &out);
  return out;
}

// Makes <dir>/<name>-ca.{pem,key} and a leaf <dir>/<name>-{leaf}.{pem,key} signed by it.
void make_ca(const fs::path& dir, const std::string& name) {
  int rc = 0;
  std::string d = dir.string() + "/";
  run("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=" + name + "-ca -keyout " + d +
          name + "-ca.key -out " + d + name + "-ca.pem",
      &rc);
  BOOST_REQUIRE_MESSAGE(rc == 0, "openssl could not make a CA");
}

void make_leaf(const fs::path& dir, const std::string& ca, const std::string& leaf) {
  int rc = 0;
  std::string d = dir.string() + "/";
  run("openssl req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout " + d + leaf + ".key -out " +
          d + leaf + ".csr",
      &rc);
  BOOST_REQUIRE(rc == 0);
  run("openssl x509 -req -days 2 -in " + d + leaf + ".csr -CA " + d + ca + "-ca.pem -CAkey " + d +
          ca + "-ca.key -CAcreateserial -out " + d + leaf + ".pem",
      &rc);
  BOOST_REQUIRE(rc == 0);
}

struct Server {
  pid_t pid = -1;
  int port = 0;
  ~Server() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  }
};

void start_tls_server(Server& s, const fs::path& dir) {
  int fds[2];
  BOOST_REQUIRE(::pipe(fds) == 0);
  s.pid = ::fork();
  BOOST_REQUIRE(s.pid >= 0);
  if (s.pid == 0) {
    ::dup2(fds[1], 1);
    ::close(fds[0]);
    std::string d = dir.string() + "/";
    std::string data = d + "data", cert = d + "server.pem", key = d + "server.key",
                ca = d + "good-ca.pem";
    ::execl(GIFTCARD_BINARY, GIFTCARD_BINARY, "serve", "--data", data.c_str(), "--caf",
            "127.0.0.1:0", "--http", "127.0.0.1:0", "--tls-cert", cert.c_str(), "--tls-key",
            key.c_str(), "--tls-ca", ca.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(fds[1]);
  FILE* f = ::fdopen(fds[0], "r");
  char line[256] = {0};
  BOOST_REQUIRE_MESSAGE(std::fgets(line, sizeof line, f) != nullptr, "serve printed no ready line");
  std::string l(line);
  BOOST_REQUIRE_MESSAGE(l.rfind("ready ", 0) == 0, "unexpected: " << l);
  s.port = std::stoi(l.substr(l.rfind(':') + 1));
  std::fclose(f);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(caf_tls)

BOOST_AUTO_TEST_CASE(only_peers_of_our_ca_get_in) {
  fs::path dir = fs::temp_directory_path() / ("gc-tls-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  make_ca(dir, "good");
  make_ca(dir, "evil");
  make_leaf(dir, "good", "server");
  make_leaf(dir, "good", "client");
  make_leaf(dir, "evil", "intruder");
  Server server;
  start_tls_server(server, dir);
  std::string d = dir.string() + "/";
  std::string node = " --node 127.0.0.1:" + std::to_string(server.port);
  std::string base = std::string(GIFTCARD_BINARY) + " credit" + node +
                     " --user tls-user --amount 100";
  int rc = -1;

  std::string out = run(base + " --key k1 --tls-cert " + d + "client.pem --tls-key " + d +
                            "client.key --tls-ca " + d + "good-ca.pem",
                        &rc);
  BOOST_TEST(rc == 0);
  BOOST_TEST(out.find("\"balance\":100") != std::string::npos, out);

  out = run(base + " --key k2 --timeout 5", &rc);  // plain BASP against a TLS port
  BOOST_TEST(rc == 3);

  out = run(base + " --key k3 --timeout 5 --tls-cert " + d + "intruder.pem --tls-key " + d +
                "intruder.key --tls-ca " + d + "good-ca.pem",
            &rc);
  BOOST_TEST(rc == 3);

  // Nothing the rejected peers sent was applied: the balance is still 100.
  out = run(base + " --key k1 --tls-cert " + d + "client.pem --tls-key " + d +
                "client.key --tls-ca " + d + "good-ca.pem",
            &rc);
  BOOST_TEST(rc == 0);
  BOOST_TEST(out.find("\"replayed\":true") != std::string::npos, out);
  BOOST_TEST(out.find("\"balance\":100") != std::string::npos, out);
  fs::remove_all(dir);
}

BOOST_AUTO_TEST_CASE(tls_flags_must_come_together) {
  int rc = -1;
  run(std::string(GIFTCARD_BINARY) +
          " serve --data /tmp/gc-tls-never --caf 127.0.0.1:0 --tls-cert /nonexistent.pem",
      &rc);
  BOOST_TEST(rc == 2);
  BOOST_TEST(!fs::exists("/tmp/gc-tls-never"));
}

BOOST_AUTO_TEST_SUITE_END()
