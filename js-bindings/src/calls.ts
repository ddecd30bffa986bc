// Starting a C++ mutator call (keepstate_call) and, for a rebase's replay,
// running one to completion at once (docs/tabs.md).
import { Engine } from './engine.js';

/** Starts mutator `name` on engine store `handle` with a copy of `args`; returns the call id. */
export function startCall(engine: Engine, handle: number, name: string, args: Uint8Array): number {
  const m = engine.module;
  const n = Engine.encode(name);
  // 4 bytes for the call id the engine writes back, then the name and the args.
  const [idPtr, namePtr, argsPtr] = engine.stage(new Uint8Array(4), n, args);
  engine.check(m._keepstate_call(handle, namePtr!, n.length, argsPtr!, args.length, idPtr!));
  return new DataView(m.HEAPU8.buffer).getUint32(idPtr!, true);
}

/**
 * Runs mutator `name` on engine store `handle`, driving the scheduler in this task: null if
 * it finished so (throwing its error if it failed), else a promise of its end (it suspended
 * on a timer or a token), which rejects with its error.
 */
export function runCallNow(engine: Engine, handle: number, name: string, args: Uint8Array): Promise<void> | null {
  const id = startCall(engine, handle, name, args);
  let outcome: { error: unknown } | undefined;
  let wake: (() => void) | undefined;
  const settle = (error: unknown) => {
    outcome = { error };
    wake?.();
  };
  engine.calls.set(id, { resolve: () => settle(undefined), reject: (e) => settle(e) });
  engine.driver.runNow();
  const finish = () => {
    if (outcome!.error !== undefined) throw outcome!.error;
  };
  if (outcome !== undefined) {
    finish();
    return null;
  }
  return new Promise<void>((resolve) => (wake = resolve)).then(finish);
}
