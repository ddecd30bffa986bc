// Channel<T>: a bounded FIFO between fibers, with close().
//
// Semantics (Go-like):
// - Send waits while the buffer is full; it hands the value straight to a
//   waiting receiver when there is one. Send on a closed channel yields
//   kClosed (also for senders that were waiting when it closed: their value
//   is not delivered).
// - Receive takes the oldest value (refilling the buffer from the oldest
//   waiting sender); on a closed channel it still drains buffered values,
//   then yields kClosed.
// - Waiters are served FIFO; a woken fiber goes to the back of the ready
//   queue (it is not run inline).
//
// Invariants: waiting receivers exist only while the buffer is empty;
// waiting senders only while it is full; no waiter once closed.
//
// Memory: the ring buffer is allocated once, at construction. A channel may
// be destroyed with fibers still waiting (they stay parked until shutdown).
#pragma once

#include <cstddef>
#include <optional>
#include <utility>
#include <vector>

#include "keepstate/scheduler/no_suspend.h"
#include "keepstate/scheduler/scheduler.h"
#include "keepstate/scheduler/waiter.h"
#include "keepstate/status.h"

namespace keepstate::scheduler {

template <typename T>
class Channel {
 public:
  // REQUIRES: capacity >= 1.
  explicit Channel(std::size_t capacity) : ring_(capacity) {}
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;

  class SendAwaiter : public detail::WaitNode {
   public:
    bool await_ready() {
      detail::CheckSuspendAllowed("Channel::Send");
      return channel_->TrySend(value_, &result_);
    }
    void await_suspend(coro::coroutine_handle<> h) {
      handle = h;
      sched = Scheduler::Current();
      channel_->senders_.PushBack(this);
    }
    [[nodiscard]] Status await_resume() { return std::move(result_); }

   private:
    friend class Channel;
    SendAwaiter(Channel* c, T v) : channel_(c), value_(std::move(v)) {}
    Channel* channel_;
    T value_;
    Status result_;
  };

  class ReceiveAwaiter : public detail::WaitNode {
   public:
    bool await_ready() {
      detail::CheckSuspendAllowed("Channel::Receive");
      return channel_->TryReceive(&result_);
    }
    void await_suspend(coro::coroutine_handle<> h) {
      handle = h;
      sched = Scheduler::Current();
      channel_->receivers_.PushBack(this);
    }
    Result<T> await_resume() { return std::move(*result_); }

   private:
    friend class Channel;
    explicit ReceiveAwaiter(Channel* c) : channel_(c) {}
    Channel* channel_;
    std::optional<Result<T>> result_;
  };

  // co_await yields Status (ok, or kClosed).
  SendAwaiter Send(T value) { return SendAwaiter(this, std::move(value)); }
  // co_await yields Result<T> (a value, or kClosed once closed and drained).
  ReceiveAwaiter Receive() { return ReceiveAwaiter(this); }

  // Wakes every waiter with kClosed. Buffered values stay receivable.
  void Close() {
    if (closed_) return;
    closed_ = true;
    while (detail::WaitNode* n = senders_.PopFront()) {
      static_cast<SendAwaiter*>(n)->result_ = Status::Closed("send on a closed channel");
      n->sched->MakeReady(n);
    }
    while (detail::WaitNode* n = receivers_.PopFront()) {
      static_cast<ReceiveAwaiter*>(n)->result_.emplace(Status::Closed("receive on a closed channel"));
      n->sched->MakeReady(n);
    }
  }

  bool closed() const { return closed_; }
  std::size_t size() const { return count_; }
  std::size_t capacity() const { return ring_.size(); }

 private:
  // Completes a send without waiting if possible.
  bool TrySend(T& value, Status* result) {
    if (closed_) {
      *result = Status::Closed("send on a closed channel");
      return true;
    }
    if (detail::WaitNode* n = receivers_.PopFront()) {
      static_cast<ReceiveAwaiter*>(n)->result_.emplace(std::move(value));
      n->sched->MakeReady(n);
      return true;
    }
    if (count_ < ring_.size()) {
      Put(std::move(value));
      return true;
    }
    return false;
  }

  bool TryReceive(std::optional<Result<T>>* out) {
    if (count_ > 0) {
      out->emplace(Take());
      if (detail::WaitNode* n = senders_.PopFront()) {
        auto* s = static_cast<SendAwaiter*>(n);
        Put(std::move(s->value_));
        n->sched->MakeReady(n);
      }
      return true;
    }
    if (closed_) {
      out->emplace(Status::Closed("receive on a closed, empty channel"));
      return true;
    }
    return false;
  }

  void Put(T&& v) {
    std::size_t tail = head_ + count_;
    if (tail >= ring_.size()) tail -= ring_.size();
    ring_[tail].emplace(std::move(v));
    ++count_;
  }
  T Take() {
    T v = std::move(*ring_[head_]);
    ring_[head_].reset();
    if (++head_ == ring_.size()) head_ = 0;
    --count_;
    return v;
  }

  std::vector<std::optional<T>> ring_;
  std::size_t head_ = 0;
  std::size_t count_ = 0;
  bool closed_ = false;
  detail::WaitList senders_;
  detail::WaitList receivers_;
};

}  // namespace keepstate::scheduler
