// The store's lock: opens and commits of one store name run one at a time
// across tabs (and Workers) of an origin, under a Web Lock named after the
// store (not after any backend): `keepstate:<name>`. Where the realm has no
// Web Locks (Node), the store's own queue is what orders its work.
//
// The lock is held a little longer than the work it guards: until the
// backend's background clean-up of the last commit is done (`settled`,
// guarded.ts), so no other tab's open or commit sees it half done. The
// caller has its answer as soon as the work settles.
import { KeepstateError } from '../errors.js';

export interface Lock {
  /** Runs `fn` holding the lock; resolves with its result as soon as it settles. */
  <T>(fn: () => Promise<T>): Promise<T>;
  /** Throws unless some work holds this lock now (a REQUIRES check: LevelDB's AssertHeld). */
  assertHeld(): void;
}

interface WebLocks {
  request(name: string, fn: () => Promise<unknown>): Promise<unknown>;
}

/** The name of store `storeName`'s Web Lock. */
export function lockName(storeName: string): string {
  return `keepstate:${storeName}`;
}

/** The lock of store `storeName`; `settled()` resolves once work left after the last holder is done. */
export function storeLock(storeName: string, settled: () => Promise<void>): Lock {
  const locks = (globalThis as { navigator?: { locks?: WebLocks } }).navigator?.locks;
  const request = locks === undefined ? (fn: () => Promise<unknown>) => fn() : (fn: () => Promise<unknown>) => locks.request(lockName(storeName), fn);
  let held = 0;
  const lock = <T>(fn: () => Promise<T>) =>
    new Promise<T>((resolve, reject) => {
      request(async () => {
        ++held;
        try {
          await settled(); // where there are no Web Locks, the last commit's clean-up first
          try {
            resolve(await fn());
          } catch (e) {
            reject(e);
          }
          await settled();
        } finally {
          --held;
        }
      }).catch(reject);
    });
  return Object.assign(lock, {
    assertHeld(): void {
      if (held === 0) throw new KeepstateError('internal', `store "${storeName}": its lock is not held`);
    },
  });
}
