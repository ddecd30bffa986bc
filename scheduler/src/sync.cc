// Mutex, WaitGroup and Event: the out-of-line wait/wake paths. See sync.h.
#include "keepstate/scheduler/sync.h"

#include <cassert>

namespace keepstate::scheduler {

namespace {
void Park(detail::WaitList& list, detail::WaitNode* node, coro::coroutine_handle<> h) {
  node->handle = h;
  node->sched = Scheduler::Current();
  list.PushBack(node);
}
void WakeAll(detail::WaitList& list) {
  while (detail::WaitNode* n = list.PopFront()) n->sched->MakeReady(n);
}
}  // namespace

void Mutex::LockAwaiter::await_suspend(coro::coroutine_handle<> h) {
  Park(mutex_->waiters_, this, h);
}

void Mutex::Unlock() {
  assert(locked_ && "Unlock of an unlocked Mutex");
  if (detail::WaitNode* n = waiters_.PopFront()) {
    // Ownership passes to the oldest waiter: locked_ stays true, so a fiber
    // arriving before it runs cannot barge in.
    n->sched->MakeReady(n);
    return;
  }
  locked_ = false;
}

void WaitGroup::WaitAwaiter::await_suspend(coro::coroutine_handle<> h) {
  Park(group_->waiters_, this, h);
}

void WaitGroup::Add(std::int64_t n) {
  count_ += n;
  // Invariant: the counter never goes negative (more Done than Add).
  assert(count_ >= 0 && "WaitGroup counter went negative");
  if (count_ == 0) WakeAll(waiters_);
}

void Event::WaitAwaiter::await_suspend(coro::coroutine_handle<> h) {
  Park(event_->waiters_, this, h);
}

void Event::Set() {
  set_ = true;
  WakeAll(waiters_);
}

}  // namespace keepstate::scheduler
