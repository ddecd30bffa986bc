// SchedulerDriver: runs the engine's fibers (the SDK's mutator calls) from
// JS (docs/scheduler.md, "Driving").
//
// Each slice is one MessageChannel task that calls
// keepstate_scheduler_run_for with a time budget, so the page never stalls
// longer than the budget. If fibers are still ready, the next slice is posted
// right away (a message, never setTimeout(0), which browsers clamp to 4 ms);
// if fibers only sleep, one timer is armed for the earliest deadline. After
// each slice `afterSlice` runs (the engine settles finished calls there).
//
// Invariants: at most one slice message is posted and at most one timer is
// armed at a time. In Node the port is unref'd between slices and a timer is
// unref'd when `keepAlive()` says nothing needs the process, so an idle engine
// never keeps it alive.
import { QuotaError } from './errors.js';
import { WIRE } from './generated/abi.js';
import type { KeepstateModule } from './keepstate.js';

interface NodeRef {
  ref?(): void;
  unref?(): void;
}

/** Milliseconds one slice may run fibers. */
export const SLICE_BUDGET_MS = 8;

export class SchedulerDriver {
  private readonly channel = new MessageChannel();
  private posted = false;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private stopped = false;
  private timerDue = Infinity;
  private readonly result: number; // a KeepstateRunResult (WIRE.RUN_*)

  constructor(
    private readonly module: KeepstateModule,
    private readonly scheduler: number,
    private readonly afterSlice: () => void,
    private readonly keepAlive: () => boolean,
  ) {
    this.result = module._malloc(WIRE.RUN_RESULT_BYTES);
    if (this.result === 0) throw new QuotaError(`cannot allocate ${WIRE.RUN_RESULT_BYTES} bytes in wasm memory`);
    this.channel.port1.onmessage = () => this.slice();
    (this.channel.port1 as unknown as NodeRef).unref?.();
  }

  /** Schedules a slice soon (idempotent while one is posted). */
  wake(): void {
    if (this.posted || this.stopped) return;
    this.posted = true;
    (this.channel.port1 as unknown as NodeRef).ref?.();
    this.channel.port2.postMessage(0);
  }

  /**
   * Runs fibers now, in this task, until none is ready (a replayed mutator
   * call: docs/tabs.md), at most `maxSlices` budgets; then as after a slice.
   */
  runNow(maxSlices = 64): void {
    let run = this.run();
    for (let i = 1; run.ready && i < maxSlices; ++i) run = this.run();
    this.afterRun(run);
  }

  private slice(): void {
    this.posted = false;
    if (this.stopped) return;
    (this.channel.port1 as unknown as NodeRef).unref?.();
    try {
      this.afterRun(this.run());
    } catch (e) {
      // The module aborted while fibers ran: the Wasm retired it and told every store.
      if (!this.stopped) throw e;
    }
  }

  /** The module aborted: nothing is run again. */
  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.channel.port1.close();
  }

  private run(): { ready: boolean; hasTimer: boolean; delay: number } {
    const m = this.module;
    m._keepstate_scheduler_run_for(this.scheduler, SLICE_BUDGET_MS, this.result);
    const view = new DataView(m.HEAPU8.buffer, this.result, WIRE.RUN_RESULT_BYTES);
    return {
      ready: view.getUint32(WIRE.RUN_HAS_READY_WORK, true) !== 0,
      hasTimer: view.getUint32(WIRE.RUN_HAS_TIMER, true) !== 0,
      delay: view.getFloat64(WIRE.RUN_TIMER_DELAY_MS, true),
    };
  }

  private afterRun({ ready, hasTimer, delay }: { ready: boolean; hasTimer: boolean; delay: number }): void {
    this.afterSlice();
    if (ready) {
      this.wake();
    } else if (hasTimer) {
      this.armTimer(delay);
    }
  }

  private armTimer(delayMs: number): void {
    const due = performance.now() + delayMs;
    if (this.timer !== undefined && this.timerDue <= due) return;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timerDue = due;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.timerDue = Infinity;
      this.wake();
    }, Math.max(1, Math.ceil(delayMs)));
    if (!this.keepAlive()) (this.timer as unknown as NodeRef).unref?.();
  }
}

/** Runs `fn` in a later task (a MessageChannel message, never a clamped setTimeout(0)). */
export function postTask(fn: () => void): void {
  const channel = new MessageChannel();
  channel.port1.onmessage = () => {
    channel.port1.close();
    fn();
  };
  channel.port2.postMessage(0);
}
