// Clocks the scheduler reads for timers and run budgets.
//
// The scheduler never reads time directly: it asks a Clock, so tests can use
// ManualClock and get deterministic, instant timers, while production uses
// SteadyClock. The clock is read rarely (once per run-budget check interval
// and when the ready queue drains), so the virtual call is off the hot path.
#pragma once

#include <chrono>
#include <cstdint>

namespace keepstate::scheduler {

class Clock;
using Duration = std::chrono::nanoseconds;
// A point on a scheduler clock (nanoseconds since that clock's origin).
using TimePoint = std::chrono::time_point<Clock, Duration>;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual TimePoint Now() = 0;
  // Blocks the calling thread until Now() >= t (used only by the native
  // driver, Scheduler::Run). ManualClock jumps there instead.
  virtual void SleepUntil(TimePoint t) = 0;
};

// std::chrono::steady_clock (performance.now() under Emscripten).
class SteadyClock final : public Clock {
 public:
  TimePoint Now() override;
  void SleepUntil(TimePoint t) override;
};

// Time moves only when told to. SleepUntil jumps to its argument, so
// Scheduler::Run() on a ManualClock runs timer-driven code instantly.
class ManualClock final : public Clock {
 public:
  TimePoint Now() override { return now_; }
  void SleepUntil(TimePoint t) override {
    if (t > now_) now_ = t;
  }
  void Advance(Duration d) { now_ += d; }

 private:
  TimePoint now_{};
};

// a + d without signed overflow (Duration::max() means "forever").
inline TimePoint SaturatingAdd(TimePoint a, Duration d) {
  if (d > Duration::zero() && a > TimePoint::max() - d) return TimePoint::max();
  return a + d;
}

}  // namespace keepstate::scheduler
