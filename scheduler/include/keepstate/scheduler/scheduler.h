// Scheduler: runs fibers (spawned Tasks) cooperatively on one thread.
//
// Fiber states (see docs/scheduler.md):
//   admitted  - spawned, frame allocated, waiting in the admission queue;
//   ready     - in the ready queue, will be resumed in FIFO order;
//   running   - the one coroutine executing now (Scheduler::Current() set);
//   sleeping  - parked in the timer heap until its deadline;
//   blocked   - parked in a Channel/Mutex/Event/WaitGroup wait list;
//   awaiting  - parked on an external completion token;
//   finished  - reached final suspend; the frame lives on only while a
//               JoinHandle holds the result.
//
// Queues: woken fibers go to the intrusive FIFO ready queue; spawned fibers
// wait in the admission queue and are started only when the ready queue is
// empty (a batch of those queued at that moment) or, so that a busy ring cannot starve them, one
// every kAdmitAfterStreak resumptions. Finishing in-flight work before
// starting new work keeps memory bounded under load.
//
// Timers: a binary heap ordered by (deadline, arrival); RunFor reports the
// earliest deadline so the host arms exactly one timer.
//
// Tokens: external (JS) operations. CreateToken() registers one; the fiber
// co_awaits AwaitToken(t); CompleteToken(t, status, bytes) — later the C ABI
// — makes it ready. Completing before the await is fine (the result waits).
//
// Thread safety: none; one scheduler runs at a time on the calling thread.
// Invariant: detail::g_transfer is empty outside Resume().
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

#include "keepstate/scheduler/clock.h"
#include "keepstate/scheduler/task.h"
#include "keepstate/scheduler/waiter.h"
#include "keepstate/status.h"

namespace keepstate::scheduler {

using Bytes = std::vector<std::uint8_t>;

// What a run left behind, for the driver.
struct RunReport {
  // Fibers are ready or waiting for admission (or a timer is already due):
  // the driver should call RunFor again soon (next macrotask).
  bool ready = false;
  // The earliest timer deadline, if any fiber sleeps.
  std::optional<TimePoint> next_deadline;
  // Coroutine resumptions performed by this call (fibers started included).
  std::uint64_t resumed = 0;
};

class Scheduler {
 public:
  // Clock reads happen once per this many resumptions (and when the ready
  // queue drains): reading time is far slower than a switch under wasm.
  static constexpr std::uint32_t kClockCheckInterval = 64;
  // Fibers started at once when the ready queue is empty.
  static constexpr std::uint32_t kAdmitBatch = 64;
  // A fiber is admitted after this many consecutive resumptions of woken
  // fibers, so a never-empty ready queue cannot starve new fibers.
  static constexpr std::uint32_t kAdmitAfterStreak = 1024;

  // Uses a process-wide SteadyClock.
  Scheduler();
  // REQUIRES: `clock` outlives the scheduler.
  explicit Scheduler(Clock& clock);
  // Shutdown().
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Starts `task` as a detached-unless-joined fiber (admission queue). After
  // Shutdown the task is destroyed unstarted and the handle is cancelled().
  // REQUIRES: task.valid().
  template <typename T>
  JoinHandle<T> Spawn(Task<T> task);

  // Runs ready fibers until none is ready (due timers fire first) or about
  // `budget` has passed (checked every kClockCheckInterval resumptions).
  RunReport RunFor(Duration budget);
  // RunFor without a budget: returns when nothing is ready; never waits.
  RunReport RunUntilIdle() { return RunFor(Duration::max()); }
  // Native driver: runs until no fiber can make progress, waiting for timers
  // through Clock::SleepUntil (instant with ManualClock). Returns with
  // fibers still parked only if they wait on tokens, channels or locks.
  RunReport Run();

  // Destroys every unfinished fiber in place (destructors of their locals
  // run; their JoinHandles become cancelled()), drops timers and pending
  // tokens (a later CompleteToken returns kClosed), and rejects new spawns.
  // Idempotent.
  void Shutdown();
  bool closed() const { return closed_; }

  // --- External completion tokens -----------------------------------------
  // Registers an external operation. Tokens are never 0 and never reused
  // while pending. Allocates (a hash-map entry); tokens cross into JS, which
  // costs far more.
  std::uint32_t CreateToken();
  // Delivers the outcome of `token`: the fiber awaiting it (now or later)
  // gets `payload` if `status` is ok, else `status`.
  // Errors: kNotFound for a token never created or already consumed;
  // kInvalidArgument if it was completed and not yet awaited; kClosed after
  // Shutdown.
  Status CompleteToken(std::uint32_t token, Status status, std::span<const std::uint8_t> payload);
  // Operations created and not yet consumed by an await.
  std::size_t pending_tokens() const { return tokens_.size(); }

  class TokenAwaiter;
  // co_await yields Result<Bytes>: the payload, the completion's error,
  // kNotFound for an unknown token, kInvalidArgument if another fiber already
  // awaits it, kClosed after Shutdown.
  TokenAwaiter AwaitToken(std::uint32_t token);

  // --- Introspection -------------------------------------------------------
  // Spawned fibers that have not finished (admitted, ready or parked).
  std::size_t live_fibers() const { return live_count_; }
  Clock& clock() { return *clock_; }
  // The scheduler running the current fiber, or nullptr outside fibers.
  static Scheduler* Current() { return current_; }

