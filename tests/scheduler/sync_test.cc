// Mutex, WaitGroup, Event.
#include <string>
#include <vector>

#include "keepstate/scheduler/scheduler.h"
#include "keepstate/scheduler/sync.h"
#include "pool_check.h"

namespace ks = keepstate::scheduler;

namespace {

struct Shared {
  int counter = 0;
  int inside = 0;
  int max_inside = 0;
};

ks::Task<> Increment(ks::Mutex* m, Shared* s, int times) {
  for (int i = 0; i < times; ++i) {
    co_await m->Lock();
    ks::MutexLock guard(*m);
    ++s->inside;
    if (s->inside > s->max_inside) s->max_inside = s->inside;
    int v = s->counter;
    co_await ks::Yield();  // a suspension inside the critical section
    s->counter = v + 1;
    --s->inside;
  }
}

TEST_CASE_METHOD(PoolCheck, "a mutex excludes fibers across suspensions", "[scheduler]") {
  ks::Mutex m;
  ks::Scheduler sched;
  Shared s;
  for (int i = 0; i < 10; ++i) sched.Spawn(Increment(&m, &s, 100));
  sched.RunUntilIdle();
  CHECK(s.counter == 1000);
  CHECK(s.max_inside == 1);
  CHECK_FALSE(m.locked());
}

ks::Task<> LockInOrder(ks::Mutex* m, int id, std::vector<int>* order) {
  co_await m->Lock();
  order->push_back(id);
  co_await ks::Yield();
  m->Unlock();
}

TEST_CASE_METHOD(PoolCheck, "a mutex is handed over in FIFO order", "[scheduler]") {
  ks::Mutex m;
  ks::Scheduler sched;
  std::vector<int> order;
  for (int i = 0; i < 5; ++i) sched.Spawn(LockInOrder(&m, i, &order));
  sched.RunUntilIdle();
  CHECK(order == std::vector<int>{0, 1, 2, 3, 4});
  CHECK(m.TryLock());
  CHECK_FALSE(m.TryLock());
  m.Unlock();
}

ks::Task<> Worker(ks::WaitGroup* wg, int yields, int* finished) {
  for (int i = 0; i < yields; ++i) co_await ks::Yield();
  ++*finished;
  wg->Done();
}

ks::Task<> WaitAll(ks::WaitGroup* wg, int* finished, int* seen) {
  co_await wg->Wait();
  *seen = *finished;
}

TEST_CASE_METHOD(PoolCheck, "a wait group releases its waiters when the count hits zero",
                 "[scheduler]") {
  ks::WaitGroup wg;
  ks::Scheduler sched;
  int finished = 0;
  int seen_a = -1;
  int seen_b = -1;
  wg.Add(5);
  sched.Spawn(WaitAll(&wg, &finished, &seen_a));
  sched.Spawn(WaitAll(&wg, &finished, &seen_b));
  for (int i = 0; i < 5; ++i) sched.Spawn(Worker(&wg, i * 3, &finished));
  sched.RunUntilIdle();
  CHECK(seen_a == 5);
  CHECK(seen_b == 5);
  CHECK(wg.count() == 0);

  int seen_c = -1;
  sched.Spawn(WaitAll(&wg, &finished, &seen_c));  // zero count: no wait
  sched.RunUntilIdle();
  CHECK(seen_c == 5);
}

ks::Task<> WaitEvent(ks::Event* e, std::string name, std::vector<std::string>* log) {
  co_await e->Wait();
  log->push_back(name);
}

TEST_CASE_METHOD(PoolCheck, "an event blocks until set, then releases everyone until reset",
                 "[scheduler]") {
  ks::Event e;
  ks::Scheduler sched;
  std::vector<std::string> log;
  sched.Spawn(WaitEvent(&e, "a", &log));
  sched.Spawn(WaitEvent(&e, "b", &log));
  sched.RunUntilIdle();
  CHECK(log.empty());
  e.Set();
  sched.RunUntilIdle();
  CHECK(log == std::vector<std::string>{"a", "b"});
  sched.Spawn(WaitEvent(&e, "c", &log));  // already set
  sched.RunUntilIdle();
  CHECK(log.size() == 3);
  e.Reset();
  sched.Spawn(WaitEvent(&e, "d", &log));
  sched.RunUntilIdle();
  CHECK(log.size() == 3);
  CHECK(sched.live_fibers() == 1);
  e.Set();
  sched.RunUntilIdle();
  CHECK(log.back() == "d");
}

TEST_CASE_METHOD(PoolCheck, "sync objects may die before or after their waiters",
                 "[scheduler]") {
  ks::Scheduler sched;
  {
    ks::Event short_lived;
    sched.Spawn(WaitEvent(&short_lived, "x", nullptr));
    sched.RunUntilIdle();
    CHECK(sched.live_fibers() == 1);
  }  // the waiter's node is detached; shutdown must not touch the event
  ks::Mutex m;
  sched.Spawn([](ks::Mutex* mu) -> ks::Task<> {
    co_await mu->Lock();
    ks::MutexLock guard(*mu);
    co_await ks::SleepFor(std::chrono::hours(1));
  }(&m));
  sched.Spawn([](ks::Mutex* mu) -> ks::Task<> {
    co_await mu->Lock();
    mu->Unlock();
  }(&m));
  sched.RunUntilIdle();
  CHECK(sched.live_fibers() == 3);
  sched.Shutdown();  // destroys the holder (its guard unlocks) and the waiters
  CHECK(sched.live_fibers() == 0);
}

}  // namespace
