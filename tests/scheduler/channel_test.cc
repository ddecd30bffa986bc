// Channel<T>: bounded blocking, direct hand-off, close semantics, many
// senders and receivers.
#include <algorithm>
#include <numeric>
#include <string>
#include <vector>

#include "keepstate/scheduler/channel.h"
#include "keepstate/scheduler/scheduler.h"
#include "keepstate/scheduler/sync.h"
#include "pool_check.h"

// Never co_await inside a Catch2 macro: the macro repeats its argument in a
// short-circuited branch, and g++ evaluates a co_await there anyway.

namespace ks = keepstate::scheduler;
using keepstate::Code;
using keepstate::Status;

namespace {

ks::Task<> Producer(ks::Channel<int>* ch, int n, std::vector<std::string>* log) {
  for (int i = 0; i < n; ++i) {
    Status s = co_await ch->Send(i);
    CHECK(s.ok());
    log->push_back("sent " + std::to_string(i));
  }
}

ks::Task<> Consumer(ks::Channel<int>* ch, int n, std::vector<std::string>* log) {
  for (int i = 0; i < n; ++i) {
    auto r = co_await ch->Receive();
    REQUIRE(r.ok());
    log->push_back("got " + std::to_string(*r));
  }
}

TEST_CASE_METHOD(PoolCheck, "send blocks while the channel is full", "[scheduler]") {
  ks::Channel<int> ch(2);
  ks::Scheduler sched;
  std::vector<std::string> log;
  sched.Spawn(Producer(&ch, 5, &log));
  sched.RunUntilIdle();
  CHECK(log == std::vector<std::string>{"sent 0", "sent 1"});
  CHECK(ch.size() == 2);
  CHECK(sched.live_fibers() == 1);

  sched.Spawn(Consumer(&ch, 5, &log));
  sched.RunUntilIdle();
  CHECK(sched.live_fibers() == 0);
  std::vector<std::string> got;
  for (const auto& e : log)
    if (e.rfind("got", 0) == 0) got.push_back(e);
  CHECK(got == std::vector<std::string>{"got 0", "got 1", "got 2", "got 3", "got 4"});
  CHECK(ch.size() == 0);
}

TEST_CASE_METHOD(PoolCheck, "a waiting receiver gets the value handed over directly",
                 "[scheduler]") {
  ks::Channel<std::string> ch(1);
  ks::Scheduler sched;
  std::string got;
  sched.Spawn([](ks::Channel<std::string>* c, std::string* out) -> ks::Task<> {
    auto r = co_await c->Receive();
    if (r.ok()) *out = *r;
  }(&ch, &got));
  sched.RunUntilIdle();
  CHECK(got.empty());
  sched.Spawn([](ks::Channel<std::string>* c) -> ks::Task<> {
    Status sent = co_await c->Send("hello");
    CHECK(sent.ok());
    CHECK(c->size() == 0);  // handed over, not buffered
  }(&ch));
  sched.RunUntilIdle();
  CHECK(got == "hello");
}

ks::Task<> ReceiveAll(ks::Channel<int>* ch, std::vector<int>* got, Status* end) {
  for (;;) {
    auto r = co_await ch->Receive();
    if (!r.ok()) {
      *end = r.status();
      co_return;
    }
    got->push_back(*r);
  }
}

TEST_CASE_METHOD(PoolCheck, "close drains buffered values, then receive reports kClosed",
                 "[scheduler]") {
  ks::Channel<int> ch(4);
  ks::Scheduler sched;
  std::vector<int> got;
  Status end;
  sched.Spawn([](ks::Channel<int>* c) -> ks::Task<> {
    Status first = co_await c->Send(1);
    CHECK(first.ok());
    Status second = co_await c->Send(2);
    CHECK(second.ok());
    c->Close();
    Status s = co_await c->Send(3);
    CHECK(s.code() == Code::kClosed);
  }(&ch));
  sched.RunUntilIdle();
  sched.Spawn(ReceiveAll(&ch, &got, &end));
  sched.RunUntilIdle();
  CHECK(got == std::vector<int>{1, 2});
  CHECK(end.code() == Code::kClosed);
}

TEST_CASE_METHOD(PoolCheck, "close wakes blocked receivers and blocked senders with kClosed",
                 "[scheduler]") {
  ks::Scheduler sched;
  ks::Channel<int> empty(1);
  ks::Channel<int> full(1);
  std::vector<int> got;
  Status receiver_end;
  Status sender_end;
  sched.Spawn(ReceiveAll(&empty, &got, &receiver_end));
  sched.Spawn([](ks::Channel<int>* c, Status* out) -> ks::Task<> {
    Status sent = co_await c->Send(1);
    CHECK(sent.ok());
    *out = co_await c->Send(2);  // blocks: buffer full
  }(&full, &sender_end));
  sched.RunUntilIdle();
  CHECK(sched.live_fibers() == 2);
  CHECK(receiver_end.ok());
  empty.Close();
  full.Close();
  sched.RunUntilIdle();
  CHECK(sched.live_fibers() == 0);
  CHECK(receiver_end.code() == Code::kClosed);
  CHECK(sender_end.code() == Code::kClosed);
  CHECK(full.size() == 1);  // the blocked value was not delivered
}

ks::Task<> SendRange(ks::Channel<int>* ch, int from, int n, ks::WaitGroup* wg) {
  for (int i = from; i < from + n; ++i) {
    Status s = co_await ch->Send(i);
    CHECK(s.ok());
    if (i % 7 == 0) co_await ks::Yield();
  }
  wg->Done();
}

ks::Task<> CloseWhenDone(ks::Channel<int>* ch, ks::WaitGroup* wg) {
  co_await wg->Wait();
  ch->Close();
}

TEST_CASE_METHOD(PoolCheck, "many senders and receivers deliver every value exactly once",
                 "[scheduler]") {
  constexpr int kSenders = 10;
  constexpr int kPerSender = 1000;
  constexpr int kReceivers = 7;
  ks::Channel<int> ch(4);
  ks::WaitGroup senders;
  ks::Scheduler sched;
  std::vector<std::vector<int>> got(kReceivers);
  std::vector<Status> ends(kReceivers);
  for (int r = 0; r < kReceivers; ++r) sched.Spawn(ReceiveAll(&ch, &got[r], &ends[r]));
  senders.Add(kSenders);
  for (int s = 0; s < kSenders; ++s) sched.Spawn(SendRange(&ch, s * kPerSender, kPerSender, &senders));
  sched.Spawn(CloseWhenDone(&ch, &senders));
  sched.RunUntilIdle();
  CHECK(sched.live_fibers() == 0);

  std::vector<int> all;
  int busy_receivers = 0;
  for (int r = 0; r < kReceivers; ++r) {
    CHECK(ends[r].code() == Code::kClosed);
    // Each receiver sees one sender's values in increasing order.
    if (!got[r].empty()) ++busy_receivers;
    all.insert(all.end(), got[r].begin(), got[r].end());
  }
  CHECK(busy_receivers > 1);  // the work was shared
  std::sort(all.begin(), all.end());
  std::vector<int> expected(kSenders * kPerSender);
  std::iota(expected.begin(), expected.end(), 0);
  CHECK(all == expected);
}

}  // namespace
