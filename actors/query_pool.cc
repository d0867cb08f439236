#include "actors/query_pool.h"

#include <algorithm>
#include <utility>

namespace giftcard {

QueryPool::QueryPool(size_t threads, size_t max_queued)
    : max_queued_(std::max<size_t>(max_queued, 1)) {
  const size_t n = std::max<size_t>(threads, 1);
  threads_.reserve(n);
  for (size_t i = 0; i < n; ++i) threads_.emplace_back([this] { run(); });
}

QueryPool::~QueryPool() { stop(); }

bool QueryPool::try_post(std::function<void()> job) {
  {
    MutexLock lock(&mu_);
    if (stopping_ || jobs_.size() >= max_queued_) {
      ++refused_;
      return false;
    }
    jobs_.push_back(std::move(job));
  }
  cv_.Signal();
  return true;
}

size_t QueryPool::queued() const {
  MutexLock lock(&mu_);
  return jobs_.size();
}

size_t QueryPool::running() const {
  MutexLock lock(&mu_);
  return running_;
}

uint64_t QueryPool::refused() const {
  MutexLock lock(&mu_);
  return refused_;
}

uint64_t QueryPool::completed() const {
  MutexLock lock(&mu_);
  return completed_;
}

bool QueryPool::stopped() const {
  MutexLock lock(&mu_);
  return stopping_;
}

void QueryPool::stop() {
  std::deque<std::function<void()>> dropped;
  {
    MutexLock lock(&mu_);
    stopping_ = true;
    dropped.swap(jobs_);
  }
  cv_.SignalAll();
  dropped.clear();  // outside the lock: a job's captures may do anything on destruction
  MutexLock join(&join_mu_);
  for (auto& t : threads_)
    if (t.joinable()) t.join();
}

void QueryPool::run() {
  mu_.Lock();
  for (;;) {
    while (!stopping_ && jobs_.empty()) cv_.Wait();
    if (jobs_.empty()) break;  // stopping, nothing left (stop() drops the queue)
    auto job = std::move(jobs_.front());
    jobs_.pop_front();
    ++running_;
    mu_.Unlock();
    try {
      job();
    } catch (...) {
      // A job must not throw; one that does is dropped, the thread goes on.
    }
    job = nullptr;  // its captures die here, outside the lock
    mu_.Lock();
    --running_;
    ++completed_;
  }
  mu_.Unlock();
}

}  // namespace giftcard
