// A `giftcard serve` child process for process-level tests: started with its
// stderr appended to a log file, its ready line ("ready http=H:P caf=H:P") read
// from stdout, then signalled, frozen, killed or waited for.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "tests/support/http_client.h"
#include "tests/support/process.h"

namespace giftcard::test {

struct ServeArgs {
  std::string http = "127.0.0.1:0";
  std::vector<std::string> flags;  // more flags (tokens, --demo, ...)
  EnvVars env;
  std::string caf = "127.0.0.1:0";
  std::chrono::milliseconds ready_timeout{by_build(30000, 90000)};
  // A crash-point run may end during recovery: then the constructor returns
  // with ready() false and the exit status in last_status(), instead of failing.
  bool may_exit_before_ready = false;
  // > 0: no file of the server may grow past this (a full disk, see spawn()).
  uint64_t max_file_bytes = 0;
};

class ServeChild {
 public:
  using Clock = std::chrono::steady_clock;

  ServeChild(const std::string& data_dir, const std::string& log_path, ServeArgs a = {})
      : data_(data_dir), log_path_(log_path) {
    std::vector<std::string> args{"serve", "--data", data_dir, "--http", a.http, "--caf", a.caf};
    args.insert(args.end(), a.flags.begin(), a.flags.end());
    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
    int log = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log < 0) throw std::runtime_error("cannot open " + log_path);
    started_ = Clock::now();
    pid_ = spawn(args, a.env, out[1], log, a.max_file_bytes);
    ::close(out[1]);
    ::close(log);
    out_fd_ = out[0];
    read_ready_line(a.ready_timeout, a.may_exit_before_ready);
  }
  ~ServeChild() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      wait_exit(pid_, std::chrono::seconds(30));
    }
    if (out_fd_ >= 0) ::close(out_fd_);
  }
  ServeChild(const ServeChild&) = delete;
  ServeChild& operator=(const ServeChild&) = delete;

  uint16_t port() const { return http_port_; }
  uint16_t caf_port() const { return caf_port_; }
  pid_t pid() const { return pid_; }
  int64_t ready_ms() const { return ready_ms_; }
  bool ready() const { return http_port_ != 0; }
  const std::string& data() const { return data_; }
  std::string log() const { return read_file_text(log_path_); }
  std::optional<int> last_status() const { return last_status_; }

  // True while the process runs (it has not exited or crashed).
  bool alive() {
    if (pid_ <= 0) return false;
    int status = 0;
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      pid_ = -1;
      last_status_ = status;
      return false;
    }
    return true;
  }

  void signal(int sig) {
    BOOST_REQUIRE_MESSAGE(pid_ > 0, "serve is not running");
    ::kill(pid_, sig);
  }
  std::optional<int> wait(std::chrono::milliseconds timeout) {
    if (pid_ <= 0) return last_status_;
    auto status = wait_exit(pid_, timeout);
    if (status) {
      pid_ = -1;
      last_status_ = status;
    }
    return status;
  }

  // SIGKILL and reap; the process must die of it.
  void kill_hard() {
    BOOST_REQUIRE(pid_ > 0);
    ::kill(pid_, SIGKILL);
    auto status = wait(std::chrono::seconds(10));
    BOOST_REQUIRE_MESSAGE(status, "serve did not die on SIGKILL");
    BOOST_REQUIRE_MESSAGE(WIFSIGNALED(*status) && WTERMSIG(*status) == SIGKILL,
                          "serve ended before the SIGKILL: " << describe_status(*status)
                                                             << "; stderr:\n"
                                                             << log());
  }

  // SIGSTOP, and wait until the kernel reports it stopped: from then on its
  // files change no more.
  void freeze() {
    BOOST_REQUIRE(pid_ > 0);
    BOOST_REQUIRE(::kill(pid_, SIGSTOP) == 0);
    for (;;) {
      int status = 0;
      pid_t r = ::waitpid(pid_, &status, WUNTRACED);
      if (r < 0 && errno == EINTR) continue;
      BOOST_REQUIRE_MESSAGE(r == pid_, "waitpid: " << std::strerror(errno));
      BOOST_REQUIRE_MESSAGE(WIFSTOPPED(status), "serve did not stop: " << describe_status(status));
      return;
    }
  }
  void thaw() { ::kill(pid_, SIGCONT); }

  // SIGTERM; the process must exit 0 within `timeout`. Returns how long it took.
  std::chrono::milliseconds stop_clean(std::chrono::milliseconds timeout) {
    BOOST_REQUIRE(pid_ > 0);
    auto t0 = Clock::now();
    ::kill(pid_, SIGTERM);
    auto status = wait(timeout);
    BOOST_REQUIRE_MESSAGE(status, "serve did not exit within " << timeout.count()
                                                               << " ms of SIGTERM; stderr:\n"
                                                               << log());
    BOOST_TEST((WIFEXITED(*status) && WEXITSTATUS(*status) == 0),
               "serve after SIGTERM: " << describe_status(*status) << "; stderr:\n"
                                       << log());
    return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0);
  }

 private:
  void read_ready_line(std::chrono::milliseconds timeout, bool may_exit) {
    auto deadline = Clock::now() + timeout;
    std::string buf;
    for (;;) {
      if (auto nl = buf.find('\n'); nl != std::string::npos) {
        std::string line = buf.substr(0, nl);
        buf.erase(0, nl + 1);
        if (line.rfind("ready", 0) != 0) continue;
        http_port_ = port_of(line, "http=");
        caf_port_ = port_of(line, "caf=");
        ready_ms_ = ms_since(started_);
        return;
      }
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() <= 0)
        BOOST_FAIL("giftcard serve printed no ready line within "
                   << timeout.count() << " ms; stdout: '" << buf << "'; stderr:\n"
                   << log());
      pollfd p{out_fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char chunk[512];
      ssize_t got = ::read(out_fd_, chunk, sizeof chunk);
      if (got > 0) {
        buf.append(chunk, static_cast<size_t>(got));
        continue;
      }
      if (got < 0 && errno == EINTR) continue;
      auto status = wait(std::chrono::seconds(5));
      if (may_exit && status) return;
      BOOST_FAIL("giftcard serve closed stdout before the ready line ("
                 << (status ? describe_status(*status) : std::string("still running"))
                 << "); stderr:\n"
                 << log());
    }
  }
  static uint16_t port_of(const std::string& line, const std::string& key) {
    auto at = line.find(key);
    BOOST_REQUIRE_MESSAGE(at != std::string::npos, "ready line without " << key << ": " << line);
    std::string addr = line.substr(at + key.size(),
                                   line.find_first_of(" \t\r", at) - (at + key.size()));
    auto colon = addr.rfind(':');
    BOOST_REQUIRE_MESSAGE(colon != std::string::npos, "bad address in: " << line);
    int port = std::atoi(addr.c_str() + colon + 1);
    BOOST_REQUIRE_MESSAGE(port > 0 && port < 65536, "bad port in: " << line);
    return static_cast<uint16_t>(port);
  }

  std::string data_;
  std::string log_path_;
  pid_t pid_ = -1;
  int out_fd_ = -1;
  uint16_t http_port_ = 0;
  uint16_t caf_port_ = 0;
  int64_t ready_ms_ = 0;
  Clock::time_point started_;
  std::optional<int> last_status_;
};

// The server's last committed log position, from GET /healthz.
inline int64_t log_position(uint16_t port) {
  HttpConnection c(port);
  auto r = c.get("/healthz");
  BOOST_REQUIRE_MESSAGE(r.status == 200, "GET /healthz: " << r.describe());
  auto j = r.json();
  BOOST_REQUIRE_MESSAGE(
      j.is_object() && j.contains("position") && j["position"].is_number_integer(),
      "GET /healthz: " << r.describe());
  return j["position"].get<int64_t>();
}

}  // namespace giftcard::test
