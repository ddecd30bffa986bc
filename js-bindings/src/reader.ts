// Reader: a read-only replica of a store's committed state — one Replica
// (replica.ts) in a module instance, restored from the store's storage and
// kept up to date by following commit notices with the in-place catch-up
// (only the changed pages are read), on which named read-only queries run:
// C++ queries registered with KEEPSTATE_QUERY and JS functions given a
// ReadOnlyStore. The pool (pool.ts) runs one Reader per Worker
// (pool-worker.ts); a Reader also works in any realm on its own.
//
// Invariants:
//  - A Reader never writes: it never captures, commits, stashes or takes the
//    store's lock, and its ReadOnlyStore has no write method (an Access whose
//    writes throw 'unsupported' underneath, for code that reaches for one).
//  - Queries and catch-ups run one at a time, in order (`enqueue`): a query
//    sees one committed version from start to end, and reports it.
//  - The version only grows: a catch-up that finds an older or unverifiable
//    head keeps the state it has (the writer's open rules decide about
//    loss; a reader only reads what verified).
import { Access, type AccessOwner } from './access.js';
import { ClosedError, InvalidArgumentError, KeepstateError } from './errors.js';
import type { CommitNotices } from './notices/notices.js';
import { Replica, type OpenReport } from './replica.js';
import type { RestoreSource } from './storage/backend.js';
import type { ScanOptions } from './types.js';
import type { Wasm } from './wasm.js';

/** What a JS query sees of the store: reads of one committed version. */
export interface ReadOnlyStore {
  /** The committed version being read. */
  readonly version: number;
  get(key: string): Uint8Array | undefined;
  getText(key: string): string | undefined;
  getJSON<T = unknown>(key: string): T | undefined;
  has(key: string): boolean;
  scan(options?: ScanOptions): Array<[string, Uint8Array]>;
}

/** A JS query: a function exported by the app's queries module (PoolOptions.queries). Its result
 * must be structured-cloneable; it must not return a promise (it runs on one version, in one go). */
export type JsQuery<A = unknown, R = unknown> = (store: ReadOnlyStore, args: A) => R;

/** A query's answer: its result, and the committed version it read. */
export interface QueryAnswer<R = unknown> {
  version: number;
  result: R;
}

export interface ReaderOptions {
  /** The store's name (for messages). */
  name: string;
  /** Where the committed state is read from (IndexedDB, memory). Only its reads are used. */
  source: RestoreSource;
  /** Notices of commits to follow; null: catch up only when a query asks for a newer version. */
  notices: CommitNotices | null;
  /** Called after each catch-up that adopted a newer version, with it and the ms it took. */
  onVersion?: (version: number, ms: number) => void;
}

function randomId(): number {
  const words = new Uint32Array(2);
  globalThis.crypto.getRandomValues(words);
  return (words[0]! & 0x1fffff) * 2 ** 32 + words[1]!;
}

export class Reader {
  private current: Replica | null;
  private queue: Promise<unknown> = Promise.resolve();
  private followQueued = false;
  /** The newest version a notice announced (a query with no minVersion waits for nothing newer). */
  private heard = 0;
  private readonly stopHearing: () => void;
  private readonly waiters = new Set<() => void>();
  readonly store: ReadOnlyStore;
  private readonly access: Access;

  private constructor(
    readonly wasm: Wasm,
    replica: Replica,
    private readonly options: ReaderOptions,
  ) {
    this.current = replica;
    const owner: AccessOwner = {
      replica: null as unknown as Replica,
      check: () => {
        if (this.current === null) throw new ClosedError(`the reader of store "${options.name}" is closed`);
      },
      writing: () => {
        throw new KeepstateError('unsupported', `a query on store "${options.name}" is read-only: it cannot write`);
      },
      wrote: () => undefined,
    };
    Object.defineProperty(owner, 'replica', { get: () => this.replica });
    this.access = new Access(owner, 0);
    const a = this.access;
    const self = this;
    this.store = Object.freeze({
      get version() {
        return self.version;
      },
      get: (key: string) => a.get(key),
      getText: (key: string) => a.getText(key),
      getJSON: <T>(key: string) => a.getJSON<T>(key),
      has: (key: string) => a.has(key),
      scan: (options: ScanOptions = {}) => a.scan(options),
    });
    this.stopHearing =
      options.notices?.listen((notice) => {
        if (notice.kind !== 'commit' || this.current === null) return;
        this.heard = Math.max(this.heard, notice.version);
        if (notice.version > this.version) this.follow();
      }) ?? (() => undefined);
    ++wasm.openStores;
  }

  /** Restores the newest verified version of `options.source` into a new replica in `wasm`. */
  static async open(wasm: Wasm, options: ReaderOptions): Promise<Reader> {
    const replica = Replica.create(wasm, { pageSize: 0, retain: 0, writerId: randomId() });
    try {
      await replica.restore(options.source);
    } catch (e) {
      replica.destroy();
      throw e;
    }
    return new Reader(wasm, replica, options);
  }

  private get replica(): Replica {
    if (this.current === null) throw new ClosedError(`the reader of store "${this.options.name}" is closed`);
    return this.current;
  }

  /** The committed version held (0: the store was never committed). */
  get version(): number {
    return this.current === null ? 0 : this.current.version;
  }

  /** Bytes of wasm memory this reader's module holds (the state, its indexes, buffers). */
  memoryBytes(): number {
    return this.wasm.module.HEAPU8.length;
  }

