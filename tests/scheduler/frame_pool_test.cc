// FramePool: frames are pooled, accounted, reused without malloc after
// warm-up, and a minimal suspended fiber is small.
#include <cstdio>

#include "keepstate/scheduler/frame_pool.h"
#include "keepstate/scheduler/scheduler.h"
#include "keepstate/scheduler/sync.h"
#include "pool_check.h"

namespace ks = keepstate::scheduler;

namespace {

ks::Task<> YieldOnce() { co_await ks::Yield(); }

TEST_CASE_METHOD(PoolCheck, "every suspended fiber holds one pooled frame until it finishes",
                 "[scheduler]") {
  ks::Scheduler sched;
  for (int i = 0; i < 100; ++i) sched.Spawn(YieldOnce());
  CHECK(ks::FramePool::Stats().live_frames == 100);
  sched.RunFor(ks::Duration::zero());  // starts them; each parks in Yield
  const auto during = ks::FramePool::Stats();
  CHECK(during.live_frames == 100);
  CHECK(during.live_bytes >= during.requested_bytes);
  CHECK(during.live_bytes % ks::FramePool::kGranule == 0);
  sched.RunUntilIdle();
  CHECK(ks::FramePool::Stats().live_frames == 0);
  CHECK(ks::FramePool::Stats().live_bytes == 0);
}

TEST_CASE_METHOD(PoolCheck, "after warm-up, spawning and finishing fibers calls no malloc",
                 "[scheduler]") {
  ks::Scheduler sched;
  auto round = [&] {
    for (int i = 0; i < 20000; ++i) sched.Spawn(YieldOnce());
    sched.RunUntilIdle();
  };
  round();  // warm-up: slabs are carved
  const auto before = ks::FramePool::Stats().system_allocations;
  round();
  round();
  CHECK(ks::FramePool::Stats().system_allocations == before);
}

TEST_CASE_METHOD(PoolCheck, "a suspended minimal fiber costs at most 128 bytes in wasm32",
                 "[scheduler]") {
  constexpr int kFibers = 1000;
  ks::Scheduler sched;
  const auto base = ks::FramePool::Stats().live_bytes;
  for (int i = 0; i < kFibers; ++i) sched.Spawn(YieldOnce());
  sched.RunFor(ks::Duration::zero());
  const double per_fiber = double(ks::FramePool::Stats().live_bytes - base) / kFibers;
  std::printf("bytes per suspended minimal fiber: %.1f (pointer size %zu)\n", per_fiber,
              sizeof(void*));
  if (sizeof(void*) == 4) {
    CHECK(per_fiber <= 128);
  } else {
    CHECK(per_fiber <= 256);  // 64-bit pointers double the links
  }
  sched.RunUntilIdle();
}

ks::Task<int> BigFrame() {
  volatile char buffer[3000];
  buffer[0] = 1;
  co_await ks::Yield();
  buffer[2999] = 2;
  co_return buffer[0] + buffer[2999];
}

TEST_CASE_METHOD(PoolCheck, "frames above the largest class go to malloc and are counted",
                 "[scheduler]") {
  ks::Scheduler sched;
  auto h = sched.Spawn(BigFrame());
  sched.RunFor(ks::Duration::zero());
  const auto s = ks::FramePool::Stats();
  CHECK(s.live_frames == 1);
  CHECK(s.live_bytes >= 3000);
  sched.RunUntilIdle();
  REQUIRE(h.done());
  CHECK(h.TakeResult() == 3);
}

}  // namespace
