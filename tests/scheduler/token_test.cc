// External completion tokens (the JS-await protocol), through the C++ API
// and the C ABI.
#include <cstring>
#include <string>

#include "keepstate/scheduler/c_api.h"
#include "keepstate/scheduler/clock.h"
#include "keepstate/scheduler/scheduler.h"
#include "pool_check.h"

namespace ks = keepstate::scheduler;
using keepstate::Code;
using keepstate::Result;
using keepstate::Status;

namespace {

struct Outcome {
  bool done = false;
  Status status;
  std::string payload;
};

ks::Task<> AwaitOp(ks::Scheduler* s, std::uint32_t token, Outcome* out) {
  Result<ks::Bytes> r = co_await s->AwaitToken(token);
  out->done = true;
  if (r.ok()) {
    out->payload.assign(r->begin(), r->end());
  } else {
    out->status = r.status();
  }
}

std::span<const std::uint8_t> AsBytes(const char* s) {
  return {reinterpret_cast<const std::uint8_t*>(s), std::strlen(s)};
}

TEST_CASE_METHOD(PoolCheck, "completing a token wakes the fiber with the payload",
                 "[scheduler]") {
  ks::Scheduler sched;
  Outcome out;
  const std::uint32_t t = sched.CreateToken();
  CHECK(t != 0);
  sched.Spawn(AwaitOp(&sched, t, &out));
  ks::RunReport r = sched.RunUntilIdle();
  CHECK_FALSE(r.ready);
  CHECK_FALSE(out.done);
  CHECK(sched.pending_tokens() == 1);

  CHECK(sched.CompleteToken(t, Status::Ok(), AsBytes("stored")).ok());
  CHECK(sched.RunUntilIdle().resumed == 1);
  CHECK(out.done);
  CHECK(out.status.ok());
  CHECK(out.payload == "stored");
  CHECK(sched.pending_tokens() == 0);
}

TEST_CASE_METHOD(PoolCheck, "a token completed before it is awaited keeps its outcome",
                 "[scheduler]") {
  ks::Scheduler sched;
  Outcome out;
  const std::uint32_t t = sched.CreateToken();
  CHECK(sched.CompleteToken(t, Status::Conflict("head moved"), {}).ok());
  // A second completion while the first one is waiting is refused.
  CHECK(sched.CompleteToken(t, Status::Ok(), {}).code() == Code::kInvalidArgument);
  sched.Spawn(AwaitOp(&sched, t, &out));
  sched.RunUntilIdle();
  CHECK(out.done);
  CHECK(out.status.code() == Code::kConflict);
  CHECK(out.status.message() == "head moved");
}

TEST_CASE_METHOD(PoolCheck, "unknown and already consumed tokens are errors, not crashes",
                 "[scheduler]") {
  ks::Scheduler sched;
  CHECK(sched.CompleteToken(12345, Status::Ok(), {}).code() == Code::kNotFound);
  Outcome unknown;
  sched.Spawn(AwaitOp(&sched, 999, &unknown));
  sched.RunUntilIdle();
  CHECK(unknown.done);
  CHECK(unknown.status.code() == Code::kNotFound);

  const std::uint32_t t = sched.CreateToken();
  Outcome first, second;
  sched.Spawn(AwaitOp(&sched, t, &first));
  sched.Spawn(AwaitOp(&sched, t, &second));
  sched.RunUntilIdle();
  CHECK_FALSE(first.done);
  CHECK(second.done);
  CHECK(second.status.code() == Code::kInvalidArgument);
  CHECK(sched.CompleteToken(t, Status::Ok(), AsBytes("x")).ok());
  CHECK(sched.CompleteToken(t, Status::Ok(), AsBytes("x")).code() == Code::kNotFound);
  sched.RunUntilIdle();
  CHECK(first.payload == "x");
}

TEST_CASE_METHOD(PoolCheck, "shutdown cancels pending tokens", "[scheduler]") {
  ks::Scheduler sched;
  Outcome out;
  const std::uint32_t t = sched.CreateToken();
  sched.Spawn(AwaitOp(&sched, t, &out));
  sched.RunUntilIdle();
  sched.Shutdown();
  CHECK_FALSE(out.done);  // the fiber was destroyed, not resumed
  CHECK(sched.pending_tokens() == 0);
  CHECK(sched.CompleteToken(t, Status::Ok(), {}).code() == Code::kClosed);
  CHECK(sched.CreateToken() == 0);
}

TEST_CASE_METHOD(PoolCheck, "the C ABI completes tokens and reports runs", "[scheduler]") {
  ks::ManualClock clock;
  ks::Scheduler sched(clock);
  KeepstateScheduler* c = ks::ToC(&sched);
  Outcome ok_out, err_out;
  const std::uint32_t t1 = sched.CreateToken();
  const std::uint32_t t2 = sched.CreateToken();
  sched.Spawn(AwaitOp(&sched, t1, &ok_out));
  sched.Spawn(AwaitOp(&sched, t2, &err_out));
  sched.Spawn([]() -> ks::Task<> { co_await ks::SleepFor(std::chrono::milliseconds(25)); }());

  KeepstateRunResult r{};
  keepstate_scheduler_run_for(c, 5.0, &r);
  CHECK(r.has_ready_work == 0);
  CHECK(r.has_timer == 1);
  CHECK(r.next_timer_delay_ms == Approx(25.0));

  const std::uint8_t data[] = {1, 2, 3};
  CHECK(keepstate_scheduler_complete_token(c, t1, 0, data, 3) == 0);
  const char* msg = "QuotaExceededError";
  CHECK(keepstate_scheduler_complete_token(c, t2, 5, reinterpret_cast<const std::uint8_t*>(msg),
                                           std::strlen(msg)) == 0);
  CHECK(keepstate_scheduler_complete_token(c, t2, 0, nullptr, 0) == 1);    // already handed over
  CHECK(keepstate_scheduler_complete_token(c, 777, 0, nullptr, 0) == 1);   // unknown
  CHECK(keepstate_scheduler_complete_token(c, t1, 42, nullptr, 0) == 2);   // bad code
  keepstate_scheduler_run_for(c, 5.0, &r);
  CHECK(ok_out.payload == std::string("\x01\x02\x03"));
  CHECK(err_out.status.code() == Code::kOutOfSpace);
  CHECK(err_out.status.message() == "QuotaExceededError");
  clock.Advance(std::chrono::milliseconds(30));
  keepstate_scheduler_run_for(c, 5.0, &r);
  CHECK(r.has_timer == 0);
  CHECK(sched.live_fibers() == 0);
}

}  // namespace
