// Mutex, WaitGroup and Event for fibers on one scheduler thread.
//
// All three park waiters in an intrusive WaitList (no allocation) and wake
// them FIFO into the ready queue; a woken fiber runs when the scheduler
// reaches it, never inline. Any of them may be destroyed with fibers still
// waiting: those fibers stay parked until their scheduler shuts down.
#pragma once

#include <cstdint>
#include <utility>

#include "keepstate/scheduler/no_suspend.h"
#include "keepstate/scheduler/scheduler.h"
#include "keepstate/scheduler/waiter.h"

namespace keepstate::scheduler {

// Fair (FIFO hand-off, no barging) mutual exclusion between fibers. Needed
// only around critical sections that suspend; code that does not suspend is
// already atomic under a cooperative scheduler.
class Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  class LockAwaiter : public detail::WaitNode {
   public:
    bool await_ready() {
      detail::CheckSuspendAllowed("Mutex::Lock");
      return mutex_->TryLock();
    }
    void await_suspend(coro::coroutine_handle<> h);
    void await_resume() noexcept {}

   private:
    friend class Mutex;
    explicit LockAwaiter(Mutex* m) : mutex_(m) {}
    Mutex* mutex_;
  };

  // co_await Lock(): returns holding the mutex.
  LockAwaiter Lock() { return LockAwaiter(this); }
  bool TryLock() {
    if (locked_) return false;
    locked_ = true;
    return true;
  }
  // Hands the mutex to the oldest waiter, if any (it stays locked).
  // REQUIRES: locked by the calling fiber.
  void Unlock();
  bool locked() const { return locked_; }

 private:
  bool locked_ = false;
  detail::WaitList waiters_;
};

// Unlocks a Mutex on scope exit: `co_await m.Lock(); MutexLock guard(m);`.
class MutexLock {
 public:
  // REQUIRES: `mutex` is locked by the calling fiber.
  explicit MutexLock(Mutex& mutex) : mutex_(&mutex) {}
  MutexLock(MutexLock&& other) noexcept : mutex_(std::exchange(other.mutex_, nullptr)) {}
  MutexLock& operator=(MutexLock&&) = delete;
  ~MutexLock() {
    if (mutex_ != nullptr) mutex_->Unlock();
  }

 private:
  Mutex* mutex_;
};

// Waits for a counter to reach zero (Go's sync.WaitGroup).
class WaitGroup {
 public:
  WaitGroup() = default;
  WaitGroup(const WaitGroup&) = delete;
  WaitGroup& operator=(const WaitGroup&) = delete;

  class WaitAwaiter : public detail::WaitNode {
   public:
    bool await_ready() {
      detail::CheckSuspendAllowed("WaitGroup::Wait");
      return group_->count_ == 0;
    }
    void await_suspend(coro::coroutine_handle<> h);
    void await_resume() noexcept {}

   private:
    friend class WaitGroup;
    explicit WaitAwaiter(WaitGroup* g) : group_(g) {}
    WaitGroup* group_;
  };

  // REQUIRES: count() + n >= 0. Reaching zero wakes every waiter.
  void Add(std::int64_t n);
  void Done() { Add(-1); }
  std::int64_t count() const { return count_; }
  // co_await Wait(): returns once count() is zero.
  WaitAwaiter Wait() { return WaitAwaiter(this); }

 private:
  std::int64_t count_ = 0;
  detail::WaitList waiters_;
};

// A manual-reset event: Set() releases every waiter and keeps releasing new
// ones until Reset().
class Event {
 public:
  Event() = default;
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;

  class WaitAwaiter : public detail::WaitNode {
   public:
    bool await_ready() {
      detail::CheckSuspendAllowed("Event::Wait");
      return event_->set_;
    }
    void await_suspend(coro::coroutine_handle<> h);
    void await_resume() noexcept {}

   private:
    friend class Event;
    explicit WaitAwaiter(Event* e) : event_(e) {}
    Event* event_;
  };

  void Set();
  void Reset() { set_ = false; }
  bool is_set() const { return set_; }
  WaitAwaiter Wait() { return WaitAwaiter(this); }

 private:
  bool set_ = false;
  detail::WaitList waiters_;
};

}  // namespace keepstate::scheduler
