// Task<T>: a lazily started coroutine that produces a T for whoever awaits it.
//
// A Task does nothing until it is co_awaited (it then runs right away, in
// the awaiter's fiber, and the awaiter continues right after it finishes —
// symmetric transfer, trampolined through the scheduler so that long await
// chains use constant stack; see waiter.h) or spawned as a fiber
// (Scheduler::Spawn / Spawn), which returns a JoinHandle<T>.
//
// Errors are values: use Task<Status> or Task<Result<U>>; the
// KEEPSTATE_CO_RETURN_IF_ERROR / KEEPSTATE_CO_ASSIGN_OR_RETURN macros below
// propagate them across co_await like their non-coroutine twins.
//
// Frames come from FramePool (see frame_pool.h). Library code has no
// exceptions; an exception escaping a Task (possible only in test code built
// with -fexceptions) terminates.
//
// Ownership: a Task owns its frame until it is spawned. A spawned fiber's
// frame is owned jointly by the running fiber and its JoinHandle: it is freed
// when both are done with it (the fiber finished, and the JoinHandle was
// destroyed or dropped). A fiber whose JoinHandle is dropped is detached and
// frees itself when it finishes.
#pragma once

#include <cstddef>
#include <exception>
#include <optional>
#include <utility>

#include "keepstate/scheduler/coro.h"
#include "keepstate/scheduler/frame_pool.h"
#include "keepstate/scheduler/no_suspend.h"
#include "keepstate/scheduler/waiter.h"
#include "keepstate/status.h"

namespace keepstate::scheduler {

template <typename T>
class Task;
template <typename T>
class JoinHandle;

namespace detail {

class JoinHandleBase;

struct PromiseBase {
  // Admission-queue link; start.handle is this coroutine once spawned.
  Waiter start;
  // Resumed (through g_transfer) when this coroutine finishes: the awaiting
  // Task or the fiber awaiting the JoinHandle.
  coro::coroutine_handle<> continuation;
  // The scheduler's list of unfinished spawned fibers (for shutdown).
  PromiseBase* live_prev = nullptr;
  PromiseBase* live_next = nullptr;
  // Spawned only: the JoinHandle sharing the frame, nullptr when detached.
  JoinHandleBase* join = nullptr;
  bool spawned = false;

  static void* operator new(std::size_t size) { return FramePool::Allocate(size); }
  static void operator delete(void* p, std::size_t size) noexcept { FramePool::Free(p, size); }

  coro::suspend_always initial_suspend() noexcept { return {}; }
  void unhandled_exception() noexcept { std::terminate(); }
};

// Called from final_suspend: unlinks a spawned fiber, hands control to the
// continuation, or frees a detached fiber.
void FinishCoroutine(PromiseBase& promise, coro::coroutine_handle<> self) noexcept;

struct FinalAwaiter {
  bool await_ready() noexcept { return false; }
  template <typename P>
  void await_suspend(coro::coroutine_handle<P> h) noexcept {
    FinishCoroutine(h.promise(), h);
  }
  void await_resume() noexcept {}
};

template <typename T>
struct Promise : PromiseBase {
  std::optional<T> value;

  Task<T> get_return_object() noexcept;
  FinalAwaiter final_suspend() noexcept { return {}; }
  template <typename U>
  void return_value(U&& v) {
    value.emplace(std::forward<U>(v));
  }
  T TakeValue() { return std::move(*value); }
};

template <>
struct Promise<void> : PromiseBase {
  Task<void> get_return_object() noexcept;
  FinalAwaiter final_suspend() noexcept { return {}; }
  void return_void() noexcept {}
  void TakeValue() noexcept {}
};

// The part of JoinHandle the scheduler touches at shutdown.
class JoinHandleBase {
 public:
  // The fiber was destroyed by Scheduler::Shutdown before finishing.
  bool cancelled() const { return cancelled_; }

 protected:
  friend class keepstate::scheduler::Scheduler;
  JoinHandleBase() = default;
  void Cancel() {
    handle_ = nullptr;
    promise_ = nullptr;
    cancelled_ = true;
  }
  coro::coroutine_handle<> handle_;
  PromiseBase* promise_ = nullptr;
  bool cancelled_ = false;
};

}  // namespace detail

template <typename T = void>
class [[nodiscard]] Task {
 public:
  using promise_type = detail::Promise<T>;
  using Handle = coro::coroutine_handle<promise_type>;

  Task() = default;
  Task(Task&& other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}
  Task& operator=(Task&& other) noexcept {
    if (this != &other) {
      if (handle_) handle_.destroy();
      handle_ = std::exchange(other.handle_, nullptr);
    }
    return *this;
  }
  ~Task() {
    if (handle_) handle_.destroy();
  }

