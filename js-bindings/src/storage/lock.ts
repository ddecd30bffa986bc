// The store's lock: opens and commits of one store name run one at a time
// across tabs (and Workers) of an origin, under a Web Lock named after the
// store (not after any backend): `keepstate:<name>`. Where the realm has no
// Web Locks (Node), the store's own queue is what orders its work.
//
// The lock is held a little longer than the work it guards: until the
// backend's background clean-up of the last commit is done (`settled`,
// guarded.ts), so no other tab's open or commit sees it half done. The
// caller has its answer as soon as the work settles.
export type Lock = <T>(fn: () => Promise<T>) => Promise<T>;

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
  return <T>(fn: () => Promise<T>) =>
    new Promise<T>((resolve, reject) => {
      request(async () => {
        await settled(); // where there are no Web Locks, the last commit's clean-up first
        try {
          resolve(await fn());
        } catch (e) {
          reject(e);
        }
        await settled();
      }).catch(reject);
    });
}
