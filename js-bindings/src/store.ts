// Store: the public face of one keepstate store — synchronous reads and
// writes against the wasm engine, asynchronous commits through its storage
// (storage.ts: the backend and the OPFS copy), events.
//
// Invariants:
//  - Commits, reloads and close run one at a time, in request order (the
//    `queue` promise chain); a commit requested during another one runs after
//    it and takes everything dirtied meanwhile.
//  - After close() resolves, every method throws (or rejects with) ClosedError.
//  - A failed commit (conflict, quota, anything) leaves the state dirty and
//    the stored data exactly as it was (the backend's write aborted).
//  - At most one autosave timer is armed; it is armed by a write (from JS or
//    a mutator call) and re-armed after a commit only if that commit
//    succeeded and the state is dirty again, so a conflict is not retried in
//    a loop.
import { Engine } from './engine.js';
import { postTask } from './driver.js';
import { Access } from './access.js';
import { ClosedError, ConflictError, CorruptionError, InvalidArgumentError, KeepstateError, codeNumber, errorFromIndexedDB } from './errors.js';
import type { StoreStorage, Restored } from './storage.js';
import type { RestoreSource } from './backend.js';
import { checkHead, readPlan, restoreInto, type OpenReport } from './wire.js';
import { STORE_EVENTS, type CommitResult, type ReadWrite, type ScanOptions, type StoreEventName, type StoreEvents, type Transaction } from './types.js';

export type * from './types.js';

/** @internal What openStore resolved from the options. */
export interface StoreSettings {
  autosaveMs: number;
  retain: number;
  pageSize: number;
  durability: 'strict' | 'relaxed';
}

function randomWriterId(): number {
  const words = new Uint32Array(2);
  globalThis.crypto.getRandomValues(words);
  // 53 bits: exact as a double across the C ABI.
  return (words[0]! & 0x1fffff) * 2 ** 32 + words[1]!;
}

type Handler<E extends StoreEventName> = (event: StoreEvents[E]) => void;

export class Store implements ReadWrite {
  /** The store's name (its IndexedDB database is `keepstate:<name>`). */
  readonly name: string;
  private readonly engine: Engine;
  private readonly storage: StoreStorage;
  private readonly settings: StoreSettings;
  private readonly writerId = randomWriterId();
  private readonly handlers = new Map<StoreEventName, Set<(event: never) => void>>();
  private readonly stopHearing: () => void;
  private handle = 0;
  private queue: Promise<unknown> = Promise.resolve();
  private queued = 0;
  private closing = false;
  private closed = false;
  private inTransaction = false;
  private closedVersion = 0;
  private autosaveTimer: ReturnType<typeof setTimeout> | undefined;
  /** Mutator calls started by call() and not yet settled (close() lets them finish). */
  private readonly inFlight = new Set<Promise<Uint8Array>>();
  /** Reads and writes straight on the store (a transaction's `tx` is another Access). */
  private readonly direct: Access;

  /** @internal Use openStore(). */
  constructor(engine: Engine, storage: StoreStorage, name: string, settings: StoreSettings) {
    this.engine = engine;
    this.storage = storage;
    this.name = name;
    this.settings = settings;
    this.direct = new Access(engine, () => this.handle, 0, () => this.assertUsable(), () => this.armAutosave());
    storage.onCopyError = (error) => this.emitSoon('error', error);
    this.stopHearing = storage.backend.onRemoteCommit((version, writer) => {
      if (!this.closed && writer !== this.writerId) this.emit('remote-commit', { version });
    });
    ++engine.openStores;
  }

  /** The committed version the state is based on (0: never committed). */
  get version(): number {
    return this.handle === 0 ? this.closedVersion : this.engine.module._keepstate_store_version(this.handle);
  }

  /** Whether there are changes not yet committed. */
  get dirty(): boolean {
    return this.handle !== 0 && this.engine.module._keepstate_store_dirty(this.handle) !== 0;
  }

  // --- Reads and writes (synchronous; ReadWrite, through Access) -------------

  get(key: string): Uint8Array | undefined {
    return this.direct.get(key);
  }
  getText(key: string): string | undefined {
    return this.direct.getText(key);
  }
  getJSON<T = unknown>(key: string): T | undefined {
    return this.direct.getJSON<T>(key);
  }
  has(key: string): boolean {
    return this.direct.has(key);
  }
  put(key: string, value: Uint8Array | string): void {
    this.direct.put(key, value);
  }
  putJSON(key: string, value: unknown): void {
    this.direct.putJSON(key, value);
  }
  delete(key: string): boolean {
    return this.direct.delete(key);
  }
  scan(options: ScanOptions = {}): Array<[string, Uint8Array]> {
    return this.direct.scan(options);
  }

