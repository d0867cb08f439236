// giftcard-projection-bench (projection_bench.cc): what every subcommand
// uses. Rounding and medians, failure handling (temp dirs kept and named on a
// failure), machine facts and CPU seconds, waiting for RocksDB's background
// work to settle, store helpers, and a `giftcard serve` child process asked
// over CAF.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "actors/errors.h"
#include "actors/recovery.h"
#include "actors/shop_actor.h"
#include "api/node_config.h"
#include "events/snapshot.h"
#include "projections/history.h"
#include "projections/projection_db.h"
#include "projections/read_models.h"
#include "store/rocks_event_store.h"

extern char** environ;
#include "bench/support/bench_support.h"

namespace giftcard::projbench {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using json = nlohmann::json;

using bench::secs;
inline double millis(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }
inline double round_to(double v, int digits) {
  double f = std::pow(10.0, digits);
  return std::round(v * f) / f;
}

inline double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// Nearest-rank percentile of sorted values.
template <class T>
inline double percentile(const std::vector<T>& sorted, double p) {
  if (sorted.empty()) return 0;
  size_t i = static_cast<size_t>(std::ceil(p * static_cast<double>(sorted.size())));
  return static_cast<double>(sorted[std::clamp<size_t>(i, 1, sorted.size()) - 1]);
}

// ---- failure handling --------------------------------------------------------
// Temp directories are removed at the end of a successful run; on a failure
// they are kept and named, for inspection.
inline std::vector<fs::path> g_temp;
inline bool g_keep = false;

inline void cleanup_temp() {
  if (g_keep) {
    for (auto& p : g_temp) std::cerr << "kept " << p.string() << "\n";
    return;
  }
  std::error_code ec;
  for (auto& p : g_temp) fs::remove_all(p, ec);
  g_temp.clear();
}

[[noreturn]] inline void bail(int code, const std::string& what) {
  std::cerr << "giftcard-projection-bench: " << what << "\n";
  for (auto& p : g_temp) std::cerr << "giftcard-projection-bench: left " << p.string() << "\n";
  std::cerr.flush();
  std::cout.flush();
  std::_Exit(code);  // CAF or RocksDB threads may still run: no static destructors
}
[[noreturn]] inline void setup_error(const std::string& what) { bail(2, what); }
[[noreturn]] inline void correctness(const std::string& what) { bail(1, "CORRECTNESS: " + what); }
inline void must(const Status& s, const std::string& what) {
  if (!s.ok()) setup_error(what + ": " + s.ToString());
}

inline fs::path make_temp(const std::string& tmp_root, const std::string& name) {
  std::string tmpl = (fs::path(tmp_root) / (name + "-XXXXXX")).string();
  if (!::mkdtemp(tmpl.data())) setup_error("mkdtemp in " + tmp_root + ": " + std::strerror(errno));
  g_temp.emplace_back(tmpl);
  return tmpl;
}

// ---- machine facts -----------------------------------------------------------
inline json machine() {
  json j;
  j["nproc"] = std::thread::hardware_concurrency();
  std::ifstream la("/proc/loadavg");
  double l1 = 0;
  la >> l1;
  j["loadavg_1m"] = l1;
  return j;
}

// User + system CPU seconds of getrusage(who).
inline double cpu_seconds(int who) {
  struct rusage r {};
  getrusage(who, &r);
  return static_cast<double>(r.ru_utime.tv_sec + r.ru_stime.tv_sec) +
         static_cast<double>(r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e6;
}

// CPU seconds of this process minus the calling thread's.
inline double other_threads_cpu() { return cpu_seconds(RUSAGE_SELF) - cpu_seconds(RUSAGE_THREAD); }

// CPU seconds of the whole process.
inline double process_cpu() { return bench::self_cpu_seconds(); }

// CPU seconds of the calling thread.
inline double thread_cpu() { return cpu_seconds(RUSAGE_THREAD); }

// Waits until the other threads of this process (RocksDB's flushes and
// compactions; the store's writer is idle between measurements) use < 3 % of
// a core over one second, so that background work of one measurement does not
// land in the next. Returns the seconds waited.
inline double wait_quiet(double limit_s = 600) {
  auto t0 = Clock::now();
  double before = other_threads_cpu();
  for (;;) {
    std::this_thread::sleep_for(std::chrono::seconds(1));
    double now = other_threads_cpu();
    if (now - before < 0.03 || secs(Clock::now() - t0) > limit_s) break;
    before = now;
  }
  return round_to(secs(Clock::now() - t0), 1);
}

inline uint64_t dir_bytes(const fs::path& p, const std::string& suffix = "") {
  uint64_t n = 0;
  std::error_code ec;
  for (auto& de : fs::directory_iterator(p, ec)) {
    if (!de.is_regular_file(ec)) continue;
    if (!suffix.empty() && !de.path().string().ends_with(suffix)) continue;
    n += de.file_size(ec);
  }
  return n;
}

// A copy of a closed store: table files are immutable and are hard-linked
// (what RocksDB's own Checkpoint does); everything else (MANIFEST, CURRENT,
// OPTIONS, WAL) is copied. The projection space's database in projections/
// (issue #16) is cloned the same way.
inline void clone_store(const fs::path& src, const fs::path& dst) {
  std::error_code ec;
  fs::remove_all(dst, ec);
  fs::create_directories(dst);
  for (auto& de : fs::directory_iterator(src)) {
    std::string name = de.path().filename().string();
    if (name == "LOCK" || name.rfind("LOG", 0) == 0) continue;
    if (de.is_directory()) clone_store(de.path(), dst / name);
    else if (name.ends_with(".sst") || name.ends_with(".blob"))
      fs::create_hard_link(de.path(), dst / name);
    else
      fs::copy_file(de.path(), dst / name);
  }
}

inline std::unique_ptr<EventStore> open_store(const fs::path& p, bool sync) {
  StoreOptions so;
  so.path = p.string();
  so.sync = sync;
  std::unique_ptr<EventStore> store;
  must(OpenRocksEventStore(so, &store), "opening store " + p.string());
  return store;
}

inline void close_store(std::unique_ptr<EventStore>& store) {
  store->Close();
  must(store->Health(), "store health");
  store.reset();
}

// ---- a `giftcard serve` child process ------------------------------------------
struct Server {
  pid_t pid = -1;
  int out = -1;  // its stdout
  uint16_t port = 0;
  Clock::time_point spawned;
  double ready_ms = 0;
  // Its stderr is copied to the log by a thread that notes when the line
  // "giftcard: store ... open at position ..." arrived (the store is open).
  std::thread err_reader;
  std::shared_ptr<std::atomic<double>> store_open_ms = std::make_shared<std::atomic<double>>(0.0);
};

// Spawns `exe serve --data DIR --caf 127.0.0.1:0 --http 127.0.0.1:0` and
// reads its stdout until the `ready ... caf=HOST:PORT` line.
inline void spawn_serve(const std::string& exe, const fs::path& data, const fs::path& log, Server* srv) {
  Server& s = *srv;
  int p[2], e[2];
  if (::pipe2(p, O_CLOEXEC) != 0 || ::pipe2(e, O_CLOEXEC) != 0) setup_error("pipe2");
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, p[1], 1);
  posix_spawn_file_actions_adddup2(&fa, e[1], 2);
  std::vector<std::string> args = {exe,    "serve",        "--data", data.string(),
                                   "--caf", "127.0.0.1:0", "--http", "127.0.0.1:0"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  s.spawned = Clock::now();
  int rc = posix_spawn(&s.pid, exe.c_str(), &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  ::close(p[1]);
  ::close(e[1]);
  if (rc != 0) setup_error("posix_spawn " + exe + ": " + std::strerror(rc));
  s.out = p[0];
  s.err_reader = std::thread([fd = e[0], log, t0 = s.spawned, open_ms = s.store_open_ms] {
    std::ofstream to(log, std::ios::app);
    std::string pending;
    char buf[4096];
    for (;;) {
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n <= 0) break;
      pending.append(buf, static_cast<size_t>(n));
      for (size_t nl; (nl = pending.find('\n')) != std::string::npos; pending.erase(0, nl + 1)) {
        std::string line = pending.substr(0, nl);
        if (line.rfind("giftcard: store ", 0) == 0 && open_ms->load() == 0)
          open_ms->store(millis(Clock::now() - t0));
        to << line << "\n";
      }
    }
    to << pending;
    ::close(fd);
  });
  std::string line;
  const auto deadline = s.spawned + std::chrono::seconds(120);
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) bail(3, "giftcard serve printed no ready line within 120 s (log: " + log.string() + ")");
    pollfd pfd{s.out, POLLIN, 0};
    if (::poll(&pfd, 1, static_cast<int>(left)) <= 0) continue;
    char buf[256];
    ssize_t n = ::read(s.out, buf, sizeof buf);
    if (n <= 0) setup_error("giftcard serve exited before ready (log: " + log.string() + ")");
    line.append(buf, static_cast<size_t>(n));
    if (auto nl = line.find('\n'); nl != std::string::npos) {
      s.ready_ms = millis(Clock::now() - s.spawned);
      line.resize(nl);
      break;
    }
  }
  // "ready [http=HOST:PORT ]caf=HOST:PORT"
  auto caf = line.find("caf=");
  auto colon = caf == std::string::npos ? caf : line.find_first_of(" \r", caf);
  colon = line.rfind(':', colon == std::string::npos ? line.size() : colon);
  if (line.rfind("ready ", 0) != 0 || caf == std::string::npos || colon == std::string::npos || colon < caf)
    setup_error("unexpected first line from giftcard serve: " + line);
  s.port = static_cast<uint16_t>(std::stoi(line.substr(colon + 1)));
}

