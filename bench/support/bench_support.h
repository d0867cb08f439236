// What the benchmarks share: a `giftcard serve` child process started on
// loopback ports and read back from its ready line, /proc readings (CPU ticks,
// peak RSS, load average), latency percentiles and JSON-friendly rounding.
// Used by the giftcard benchmarks (not the PostgreSQL peer); never by the product.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "api/address.h"

namespace giftcard::bench {

using Clock = std::chrono::steady_clock;

double secs(Clock::duration d);
// Rounded to a multiple of `unit` (0.1, 0.001, ...), printed without float noise.
double round_to(double v, double unit);
// The p-quantile (nearest rank) of ascending microseconds, in ms.
double percentile_ms(const std::vector<uint32_t>& sorted_us, double p);
// Sets seconds, purchases, purchases_per_s, p50/p90/p99/max_ms of a measured
// window from its successes and their ascending latencies.
void put_window(nlohmann::json& out, double window_s, uint64_t purchases,
                const std::vector<uint32_t>& sorted_us);
double loadavg_1m();
// This process's user + system CPU seconds.
double self_cpu_seconds();
// utime + stime (clock ticks) from a /proc/<pid>[/task/<tid>]/stat file.
int64_t proc_ticks(const std::string& stat_path);
int64_t proc_ticks(pid_t pid);
// VmHWM (peak RSS) of a process, in MiB.
int64_t peak_rss_mb(pid_t pid);
// Peak RSS of this process (getrusage ru_maxrss), in MiB.
int64_t peak_rss_mb();
// The directory of this executable (to find `giftcard` beside it).
std::string self_dir();

// `giftcard serve --data DATA --http 127.0.0.1:0 --caf 127.0.0.1:0 EXTRA...`,
// stdout read for the ready line, stderr to a log file. The child dies with
// the benchmark (PR_SET_PDEATHSIG); the destructor kills it.
class ServerProcess {
 public:
  ServerProcess() = default;
  ~ServerProcess();
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  // Starts it and waits up to 120 s for "ready http=H:P caf=H:P".
  bool start(const std::string& exe, const std::string& data, const std::string& log_path,
             const std::vector<std::string>& extra_args, std::string* error);
  // SIGTERM and wait; the exit status (-1: killed with SIGKILL after `limit`).
  int stop(std::chrono::seconds limit, double* took);

  pid_t pid() const { return pid_; }
  const HostPort& http() const { return http_; }
  const HostPort& caf() const { return caf_; }

 private:
  pid_t pid_ = -1;
  int out_fd_ = -1;
  HostPort http_, caf_;
};

}  // namespace giftcard::bench