  bool valid() const { return static_cast<bool>(handle_); }

  struct Awaiter {
    Handle handle;
    bool await_ready() noexcept {
      detail::CheckSuspendAllowed("co_await Task");
      return false;
    }
    void await_suspend(coro::coroutine_handle<> awaiting) noexcept {
      handle.promise().continuation = awaiting;
      detail::g_transfer = handle;
    }
    decltype(auto) await_resume() { return handle.promise().TakeValue(); }
  };
  // REQUIRES: valid(); awaited at most once, from inside a fiber.
  Awaiter operator co_await() && noexcept { return Awaiter{handle_}; }

 private:
  friend class Scheduler;
  friend struct detail::Promise<T>;
  explicit Task(Handle h) : handle_(h) {}
  Handle Release() { return std::exchange(handle_, nullptr); }

  Handle handle_;
};

namespace detail {
template <typename T>
Task<T> Promise<T>::get_return_object() noexcept {
  return Task<T>(coro::coroutine_handle<Promise<T>>::from_promise(*this));
}
inline Task<void> Promise<void>::get_return_object() noexcept {
  return Task<void>(coro::coroutine_handle<Promise<void>>::from_promise(*this));
}
}  // namespace detail

// The result of a spawned fiber. Dropping it detaches the fiber.
template <typename T = void>
class JoinHandle : public detail::JoinHandleBase {
 public:
  using Handle = coro::coroutine_handle<detail::Promise<T>>;

  JoinHandle() = default;
  JoinHandle(JoinHandle&& other) noexcept { MoveFrom(other); }
  JoinHandle& operator=(JoinHandle&& other) noexcept {
    if (this != &other) {
      Reset();
      MoveFrom(other);
    }
    return *this;
  }
  ~JoinHandle() { Reset(); }

  // The fiber has finished and its result is waiting here.
  bool done() const { return handle_ && handle_.done(); }

  // REQUIRES: done(). Moves the result out (once).
  decltype(auto) TakeResult() { return typed().promise().TakeValue(); }

  struct Awaiter {
    JoinHandle* join;
    bool await_ready() noexcept {
      detail::CheckSuspendAllowed("co_await JoinHandle");
      return join->done();
    }
    void await_suspend(coro::coroutine_handle<> awaiting) noexcept {
      join->promise_->continuation = awaiting;
    }
    decltype(auto) await_resume() { return join->TakeResult(); }
  };
  // REQUIRES: not cancelled(); at most one fiber awaits a handle.
  Awaiter operator co_await() noexcept { return Awaiter{this}; }

 private:
  friend class Scheduler;
  explicit JoinHandle(Handle h) {
    handle_ = h;
    promise_ = &h.promise();
    promise_->join = this;
  }
  Handle typed() const { return Handle::from_address(handle_.address()); }
  void MoveFrom(JoinHandle& other) {
    handle_ = std::exchange(other.handle_, nullptr);
    promise_ = std::exchange(other.promise_, nullptr);
    cancelled_ = other.cancelled_;
    if (promise_ != nullptr) promise_->join = this;
  }
  void Reset() {
    if (!handle_) return;
    if (handle_.done()) {
      handle_.destroy();
    } else {
      // Detach: the fiber frees itself when it finishes.
      promise_->join = nullptr;
      promise_->continuation = nullptr;
    }
    handle_ = nullptr;
    promise_ = nullptr;
  }
};

}  // namespace keepstate::scheduler

// Inside a coroutine returning Status or Result<U>: co_returns the Status of
// `expr` (which may be a co_await expression) if it is an error.
#define KEEPSTATE_CO_RETURN_IF_ERROR(expr)                    \
  do {                                                        \
    ::keepstate::Status keepstate_co_status_ = (expr);        \
    if (!keepstate_co_status_.ok()) co_return keepstate_co_status_; \
  } while (0)

// `lhs = value of expr` (a Result<U>, possibly from co_await), or co_returns
// its Status.
#define KEEPSTATE_CO_ASSIGN_OR_RETURN(lhs, expr)                                   \
  auto KEEPSTATE_CONCAT_(keepstate_co_result_, __LINE__) = (expr);                 \
  if (!KEEPSTATE_CONCAT_(keepstate_co_result_, __LINE__).ok())                     \
    co_return std::move(KEEPSTATE_CONCAT_(keepstate_co_result_, __LINE__)).status(); \
  lhs = std::move(KEEPSTATE_CONCAT_(keepstate_co_result_, __LINE__)).value()
