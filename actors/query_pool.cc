#include "actors/query_pool.h"

#include <algorithm>
#include <utility>

namespace giftcard {

QueryPool::QueryPool(size_t threads, size_t max_queued) : max_queued_(std::max<size_t>(max_queued, 1)) {
  const size_t n = std::max<size_t>(threads, 1);
  threads_.reserve(n);
  for (size_t i = 0; i < n; ++i) threads_.emplace_back([this] { run(); });
}

QueryPool::~QueryPool() { stop(); }

bool QueryPool::try_post(std::function<void()> job) {
  {
    std::lock_guard lock(mu_);
    if (stopping_ || jobs_.size() >= max_queued_) {
      ++refused_;
      return false;
    }
    jobs_.push_back(std::move(job));
  }
  cv_.notify_one();
  return true;
}

size_t QueryPool::queued() const {
  std::lock_guard lock(mu_);
  return jobs_.size();
}

size_t QueryPool::running() const {
  std::lock_guard lock(mu_);
  return running_;
}

uint64_t QueryPool::refused() const {
  std::lock_guard lock(mu_);
  return refused_;
}

uint64_t QueryPool::completed() const {
  std::lock_guard lock(mu_);
  return completed_;
}

bool QueryPool::stopped() const {
  std::lock_guard lock(mu_);
  return stopping_;
}

void QueryPool::stop() {
  std::deque<std::function<void()>> dropped;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    dropped.swap(jobs_);
  }
  cv_.notify_all();
  dropped.clear();  // outside the lock: a job's captures may do anything on destruction
  std::lock_guard join(join_mu_);
  for (auto& t : threads_)
    if (t.joinable()) t.join();
}

void QueryPool::run() {
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stopping_ || !jobs_.empty(); });
    if (jobs_.empty()) return;  // stopping, nothing left (stop() drops the queue)
    auto job = std::move(jobs_.front());
    jobs_.pop_front();
    ++running_;
    lock.unlock();
    try {
      job();
    } catch (...) {
      // A job must not throw; one that does is dropped, the thread goes on.
    }
    job = nullptr;  // its captures die here, outside the lock
    lock.lock();
    --running_;
    ++completed_;
  }
}

}  // namespace giftcard
