// Watchers: who listens to which keys of a store (Store.watch), and the
// delivery of changed keys to them.
//
// The engine records the keys of local writes (keepstate_store_watch); the
// store takes them once per task and hands them here with their values at
// that moment, so a listener sees each key once per task, with its newest
// value. A catch-up, a rebase and a reload hand over the exact difference of
// the states before and after (keepstate_store_diff). Ranges are matched on
// the keys' UTF-8 bytes, the order the engine keeps keys in.
import { Engine } from './engine.js';
import { InvalidArgumentError } from './errors.js';
import type { WatchChange, WatchEvent, WatchRange, WatchSource } from './types.js';
import type { RawChange } from './wire.js';

interface Watcher {
  matches(key: Uint8Array): boolean;
  listener: (event: WatchEvent) => void;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; ++i) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

/** The matcher of a range (InvalidArgumentError for anything but the three shapes). */
function matcherOf(range: WatchRange): (key: Uint8Array) => boolean {
  if (typeof range !== 'object' || range === null) throw new InvalidArgumentError('watch: range must be { key }, { prefix } or { start, end }');
  const r = range as { key?: unknown; prefix?: unknown; start?: unknown; end?: unknown };
  const given = (['key', 'prefix', 'start', 'end'] as const).filter((f) => r[f] !== undefined);
  for (const f of given) if (typeof r[f] !== 'string') throw new InvalidArgumentError(`watch: range.${f} must be a string`);
  if (given.includes('key')) {
    if (given.length !== 1) throw new InvalidArgumentError('watch: range { key } takes no other field');
    const key = Engine.encode(r.key as string);
    return (k) => compareBytes(k, key) === 0;
  }
  if (given.includes('prefix')) {
    if (given.length !== 1) throw new InvalidArgumentError('watch: range { prefix } takes no other field');
    const prefix = Engine.encode(r.prefix as string);
    return (k) => k.length >= prefix.length && compareBytes(k.subarray(0, prefix.length), prefix) === 0;
  }
  if (given.length === 0 && Object.keys(r).length > 0) throw new InvalidArgumentError('watch: range must be { key }, { prefix } or { start, end }');
  const start = r.start === undefined ? undefined : Engine.encode(r.start as string);
  const end = r.end === undefined ? undefined : Engine.encode(r.end as string);
  return (k) => (start === undefined || compareBytes(k, start) >= 0) && (end === undefined || compareBytes(k, end) < 0);
}

export class Watchers {
  private readonly watchers = new Set<Watcher>();

  /** Adds a listener; `onEmpty`/first-listener transitions are the caller's (see size). */
  add(range: WatchRange, listener: (event: WatchEvent) => void): () => void {
    if (typeof listener !== 'function') throw new InvalidArgumentError('watch: listener must be a function');
    const watcher: Watcher = { matches: matcherOf(range), listener };
    this.watchers.add(watcher);
    return () => {
      this.watchers.delete(watcher);
    };
  }

  get size(): number {
    return this.watchers.size;
  }

  /** Calls each listener whose range holds some of `changes` with those changes. */
  deliver(changes: RawChange[], version: number, source: WatchSource): void {
    if (changes.length === 0) return;
    for (const watcher of [...this.watchers]) {
      if (!this.watchers.has(watcher)) continue; // unsubscribed by an earlier listener
      const mine: WatchChange[] = [];
      for (const c of changes) if (watcher.matches(c.keyBytes)) mine.push({ key: c.key, value: c.value });
      if (mine.length === 0) continue;
      try {
        watcher.listener({ changes: mine, version, source });
      } catch (e) {
        // A throwing listener must not break the store or the other listeners.
        queueMicrotask(() => {
          throw e;
        });
      }
    }
  }
}
