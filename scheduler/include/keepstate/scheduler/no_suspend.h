// NoSuspendScope: marks a region in which the current fiber must not suspend.
//
// keepstate's write transactions are serializable because a cooperative
// fiber runs them to completion without suspending. The engine does not
// depend on the scheduler; the SDK glue opens a NoSuspendScope around a write
// transaction, and every scheduler awaitable (Yield, SleepFor, channel ops,
// Mutex/Event/WaitGroup waits, token awaits, awaiting a Task or JoinHandle)
// checks the scope when it is co_awaited — whether or not it would actually
// block, so a violation never depends on timing.
//
// A violation calls the violation handler with the operation's name. The
// default handler prints the name to stderr and aborts. Tests install their
// own handler; if a handler returns, the operation proceeds normally.
//
// Thread safety: none (single-threaded runtime). Scopes nest.
#pragma once

namespace keepstate::scheduler {

class NoSuspendScope {
 public:
  NoSuspendScope() noexcept { ++depth_; }
  ~NoSuspendScope() { --depth_; }
  NoSuspendScope(const NoSuspendScope&) = delete;
  NoSuspendScope& operator=(const NoSuspendScope&) = delete;

  static bool Active() noexcept { return depth_ > 0; }
  static int depth() noexcept { return depth_; }

 private:
  static inline int depth_ = 0;
};

// Called with the operation name ("Yield", "Channel::Send", ...).
using NoSuspendViolationHandler = void (*)(const char* operation);

// Installs `handler` (nullptr restores the aborting default) and returns the
// previous one.
NoSuspendViolationHandler SetNoSuspendViolationHandler(NoSuspendViolationHandler handler);

namespace detail {
void ReportSuspendViolation(const char* operation);
inline void CheckSuspendAllowed(const char* operation) {
  if (NoSuspendScope::Active()) [[unlikely]] ReportSuspendViolation(operation);
}
}  // namespace detail

}  // namespace keepstate::scheduler