  /**
   * Runs `fn` as one atomic write transaction with read-your-writes. If `fn` throws,
   * nothing is applied and the error is rethrown. `fn` must be synchronous.
   */
  transaction<T>(fn: (tx: Transaction) => T): T {
    this.assertUsable();
    if (this.inTransaction) throw new KeepstateError('busy', 'a transaction is already open');
    this.engine.check(this.engine.module._keepstate_store_begin(this.handle));
    this.inTransaction = true;
    let open = true;
    const guard = () => {
      if (!open) throw new ClosedError('the transaction has ended');
    };
    const tx: Transaction = new Access(this.engine, () => this.handle, 1, guard, () => undefined);
    const finish = (commit: boolean) => {
      open = false;
      this.inTransaction = false;
      return this.engine.module._keepstate_store_end(this.handle, commit ? 1 : 0);
    };
    let result: T;
    try {
      result = fn(tx);
      if (isThenable(result)) throw new InvalidArgumentError('transaction(fn): fn must be synchronous (it returned a promise)');
    } catch (e) {
      finish(false);
      throw e;
    }
    this.engine.check(finish(true));
    this.armAutosave();
    return result;
  }

  /**
   * Runs the C++ mutator `name` (registered in the module with KEEPSTATE_MUTATOR, see
   * docs/sdk.md) as a fiber in the engine's scheduler, with a copy of `args`; resolves
   * with the bytes it returns. Rejects with InvalidArgumentError if the module has no
   * mutator of that name, and with the typed error of the mutator's error status
   * (its code and message) otherwise. Each of its write transactions is atomic; a
   * call does not commit (commit() or autosave does).
   */
  call(name: string, args: Uint8Array = new Uint8Array(0)): Promise<Uint8Array> {
    try {
      this.assertUsable();
      if (typeof name !== 'string' || name.length === 0) throw new InvalidArgumentError('call: name must be a non-empty string');
      if (!(args instanceof Uint8Array)) throw new InvalidArgumentError('call: args must be a Uint8Array');
      const m = this.engine.module;
      const n = Engine.encode(name);
      // 4 bytes for the call id the engine writes back, then the name and the args.
      const [idPtr, namePtr, argsPtr] = this.engine.stage(new Uint8Array(4), n, args);
      this.engine.check(m._keepstate_call(this.handle, namePtr!, n.length, argsPtr!, args.length, idPtr!));
      const id = new DataView(m.HEAPU8.buffer).getUint32(idPtr!, true);
      const result = new Promise<Uint8Array>((resolve, reject) => this.engine.calls.set(id, { resolve, reject }));
      this.inFlight.add(result);
      // The mutator's writes made the state dirty: the autosave timer starts when it settles.
      const settled = () => {
        this.inFlight.delete(result);
        if (!this.closed) this.armAutosave();
      };
      result.then(settled, settled);
      this.engine.driver.wake();
      return result;
    } catch (e) {
      return Promise.reject(e);
    }
  }

  // --- Persistence (asynchronous) --------------------------------------------

  /** Commits every uncommitted change; resolves once it is durable (IndexedDB and, if on, the OPFS copy). */
  commit(): Promise<CommitResult> {
    this.assertUsable();
    return this.enqueue(() => this.commitNow());
  }

  /** Drops uncommitted changes and loads the newest committed version. */
  reload(): Promise<void> {
    this.assertUsable();
    return this.enqueue(() => this.restore());
  }

  /** Subscribes to an event; returns the unsubscribe function. */
  on<E extends StoreEventName>(event: E, handler: Handler<E>): () => void {
    if (!STORE_EVENTS.includes(event)) throw new InvalidArgumentError(`on: unknown event "${String(event)}"`);
    if (typeof handler !== 'function') throw new InvalidArgumentError('on: handler must be a function');
    let set = this.handlers.get(event);
    if (set === undefined) this.handlers.set(event, (set = new Set()));
    set.add(handler as (event: never) => void);
    return () => {
      set.delete(handler as (event: never) => void);
    };
  }

  /** Lets calls in flight finish, commits pending changes, then closes. If that commit fails, rejects and the store stays open. */
  close(): Promise<void> {
    if (this.closed || this.closing) return Promise.reject(new ClosedError(`store "${this.name}" is closed`));
    this.closing = true;
    return this.enqueue(async () => {
      try {
        // Calls already started finish first, so their effects are in the final commit.
        await Promise.allSettled([...this.inFlight]);
        if (this.dirty) await this.commitNow();
      } catch (e) {
        this.closing = false;
        throw e;
      }
      this.closed = true;
      this.closedVersion = this.version;
      clearTimeout(this.autosaveTimer);
      this.engine.module._keepstate_store_destroy(this.handle);
      this.handle = 0;
      --this.engine.openStores;
      this.stopHearing();
      this.storage.close();
    });
  }

