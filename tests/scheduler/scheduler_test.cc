// Scheduler: FIFO fairness, admission behind woken fibers, timers with a
// manual clock, RunFor budgets and reports, the native driver, shutdown.
#include <chrono>
#include <string>
#include <vector>

#include "keepstate/scheduler/clock.h"
#include "keepstate/scheduler/scheduler.h"
#include "pool_check.h"

namespace ks = keepstate::scheduler;
using namespace std::chrono_literals;

namespace {

ks::Task<> Stepper(std::string name, int steps, std::vector<std::string>* log) {
  for (int i = 0; i < steps; ++i) {
    log->push_back(name + std::to_string(i));
    co_await ks::Yield();
  }
}

TEST_CASE_METHOD(PoolCheck, "fibers start in spawn order and yield round-robin", "[scheduler]") {
  ks::Scheduler sched;
  std::vector<std::string> log;
  for (const char* name : {"a", "b", "c"}) sched.Spawn(Stepper(name, 3, &log));
  sched.RunUntilIdle();
  CHECK(log == std::vector<std::string>{"a0", "b0", "c0", "a1", "b1", "c1", "a2", "b2", "c2"});
}

ks::Task<> SpawnsThenYields(std::vector<std::string>* log) {
  log->push_back("parent 1");
  ks::Spawn(Stepper("child", 1, log));
  co_await ks::Yield();
  log->push_back("parent 2");
  co_await ks::Yield();
  log->push_back("parent 3");
}

TEST_CASE_METHOD(PoolCheck, "woken fibers run before newly spawned ones are admitted",
                 "[scheduler]") {
  ks::Scheduler sched;
  std::vector<std::string> log;
  sched.Spawn(SpawnsThenYields(&log));
  sched.RunUntilIdle();
  CHECK(log == std::vector<std::string>{"parent 1", "parent 2", "parent 3", "child0"});
}

ks::Task<> Ring(int rounds, int* turns, bool* stop) {
  for (int i = 0; i < rounds && !*stop; ++i) {
    ++*turns;
    co_await ks::Yield();
  }
}

ks::Task<> Latecomer(int* turns, int* seen, bool* stop) {
  *seen = *turns;
  *stop = true;
  co_return;
}

TEST_CASE_METHOD(PoolCheck, "a ready queue that never drains does not starve admission",
                 "[scheduler]") {
  ks::Scheduler sched;
  int turns = 0;
  int seen = -1;
  bool stop = false;
  sched.Spawn(Ring(1000000, &turns, &stop));
  sched.Spawn(Ring(1000000, &turns, &stop));
  sched.RunFor(0ns);  // starts the ring
  sched.Spawn(Latecomer(&turns, &seen, &stop));
  sched.RunUntilIdle();
  CHECK(seen > 0);
  CHECK(seen <= static_cast<int>(2 * ks::Scheduler::kAdmitAfterStreak + ks::Scheduler::kClockCheckInterval));
}

ks::Task<> Sleeper(ks::Duration d, std::string name, std::vector<std::string>* log) {
  co_await ks::SleepFor(d);
  log->push_back(name + "@" + std::to_string(ks::Now().time_since_epoch() / 1ms));
}

TEST_CASE_METHOD(PoolCheck, "timers fire in deadline order, ties in arrival order",
                 "[scheduler]") {
  ks::ManualClock clock;
  ks::Scheduler sched(clock);
  std::vector<std::string> log;
  sched.Spawn(Sleeper(30ms, "c", &log));
  sched.Spawn(Sleeper(10ms, "a", &log));
  sched.Spawn(Sleeper(20ms, "b", &log));
  sched.Spawn(Sleeper(10ms, "a2", &log));

  ks::RunReport r = sched.RunUntilIdle();
  CHECK(log.empty());
  CHECK_FALSE(r.ready);
  REQUIRE(r.next_deadline.has_value());
  CHECK(*r.next_deadline == ks::TimePoint(10ms));

  clock.Advance(15ms);
  r = sched.RunUntilIdle();
  CHECK(log == std::vector<std::string>{"a@15", "a2@15"});
  REQUIRE(r.next_deadline.has_value());
  CHECK(*r.next_deadline == ks::TimePoint(20ms));

  r = sched.Run();  // jumps the manual clock to each deadline
  CHECK(log == std::vector<std::string>{"a@15", "a2@15", "b@20", "c@30"});
  CHECK_FALSE(r.next_deadline.has_value());
  CHECK(clock.Now() == ks::TimePoint(30ms));
}

ks::Task<> SleepUntilAndLog(ks::TimePoint t, std::vector<std::string>* log) {
  co_await ks::SleepUntil(t);
  log->push_back("woke@" + std::to_string(ks::Now().time_since_epoch() / 1ms));
}

TEST_CASE_METHOD(PoolCheck, "sleep_until a past deadline acts as a yield", "[scheduler]") {
  ks::ManualClock clock;
  clock.Advance(50ms);
  ks::Scheduler sched(clock);
  std::vector<std::string> log;
  sched.Spawn(SleepUntilAndLog(ks::TimePoint(5ms), &log));
  sched.RunUntilIdle();
  CHECK(log == std::vector<std::string>{"woke@50"});
}

// Advances 1 ms every time it is read.
class TickingClock final : public ks::Clock {
 public:
  ks::TimePoint Now() override { return now_ += 1ms; }
  void SleepUntil(ks::TimePoint t) override {
    if (t > now_) now_ = t;
  }

 private:
  ks::TimePoint now_{};
};

TEST_CASE_METHOD(PoolCheck, "RunFor stops when its budget is spent and says work remains",
                 "[scheduler]") {
  TickingClock clock;
  ks::Scheduler sched(clock);
  int turns = 0;
  bool stop = false;
  sched.Spawn(Ring(100000, &turns, &stop));
  ks::RunReport r = sched.RunFor(5ms);
  CHECK(r.ready);
  CHECK(turns > 0);
  CHECK(turns < 100000);
  CHECK(r.resumed <= 10 * ks::Scheduler::kClockCheckInterval);
  stop = true;
  r = sched.RunUntilIdle();
  CHECK_FALSE(r.ready);
  CHECK(sched.live_fibers() == 0);
}

ks::Task<> SetFlag2(bool* flag) {
  *flag = true;
  co_return;
}

struct SetsOnDestroy {
  bool* flag;
  ~SetsOnDestroy() { *flag = true; }
};

ks::Task<int> SleepsForever(bool* destroyed) {
  SetsOnDestroy guard{destroyed};
  co_await ks::SleepFor(24h);
  co_return 1;
}

TEST_CASE_METHOD(PoolCheck, "shutdown destroys parked fibers and cancels their handles",
                 "[scheduler]") {
  ks::ManualClock clock;
  ks::Scheduler sched(clock);
  bool destroyed = false;
  bool detached_destroyed = false;
  auto joined = sched.Spawn(SleepsForever(&destroyed));
  sched.Spawn(SleepsForever(&detached_destroyed));
  bool never = false;
  sched.Spawn(SetFlag2(&never));  // still in the admission queue
  sched.RunFor(0ns);
  CHECK(sched.live_fibers() >= 2);
  sched.Shutdown();
  CHECK(destroyed);
  CHECK(detached_destroyed);
  CHECK(sched.live_fibers() == 0);
  CHECK(joined.cancelled());
  CHECK_FALSE(joined.done());
  CHECK(ks::FramePool::Stats().live_frames == 0);

  auto late = sched.Spawn(SleepsForever(&destroyed));
  CHECK(late.cancelled());
  CHECK_FALSE(sched.RunUntilIdle().ready);
}

}  // namespace
