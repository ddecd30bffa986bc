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
import { useCallback, useRef, useSyncExternalStore } from 'react';
import { ClosedError } from './errors.js';
import type { Store } from './store.js';
import type { ScanOptions, WatchRange } from './types.js';

interface Snapshot<T> {
  /** Changes heard when it was read; a newer count means read again. */
  generation: number;
  /** What it was read for (a key or a range, as text): another one means read again. */
  identity: string;
  store: Store;
  value: T;
}

/** `read()` of `store`, re-read after every change in `range` (useSyncExternalStore). */
function useWatched<T>(store: Store, range: WatchRange, identity: string, read: () => T): T {
  const generation = useRef(0);
  const snapshot = useRef<Snapshot<T> | null>(null);
  const subscribe = useCallback(
    (changed: () => void) =>
      store.watch(range, () => {
        ++generation.current;
        changed();
      }),
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
      // A closed store keeps showing what it last held (a component may render once more while unmounting).
      if (e instanceof ClosedError && s !== null && s.store === store) return s.value;
      throw e;
    }
    snapshot.current = { generation: generation.current, identity, store, value };
    return value;
  };
  return useSyncExternalStore(subscribe, getSnapshot, getSnapshot);
}

/** The value of `key` (a copy), or undefined; re-renders when it changes. */
export function useValue(store: Store, key: string): Uint8Array | undefined {
  return useWatched(store, { key }, `key:${key}`, () => store.get(key));
}

/** The value of `key` decoded as UTF-8, or undefined. */
export function useText(store: Store, key: string): string | undefined {
  return useWatched(store, { key }, `key:${key}`, () => store.getText(key));
}

/** The value of `key` parsed as JSON, or undefined. */
export function useJSON<T = unknown>(store: Store, key: string): T | undefined {
  return useWatched(store, { key }, `key:${key}`, () => store.getJSON<T>(key));
}

/**
 * The entries of `options` (ScanOptions: prefix, start, end, limit, reverse), as store.scan
 * returns them; re-renders when a key in the prefix or [start, end) changes.
 */
export function useScan(store: Store, options: ScanOptions = {}): Array<[string, Uint8Array]> {
  const { prefix, start, end, limit, reverse } = options;
  const range: WatchRange = prefix !== undefined ? { prefix } : { start, end };
  const identity = `scan:${JSON.stringify([prefix, start, end, limit, reverse])}`;
  return useWatched(store, range, identity, () => store.scan({ prefix, start, end, limit, reverse }));
}