  // --- Used by awaitables --------------------------------------------------
  void MakeReady(detail::Waiter* w) { ready_.Push(w); }
  void AddTimer(TimePoint deadline, detail::Waiter* w);
  void LinkLive(detail::PromiseBase* p);
  void UnlinkLive(detail::PromiseBase* p);

 private:
  struct Timer {
    TimePoint deadline;
    std::uint64_t seq;
    detail::Waiter* waiter;
  };
  struct TokenSlot {
    detail::Waiter* waiter = nullptr;          // set while a fiber awaits
    std::optional<Result<Bytes>>* out = nullptr;  // where to put the outcome
    std::optional<Result<Bytes>> early;        // completed before awaited
  };

  void ResumeOne(coro::coroutine_handle<> h);
  detail::Waiter* PopAdmission() {
    --admission_size_;
    return admission_.Pop();
  }
  // Moves due timers to the ready queue; true if any fired.
  bool FireDueTimers(TimePoint now);
  // For TokenAwaiter.
  bool TryTakeToken(std::uint32_t token, std::optional<Result<Bytes>>* out);
  void ParkOnToken(std::uint32_t token, detail::Waiter* w, std::optional<Result<Bytes>>* out);

  static inline Scheduler* current_ = nullptr;

  Clock* clock_;
  detail::WaiterQueue ready_;
  detail::WaiterQueue admission_;
  std::size_t admission_size_ = 0;
  std::vector<Timer> timers_;  // min-heap on (deadline, seq)
  std::uint64_t timer_seq_ = 0;
  std::uint32_t streak_ = 0;   // resumptions since the ready queue was empty
  detail::PromiseBase* live_head_ = nullptr;
  std::size_t live_count_ = 0;
  std::unordered_map<std::uint32_t, TokenSlot> tokens_;
  std::uint32_t next_token_ = 1;
  bool closed_ = false;
};

class Scheduler::TokenAwaiter {
 public:
  bool await_ready() {
    detail::CheckSuspendAllowed("AwaitToken");
    return sched_->TryTakeToken(token_, &result_);
  }
  void await_suspend(coro::coroutine_handle<> h) {
    node_.handle = h;
    sched_->ParkOnToken(token_, &node_, &result_);
  }
  Result<Bytes> await_resume() { return std::move(*result_); }

 private:
  friend class Scheduler;
  TokenAwaiter(Scheduler* sched, std::uint32_t token) : sched_(sched), token_(token) {}
  Scheduler* sched_;
  std::uint32_t token_;
  detail::Waiter node_;
  std::optional<Result<Bytes>> result_;
};

inline Scheduler::TokenAwaiter Scheduler::AwaitToken(std::uint32_t token) {
  return TokenAwaiter(this, token);
}

template <typename T>
JoinHandle<T> Scheduler::Spawn(Task<T> task) {
  typename Task<T>::Handle h = task.Release();
  JoinHandle<T> join(h);
  if (closed_) {
    join.Cancel();
    h.destroy();
    return join;
  }
  detail::PromiseBase& p = h.promise();
  p.spawned = true;
  p.start.handle = h;
  LinkLive(&p);
  admission_.Push(&p.start);
  ++admission_size_;
  return join;
}

// Spawns from inside a fiber onto the current scheduler.
// REQUIRES: Scheduler::Current() != nullptr.
template <typename T>
JoinHandle<T> Spawn(Task<T> task) {
  return Scheduler::Current()->Spawn(std::move(task));
}

// co_await Yield(): go to the back of the ready queue.
class YieldAwaiter {
 public:
  bool await_ready() noexcept {
    detail::CheckSuspendAllowed("Yield");
    return false;
  }
  void await_suspend(coro::coroutine_handle<> h) noexcept {
    node_.handle = h;
    Scheduler::Current()->MakeReady(&node_);
  }
  void await_resume() noexcept {}

 private:
  detail::Waiter node_;
};
// REQUIRES (for the awaiters below): co_awaited inside a fiber.
inline YieldAwaiter Yield() { return {}; }

// co_await SleepUntil(t): parks in the timer heap until the clock reaches
// `t`. Always suspends, even for a past deadline (then it acts as Yield).
class SleepAwaiter {
 public:
  explicit SleepAwaiter(std::optional<TimePoint> deadline, Duration delay)
      : deadline_(deadline), delay_(delay) {}
  bool await_ready() noexcept {
    detail::CheckSuspendAllowed("Sleep");
    return false;
  }
  void await_suspend(coro::coroutine_handle<> h) {
    node_.handle = h;
    Scheduler* s = Scheduler::Current();
    s->AddTimer(deadline_ ? *deadline_ : SaturatingAdd(s->clock().Now(), delay_), &node_);
  }
  void await_resume() noexcept {}

 private:
  std::optional<TimePoint> deadline_;
  Duration delay_;
  detail::Waiter node_;
};
inline SleepAwaiter SleepUntil(TimePoint deadline) { return SleepAwaiter(deadline, {}); }
inline SleepAwaiter SleepFor(Duration delay) { return SleepAwaiter(std::nullopt, delay); }

// The current scheduler's clock reading.
inline TimePoint Now() { return Scheduler::Current()->clock().Now(); }

}  // namespace keepstate::scheduler
