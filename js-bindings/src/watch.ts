// Watchers: who listens to which keys of a store (Store.watch), and the
// delivery of changed keys to them.
//
// The module records the keys of local writes (keepstate_store_watch); the
// store takes them when the code that wrote returns (a microtask) and hands
// them here with their values at that moment, so a listener sees each key
// once per synchronous run of writes, with its newest value. A catch-up, a rebase and a reload hand over the exact difference of
// the states before and after (keepstate_store_diff). Ranges are matched on
// the keys' UTF-8 bytes, the order the engine keeps keys in (engine/).
import { WIRE } from './generated/abi.js';
import { Wasm } from './wasm.js';
import { InvalidArgumentError } from './errors.js';
import type { WatchChange, WatchEvent, WatchRange, WatchSource } from './types.js';
import type { RawChange } from './wire.js';

/** A watcher's keys as a byte range: [start, end), no end: unbounded. */
interface Bounds {
  start: Uint8Array;
  end: Uint8Array | undefined;
}

interface Watcher extends Bounds {
  listener: (event: WatchEvent) => void;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; ++i) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

/** The first key after every key starting with `prefix` (undefined: none, all 0xFF). */
function prefixEnd(prefix: Uint8Array): Uint8Array | undefined {
  let n = prefix.length;
  while (n > 0 && prefix[n - 1] === 0xff) --n;
  if (n === 0) return undefined;
  const end = prefix.slice(0, n);
  end[n - 1]! += 1;
  return end;
}

/** The bounds of a range (InvalidArgumentError for anything but the three shapes). */
function boundsOf(range: WatchRange): Bounds {
  if (typeof range !== 'object' || range === null) throw new InvalidArgumentError('watch: range must be { key }, { prefix } or { start, end }');
  const r = range as { key?: unknown; prefix?: unknown; start?: unknown; end?: unknown };
  const fields = Object.keys(r).filter((f) => r[f as keyof typeof r] !== undefined);
  for (const f of fields) {
    if (!['key', 'prefix', 'start', 'end'].includes(f)) throw new InvalidArgumentError(`watch: unknown range field "${f}"`);
    if (typeof r[f as keyof typeof r] !== 'string') throw new InvalidArgumentError(`watch: range.${f} must be a string`);
  }
  if (fields.includes('key') || fields.includes('prefix')) {
    if (fields.length !== 1) throw new InvalidArgumentError('watch: a range { key } or { prefix } takes no other field');
  }
  if (r.key !== undefined) {
    const key = Wasm.encode(r.key as string);
    const end = new Uint8Array(key.length + 1);
    end.set(key);
    return { start: key, end }; // [key, key + "\0"): exactly the key
  }
  if (r.prefix !== undefined) {
    const prefix = Wasm.encode(r.prefix as string);
    return { start: prefix, end: prefixEnd(prefix) };
  }
  return {
    start: r.start === undefined ? new Uint8Array(0) : Wasm.encode(r.start as string),
    end: r.end === undefined ? undefined : Wasm.encode(r.end as string),
  };
}

const matches = (w: Bounds, key: Uint8Array) => compareBytes(key, w.start) >= 0 && (w.end === undefined || compareBytes(key, w.end) < 0);

export class Watchers {
  private readonly watchers = new Set<Watcher>();

  /** Adds a listener; the caller passes encodeRanges() to the replica afterwards (and after the remover runs). */
  add(range: WatchRange, listener: (event: WatchEvent) => void): () => void {
    if (typeof listener !== 'function') throw new InvalidArgumentError('watch: listener must be a function');
    const watcher: Watcher = { ...boundsOf(range), listener };
    this.watchers.add(watcher);
    return () => {
      this.watchers.delete(watcher);
    };
  }

  get size(): number {
    return this.watchers.size;
  }

  /** Every watcher's range, for the replica to record only writes in them (WIRE.WATCH_*; none: recording off). */
  encodeRanges(): Uint8Array {
    const all = [...this.watchers];
    const size = 4 + all.reduce((n, w) => n + 8 + w.start.length + (w.end?.length ?? 0), 0);
    const out = new Uint8Array(size);
    const view = new DataView(out.buffer);
    view.setUint32(0, all.length, true);
    let at = 4;
    for (const w of all) {
      view.setUint32(at, w.start.length, true);
      out.set(w.start, at + 4);
      at += 4 + w.start.length;
      view.setUint32(at, w.end === undefined ? WIRE.WATCH_UNBOUNDED : w.end.length, true);
      at += 4;
      if (w.end !== undefined) {
        out.set(w.end, at);
        at += w.end.length;
      }
    }
    return out;
  }

  /** Calls each listener whose range holds some of `changes` with those changes. */
  deliver(changes: RawChange[], version: number, source: WatchSource): void {
    if (changes.length === 0) return;
    for (const watcher of [...this.watchers]) {
      if (!this.watchers.has(watcher)) continue; // unsubscribed by an earlier listener
      const mine: WatchChange[] = [];
      for (const c of changes) if (matches(watcher, c.keyBytes)) mine.push({ key: c.key, value: c.value });
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
