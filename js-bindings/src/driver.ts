// SchedulerDriver: runs the engine's fibers (autosave, and the SDK's
// mutator calls) from JS, as DESIGN.md's "Driving" describes.
//
// Each slice is one MessageChannel task that calls
// keepstate_scheduler_run_for with a time budget, so the page never stalls
// longer than the budget. If fibers are still ready, the next slice is posted
// right away (a message, never setTimeout(0), which browsers clamp to 4 ms);
// if fibers only sleep, one timer is armed for the earliest deadline. Then
// autosave requests the fibers made are handed to their stores, and each
// store's commit outcome completes the fiber's token.
//
// Invariants: at most one slice message is posted and at most one timer is
// armed at a time. In Node the port and the timer are unref'd whenever no
// store is open, so an idle engine never keeps a process alive.
import type { Engine } from './engine.js';
import { codeNumber, KeepstateError } from './errors.js';

interface NodeRef {
  ref?(): void;
  unref?(): void;
}

/** Milliseconds one slice may run fibers. */
export const SLICE_BUDGET_MS = 8;

export class SchedulerDriver {
  private readonly engine: Engine;
  private readonly channel = new MessageChannel();
  private posted = false;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private timerDue = Infinity;
  private readonly result: number; // KeepstateRunResult, 16 bytes
  private readonly callId: number; // u32 written by keepstate_call_take

  constructor(engine: Engine) {
    this.engine = engine;
    this.result = engine.module._malloc(16);
    this.callId = engine.module._malloc(4);
    this.channel.port1.onmessage = () => this.slice();
    (this.channel.port1 as unknown as NodeRef).unref?.();
  }

  /** Schedules a slice soon (idempotent while one is posted). */
  wake(): void {
    if (this.posted) return;
    this.posted = true;
    (this.channel.port1 as unknown as NodeRef).ref?.();
    this.channel.port2.postMessage(0);
  }

  private slice(): void {
    this.posted = false;
    (this.channel.port1 as unknown as NodeRef).unref?.();
    const m = this.engine.module;
    m._keepstate_scheduler_run_for(this.engine.scheduler, SLICE_BUDGET_MS, this.result);
    const view = new DataView(m.HEAPU8.buffer, this.result, 16);
    const ready = view.getUint32(0, true) !== 0;
    const hasTimer = view.getUint32(4, true) !== 0;
    const delay = view.getFloat64(8, true);
    this.takeAutosaveRequests();
    this.settleCalls();
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
    if (this.engine.stores.size === 0) (this.timer as unknown as NodeRef).unref?.();
  }

  /** Settles the promises of the mutator calls whose fibers finished. */
  private settleCalls(): void {
    const m = this.engine.module;
    for (;;) {
      const status = m._keepstate_call_take(this.callId);
      if (status === -1) break;
      const id = new DataView(m.HEAPU8.buffer).getUint32(this.callId, true);
      const call = this.engine.calls.get(id);
      this.engine.calls.delete(id);
      if (call === undefined) continue;
      if (status === 0) call.resolve(this.engine.outBytes());
      else call.reject(this.engine.error(status));
    }
  }

  private takeAutosaveRequests(): void {
    const m = this.engine.module;
    const out = m._malloc(4);
    try {
      for (;;) {
        const token = m._keepstate_autosave_take(out);
        if (token === 0) break;
        const handle = new DataView(m.HEAPU8.buffer).getUint32(out, true);
        const store = this.engine.stores.get(handle);
        const done = (code: number) => {
          m._keepstate_scheduler_complete_token(this.engine.scheduler, token, code, 0, 0);
          this.wake();
        };
        if (store === undefined) {
          done(codeNumber('closed'));
          continue;
        }
        store.autosave().then(
          () => done(0),
          (e: unknown) => done(e instanceof KeepstateError ? codeNumber(e.code) : codeNumber('internal')),
        );
      }
    } finally {
      m._free(out);
    }
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
