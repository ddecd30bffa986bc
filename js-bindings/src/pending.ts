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
import type { RebaseDrop, Transaction } from './types.js';

export type Entry =
  | { kind: 'writes'; writes: Map<string, Uint8Array | string | null> }
  | { kind: 'transaction'; fn: (tx: Transaction) => unknown }
  | { kind: 'call'; name: string; args: Uint8Array };

/** How a replay runs each kind of entry on the new state; each throws if the entry fails now. */
export interface Replayer {
  put(key: string, value: Uint8Array | string): void;
  delete(key: string): void;
  transaction(fn: (tx: Transaction) => unknown): void;
  /** Resolves (possibly at once) when the mutator finished; rejects with its error. */
  call(name: string, args: Uint8Array): Promise<void> | null;
}

export class PendingLog {
  private entries: Entry[] = [];
  /** Entries a commit in flight captured (the first `sealed`). */
  private sealed = 0;
  /** The last writes entry may take more writes (false once sealed or followed by another entry). */
  private open = false;

  get length(): number {
    return this.entries.length;
  }

  put(key: string, value: Uint8Array | string): void {
    // A copy: the caller may reuse its array.
    this.writes().set(key, typeof value === 'string' ? value : value.slice());
  }

  delete(key: string): void {
    this.writes().set(key, null);
  }

  transaction(fn: (tx: Transaction) => unknown): void {
    this.push({ kind: 'transaction', fn });
  }

  call(name: string, args: Uint8Array): void {
    this.push({ kind: 'call', name, args: args.slice() });
  }

  /** A commit captured the state now: what is logged so far is in it. */
  seal(): void {
    this.sealed = this.entries.length;
    this.open = false;
  }

  /** That commit landed: drop what it holds. */
  landed(): void {
    this.entries.splice(0, this.sealed);
    this.sealed = 0;
  }

  /** That commit did not land: everything stays pending. */
  unsealed(): void {
    this.sealed = 0;
  }

  /** Forgets everything (reload: uncommitted work is dropped). */
  clear(): void {
    this.entries = [];
    this.sealed = 0;
    this.open = false;
  }

  /**
   * Replays every entry on a new state, in order, keeping those that still
   * succeed and dropping those that fail (reported). Synchronous unless a
   * replayed mutator suspends; then it goes on when that call finishes.
   */
  async replay(run: Replayer): Promise<{ replayed: number; dropped: RebaseDrop[] }> {
    const entries = this.entries;
    this.entries = [];
    this.sealed = 0;
    this.open = false;
    const kept: Entry[] = [];
    const dropped: RebaseDrop[] = [];
    let replayed = 0;
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
    // Work done while a replayed call was suspended came after the replayed entries.
    this.entries = [...kept, ...this.entries];
    return { replayed, dropped };
  }

  private writes(): Map<string, Uint8Array | string | null> {
    const last = this.entries[this.entries.length - 1];
    if (this.open && last !== undefined && last.kind === 'writes') return last.writes;
    const entry: Entry = { kind: 'writes', writes: new Map() };
    this.entries.push(entry);
    this.open = true;
    return entry.writes;
  }

  private push(entry: Entry): void {
    this.entries.push(entry);
    this.open = false;
  }
}
