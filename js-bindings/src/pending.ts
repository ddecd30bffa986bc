// PendingLog: a store's own work since the version its state is based on, in
// the order it was done — what a rebase replays on top of another tab's
// newer commit (docs/tabs.md).
//
// Entries: blind writes (put/delete, coalesced per key between the entries
// that read: only the last write of a key matters there), transaction
// closures, and mutator calls (name and a copy of the args). A commit seals
// the log where it captured the state; once it lands, the sealed entries are
// dropped (they are in the stored version) and what came after stays.
//
// Invariant: replaying every entry, in order, on the state the log is based
// on gives the store's state (the transaction and call rule of docs/tabs.md:
// a transaction function and a mutator must depend only on what they read).
//
// Lazy writes: a blind write is logged as its key only ("lazy": its value is
// the key's value in the engine now) as long as nothing but blind writes of
// the same run wrote that key since, so most writes copy nothing; a value is
// read out of the engine ("materialized") only when that would stop being
// true, or for a rebase:
//  - a transaction is about to write a lazy key: that key (beforeTransactionWrite);
//  - a blind write follows a transaction, or a mutator call is logged (calls
//    write keys JS does not see): every lazy key (beforeWrite, materialize);
//  - before a rebase swaps the state (replay needs the values of this state).
// Invariant: the lazy entries (`lazyRun`) are consecutive writes entries
// (only seals between them), followed in the log by transaction entries
// only; for each lazy key of one, the engine holds the value of the last
// write of that key in the run, and no later entry wrote it. A seal reads
// nothing, so a key written again in a later entry of the run may replay
// with the later value in both.
// Blind writes made while a mutator call is in flight are copied (`lazy`
// false): the call may write the same keys later.
import type { RebaseDrop, Transaction } from './types.js';

/** Blind writes: values (null: a delete) and lazy keys, whose value is the engine's; a value in `writes` is newer than the same key in `lazy`. */
interface Writes {
  kind: 'writes';
  writes: Map<string, Uint8Array | string | null>;
  lazy: string[];
  /** `lazy` as a set, made when a transaction first asks (beforeTransactionWrite). */
  lazySet: Set<string> | undefined;
  /** `lazy` is deduplicated when it reaches this length (a key written over and over). */
  compactAt: number;
}

export type Entry =
  | Writes
  | { kind: 'transaction'; fn: (tx: Transaction) => unknown }
  | { kind: 'call'; name: string; args: Uint8Array };

const COMPACT_MIN = 1024;

/** How a replay runs each kind of entry on the new state; each throws if the entry fails now. */
export interface Replayer {
  put(key: string, value: Uint8Array | string): void;
  delete(key: string): void;
  transaction(fn: (tx: Transaction) => unknown): void;
  /** Resolves (possibly at once) when the mutator finished; rejects with its error. */
  call(name: string, args: Uint8Array): Promise<void> | null;
}

export class PendingLog {
  /** `read(key)`: the key's value in the engine now, outside any transaction (a copy; undefined: absent). */
  constructor(private readonly read: (key: string) => Uint8Array | undefined) {}

  private entries: Entry[] = [];
  /** Writes entries with lazy keys (see the invariant above). */
  private lazyRun: Writes[] = [];
  /** A replay is running: blind writes made meanwhile (a replayed call suspended) are copied. */
  private replaying = false;
  /** Entries a commit in flight captured (the first `sealed`). */
  private sealed = 0;
  /** The last writes entry may take more writes (false once sealed or followed by another entry). */
  private open = false;

  get length(): number {
    return this.entries.length;
  }

  /** Before a blind write reaches the engine (lazy values of an earlier run must not see it). */
  beforeWrite(): void {
    const last = this.entries[this.entries.length - 1];
    if (last !== undefined && last.kind !== 'writes') this.materialize();
  }

  /** Before a transaction writes `key`: the lazy entries that hold it take its value now. */
  beforeTransactionWrite(key: string): void {
    for (const entry of this.lazyRun) {
      entry.lazySet ??= new Set(entry.lazy);
      if (entry.lazySet.has(key) && !entry.writes.has(key)) entry.writes.set(key, this.read(key) ?? null);
    }
  }

