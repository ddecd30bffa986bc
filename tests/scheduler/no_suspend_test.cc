// NoSuspendScope: every scheduler awaitable reports a suspension attempt
// made inside the scope, whether or not it would have blocked.
#include <string>
#include <vector>

#include "keepstate/scheduler/channel.h"
#include "keepstate/scheduler/no_suspend.h"
#include "keepstate/scheduler/scheduler.h"
#include "keepstate/scheduler/sync.h"
#include "pool_check.h"

namespace ks = keepstate::scheduler;

namespace {

std::vector<std::string> violations;

void Record(const char* operation) { violations.emplace_back(operation); }

// Installs the recording handler for one test; restores the default after.
struct RecordViolations {
  RecordViolations() {
    violations.clear();
    ks::SetNoSuspendViolationHandler(Record);
  }
  ~RecordViolations() { ks::SetNoSuspendViolationHandler(nullptr); }
};

ks::Task<int> Leaf() { co_return 1; }

ks::Task<> SuspendsInsideScope(ks::Channel<int>* ch, ks::Event* ev) {
  co_await ks::Yield();  // outside: fine
  {
    ks::NoSuspendScope scope;
    CHECK(ks::NoSuspendScope::Active());
    co_await ks::Yield();
    co_await ks::SleepFor(ks::Duration::zero());
    (void)co_await ch->Send(1);  // would not block (room in the buffer)
    (void)co_await ch->Receive();
    co_await ev->Wait();  // already set: would not block
    (void)co_await Leaf();
  }
  CHECK_FALSE(ks::NoSuspendScope::Active());
  co_await ks::Yield();
}

TEST_CASE_METHOD(PoolCheck, "suspension attempts inside a NoSuspendScope are reported",
                 "[scheduler]") {
  RecordViolations recording;
  ks::Channel<int> ch(4);
  ks::Event ev;
  ev.Set();
  ks::Scheduler sched;
  sched.Spawn(SuspendsInsideScope(&ch, &ev));
  sched.RunUntilIdle();
  CHECK(sched.live_fibers() == 0);
  CHECK(violations == std::vector<std::string>{"Yield", "Sleep", "Channel::Send",
                                               "Channel::Receive", "Event::Wait",
                                               "co_await Task"});
}

TEST_CASE_METHOD(PoolCheck, "no-suspend scopes nest and code without awaits is unaffected",
                 "[scheduler]") {
  RecordViolations recording;
  CHECK_FALSE(ks::NoSuspendScope::Active());
  {
    ks::NoSuspendScope outer;
    {
      ks::NoSuspendScope inner;
      CHECK(ks::NoSuspendScope::depth() == 2);
    }
    CHECK(ks::NoSuspendScope::Active());
    ks::Mutex m;
    CHECK(m.TryLock());  // non-suspending calls are allowed
    m.Unlock();
  }
  CHECK(ks::NoSuspendScope::depth() == 0);
  CHECK(violations.empty());
}

}  // namespace
