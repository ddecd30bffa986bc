// Task<T> and JoinHandle<T>: laziness, values, error propagation, deep await
// chains (trampolined symmetric transfer), joining and detaching.
#include <cstdint>
#include <string>
#include <vector>

#include "keepstate/scheduler/scheduler.h"
#include "keepstate/scheduler/task.h"
#include "pool_check.h"

namespace ks = keepstate::scheduler;
using keepstate::Result;
using keepstate::Status;

namespace {

ks::Task<> SetFlag(bool* flag) {
  *flag = true;
  co_return;
}

TEST_CASE_METHOD(PoolCheck, "a task does nothing until awaited or spawned", "[scheduler]") {
  ks::Scheduler sched;
  bool ran = false;
  ks::Task<> t = SetFlag(&ran);
  sched.RunUntilIdle();
  CHECK_FALSE(ran);
  auto join = sched.Spawn(std::move(t));
  CHECK_FALSE(ran);
  sched.RunUntilIdle();
  CHECK(ran);
  CHECK(join.done());
}

ks::Task<int> Child(std::vector<std::string>* log) {
  log->push_back("child");
  co_return 7;
}

ks::Task<int> Parent(std::vector<std::string>* log) {
  log->push_back("parent before");
  int v = co_await Child(log);
  log->push_back("parent after");
  co_return v * 6;
}

TEST_CASE_METHOD(PoolCheck, "awaiting a task runs it at once and resumes the awaiter right after",
                 "[scheduler]") {
  ks::Scheduler sched;
  std::vector<std::string> log;
  auto join = sched.Spawn(Parent(&log));
  // Another fiber, ready at the same time, must not interleave with the
  // parent/child hand-offs (they do not go through the ready queue).
  auto other = sched.Spawn([](std::vector<std::string>* l) -> ks::Task<> {
    l->push_back("other");
    co_return;
  }(&log));
  sched.RunUntilIdle();
  REQUIRE(join.done());
  CHECK(join.TakeResult() == 42);
  CHECK(log == std::vector<std::string>{"parent before", "child", "parent after", "other"});
}

ks::Task<Result<int>> Leaf(bool fail) {
  if (fail) co_return Status::NotFound("leaf 17 is missing");
  co_return 5;
}

ks::Task<Result<int>> Middle(bool fail) {
  KEEPSTATE_CO_ASSIGN_OR_RETURN(int v, co_await Leaf(fail));
  co_return v + 1;
}

ks::Task<Status> Top(bool fail, int* out) {
  Result<int> r = co_await Middle(fail);
  KEEPSTATE_CO_RETURN_IF_ERROR(r.status());
  *out = *r;
  co_return Status::Ok();
}

TEST_CASE_METHOD(PoolCheck, "errors propagate through awaited tasks", "[scheduler]") {
  ks::Scheduler sched;
  int out = 0;
  auto bad = sched.Spawn(Top(true, &out));
  auto good = sched.Spawn(Top(false, &out));
  sched.RunUntilIdle();
  REQUIRE(bad.done());
  REQUIRE(good.done());
  Status bad_status = bad.TakeResult();
  CHECK(bad_status.code() == keepstate::Code::kNotFound);
  CHECK(bad_status.message() == "leaf 17 is missing");
  CHECK(good.TakeResult().ok());
  CHECK(out == 6);
}

std::uintptr_t deepest_stack = 0;

// Approximates the native stack pointer of the caller.
[[gnu::noinline]] std::uintptr_t StackAddress() {
  volatile char marker = 0;
  volatile std::uintptr_t address = reinterpret_cast<std::uintptr_t>(&marker);
  return address;  // only compared, never dereferenced
}

ks::Task<int> Depth(int n) {
  if (n == 0) {
    deepest_stack = StackAddress();
    co_return 0;
  }
  int below = co_await Depth(n - 1);
  co_return below + 1;
}

TEST_CASE_METHOD(PoolCheck, "a chain of 100,000 nested awaits runs in constant stack",
                 "[scheduler]") {
  constexpr int kDepth = 100000;
  ks::Scheduler sched;
  auto join = sched.Spawn(Depth(kDepth));
  const std::uintptr_t top = StackAddress();
  sched.RunUntilIdle();
  REQUIRE(join.done());
  CHECK(join.TakeResult() == kDepth);
  // Without the trampoline each level would add at least one native frame.
  const std::uintptr_t growth = top > deepest_stack ? top - deepest_stack : deepest_stack - top;
  CHECK(growth < 16 * 1024);
}

ks::Task<int> Answer() {
  co_await ks::Yield();
  co_return 42;
}

ks::Task<> Joiner(ks::JoinHandle<int> h, int* out) {
  *out = co_await h;
}

TEST_CASE_METHOD(PoolCheck, "a fiber awaits another fiber's JoinHandle", "[scheduler]") {
  ks::Scheduler sched;
  int out = 0;
  auto answer = sched.Spawn(Answer());
  auto joiner = sched.Spawn(Joiner(std::move(answer), &out));
  sched.RunUntilIdle();
  CHECK(out == 42);
  CHECK(joiner.done());
  CHECK(sched.live_fibers() == 0);
}

TEST_CASE_METHOD(PoolCheck, "a finished fiber keeps its result until the JoinHandle goes",
                 "[scheduler]") {
  ks::Scheduler sched;
  {
    auto h = sched.Spawn(Answer());
    sched.RunUntilIdle();
    REQUIRE(h.done());
    CHECK(ks::FramePool::Stats().live_frames == 1);  // held for the result
    auto moved = std::move(h);
    CHECK(moved.done());
    CHECK(moved.TakeResult() == 42);
  }
  CHECK(ks::FramePool::Stats().live_frames == 0);
}

TEST_CASE_METHOD(PoolCheck, "a dropped JoinHandle detaches the fiber, which frees itself",
                 "[scheduler]") {
  ks::Scheduler sched;
  bool ran = false;
  { auto dropped = sched.Spawn(SetFlag(&ran)); }
  CHECK(ks::FramePool::Stats().live_frames == 1);
  CHECK(sched.live_fibers() == 1);
  sched.RunUntilIdle();
  CHECK(ran);
  CHECK(sched.live_fibers() == 0);
  CHECK(ks::FramePool::Stats().live_frames == 0);
}

}  // namespace
