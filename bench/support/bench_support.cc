#include "bench/support/bench_support.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace giftcard::bench {

double secs(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

double round_to(double v, double unit) {
  const double scale = std::round(1.0 / unit);
  return std::round(v * scale) / scale;
}

double percentile_ms(const std::vector<uint32_t>& sorted_us, double p) {
  if (sorted_us.empty()) return 0;
  size_t i = static_cast<size_t>(std::ceil(p * static_cast<double>(sorted_us.size())));
  return sorted_us[std::clamp<size_t>(i, 1, sorted_us.size()) - 1] / 1000.0;
}

void put_window(nlohmann::json& out, double window_s, uint64_t purchases,
                const std::vector<uint32_t>& sorted_us) {
  out["seconds"] = round_to(window_s, 0.001);
  out["purchases"] = purchases;
  out["purchases_per_s"] = window_s > 0 ? std::round(static_cast<double>(purchases) / window_s) : 0.0;
  out["p50_ms"] = percentile_ms(sorted_us, 0.50);
  out["p90_ms"] = percentile_ms(sorted_us, 0.90);
  out["p99_ms"] = percentile_ms(sorted_us, 0.99);
  out["max_ms"] = sorted_us.empty() ? 0.0 : sorted_us.back() / 1000.0;
}

double loadavg_1m() {
  std::ifstream in("/proc/loadavg");
  double v = 0;
  in >> v;
  return v;
}

double self_cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

int64_t proc_ticks(const std::string& stat_path) {
  std::ifstream in(stat_path);
  std::string s;
  std::getline(in, s);
  auto rp = s.rfind(')');
  if (rp == std::string::npos) return 0;
  std::istringstream rest(s.substr(rp + 2));
  std::string field;
  int64_t utime = 0, stime = 0;
  // Fields after "(comm)": 3 state, 4 ppid, ... 14 utime, 15 stime.
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::atoll(field.c_str());
    if (i == 15) stime = std::atoll(field.c_str());
  }
  return utime + stime;
}

int64_t proc_ticks(pid_t pid) { return proc_ticks("/proc/" + std::to_string(pid) + "/stat"); }

int64_t peak_rss_mb(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::atoll(line.c_str() + 6) / 1024;
  return 0;
}

int64_t peak_rss_mb() {
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss / 1024;  // KiB on Linux
}

std::string self_dir() {
  std::error_code ec;
  auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? "." : p.parent_path().string();
}

ServerProcess::~ServerProcess() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  if (out_fd_ >= 0) ::close(out_fd_);
}

bool ServerProcess::start(const std::string& exe, const std::string& data, const std::string& log_path,
                          const std::vector<std::string>& extra_args, std::string* error) {
  std::vector<std::string> args = {exe, "serve", "--data", data, "--http", "127.0.0.1:0",
                                   "--caf", "127.0.0.1:0", "--no-rate-limit"};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    *error = std::string("pipe: ") + std::strerror(errno);
    return false;
  }
  int log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (log_fd < 0) {
    *error = "cannot open " + log_path + ": " + std::strerror(errno);
    ::close(fds[0]);
    ::close(fds[1]);
    return false;
  }
  pid_t pid = ::fork();
  if (pid < 0) {
    *error = std::string("fork: ") + std::strerror(errno);
    return false;
  }
  if (pid == 0) {
    // Only async-signal-safe calls until exec.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the benchmark
    ::signal(SIGPIPE, SIG_DFL);          // the parent may ignore it; serve should not inherit that
    ::dup2(fds[1], 1);
    ::dup2(log_fd, 2);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  pid_ = pid;
  ::close(fds[1]);
  ::close(log_fd);
  out_fd_ = fds[0];
  std::string line;  // "ready http=HOST:PORT caf=HOST:PORT"
  auto deadline = Clock::now() + std::chrono::seconds(120);
  while (line.find('\n') == std::string::npos) {
    int left = static_cast<int>(
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count());
    if (left <= 0) {
      *error = "no ready line from giftcard serve within 120 s";
      return false;
    }
    pollfd p{out_fd_, POLLIN, 0};
    if (::poll(&p, 1, left) <= 0) continue;
    char buf[256];
    ssize_t n = ::read(out_fd_, buf, sizeof buf);
    if (n <= 0) {
      *error = "giftcard serve exited before it was ready (see " + log_path + ")";
      return false;
    }
    line.append(buf, static_cast<size_t>(n));
  }
  line = line.substr(0, line.find('\n'));
  auto h = line.find("http="), c = line.find(" caf=");
  std::string why;
  if (line.rfind("ready ", 0) != 0 || h == std::string::npos || c == std::string::npos ||
      !parse_host_port(line.substr(h + 5, c - h - 5), &http_, &why) ||
      !parse_host_port(line.substr(c + 5), &caf_, &why)) {
    *error = "unexpected ready line: " + line;
    return false;
  }
  return true;
}

int ServerProcess::stop(std::chrono::seconds limit, double* took) {
  auto t0 = Clock::now();
  ::kill(pid_, SIGTERM);
  int status = 0;
  for (;;) {
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) break;
    if (Clock::now() - t0 > limit) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &status, 0);
      pid_ = -1;
      *took = secs(Clock::now() - t0);
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  pid_ = -1;
  *took = secs(Clock::now() - t0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace giftcard::bench
