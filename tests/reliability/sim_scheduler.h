// SimScheduler: CAF's test_coordinator as the deterministic simulation needs
// it (simulation.cc).
#pragma once

#include <caf/all.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <mutex>

namespace giftcard::reliability {

// test_coordinator with a locked job list, so that the detached projection
// driver's one reply (and any enqueue from another thread) cannot race the
// loop, and with a way to run the job at a chosen index.
class SimScheduler final : public caf::scheduler::test_coordinator {
 public:
  explicit SimScheduler(caf::actor_system& sys) : test_coordinator(sys) {}

  size_t pending() {
    std::lock_guard<std::mutex> lock(mu_);
    return jobs.size();
  }

  // Lets the job at `index` (mod the number of jobs) handle one message.
  void run_job(size_t index) {
    caf::resumable* job = nullptr;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (jobs.empty()) return;
      auto it = jobs.begin() + static_cast<std::ptrdiff_t>(index % jobs.size());
      job = *it;
      jobs.erase(it);
    }
    Worker worker{this};
    switch (job->resume(&worker, 1)) {
      case caf::resumable::resume_later: {
        std::lock_guard<std::mutex> lock(mu_);
        jobs.push_back(job);
        break;
      }
      case caf::resumable::done:
      case caf::resumable::awaiting_message: intrusive_ptr_release(job); break;
      case caf::resumable::shutdown_execution_unit: break;
    }
  }

  // Waits until a job is pending; false after `timeout`.
  bool wait_for_job(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return !jobs.empty(); });
  }

 protected:
  void enqueue(caf::resumable* ptr) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      jobs.push_back(ptr);
    }
    cv_.notify_all();
  }

 private:
  class Worker final : public caf::execution_unit {
   public:
    explicit Worker(SimScheduler* parent) : execution_unit(&parent->system()), parent_(parent) {}
    void exec_later(caf::resumable* ptr) override { parent_->enqueue(ptr); }

   private:
    SimScheduler* parent_;
  };

  std::mutex mu_;
  std::condition_variable cv_;
};

}  // namespace giftcard::reliability
