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

ks::Task<> ParkOnEvent(ks::Event* e) { co_await e->Wait(); }

TEST_CASE_METHOD(PoolCheck, "every suspended fiber holds one pooled frame until it finishes",
                 "[scheduler]") {
  ks::Event go;
  ks::Scheduler sched;
  for (int i = 0; i < 100; ++i) sched.Spawn(ParkOnEvent(&go));
  CHECK(ks::FramePool::Stats().live_frames == 100);  // allocated at spawn
  sched.RunUntilIdle();                               // started and parked
  const auto during = ks::FramePool::Stats();
  CHECK(during.live_frames == 100);
  CHECK(during.live_bytes >= during.requested_bytes);
  CHECK(during.live_bytes % ks::FramePool::kGranule == 0);
  go.Set();
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
  ks::Event go;
  ks::Scheduler sched;
  const auto base = ks::FramePool::Stats().live_bytes;
  for (int i = 0; i < kFibers; ++i) sched.Spawn(ParkOnEvent(&go));
  sched.RunUntilIdle();  // every fiber is now started and parked
  REQUIRE(sched.live_fibers() == kFibers);
  const double per_fiber = double(ks::FramePool::Stats().live_bytes - base) / kFibers;
  std::printf("bytes per suspended minimal fiber: %.1f (pointer size %zu)\n", per_fiber,
              sizeof(void*));
  if (sizeof(void*) == 4) {
    CHECK(per_fiber <= 128);
  } else {
    CHECK(per_fiber <= 256);  // 64-bit pointers double the links
  }
  go.Set();
  sched.RunUntilIdle();
  CHECK(sched.live_fibers() == 0);
}

// Every byte of the buffer is live across the suspension, so the compiler
// cannot shrink the frame below it.
ks::Task<int> BigFrame(int seed) {
  unsigned char buffer[3000];
  for (int i = 0; i < 3000; ++i) buffer[i] = static_cast<unsigned char>(i * seed);
  co_await ks::Yield();
  int sum = 0;
  for (unsigned char b : buffer) sum += b;
  co_return sum;
}

TEST_CASE_METHOD(PoolCheck, "frames above the largest class go to malloc and are counted",
                 "[scheduler]") {
  ks::Scheduler sched;
  const auto mallocs = ks::FramePool::Stats().system_allocations;
  auto h = sched.Spawn(BigFrame(7));
  sched.RunFor(ks::Duration::zero());
  const auto s = ks::FramePool::Stats();
  CHECK(s.live_frames == 1);
  CHECK(s.live_bytes >= 3000);
  CHECK(s.system_allocations == mallocs + 1);
  sched.RunUntilIdle();
  REQUIRE(h.done());
  int expected = 0;
  for (int i = 0; i < 3000; ++i) expected += static_cast<unsigned char>(i * 7);
  CHECK(h.TakeResult() == expected);
}

}  // namespace
