// Test fixture: every scheduler test starts and ends with no live frame in
// the FramePool (marl-style leak check). Use it with TEST_CASE_METHOD; the
// fixture is destroyed after the test body's locals (schedulers, handles).
#pragma once

#include <catch2/catch.hpp>

#include "keepstate/scheduler/frame_pool.h"

struct PoolCheck {
  PoolCheck() {
    const auto s = keepstate::scheduler::FramePool::Stats();
    CHECK(s.live_frames == 0);
    CHECK(s.live_bytes == 0);
  }
  ~PoolCheck() {
    const auto s = keepstate::scheduler::FramePool::Stats();
    CHECK(s.live_frames == 0);
    CHECK(s.live_bytes == 0);
  }
};
