// Running a C++ mutator call (keepstate_call, through the replica) to
// completion at once, for a rebase's replay (docs/tabs.md).
import type { Replica } from './replica.js';

/**
 * Runs mutator `name` on `replica`, driving the scheduler in this task: null if it finished
 * so (throwing its error if it failed), else a promise of its end (it suspended on a timer
 * or a token), which rejects with its error.
 */
export function runCallNow(replica: Replica, name: string, args: Uint8Array): Promise<void> | null {
  const wasm = replica.wasm;
  const id = replica.startCall(name, args);
  let outcome: { error: unknown } | undefined;
  let wake: (() => void) | undefined;
  const settle = (error: unknown) => {
    outcome = { error };
    wake?.();
  };
  wasm.calls.set(id, { resolve: () => settle(undefined), reject: (e) => settle(e) });
  wasm.driver.runNow();
  const finish = () => {
    if (outcome!.error !== undefined) throw outcome!.error;
  };
  if (outcome !== undefined) {
    finish();
    return null;
  }
  return new Promise<void>((resolve) => (wake = resolve)).then(finish);
}
