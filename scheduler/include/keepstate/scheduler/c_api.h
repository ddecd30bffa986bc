/* C ABI of the scheduler, for the browser driver in js-bindings.
 *
 * The JS driver calls keepstate_scheduler_run_for from a MessageChannel
 * task, then: if has_ready_work, posts another message; else if has_timer,
 * arms one setTimeout for next_timer_delay_ms. When JS finishes an external
 * operation it calls keepstate_scheduler_complete_token (and then schedules
 * a run, since a fiber became ready). Plain C types only, no exceptions.
 *
 * Protocol and error codes: docs/scheduler.md ("Tokens"). */
#pragma once

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A keepstate::scheduler::Scheduler seen from C. */
typedef struct KeepstateScheduler KeepstateScheduler;

typedef struct KeepstateRunResult {
  uint32_t has_ready_work;    /* 1: fibers are ready; run again soon. */
  uint32_t has_timer;         /* 1: next_timer_delay_ms is meaningful. */
  double next_timer_delay_ms; /* Delay until the earliest timer, >= 0. */
} KeepstateRunResult;

/* Runs ready fibers for about budget_ms milliseconds. */
void keepstate_scheduler_run_for(KeepstateScheduler* scheduler, double budget_ms,
                                 KeepstateRunResult* out);

/* Completes an external operation. code is a keepstate status code (0 = ok;
 * then the fiber receives the payload bytes; otherwise the payload is the
 * UTF-8 error message). Returns a status code: 0 ok, 1 not-found (unknown or
 * already consumed token), 2 invalid-argument (already completed, or code out
 * of range), 6 closed (scheduler shut down). The payload is copied. */
int32_t keepstate_scheduler_complete_token(KeepstateScheduler* scheduler, uint32_t token,
                                           int32_t code, const uint8_t* payload,
                                           uint32_t size);

#ifdef __cplusplus
}  // extern "C"
#endif

#ifdef __cplusplus
namespace keepstate::scheduler {
class Scheduler;
inline KeepstateScheduler* ToC(Scheduler* s) { return reinterpret_cast<KeepstateScheduler*>(s); }
}  // namespace keepstate::scheduler
#endif

