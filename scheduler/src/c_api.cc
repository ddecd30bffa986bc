// The scheduler's C ABI (see c_api.h); js-bindings exports these.
#include "keepstate/scheduler/c_api.h"

#include <span>
#include <string>

#include "keepstate/scheduler/scheduler.h"

using keepstate::Code;
using keepstate::Status;
using keepstate::scheduler::Duration;
using keepstate::scheduler::RunReport;
using keepstate::scheduler::Scheduler;

extern "C" void keepstate_scheduler_run_for(KeepstateScheduler* scheduler, double budget_ms,
                                            KeepstateRunResult* out) {
  auto* s = reinterpret_cast<Scheduler*>(scheduler);
  Duration budget = Duration::max();
  if (!(budget_ms > 0)) {
    budget = Duration::zero();
  } else if (budget_ms < 1e12) {
    budget = Duration(static_cast<Duration::rep>(budget_ms * 1e6));
  }
  const RunReport r = s->RunFor(budget);
  out->has_ready_work = r.ready ? 1 : 0;
  out->has_timer = r.next_deadline ? 1 : 0;
  out->next_timer_delay_ms = 0;
  if (r.next_deadline) {
    const Duration delay = *r.next_deadline - s->clock().Now();
    if (delay > Duration::zero()) out->next_timer_delay_ms = static_cast<double>(delay.count()) / 1e6;
  }
}

extern "C" int32_t keepstate_scheduler_complete_token(KeepstateScheduler* scheduler, uint32_t token,
                                                      int32_t code, const uint8_t* payload,
                                                      uint32_t size) {
  auto* s = reinterpret_cast<Scheduler*>(scheduler);
  if (code < 0 || code > 255 || keepstate::CodeName(static_cast<Code>(code)) == "unknown") {
    return static_cast<int32_t>(Code::kInvalidArgument);
  }
  const auto bytes = std::span<const uint8_t>(payload, payload == nullptr ? 0 : size);
  Status status;
  if (code != 0) status = Status(static_cast<Code>(code), std::string(bytes.begin(), bytes.end()));
  const Status result = s->CompleteToken(token, std::move(status), code == 0 ? bytes : std::span<const uint8_t>());
  return static_cast<int32_t>(result.code());
}
