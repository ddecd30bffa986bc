// SteadyClock. ManualClock is header-only.
#include "keepstate/scheduler/clock.h"

#include <thread>

namespace keepstate::scheduler {

TimePoint SteadyClock::Now() {
  return TimePoint(std::chrono::duration_cast<Duration>(
      std::chrono::steady_clock::now().time_since_epoch()));
}

void SteadyClock::SleepUntil(TimePoint t) {
  // Only the native driver sleeps; in the browser the JS driver arms a timer.
  const TimePoint now = Now();
  if (t > now) std::this_thread::sleep_for(t - now);
}

}  // namespace keepstate::scheduler
