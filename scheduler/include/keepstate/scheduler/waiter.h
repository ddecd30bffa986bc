// Intrusive nodes and queues for suspended coroutines (internal).
//
// A suspended coroutine is represented by a node that lives inside its own
// frame (in the awaiter it is suspended on), so queuing never allocates.
//
// - Waiter: a singly linked node for the scheduler's ready and admission
//   queues and its timer heap. The scheduler owns those structures and
//   clears them wholesale at shutdown, so a Waiter needs no unlinking.
// - WaitNode: a Waiter that can also sit in the wait list of a Channel,
//   Mutex, Event or WaitGroup. Those objects are owned by user code and may
//   outlive or predecease the fiber, so the node is doubly linked and unlinks
//   itself when its frame is destroyed, and a WaitList detaches its nodes
//   when it is destroyed first. A node is in at most one list at a time:
//   waking it removes it from its WaitList before it enters the ready queue
//   (reusing `next`).
//
// Invariant: `WaitNode::list` is non-null exactly while the node is linked in
// that WaitList.
#pragma once

#include <cstddef>

#include "keepstate/scheduler/coro.h"

namespace keepstate::scheduler {

class Scheduler;

namespace detail {

struct Waiter {
  Waiter* next = nullptr;
  coro::coroutine_handle<> handle;
};

// Intrusive FIFO of Waiters.
class WaiterQueue {
 public:
  bool empty() const { return head_ == nullptr; }
  void Push(Waiter* w) {
    w->next = nullptr;
    if (tail_ != nullptr) {
      tail_->next = w;
    } else {
      head_ = w;
    }
    tail_ = w;
  }
  Waiter* Pop() {
    Waiter* w = head_;
    if (w != nullptr) {
      head_ = w->next;
      if (head_ == nullptr) tail_ = nullptr;
    }
    return w;
  }
  // Forgets every node (their frames are being destroyed).
  void Clear() { head_ = tail_ = nullptr; }

 private:
  Waiter* head_ = nullptr;
  Waiter* tail_ = nullptr;
};

class WaitList;

struct WaitNode : Waiter {
  WaitNode() = default;
  WaitNode(const WaitNode&) = delete;
  WaitNode& operator=(const WaitNode&) = delete;
  inline ~WaitNode();

  WaitNode* prev = nullptr;
  WaitList* list = nullptr;     // see Invariant above
  Scheduler* sched = nullptr;   // whose ready queue the node goes to on wake
};

// Intrusive FIFO of WaitNodes with O(1) removal.
class WaitList {
 public:
  WaitList() = default;
  WaitList(const WaitList&) = delete;
  WaitList& operator=(const WaitList&) = delete;
  ~WaitList() {
    // The waiting fibers stay suspended (until their scheduler shuts down);
    // their nodes must not point at this list any more.
    for (WaitNode* n = head_; n != nullptr;) {
      WaitNode* next = static_cast<WaitNode*>(n->next);
      n->list = nullptr;
      n = next;
    }
  }

  bool empty() const { return head_ == nullptr; }
  WaitNode* front() const { return head_; }

  void PushBack(WaitNode* n) {
    n->list = this;
    n->next = nullptr;
    n->prev = tail_;
    if (tail_ != nullptr) {
      tail_->next = n;
    } else {
      head_ = n;
    }
    tail_ = n;
  }

  // REQUIRES: n->list == this.
  void Remove(WaitNode* n) {
    WaitNode* next = static_cast<WaitNode*>(n->next);
    if (n->prev != nullptr) {
      n->prev->next = next;
    } else {
      head_ = next;
    }
    if (next != nullptr) {
      next->prev = n->prev;
    } else {
      tail_ = n->prev;
    }
    n->next = nullptr;
    n->prev = nullptr;
    n->list = nullptr;
  }

  // Removes and returns the oldest node, or nullptr.
  WaitNode* PopFront() {
    WaitNode* n = head_;
    if (n != nullptr) Remove(n);
    return n;
  }

 private:
  WaitNode* head_ = nullptr;
  WaitNode* tail_ = nullptr;
};

inline WaitNode::~WaitNode() {
  if (list != nullptr) list->Remove(this);
}

// Trampoline slot for symmetric transfer between a Task and its awaiter.
// clang 14 cannot lower handle-returning await_suspend for wasm without the
// tail-call proposal, and g++ does not guarantee the tail call below -O2 or
// under ASan, so a chain of awaits would grow the native stack. Instead,
// await_suspend stores the coroutine to run next here and returns; the
// scheduler's resume loop (the only place that resumes coroutines) runs it
// immediately, before anything else. Same order as symmetric transfer,
// constant stack depth on every toolchain.
//
// Invariant: empty whenever no coroutine is running.
inline coro::coroutine_handle<> g_transfer;

}  // namespace detail
}  // namespace keepstate::scheduler
