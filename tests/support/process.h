// Real child processes for the process-level suites (api_test): a temp
// directory, fork/exec of the giftcard binary (GIFTCARD_BINARY, set by CMake)
// with a controlled environment, and running a command to completion with a
// deadline. Also the sanitizer-aware scaling every such suite needs.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

extern char** environ;

namespace giftcard::test {

// ASan+UBSan at -O1 (make asan) and TSan (make tsan) run several times slower
// and use several times the memory: suites do less work, wait longer and allow
// a larger RSS there. The server's own limits are the same in all builds.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
inline constexpr bool kSanitized = true;
#else
inline constexpr bool kSanitized = false;
#endif
template <class T>
constexpr T by_build(T release, T sanitized) {
  return kSanitized ? sanitized : release;
}

inline int64_t ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                               t0)
      .count();
}

// A fresh directory under $TMPDIR, removed (with everything in it) at the end.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "giftcard-test") {
    std::string tmpl = (std::filesystem::temp_directory_path() / (prefix + "-XXXXXX")).string();
    if (::mkdtemp(tmpl.data()) == nullptr)
      throw std::runtime_error("mkdtemp failed: " + std::string(std::strerror(errno)));
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::string str(const std::string& child) const { return (path_ / child).string(); }

 private:
  std::filesystem::path path_;
};

inline std::string describe_status(int status) {
  if (WIFEXITED(status)) return "exit " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "killed by signal " + std::to_string(WTERMSIG(status));
  return "status " + std::to_string(status);
}

inline std::string read_file_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Waits for `pid` to exit within `timeout`; the wait status, or nullopt.
inline std::optional<int> wait_exit(pid_t pid, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int status = 0;
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) return status;
    if (r < 0 && errno != EINTR) return std::nullopt;
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

using EnvVars = std::vector<std::pair<std::string, std::string>>;

// This process's environment with `set` applied. The token variables are
// never inherited: a test sets them explicitly or not at all.
inline std::vector<std::string> child_environment(const EnvVars& set) {
  std::vector<std::string> out;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string_view kv(*e);
    std::string_view name = kv.substr(0, kv.find('='));
    if (name == "GIFTCARD_ADMIN_TOKEN" || name == "GIFTCARD_API_TOKEN") continue;
    if (std::any_of(set.begin(), set.end(), [&](const auto& p) { return p.first == name; }))
      continue;
    out.emplace_back(kv);
  }
  for (const auto& [k, v] : set) out.push_back(k + "=" + v);
  return out;
}

// fork/exec of GIFTCARD_BINARY with `args`: stdout to `out_fd`, stderr to
// `err_fd`. Everything is prepared before fork(); the child of this
// multi-threaded process calls only async-signal-safe functions before exec.
// `max_file_bytes` > 0: the child's RLIMIT_FSIZE, with SIGXFSZ ignored, so
// that a write past it fails with EFBIG like on a full disk.
inline pid_t spawn(const std::vector<std::string>& args, const EnvVars& env, int out_fd, int err_fd,
                   uint64_t max_file_bytes = 0) {
  std::vector<std::string> all{GIFTCARD_BINARY};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> envs = child_environment(env);
  std::vector<char*> envp;
  for (auto& e : envs) envp.push_back(e.data());
  envp.push_back(nullptr);
  const pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed: " + std::string(std::strerror(errno)));
  if (pid == 0) {
    // Die with the test: a crash or a ctest timeout must not leak servers.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, 0);
    ::dup2(out_fd, 1);
    ::dup2(err_fd, 2);
    ::close_range(3, ~0U, 0);  // no CAF sockets or pipes of the test leak into the child
    if (max_file_bytes > 0) {
      struct rlimit lim {
        max_file_bytes, max_file_bytes
      };
      ::setrlimit(RLIMIT_FSIZE, &lim);
      ::signal(SIGXFSZ, SIG_IGN);
    }
    ::execve(argv[0], argv.data(), envp.data());
    static const char msg[] = "exec of giftcard failed\n";
    [[maybe_unused]] auto n = ::write(2, msg, sizeof msg - 1);
    ::_exit(127);
  }
  return pid;
}
inline pid_t spawn(const std::vector<std::string>& args, int out_fd, int err_fd) {
  return spawn(args, EnvVars{}, out_fd, err_fd);
}

// A finished subprocess: exit status and what it printed.
struct RunResult {
  int status = -1;
  bool timed_out = false;
  std::string out;
  std::string err;
  std::chrono::milliseconds elapsed{0};
  bool exited() const { return !timed_out && WIFEXITED(status); }
  int code() const { return exited() ? WEXITSTATUS(status) : -1; }
  std::string describe() const {
    return (timed_out ? std::string("timed out") : describe_status(status)) +
           "\nstdout: " + out.substr(0, 2000) + "\nstderr: " + err.substr(0, 2000);
  }
};

// Runs `giftcard args...` to completion; killed (and timed_out set) after `timeout`.
inline RunResult run_giftcard(const std::vector<std::string>& args, const EnvVars& env,
                              std::chrono::milliseconds timeout) {
  using Clock = std::chrono::steady_clock;
  int out[2], err[2];
  if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0)
    throw std::runtime_error("pipe failed");
  auto start = Clock::now();
  pid_t pid = spawn(args, env, out[1], err[1]);
  ::close(out[1]);
  ::close(err[1]);
  RunResult r;
  auto deadline = start + timeout;
  pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
  std::string* sinks[2] = {&r.out, &r.err};
  int open_fds = 2;
  while (open_fds > 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      r.timed_out = true;
      break;
    }
    int n = ::poll(fds, 2, static_cast<int>(left.count()));
    if (n <= 0) continue;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      char buf[65536];
      ssize_t got = ::read(fds[i].fd, buf, sizeof buf);
      if (got > 0) {
        sinks[i]->append(buf, static_cast<size_t>(got));
      } else if (got == 0 || errno != EINTR) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  for (auto& f : fds)
    if (f.fd >= 0) ::close(f.fd);
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  auto status = wait_exit(pid, std::max(left, std::chrono::milliseconds(0)));
  if (!status) {
    r.timed_out = true;
    ::kill(pid, SIGKILL);
    status = wait_exit(pid, std::chrono::seconds(10));
  }
  r.status = status.value_or(-1);
  r.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
  return r;
}
inline RunResult run_giftcard(const std::vector<std::string>& args,
                              std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
  return run_giftcard(args, EnvVars{}, timeout);
}
inline RunResult run_giftcard(const std::vector<std::string>& args, const EnvVars& env) {
  return run_giftcard(args, env, std::chrono::seconds(60));
}

}  // namespace giftcard::test