  // --- Internals ---------------------------------------------------------------

  /** @internal Restores the newest verified version (storage.ts decides from which copy). */
  async restore(): Promise<void> {
    const m = this.engine.module;
    const { restored, loss } = await this.storage.withLock(() => this.storage.restoreNewest((source) => this.restoreFrom(source)));
    const { handle, report } = restored as Restored & { handle: number; report: OpenReport };
    if (this.handle !== 0) m._keepstate_store_destroy(this.handle);
    this.handle = handle;
    // Events go out on a later task so a handler attached right after openStore() hears them.
    if (loss !== null) this.emitSoon('data-loss', loss);
    if (report.failures.length > 0) {
      const what = report.fresh
        ? 'no stored version verified: the store opened empty on a fresh version line'
        : `fell back to version ${report.restored}`;
      const detail = report.failures.map((f) => `version ${f.version}: ${f.message}`).join('; ');
      const error = new CorruptionError(`store "${this.name}": ${what} (${detail})`, report.failures);
      this.emitSoon('corruption', { restoredVersion: report.restored, fresh: report.fresh, failures: report.failures, error });
    }
  }

  /** Restores `source` into a new engine store (adopted by restore(), or discarded). */
  private async restoreFrom(source: RestoreSource): Promise<Restored & { handle: number; report: OpenReport }> {
    const m = this.engine.module;
    const handle = m._keepstate_store_new(this.settings.pageSize, this.settings.retain, this.writerId);
    try {
      const report = await restoreInto(this.engine, handle, source);
      return { handle, report, version: report.restored, failures: report.failures, discard: () => m._keepstate_store_destroy(handle) };
    } catch (e) {
      m._keepstate_store_destroy(handle);
      throw e;
    }
  }

  private async commitNow(): Promise<CommitResult> {
    const started = performance.now();
    const m = this.engine.module;
    if (!this.dirty) return { version: this.version, bytesWritten: 0, ms: performance.now() - started };
    const handle = this.handle;
    this.engine.check(m._keepstate_store_capture(handle, Date.now()));
    try {
      const records = readPlan(this.engine, handle);
      const bytesWritten = records.puts.reduce((n, r) => n + r.bytes.length, 0);
      await this.storage.commit(records, this.version, this.settings.durability, (head) => checkHead(this.engine, handle, head));
      this.engine.check(m._keepstate_store_commit_done(handle, 0));
      const result = { version: this.version, bytesWritten, ms: performance.now() - started };
      this.storage.backend.announce(result.version, this.writerId);
      this.emit('commit', result);
      return result;
    } catch (e) {
      const error = errorFromIndexedDB(e, `commit of store "${this.name}"`);
      m._keepstate_store_commit_done(handle, codeNumber(error.code)); // closed if nothing is in flight any more
      if (error instanceof ConflictError) this.emit('conflict', error);
      throw error;
    }
  }

  /** A write landed: commit `autosaveMs` later, unless a commit is already due. */
  private armAutosave(): void {
    if (this.settings.autosaveMs <= 0 || this.autosaveTimer !== undefined || this.closed || this.closing) return;
    this.autosaveTimer = setTimeout(() => {
      this.autosaveTimer = undefined;
      if (this.closed || this.closing || !this.dirty) return;
      this.enqueue(() => this.commitNow()).then(
        () => {
          if (this.dirty) this.armAutosave();
        },
        (e: unknown) => {
          // Conflicts are reported as 'conflict' by the commit itself.
          if (e instanceof KeepstateError && !(e instanceof ConflictError)) this.emit('error', e);
        },
      );
    }, this.settings.autosaveMs);
  }

  /** Runs `op` now if nothing is queued (so a commit captures the state of the moment it is
   * requested), else after everything queued before it. */
  private enqueue<T>(op: () => Promise<T>): Promise<T> {
    const run = this.queued === 0 ? op() : this.queue.then(op, op);
    ++this.queued;
    this.queue = run.then(
      () => void --this.queued,
      () => void --this.queued,
    );
    return run;
  }

  private emit<E extends StoreEventName>(event: E, payload: StoreEvents[E]): void {
    for (const handler of [...(this.handlers.get(event) ?? [])]) {
      try {
        (handler as Handler<E>)(payload);
      } catch (e) {
        // A throwing handler must not break the store; surface it asynchronously.
        queueMicrotask(() => {
          throw e;
        });
      }
    }
  }

  private emitSoon<E extends StoreEventName>(event: E, payload: StoreEvents[E]): void {
    postTask(() => this.emit(event, payload));
  }

  private assertUsable(): void {
    if (this.closed || this.closing) throw new ClosedError(`store "${this.name}" is closed`);
  }
}

function isThenable(value: unknown): boolean {
  return typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function';
}
