// One million fibers suspended at the same time, then released.
#include <chrono>
#include <cstdio>

#include "keepstate/scheduler/scheduler.h"
#include "keepstate/scheduler/sync.h"
#include "pool_check.h"

namespace ks = keepstate::scheduler;

namespace {

ks::Task<> WaitThenCount(ks::Event* go, int* finished) {
  co_await go->Wait();
  ++*finished;
}

TEST_CASE_METHOD(PoolCheck, "a million fibers can be suspended at once", "[scheduler]") {
  constexpr int kFibers = 1000000;
  const auto start = std::chrono::steady_clock::now();
  ks::Event go;
  ks::Scheduler sched;
  int finished = 0;
  for (int i = 0; i < kFibers; ++i) sched.Spawn(WaitThenCount(&go, &finished));
  sched.RunUntilIdle();
  const auto stats = ks::FramePool::Stats();
  CHECK(sched.live_fibers() == static_cast<std::size_t>(kFibers));
  CHECK(stats.live_frames == static_cast<std::size_t>(kFibers));
  CHECK(finished == 0);
  std::printf("1M suspended fibers: %.1f bytes each (%zu MiB reserved)\n",
              double(stats.live_bytes) / kFibers, stats.reserved_bytes >> 20);

  go.Set();
  sched.RunUntilIdle();
  CHECK(finished == kFibers);
  CHECK(sched.live_fibers() == 0);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("1M fibers spawned, suspended and finished in %.3f s\n", seconds);
}

}  // namespace
