// keepstate/react: React hooks over a store, built on Store.watch and
// React's useSyncExternalStore. A component re-renders when a key it reads
// changes — by this tab's writes, another tab's commits (follow), a rebase or
// a reload — and not otherwise: each hook watches only its key or range.
//
//   import { useJSON } from 'keepstate/react';
//   function Title({ store }) {
//     const todo = useJSON(store, 'todo/1');
//     return <h1>{todo?.title}</h1>;
//   }
//
// The store is opened by the app (openStore) and passed in; the hooks never
// write. A value read by a hook is the store's value at the last change the
// hook heard, the same object until the next one (as useSyncExternalStore
// requires of a snapshot).
//
// useStoreStatus shows the store's own state (version, dirty, closed) for a
// "saved" indicator: `{store.version}` read in render goes stale, the hook
// does not.
//
// close(): a mounted hook keeps the value it last read and stops listening;
// a hook mounted on a closed store reads undefined (an empty list for the
// scans). Nothing throws ClosedError during render.
import { useCallback, useRef, useSyncExternalStore } from 'react';
import { ClosedError } from './errors.js';
import type { Store } from './store.js';
import type { ScanOptions, WatchRange } from './types.js';
import { storeStatus, watchStatus, type StoreStatus } from './status.js';

export type { StoreStatus } from './status.js';

interface Snapshot<T> {
  /** Changes heard when it was read; a newer count means read again. */
  generation: number;
  /** What it was read for (a key or a range, as text): another one means read again. */
  identity: string;
  store: Store;
  value: T;
}

/** `read()` of `store`, re-read after every change in `range` (useSyncExternalStore). */
function useWatched<T>(store: Store, range: WatchRange, identity: string, read: () => T, whenClosed: T): T {
  const generation = useRef(0);
  const snapshot = useRef<Snapshot<T> | null>(null);
  const subscribe = useCallback(
    (changed: () => void) => {
      try {
        return store.watch(range, () => {
          ++generation.current;
          changed();
        });
      } catch (e) {
        // Closed: nothing will change any more.
        if (e instanceof ClosedError) return () => undefined;
        throw e;
      }
    },
    // The range is described by `identity`; a new object for the same range must not resubscribe.
    [store, identity],
  );
  const getSnapshot = () => {
    const s = snapshot.current;
    if (s !== null && s.generation === generation.current && s.identity === identity && s.store === store) return s.value;
    let value: T;
    try {
      value = read();
    } catch (e) {
      // A closed store keeps showing what it last held for this key or range (a component may
      // render again after close, e.g. while unmounting); what it never read is `whenClosed`.
      if (!(e instanceof ClosedError)) throw e;
      value = s !== null && s.store === store && s.identity === identity ? s.value : whenClosed;
    }
    snapshot.current = { generation: generation.current, identity, store, value };
    return value;
  };
  return useSyncExternalStore(subscribe, getSnapshot, getSnapshot);
}

/** The value of `key` (a copy), or undefined; re-renders when it changes. */
export function useValue(store: Store, key: string): Uint8Array | undefined {
  return useWatched(store, { key }, `key:${key}`, () => store.get(key), undefined);
}

/** The value of `key` decoded as UTF-8, or undefined. */
export function useText(store: Store, key: string): string | undefined {
  return useWatched(store, { key }, `key:${key}`, () => store.getText(key), undefined);
}

/** The value of `key` parsed as JSON, or undefined. */
export function useJSON<T = unknown>(store: Store, key: string): T | undefined {
  return useWatched(store, { key }, `key:${key}`, () => store.getJSON<T>(key), undefined);
}

/**
 * The entries of `options` (ScanOptions: prefix, start, end, limit, reverse), as store.scan
 * returns them; re-renders when a key in the prefix or [start, end) changes.
 */
export function useScan(store: Store, options: ScanOptions = {}): Array<[string, Uint8Array]> {
  const { prefix, start, end, limit, reverse } = options;
  const range: WatchRange = prefix !== undefined ? { prefix } : { start, end };
  const identity = `scan:${JSON.stringify([prefix, start, end, limit, reverse])}`;
  return useWatched(store, range, identity, () => store.scan({ prefix, start, end, limit, reverse }), EMPTY);
}

const EMPTY: never[] = [];
const textDecoder = new TextDecoder();

/**
 * useScan with each value parsed as JSON (as putJSON wrote it): `[key, value]` pairs in key
 * order. The array, and each value in it, stay the same objects until a key in the range
 * changes. A value that is not JSON throws a SyntaxError naming its key.
 */
export function useScanJSON<T = unknown>(store: Store, options: ScanOptions = {}): Array<[string, T]> {
  const { prefix, start, end, limit, reverse } = options;
  const range: WatchRange = prefix !== undefined ? { prefix } : { start, end };
  const identity = `scanJSON:${JSON.stringify([prefix, start, end, limit, reverse])}`;
  return useWatched(
    store,
    range,
    identity,
    () =>
      store.scan({ prefix, start, end, limit, reverse }).map(([key, bytes]): [string, T] => {
        try {
          return [key, JSON.parse(textDecoder.decode(bytes)) as T];
        } catch (e) {
          throw new SyntaxError(`useScanJSON: the value of "${key}" is not JSON (${(e as Error).message})`);
        }
      }),
    EMPTY,
  );
}

/**
 * The store's own state — `{ version, dirty, closed }` (StoreStatus) — re-rendering when it
 * changes: after this tab's writes and commits, another tab's commits it followed, a rebase,
 * a reload and close(). For a "saved, version N" indicator:
 *
 *   const { version, dirty } = useStoreStatus(store);
 *   return <span>{dirty ? 'saving…' : `saved, version ${version}`}</span>;
 */
export function useStoreStatus(store: Store): StoreStatus {
  const snapshot = useRef<{ store: Store; status: StoreStatus } | null>(null);
  const subscribe = useCallback((changed: () => void) => watchStatus(store, changed), [store]);
  const getSnapshot = () => {
    const now = storeStatus(store);
    const s = snapshot.current;
    // The same object while nothing changed (useSyncExternalStore compares with Object.is).
    if (s !== null && s.store === store && s.status.version === now.version && s.status.dirty === now.dirty && s.status.closed === now.closed) {
      return s.status;
    }
    snapshot.current = { store, status: now };
    return now;
  };
  return useSyncExternalStore(subscribe, getSnapshot, getSnapshot);
}