  /** A blind write landed (value null: a delete). `lazy`: no mutator call is in flight. */
  write(key: string, value: Uint8Array | string | null, lazy: boolean): void {
    const entry = this.writes();
    if (!lazy || this.replaying) {
      // A copy: the caller may reuse its array.
      entry.writes.set(key, value === null || typeof value === 'string' ? value : value.slice());
      return;
    }
    if (entry.writes.size > 0) entry.writes.delete(key);
    if (entry.lazy.length === 0) this.lazyRun.push(entry);
    entry.lazy.push(key);
    entry.lazySet?.add(key);
    if (entry.lazy.length >= entry.compactAt) {
      entry.lazy = [...new Set(entry.lazy)];
      entry.compactAt = Math.max(COMPACT_MIN, 2 * entry.lazy.length);
    }
  }

  transaction(fn: (tx: Transaction) => unknown): void {
    this.push({ kind: 'transaction', fn });
  }

  /** REQUIRES: materialize() ran before the call started (it writes keys unseen). */
  call(name: string, args: Uint8Array): void {
    this.push({ kind: 'call', name, args: args.slice() });
  }

  /** Every lazy value is read out of the engine now (before a mutator runs or the state is swapped). */
  materialize(): void {
    for (const entry of this.lazyRun) {
      for (const key of entry.lazy) if (!entry.writes.has(key)) entry.writes.set(key, this.read(key) ?? null);
      entry.lazy = [];
      entry.lazySet = undefined;
      entry.compactAt = COMPACT_MIN;
    }
    this.lazyRun = [];
  }

  /** A commit captured the state now: what is logged so far is in it. */
  seal(): void {
    this.sealed = this.entries.length;
    this.open = false;
  }

  /** That commit landed: drop what it holds. */
  landed(): void {
    const dropped = this.entries.splice(0, this.sealed);
    this.sealed = 0;
    if (this.lazyRun.length > 0) {
      const gone = new Set(dropped);
      this.lazyRun = this.lazyRun.filter((entry) => !gone.has(entry));
    }
  }

  /** That commit did not land: everything stays pending. */
  unsealed(): void {
    this.sealed = 0;
  }

  /** Forgets everything (reload: uncommitted work is dropped). */
  clear(): void {
    this.entries = [];
    this.lazyRun = [];
    this.sealed = 0;
    this.open = false;
  }

  /**
   * Replays every entry on a new state, in order, keeping those that still
   * succeed and dropping those that fail (reported). Synchronous unless a
   * replayed mutator suspends; then it goes on when that call finishes.
   * REQUIRES: materialize() ran on the state the log was made on.
   */
  async replay(run: Replayer): Promise<{ replayed: number; dropped: RebaseDrop[] }> {
    // Invariant: a lazy value would be read from the new state, not the one it was written to.
    if (this.lazyRun.length > 0) throw new Error('PendingLog.replay: lazy writes not materialized before the state was swapped');
    const entries = this.entries;
    this.entries = [];
    this.sealed = 0;
    this.open = false;
    this.replaying = true;
    const kept: Entry[] = [];
    const dropped: RebaseDrop[] = [];
    let replayed = 0;
    try {
      for (const entry of entries) {
        try {
          if (entry.kind === 'writes') {
            for (const [key, value] of entry.writes) value === null ? run.delete(key) : run.put(key, value);
          } else if (entry.kind === 'transaction') {
            run.transaction(entry.fn);
          } else {
            const done = run.call(entry.name, entry.args);
            if (done !== null) await done;
          }
          kept.push(entry);
          ++replayed;
        } catch (error) {
          dropped.push(entry.kind === 'call' ? { kind: 'call', name: entry.name, error } : { kind: entry.kind, error });
        }
      }
    } finally {
      this.replaying = false;
    }
    // Work done while a replayed call was suspended came after the replayed entries.
    this.entries = [...kept, ...this.entries];
    return { replayed, dropped };
  }

  /** The open writes entry; a new one after any other entry (then earlier lazy values are read first, see above). */
  private writes(): Writes {
    const last = this.entries[this.entries.length - 1];
    if (this.open && last !== undefined && last.kind === 'writes') return last;
    if (last !== undefined && last.kind !== 'writes') this.materialize();
    const entry: Writes = { kind: 'writes', writes: new Map(), lazy: [], lazySet: undefined, compactAt: COMPACT_MIN };
    this.entries.push(entry);
    this.open = true;
    return entry;
  }

  private push(entry: Entry): void {
    this.entries.push(entry);
    this.open = false;
  }
}