  private enqueue<T>(fn: () => Promise<T> | T): Promise<T> {
    const run = this.queue.then(fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private follow(): void {
    if (this.followQueued) return;
    this.followQueued = true;
    this.enqueue(() => {
      this.followQueued = false;
      return this.catchUpNow();
    }).catch(() => undefined); // a failed follow is retried by the next notice or query
  }

  /**
   * Reads the stored head and adopts it if newer, reading only the changed pages and applying
   * them in place. Resolves whether it adopted one. REQUIRES: runs in the queue.
   */
  private async catchUpNow(): Promise<boolean> {
    if (this.current === null) return false;
    const base = this.current;
    const started = performance.now();
    let next = await this.restoreFrom(base, true);
    if (next.report.inPlace && next.version > base.version && !next.replica.adoptInPlace()) {
      // The base changed meanwhile (it cannot: nothing writes a reader; kept for the contract).
      next.replica.destroy();
      next = await this.restoreFrom(base, false);
    }
    if (next.version <= base.version) {
      // Not newer (an older head, or the newer versions did not verify): keep the state it has;
      // the writer's open rules decide about loss. What a restore opened always verified.
      next.replica.destroy();
      return false;
    }
    this.current = next.replica;
    // In place: the base's arena now belongs to the new replica, and the base is closed.
    base.destroy();
    this.options.onVersion?.(next.version, performance.now() - started);
    for (const wake of [...this.waiters]) wake();
    return true;
  }

  /** Restores the stored state from `base` (the changed pages only), leaving the manifests it holds unread
   * unless `hinted` is false (the restore needed one after all: the module said not-found). */
  private async restoreFrom(base: Replica, inPlace: boolean, hinted = true): Promise<{ replica: Replica; version: number; report: OpenReport }> {
    const replica = Replica.create(this.wasm, { pageSize: 0, retain: 0, writerId: randomId() });
    try {
      const hint = hinted ? { manifestsFrom: base.manifestsFrom() } : undefined;
      const report = await replica.restore(this.options.source, { base, inPlace, hint });
      return { replica, version: report.restored, report };
    } catch (e) {
      replica.destroy();
      if (hinted && e instanceof KeepstateError && e.code === 'not-found') return this.restoreFrom(base, inPlace, false);
      throw e;
    }
  }

  /**
   * Resolves once the state is at least `minVersion`: catches up at once if behind, then on
   * every notice, until `timeoutMs` passes (then KeepstateError 'busy' naming both versions).
   * REQUIRES: runs in the queue.
   */
  private async reach(minVersion: number, timeoutMs: number): Promise<void> {
    if (this.version >= minVersion) return;
    const deadline = performance.now() + timeoutMs;
    await this.catchUpNow();
    while (this.version < minVersion) {
      if (this.current === null) throw new ClosedError(`the reader of store "${this.options.name}" is closed`);
      const left = deadline - performance.now();
      if (left <= 0) {
        throw new KeepstateError('busy', `store "${this.options.name}": version ${minVersion} was not committed within ${timeoutMs} ms (the replica reads version ${this.version})`);
      }
      // A notice, or a poll every 250 ms (a notice may be lost: it is only a hint).
      await new Promise<void>((resolve) => {
        const wake = () => {
          this.waiters.delete(wake);
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(wake, Math.min(left, 250));
        this.waiters.add(wake);
      });
      if (this.heard > this.version || this.version < minVersion) await this.catchUpNow();
    }
  }

  /**
   * Runs the C++ query `name` (KEEPSTATE_QUERY) on a state of at least `minVersion`; resolves
   * with its bytes and the version it read. Rejects with the query's typed error
   * ('unsupported' if it tried to write, 'invalid-argument' if no query has that name).
   */
  query(name: string, args: Uint8Array, minVersion = 0, timeoutMs = 30_000): Promise<QueryAnswer<Uint8Array>> {
    if (typeof name !== 'string' || name.length === 0 || name.length > 256) {
      return Promise.reject(new InvalidArgumentError('query: name must be a non-empty string of at most 256 characters'));
    }
    if (!(args instanceof Uint8Array)) return Promise.reject(new InvalidArgumentError(`query "${name}": args of a C++ query must be a Uint8Array`));
    return this.enqueue(async () => {
      await this.reach(minVersion, timeoutMs);
      const replica = this.replica;
      const version = replica.version;
      const id = replica.startQuery(name, args);
      const result = new Promise<Uint8Array>((resolve, reject) => this.wasm.calls.set(id, { resolve, reject }));
      // Runs the fiber to its end in this task where it does not wait for anything; a query
      // that suspends (a Yield) finishes on the driver's next slices, before any catch-up.
      this.wasm.driver.runNow();
      this.wasm.driver.wake();
      return { version, result: await result };
    });
  }

  /** Runs the JS query `fn` on a state of at least `minVersion`; resolves with what it returned and the version it read. */
  run<A, R>(fn: JsQuery<A, R>, args: A, minVersion = 0, timeoutMs = 30_000): Promise<QueryAnswer<R>> {
    return this.enqueue(async () => {
      await this.reach(minVersion, timeoutMs);
      const version = this.version;
      const result = fn(this.store, args);
      if (result !== null && typeof result === 'object' && typeof (result as { then?: unknown }).then === 'function') {
        throw new InvalidArgumentError('a JS query must return its result, not a promise: it reads one version, in one go');
      }
      return { version, result };
    });
  }

  /** Catches up now (queued after the queries before it); resolves with the version held. */
  async catchUp(): Promise<number> {
    await this.enqueue(() => this.catchUpNow());
    return this.version;
  }

  /** Releases the replica; every later query rejects with ClosedError. */
  close(): void {
    if (this.current === null) return;
    this.stopHearing();
    this.current.destroy();
    this.current = null;
    --this.wasm.openStores;
    for (const wake of [...this.waiters]) wake();
  }
}
