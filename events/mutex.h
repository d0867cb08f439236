// Mutex, MutexLock and CondVar with clang thread-safety annotations
// (https://clang.llvm.org/docs/ThreadSafetyAnalysis.html), leveldb's
// port::Mutex in shape. libstdc++'s std::mutex carries no annotations, so a
// member written `T x GUARDED_BY(mu_);` is only checked when mu_ is one of
// these. `make lint` builds with clang -Wthread-safety -Werror=thread-safety;
// under g++ the annotations expand to nothing.
//
// Thread-safe (they are the synchronisation).
#pragma once

#include <condition_variable>
#include <mutex>

#if defined(__clang__)
#define GIFTCARD_TSA(x) __attribute__((x))
#else
#define GIFTCARD_TSA(x)
#endif

#define CAPABILITY(x) GIFTCARD_TSA(capability(x))
#define SCOPED_CAPABILITY GIFTCARD_TSA(scoped_lockable)
#define GUARDED_BY(x) GIFTCARD_TSA(guarded_by(x))
#define PT_GUARDED_BY(x) GIFTCARD_TSA(pt_guarded_by(x))
#define ACQUIRE(...) GIFTCARD_TSA(acquire_capability(__VA_ARGS__))
#define RELEASE(...) GIFTCARD_TSA(release_capability(__VA_ARGS__))
#define REQUIRES(...) GIFTCARD_TSA(requires_capability(__VA_ARGS__))
#define EXCLUDES(...) GIFTCARD_TSA(locks_excluded(__VA_ARGS__))
#define ASSERT_CAPABILITY(x) GIFTCARD_TSA(assert_capability(x))
#define NO_THREAD_SAFETY_ANALYSIS GIFTCARD_TSA(no_thread_safety_analysis)

namespace giftcard {

class CAPABILITY("mutex") Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void Lock() ACQUIRE() { mu_.lock(); }
  void Unlock() RELEASE() { mu_.unlock(); }
  void AssertHeld() ASSERT_CAPABILITY(this) {}

 private:
  friend class CondVar;
  std::mutex mu_;
};

// Holds `mu` for its scope.
class SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex* mu) ACQUIRE(mu) : mu_(mu) { mu_->Lock(); }
  ~MutexLock() RELEASE() { mu_->Unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex* const mu_;
};

// A condition variable bound to one Mutex, which the caller holds.
class CondVar {
 public:
  explicit CondVar(Mutex* mu) : mu_(mu) {}
  CondVar(const CondVar&) = delete;
  CondVar& operator=(const CondVar&) = delete;

  // REQUIRES: the Mutex given to the constructor is held; returns with it
  // held again. (Not annotated, as in leveldb: clang cannot tie `mu_` here to
  // the caller's member, so the callers' own annotations carry the contract.)
  void Wait() {
    std::unique_lock<std::mutex> lock(mu_->mu_, std::adopt_lock);
    cv_.wait(lock);
    lock.release();
  }
  void Signal() { cv_.notify_one(); }
  void SignalAll() { cv_.notify_all(); }

 private:
  std::condition_variable cv_;
  Mutex* const mu_;
};

}  // namespace giftcard