// SIGTERM, then waits; returns the milliseconds until it exited. Its exit
// status must be 0 (drained and closed cleanly).
inline double stop_serve(Server& s, const fs::path& log) {
  auto t0 = Clock::now();
  ::kill(s.pid, SIGTERM);
  int status = 0;
  for (;;) {
    pid_t w = ::waitpid(s.pid, &status, WNOHANG);
    if (w == s.pid) break;
    if (secs(Clock::now() - t0) > 120) {
      ::kill(s.pid, SIGKILL);
      ::waitpid(s.pid, &status, 0);
      bail(3, "giftcard serve did not stop within 120 s of SIGTERM (log: " + log.string() + ")");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  double ms = millis(Clock::now() - t0);
  ::close(s.out);
  s.err_reader.join();
  s.pid = -1;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    correctness("giftcard serve exited with status " + std::to_string(status) + " (log: " + log.string() + ")");
  return ms;
}

// One blocking request to the remote shop; false and *err on an error.
template <class Reply, class... Ts>
inline bool ask(caf::scoped_actor& self, const shop_actor& shop, Reply* reply, std::string* err, Ts&&... xs) {
  bool ok = false;
  self->request(shop, std::chrono::seconds(60), std::forward<Ts>(xs)...)
      .receive([&](Reply& r) {
        *reply = std::move(r);
        ok = true;
      },
               [&](caf::error& e) {
                 *err = e.category() == kErrorCategory
                            ? std::string(to_string(errc_of(e))) + ": " + detail_of(e)
                            : self->system().render(e);
               });
  return ok;
}

}  // namespace giftcard::projbench
