// QueryPool: a fixed set of threads that answer the shop's queries, so that
// a slow query (a long page of a big user's history) never occupies the shop
// actor, a CAF scheduler thread, the store's writer or an HTTP I/O thread.
//
// Bounded: at most `max_queued` jobs wait for a thread. try_post() beyond that
// refuses the job (false; counted in refused()) and the caller answers
// Errc::busy at once: overload turns into fast 503s, not into a queue whose
// wait grows without bound.
//
// A job must not block on actors and must not throw (an exception is caught
// and dropped). It may send CAF messages (caf::anon_send is thread-safe), but
// must not touch actor state or call response_promise::deliver: in CAF 0.17.6
// deliver() sends through the promise owner's current execution unit
// (self->context()), which belongs to whichever scheduler thread runs that
// actor — so jobs report back with a message and the actor delivers.
//
// stop(): new jobs are refused; the jobs already running finish; the jobs
// still queued are DROPPED (destroyed without running): a shutdown does not
// wait for a backlog of queries whose callers are going away anyway. Whoever
// posted a dropped job must answer its caller another way (the shop answers
// every query it has not answered yet when it exits). Then the threads are
// joined. Idempotent; the destructor calls it. Must not be called from a job.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "events/mutex.h"

namespace giftcard {

class QueryPool {
 public:
  // Starts `threads` threads (< 1 is taken as 1). `max_queued`: jobs that may
  // wait for a thread (< 1 is taken as 1); a job posted while a thread is idle
  // waits too, for the moment until that thread takes it.
  QueryPool(size_t threads, size_t max_queued);
  ~QueryPool();
  QueryPool(const QueryPool&) = delete;
  QueryPool& operator=(const QueryPool&) = delete;

  // Queues `job` for a thread. False if max_queued jobs already wait or the
  // pool is stopped; the job is then not run (and destroyed by the caller).
  bool try_post(std::function<void()> job);

  size_t queued() const;       // jobs waiting for a thread
  size_t running() const;      // jobs on a thread right now
  uint64_t refused() const;    // try_post() calls that returned false (since start)
  uint64_t completed() const;  // jobs run to their end
  size_t threads() const { return threads_.size(); }
  size_t max_queued() const { return max_queued_; }
  bool stopped() const;

  void stop() EXCLUDES(mu_);

 private:
  void run() EXCLUDES(mu_);

  const size_t max_queued_;
  mutable Mutex mu_;
  CondVar cv_{&mu_};
  std::deque<std::function<void()>> jobs_ GUARDED_BY(mu_);
  size_t running_ GUARDED_BY(mu_) = 0;
  uint64_t refused_ GUARDED_BY(mu_) = 0;
  uint64_t completed_ GUARDED_BY(mu_) = 0;
  bool stopping_ GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
  Mutex join_mu_;  // one stop() joins
};

}  // namespace giftcard
