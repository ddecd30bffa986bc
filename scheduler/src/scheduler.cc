// Scheduler: the run loop, timers, admission, shutdown and tokens.
// See scheduler.h for the states and queues, docs/scheduler.md for why.
#include "keepstate/scheduler/scheduler.h"

#include <algorithm>
#include <cassert>
#include <string>

namespace keepstate::scheduler {

namespace {
SteadyClock& DefaultClock() {
  static SteadyClock clock;
  return clock;
}
// Orders the timer heap as a min-heap on (deadline, seq): equal deadlines
// fire in the order they were set.
struct LaterTimer {
  template <typename T>
  bool operator()(const T& a, const T& b) const {
    return a.deadline != b.deadline ? a.deadline > b.deadline : a.seq > b.seq;
  }
};
}  // namespace

namespace detail {
void FinishCoroutine(PromiseBase& p, coro::coroutine_handle<> self) noexcept {
  if (p.spawned) Scheduler::Current()->UnlinkLive(&p);
  if (p.continuation) {
    // Symmetric transfer, trampolined: ResumeOne runs it next.
    g_transfer = p.continuation;
    return;
  }
  // A spawned fiber nobody joins frees itself; otherwise the JoinHandle (or
  // the owning Task) frees the frame after taking the result.
  if (p.spawned && p.join == nullptr) self.destroy();
}
}  // namespace detail

Scheduler::Scheduler() : clock_(&DefaultClock()) {}
Scheduler::Scheduler(Clock& clock) : clock_(&clock) {}
Scheduler::~Scheduler() { Shutdown(); }

void Scheduler::LinkLive(detail::PromiseBase* p) {
  p->live_prev = nullptr;
  p->live_next = live_head_;
  if (live_head_ != nullptr) live_head_->live_prev = p;
  live_head_ = p;
  ++live_count_;
}

void Scheduler::UnlinkLive(detail::PromiseBase* p) {
  if (p->live_prev != nullptr) {
    p->live_prev->live_next = p->live_next;
  } else {
    live_head_ = p->live_next;
  }
  if (p->live_next != nullptr) p->live_next->live_prev = p->live_prev;
  p->live_prev = p->live_next = nullptr;
  --live_count_;
}

void Scheduler::AddTimer(TimePoint deadline, detail::Waiter* w) {
  timers_.push_back(Timer{deadline, timer_seq_++, w});
  std::push_heap(timers_.begin(), timers_.end(), LaterTimer{});
}

bool Scheduler::FireDueTimers(TimePoint now) {
  bool fired = false;
  while (!timers_.empty() && timers_.front().deadline <= now) {
    std::pop_heap(timers_.begin(), timers_.end(), LaterTimer{});
    ready_.Push(timers_.back().waiter);
    timers_.pop_back();
    fired = true;
  }
  return fired;
}

inline void Scheduler::ResumeOne(coro::coroutine_handle<> h) {
  h.resume();
  // Invariant: only Task/JoinHandle completion and Task awaits set it, and
  // each resumption sets it at most once.
  while (detail::g_transfer) {
    coro::coroutine_handle<> next = detail::g_transfer;
    detail::g_transfer = nullptr;
    next.resume();
  }
}

RunReport Scheduler::RunFor(Duration budget) {
  RunReport report;
  if (closed_) return report;
  Scheduler* const previous = current_;
  current_ = this;
  TimePoint now = clock_->Now();
  const TimePoint end = SaturatingAdd(now, budget);
  FireDueTimers(now);
  std::uint64_t resumed = 0;
  for (;;) {
    // Hot path: drain up to one check interval of woken fibers with nothing
    // but queue operations between switches.
    std::uint32_t n = 0;
    while (n < kClockCheckInterval) {
      detail::Waiter* w = ready_.Pop();
      if (w == nullptr) break;
      ResumeOne(w->handle);
      ++n;
    }
    resumed += n;
    if (n == kClockCheckInterval) {
      streak_ += n;
      if (streak_ >= kAdmitAfterStreak && admission_size_ > 0) {
        // The ready queue has not drained for a while: let one new fiber in
        // so that a busy ring cannot starve admission.
        streak_ = 0;
        ResumeOne(PopAdmission()->handle);
        ++resumed;
      }
    } else if (admission_size_ > 0) {
      // Everything woken has run: start a batch of new fibers. Only fibers
      // already queued count; those they spawn wait for the next round,
      // behind whatever this batch wakes.
      streak_ = 0;
      std::size_t batch = std::min<std::size_t>(admission_size_, kAdmitBatch);
      resumed += batch;
      while (batch-- > 0) ResumeOne(PopAdmission()->handle);
    } else {
      streak_ = 0;
      if (ready_.empty() && (timers_.empty() || !FireDueTimers(clock_->Now()))) break;
      continue;
    }
    now = clock_->Now();
    FireDueTimers(now);
    if (now >= end) break;
  }
  current_ = previous;
  report.resumed = resumed;
  report.ready = !ready_.empty() || admission_size_ > 0;
  if (!timers_.empty()) {
    report.next_deadline = timers_.front().deadline;
    if (!report.ready && *report.next_deadline <= clock_->Now()) report.ready = true;
  }
  return report;
}

RunReport Scheduler::Run() {
  std::uint64_t resumed = 0;
  for (;;) {
    RunReport r = RunFor(Duration::max());
    resumed += r.resumed;
    if (!r.ready) {
      if (!r.next_deadline) {
        r.resumed = resumed;
        return r;
      }
      clock_->SleepUntil(*r.next_deadline);
    }
  }
}

void Scheduler::Shutdown() {
  if (closed_) return;
  closed_ = true;
  Scheduler* const previous = current_;
  // Destructors of fiber locals may touch the scheduler (e.g. a MutexLock
  // waking a waiter); wakes land in ready_, which is discarded below.
  current_ = this;
  timers_.clear();
  tokens_.clear();
  while (live_head_ != nullptr) {
    detail::PromiseBase* p = live_head_;
    UnlinkLive(p);
    if (p->join != nullptr) {
      p->join->Cancel();
      p->join = nullptr;
    }
    p->start.handle.destroy();
  }
  ready_.Clear();
  admission_.Clear();
  admission_size_ = 0;
  current_ = previous;
}

std::uint32_t Scheduler::CreateToken() {
  if (closed_) return 0;  // 0 is never a valid token: awaiting it yields kClosed
  std::uint32_t token;
  do {
    token = next_token_++;
  } while (token == 0 || tokens_.count(token) != 0);  // after wrap-around
  tokens_.emplace(token, TokenSlot{});
  return token;
}

bool Scheduler::TryTakeToken(std::uint32_t token, std::optional<Result<Bytes>>* out) {
  if (closed_) {
    out->emplace(Status::Closed("scheduler is shut down"));
    return true;
  }
  auto it = tokens_.find(token);
  if (it == tokens_.end()) {
    out->emplace(Status::NotFound("unknown or already consumed token " + std::to_string(token)));
    return true;
  }
  TokenSlot& slot = it->second;
  if (slot.waiter != nullptr) {
    out->emplace(Status::InvalidArgument("token " + std::to_string(token) +
                                         " is already awaited by another fiber"));
    return true;
  }
  if (slot.early) {
    *out = std::move(slot.early);
    tokens_.erase(it);
    return true;
  }
  return false;
}

void Scheduler::ParkOnToken(std::uint32_t token, detail::Waiter* w,
                            std::optional<Result<Bytes>>* out) {
  // TryTakeToken just checked that the slot exists and is free, and nothing
  // ran in between.
  TokenSlot& slot = tokens_.find(token)->second;
  slot.waiter = w;
  slot.out = out;
}

Status Scheduler::CompleteToken(std::uint32_t token, Status status,
                                std::span<const std::uint8_t> payload) {
  if (closed_) return Status::Closed("scheduler is shut down; token " + std::to_string(token) + " was cancelled");
  auto it = tokens_.find(token);
  if (it == tokens_.end()) {
    return Status::NotFound("unknown or already consumed token " + std::to_string(token));
  }
  TokenSlot& slot = it->second;
  if (slot.early) {
    return Status::InvalidArgument("token " + std::to_string(token) + " is already completed");
  }
  Result<Bytes> outcome = status.ok() ? Result<Bytes>(Bytes(payload.begin(), payload.end()))
                                      : Result<Bytes>(std::move(status));
  if (slot.waiter != nullptr) {
    detail::Waiter* w = slot.waiter;
    slot.out->emplace(std::move(outcome));
    tokens_.erase(it);
    MakeReady(w);
  } else {
    slot.early.emplace(std::move(outcome));
  }
  return Status::Ok();
}

}  // namespace keepstate::scheduler
