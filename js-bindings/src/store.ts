// Store: the public face of one keepstate store — synchronous reads and
// writes against the wasm engine, asynchronous commits through its storage
// (storage.ts: the backend and the OPFS copy), events, and the work of
// sharing a store with other tabs (docs/tabs.md): the pending log, rebase,
// following other tabs' commits, and watch.
//
// Invariants:
//  - Commits, catch-ups, reloads and close run one at a time, in request
//    order (the `queue` promise chain); a commit requested during another one
//    runs after it and takes everything dirtied meanwhile.
//  - Replaying the pending log on the state's base version gives the state
//    (pending.ts). A commit captures at a moment no mutator call is half done
//    (calls started meanwhile wait until the capture), so the log's seal is
//    exact.
//  - A rebase (catch up to the newer stored version, replay the log, commit)
//    runs under the store's lock, so tabs take turns and every turn commits.
//  - After close() resolves, every method throws (or rejects with) ClosedError.
//  - A failed commit (quota, anything but a conflict it could rebase) leaves
//    the state dirty and the stored data exactly as it was.
//  - At most one autosave timer is armed; it is armed by a write (from JS or
//    a mutator call) and re-armed after a commit only if that commit
//    succeeded and the state is dirty again, so a failure is not retried in
//    a loop.
import { Engine } from './engine.js';
import { postTask } from './driver.js';
import { Access, type AccessOwner } from './access.js';
import { ClosedError, ConflictError, CorruptionError, InvalidArgumentError, KeepstateError, codeNumber, errorFromIndexedDB } from './errors.js';
import type { StoreStorage, Restored, DataLossEvent, LossProtection } from './storage.js';
import { recordSize, type CommitRecords, type RestoreHint, type RestoreSource } from './backend.js';
import { PendingLog, type Replayer } from './pending.js';
import { Watchers } from './watch.js';
import { onLeavingPage } from './leaving.js';
import { runCallNow, startCall } from './calls.js';
import { checkHead, exportSnapshot, readChanges, readPlan, restoreInto, type OpenReport } from './wire.js';
import { StatusNotifier } from './status.js';
import {
  STORE_EVENTS,
  type CommitResult,
  type JSONInput,
  type ReadWrite,
  type ScanOptions,
  type StashedCommitEvent,
  type StorageHealth,
  type StoreEventName,
  type StoreEvents,
  type Synchronous,
  type Transaction,
  type WatchEvent,
  type WatchRange,
  type WatchSource,
} from './types.js';

export type * from './types.js';

/** @internal What openStore resolved from the options. */
export interface StoreSettings {
  autosaveMs: number;
  retain: number;
  pageSize: number;
  durability: 'strict' | 'relaxed';
  /** What a commit that finds a newer stored version does: replay the pending work on it, or reject. */
  onConflict: 'rebase' | 'reject';
  /** Catch up with other tabs' commits as they are announced. */
  follow: boolean;
}

type Adopted = Restored & { handle: number; report: OpenReport };

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
  private readonly backing: StoreStorage;
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
  /** This store's work since its base version, for a rebase (a lazy write's value is read from the state). */
  private readonly pending = new PendingLog((key) => this.direct.get(key));
  /** Whose writes a transaction's `tx` makes (one Access per transaction, one owner for all). */
  private readonly txOwner: AccessOwner;
  private readonly watchers = new Watchers();
  private flushPosted = false;
  /** While a commit waits to capture (or a catch-up to swap states): calls to start after it. */
  private heldCalls: Array<() => void> | null = null;
  /** A catch-up with other tabs' commits is queued. */
  private followQueued = false;
  /** The newest version another store of this name announced. */
  private heardVersion = 0;
  /** The page was unloaded and its work stashed (stashNow): nothing more is committed. */
  private leaving = false;
  private readonly stopSlices: () => void;
  private readonly stopLeaving: () => void;
  /** @internal Who listens to version, dirty and closed (status.ts: storeStatus, watchStatus, useStoreStatus). */
  readonly statusNotifier = new StatusNotifier();

  /** @internal openStore() and importStore() make stores (the constructor is private, so `new Store()` does not type-check). */
  static create(engine: Engine, storage: StoreStorage, name: string, settings: StoreSettings): Store {
    return new Store(engine, storage, name, settings);
  }

  private constructor(engine: Engine, storage: StoreStorage, name: string, settings: StoreSettings) {
    this.engine = engine;
    this.backing = storage;
    this.name = name;
    this.settings = settings;
    const usable = () => this.assertUsable();
    this.direct = new Access(engine, this.accessOwner(usable, () => this.pending.beforeWrite(), (key, value) => {
      // While a mutator call is in flight it may write the same keys: the log keeps a copy.
      this.pending.write(key, value ?? null, this.inFlight.size === 0);
      this.wroteLocally();
    }), 0);
    this.txOwner = this.accessOwner(() => undefined, (key) => this.pending.beforeTransactionWrite(key), () => undefined);
    storage.onCopyError = (error) => this.emitSoon('error', error);
    this.stopHearing = storage.backend.onRemoteCommit((version, writer) => {
      if (this.closed || writer === this.writerId) return;
      this.heardVersion = Math.max(this.heardVersion, version);
      this.emit('remote-commit', { version });
      if (this.settings.follow && version > this.version) this.follow();
    });
    // A mutator's transactions land while fibers run: their keys are taken after the slice.
    this.stopSlices = engine.onSlice(() => {
      if (this.watchers.size > 0 && !this.closed) this.flushSoon();
      this.statusNotifier.changed(); // a mutator's writes dirty the state
    });
    this.stopLeaving = this.commitWhenLeaving();
    ++engine.openStores;
  }

  /** The committed version the state is based on (0: never committed). */
  get version(): number {
    return this.handle === 0 ? this.closedVersion : this.engine.module._keepstate_store_version(this.handle);
  }

  /** The application's schema version of the state (0: never set); see OpenOptions.schema. */
  get schemaVersion(): number {
    return this.handle === 0 ? 0 : this.engine.module._keepstate_store_schema_version(this.handle, 0);
  }

  /**
   * What guards acknowledged commits beyond IndexedDB, decided at open from what this
   * browser offers: 'copy' (the OPFS copy), 'marker' (the copy off: loss detection only)
   * or 'none' (no usable OPFS, e.g. WebKitGTK; or storage 'memory').
   */
  get lossProtection(): LossProtection {
    return this.backing.lossProtection;
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
  putJSON(key: string, value: JSONInput): void {
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
   * nothing is applied and the error is rethrown. `fn` must be synchronous, and
   * should depend only on what it reads through `tx`: a rebase runs it again on
   * a newer state (docs/tabs.md).
   */
  transaction<T extends Synchronous>(fn: (tx: Transaction) => T): T {
    this.assertUsable();
    const result = this.runTransaction(fn);
    this.pending.transaction(fn);
    this.wroteLocally();
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
      const start = () => {
        this.pending.materialize(); // the mutator writes keys the log cannot see
        const id = startCall(this.engine, this.handle, name, args);
        this.pending.call(name, args);
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
      };
      const held = this.heldCalls;
      if (held === null) return start();
      // A commit is about to capture: the call starts right after it.
      return new Promise<Uint8Array>((resolve, reject) =>
        held.push(() => {
          try {
            if (this.closed) throw new ClosedError(`store "${this.name}" is closed`);
            start().then(resolve, reject);
          } catch (e) {
            reject(e);
          }
        }),
      );
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * Calls `listener` when keys in `range` change — after this store's writes
   * (once the code that wrote returns, with each key's newest value), after it caught up with
   * another tab's commit, after a rebase and after reload(). Returns the
   * function that stops it (at once).
   */
  watch(range: WatchRange, listener: (event: WatchEvent) => void): () => void {
    this.assertUsable();
    const stop = this.watchers.add(range, listener);
    this.watchRanges();
    let stopped = false;
    return () => {
      if (stopped) return;
      stopped = true;
      stop();
      if (this.handle !== 0) this.watchRanges();
    };
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

  /** What the browser keeps of this origin's storage: persisted or not, usage and quota (lossProtection says what guards it). */
  async storage(): Promise<StorageHealth> {
    this.assertUsable();
    const manager = (globalThis as { navigator?: { storage?: StorageManager } }).navigator?.storage;
    const [persisted, estimate] = await Promise.all([
      manager?.persisted?.().catch(() => false) ?? Promise.resolve(false),
      manager?.estimate?.().catch(() => undefined) ?? Promise.resolve(undefined),
    ]);
    return { persisted, usage: estimate?.usage, quota: estimate?.quota };
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
      this.stopSlices();
      this.stopLeaving();
      this.releaseCalls();
      this.engine.module._keepstate_store_destroy(this.handle);
      this.handle = 0;
      --this.engine.openStores;
      this.stopHearing();
      this.backing.close();
      this.statusNotifier.close();
    });
  }

  // --- Internals ---------------------------------------------------------------

  /**
   * @internal At open: brings the state to schema version `target` (OpenOptions.schema, and
   * the module's C++ migrations) in one transaction, and commits it before the store is
   * handed out. A stored version above `target` is refused ('unsupported'): old code never
   * writes over newer data. If a migration throws, nothing is applied and the error is
   * rethrown (openStore then discards this store).
   */
  async migrateTo(target: number, migrate: ((tx: Transaction, fromVersion: number) => void) | undefined, commit = true): Promise<void> {
    const m = this.engine.module;
    const stored = this.schemaVersion;
    if (stored > target) {
      throw new KeepstateError(
        'unsupported',
        `store "${this.name}" has schema version ${stored}, newer than this code's ${target}: it was written by a newer version of the app, and is left as it is`,
      );
    }
    if (stored === target) return;
    // Logged like any transaction: if another tab migrated first, the rebase replays this
    // on its state, where the version it reads is already the target.
    this.transaction((tx) => {
      const from = m._keepstate_store_schema_version(this.handle, 1);
      if (from >= target) return;
      this.pending.materialize(); // C++ migrations write keys the log cannot see
      this.engine.check(m._keepstate_store_run_migrations(this.handle, from, target));
      if (isThenable(migrate?.(tx, from))) throw new InvalidArgumentError('schema.migrate must be synchronous (it returned a promise)');
      this.engine.check(m._keepstate_store_set_schema_version(this.handle, target));
    });
    if (commit) await this.commit();
  }

  /** @internal The newest schema version the module's C++ migrations reach (0: none). */
  engineMigrationsNewest(): number {
    return this.engine.module._keepstate_migrations_newest();
  }

  /**
   * Writes the committed state as one snapshot file (docs/snapshot-format.md, "Snapshot
   * file"): pending changes are committed first, so the file holds exactly version
   * `store.version`. The file is read out of the engine in chunks into a Blob that grows
   * by reference, so no second copy of the state is held. importStore() reads it back.
   */
  export(): Promise<Blob> {
    this.assertUsable();
    return this.enqueue(async () => {
      if (this.dirty) await this.commitNow();
      // Synchronous from here: no write can land between the chunks.
      return exportSnapshot(this.engine, this.handle);
    });
  }

  /**
   * @internal importStore: makes the verified import `id` this store's state, runs the
   * schema migration on it if one is due, and commits it all as one new version.
   */
  async adoptImport(id: number, schema: number, migrate: ((tx: Transaction, fromVersion: number) => void) | undefined): Promise<void> {
    await this.enqueue(async () => {
      await this.holdCalls();
      try {
        this.engine.check(this.engine.module._keepstate_import_adopt(this.handle, id));
      } finally {
        this.releaseCalls();
      }
      this.pending.clear();
      this.watchRanges();
    });
    // The import is not committed yet: a migration that throws leaves the stored data as it was.
    await this.migrateTo(schema, migrate, false);
    await this.commit();
  }

  /** @internal Closes without committing (openStore gave up on this store). */
  discard(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.autosaveTimer);
    this.stopSlices();
    this.stopLeaving();
    this.stopHearing();
    this.releaseCalls();
    if (this.handle !== 0) this.engine.module._keepstate_store_destroy(this.handle);
    this.handle = 0;
    --this.engine.openStores;
    this.backing.close();
    this.statusNotifier.close();
  }

  /** @internal Restores the newest verified version (storage.ts decides from which copy); drops pending work. */
  async restore(): Promise<void> {
    const stashEvents: StashedCommitEvent[] = [];
    const { restored, loss } = await this.backing.withLock(async () => {
      const restoredFirst = await this.backing.restoreNewest((source) => this.restoreFrom(source));
      // Commits that pages stashed as they were unloaded go in now, then the newest is restored.
      if (!(await this.backing.writeStashes(this.settings.durability, stashEvents))) return restoredFirst;
      restoredFirst.restored.discard();
      return this.backing.restoreNewest((source) => this.restoreFrom(source));
    });
    for (const event of stashEvents) this.emitSoon('stashed-commit', event);
    this.flushLocal();
    const old = this.swapIn(restored as Adopted, loss);
    this.pending.clear();
    this.finishSwap(old, 'reload');
  }

  /** Restores `source` into a new engine store (adopted, or discarded), taking unchanged pages from engine store `base` if given. */
  private async restoreFrom(source: RestoreSource, base = 0, inPlace = false, hint?: RestoreHint): Promise<Adopted> {
    const m = this.engine.module;
    const handle = m._keepstate_store_new(this.settings.pageSize, this.settings.retain, this.writerId);
    try {
      const report = await restoreInto(this.engine, handle, source, base, inPlace, this.backing.timing, hint);
      return { handle, report, version: report.restored, failures: report.failures, discard: () => m._keepstate_store_destroy(handle) };
    } catch (e) {
      m._keepstate_store_destroy(handle);
      throw e;
    }
  }

  /** Makes `restored` the store's state; returns the previous engine store (0: none) for finishSwap. */
  private swapIn({ handle, report }: Adopted, loss: DataLossEvent | null): number {
    const old = this.handle;
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
    return old;
  }

  /** Tells the watchers what differs from the previous state, then releases it. */
  private finishSwap(old: number, source: WatchSource): void {
    const m = this.engine.module;
    this.statusNotifier.changed(); // a catch-up, rebase or reload: a new version, maybe clean
    if (old === 0) return;
    if (this.watchers.size > 0) {
      this.engine.check(m._keepstate_store_diff(old, this.handle));
      const changes = readChanges(this.engine.outBytes());
      this.watchRanges();
      this.watchers.deliver(changes, this.version, source);
    }
    m._keepstate_store_destroy(old);
  }

  /**
   * Catches up with the newest stored version and replays the pending log on
   * it (a rebase when there is pending work). `conflict`: a commit found the
   * stored head moved, so the stored state is adopted even if it is not newer
   * (its head is what the next commit must find). Resolves whether it adopted
   * one. REQUIRES: this runs in the queue, and the lock is held if `locked`.
   */
  private async catchUp(conflict: boolean, locked = true): Promise<boolean> {
    // Only the pages that changed since this state's version are read (the rest come from it);
    // a store with nothing of its own pending takes them in place, copying nothing else.
    const inPlace = !conflict && !this.dirty && this.pending.length === 0;
    let adopted = await this.restoreChanges(inPlace);
    let loss: DataLossEvent | null = null;
    if (adopted.version < this.version || adopted.report.failures.length > 0) {
      // IndexedDB holds less than this store knows, or a newer version did not verify: the
      // open rules decide (the OPFS copy, the data-loss report), under the lock.
      adopted.discard();
      const newest = await (locked
        ? this.backing.restoreNewest((source) => this.restoreFrom(source))
        : this.backing.withLock(() => this.backing.restoreNewest((source) => this.restoreFrom(source))));
      adopted = newest.restored as Adopted;
      loss = newest.loss;
    }
    if (!conflict && adopted.version <= this.version) {
      adopted.discard();
      return false;
    }
    await this.holdCalls();
    try {
      this.flushLocal();
      if (adopted.report.inPlace && this.engine.module._keepstate_store_adopt_in_place(adopted.handle) !== 0) {
        // This state changed while the pages were read (a write): catch up by copying instead.
        adopted.discard();
        adopted = await this.restoreChanges(false);
        if (adopted.version <= this.version) {
          adopted.discard();
          return false;
        }
      }
      const fromVersion = this.version;
      const work = this.pending.length;
      const started = performance.now();
      this.pending.materialize(); // lazy writes' values are this state's: read them before it is swapped out
      const old = this.swapIn(adopted, loss);
      const { replayed, dropped } = await this.pending.replay(this.replayer());
      this.finishSwap(old, work > 0 ? 'rebase' : 'remote');
      const ms = performance.now() - started;
      if (work > 0) this.emit('rebase', { fromVersion, ontoVersion: adopted.version, replayed, dropped, ms });
    } finally {
      this.releaseCalls();
    }
    if (this.dirty) this.armAutosave();
    return true;
  }

  /**
   * Restores the stored state from this one: only the changed pages are read, and the
   * manifests this store holds decoded are left unread. If the restore needed one of them
   * after all (the engine says not-found: the stored record is not the one it holds), it
   * runs again reading every manifest.
   */
  private async restoreChanges(inPlace: boolean): Promise<Adopted> {
    const m = this.engine.module;
    this.engine.check(m._keepstate_store_read_manifests_from(this.handle));
    const hint = { manifestsFrom: this.engine.outText() };
    try {
      return await this.restoreFrom(this.backing.backend, this.handle, inPlace, hint);
    } catch (e) {
      if (!(e instanceof KeepstateError && e.code === 'not-found')) throw e;
      return this.restoreFrom(this.backing.backend, this.handle, inPlace);
    }
  }

  /** Another tab committed: catch up (once, however many announcements arrive meanwhile). */
  private follow(): void {
    if (this.followQueued || this.closing) return;
    this.followQueued = true;
    this.enqueue(() => {
      this.followQueued = false;
      // One readonly IndexedDB transaction reads a consistent state: no lock (catchUp takes it
      // if the open rules must decide).
      return this.closed || this.closing ? Promise.resolve(false) : this.catchUp(false, false);
    }).catch((e: unknown) => {
      if (e instanceof KeepstateError) this.emit('error', e);
    });
  }

  /** How a rebase replays the log: on the new state, without logging again. */
  private replayer(): Replayer {
    const raw = new Access(this.engine, this.accessOwner(() => this.assertUsable(), () => undefined, () => undefined), 0);
    return {
      put: (key, value) => raw.put(key, value),
      delete: (key) => void raw.delete(key),
      transaction: (fn) => void this.runTransaction(fn),
      call: (name, args) => runCallNow(this.engine, this.handle, name, args),
    };
  }

  /** Runs `fn` as one write transaction of the engine store (no logging: transaction() and replays log or not). */
  private runTransaction<T>(fn: (tx: Transaction) => T): T {
    if (this.inTransaction) throw new KeepstateError('busy', 'a transaction is already open');
    this.engine.check(this.engine.module._keepstate_store_begin(this.handle));
    this.inTransaction = true;
    const tx = new Access(this.engine, this.txOwner, 1);
    let result: T;
    try {
      result = fn(tx);
      if (isThenable(result)) throw new InvalidArgumentError('transaction(fn): fn must be synchronous (it returned a promise)');
    } catch (e) {
      this.endTransaction(tx, false);
      throw e;
    }
    this.engine.check(this.endTransaction(tx, true));
    return result;
  }

  /** Ends the open transaction (its `tx` throws ClosedError from now on); returns the engine's status. */
  private endTransaction(tx: Access, commit: boolean): number {
    tx.end();
    this.inTransaction = false;
    return this.engine.module._keepstate_store_end(this.handle, commit ? 1 : 0);
  }

  /** An Access's view of this store: its current engine store, and what runs around each write. */
  private accessOwner(check: () => void, writing: (key: string) => void, wrote: AccessOwner['wrote']): AccessOwner {
    const store = this;
    return {
      get handle() {
        return store.handle;
      },
      check,
      writing,
      wrote,
    };
  }

  /** Lets calls in flight finish, holding new ones until releaseCalls(). */
  private async holdCalls(): Promise<void> {
    if (this.heldCalls === null) this.heldCalls = [];
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  private releaseCalls(): void {
    const held = this.heldCalls;
    this.heldCalls = null;
    for (const start of held ?? []) start();
  }

  /** Commits, rebasing onto newer stored versions (unless onConflict is 'reject'), under the lock. */
  private async commitNow(): Promise<CommitResult> {
    const started = performance.now();
    if (this.leaving) throw new ClosedError(`store "${this.name}": the page was unloaded; its work is stashed for the next open`);
    if (!this.dirty) return { version: this.version, bytesWritten: 0, ms: performance.now() - started };
    // The commit holds the state of the moment it was requested (a call then in flight is let
    // finish first), unless another tab announced a newer version: then it rebases first, under
    // the lock, and captures after that.
    const rebaseFirst = this.settings.onConflict === 'rebase' && this.heardVersion > this.version;
    let captured = rebaseFirst ? null : await this.capture();
    return this.backing.withLock(async () => {
      if (rebaseFirst) await this.catchUp(false);
      for (;;) {
        if (captured === null) {
          if (!this.dirty) return { version: this.version, bytesWritten: 0, ms: performance.now() - started };
          captured = await this.capture();
        }
        try {
          return await this.write(captured, started);
        } catch (e) {
          captured = null;
          const rebase = e instanceof ConflictError && this.settings.onConflict === 'rebase';
          if (!rebase || !(await this.catchUp(true))) {
            if (e instanceof ConflictError) this.emit('conflict', e);
            throw e;
          }
        }
      }
    });
  }

  /** Captures the dirty pages into the commit plan, at a moment no call is half done (see the invariants). */
  private async capture(): Promise<{ handle: number; records: CommitRecords }> {
    if (this.inFlight.size > 0) await this.holdCalls();
    const handle = this.handle;
    const timing = this.backing.timing;
    const t0 = performance.now();
    try {
      this.engine.check(this.engine.module._keepstate_store_capture(handle, Date.now()));
      this.pending.seal();
    } finally {
      this.releaseCalls();
    }
    const t1 = performance.now();
    const records = readPlan(this.engine, handle, this.backing.packsAsBlobs);
    timing?.('commit.capture', t1 - t0);
    timing?.('commit.copy-out', performance.now() - t1);
    return { handle, records };
  }

  /** Writes a captured plan (the head check inside the backend's atomic write) and completes it. */
  private async write({ handle, records }: { handle: number; records: CommitRecords }, started: number): Promise<CommitResult> {
    const m = this.engine.module;
    try {
      const bytesWritten = records.puts.reduce((n, r) => n + recordSize(r), 0);
      await this.backing.commit(records, this.version, this.settings.durability, (head) => checkHead(this.engine, handle, head));
      this.engine.check(m._keepstate_store_commit_done(handle, 0));
      this.pending.landed();
      const result = { version: this.version, bytesWritten, ms: performance.now() - started };
      this.backing.backend.announce(result.version, this.writerId);
      this.emit('commit', result);
      this.statusNotifier.changed();
      return result;
    } catch (e) {
      const error = errorFromIndexedDB(e, `commit of store "${this.name}"`);
      m._keepstate_store_commit_done(handle, codeNumber(error.code)); // closed if nothing is in flight any more
      this.pending.unsealed();
      throw error;
    }
  }

  /** Tells the engine which keys' writes to record: those in some watcher's range. */
  private watchRanges(): void {
    const ranges = this.watchers.encodeRanges();
    const [p] = this.engine.stage(ranges);
    this.engine.check(this.engine.module._keepstate_store_watch(this.handle, p!, ranges.length));
  }

  /** A local write landed: autosave, and the watchers hear of it after this task. */
  private wroteLocally(): void {
    this.armAutosave();
    this.statusNotifier.changed();
    if (this.watchers.size > 0) this.flushSoon();
  }

  /** Watchers hear local writes once the code that made them returns (a microtask): all of a
   * synchronous run of writes at once, and before the page paints again, so a UI bound to a
   * key (a React controlled input) never shows the value before the write. */
  private flushSoon(): void {
    if (this.flushPosted) return;
    this.flushPosted = true;
    queueMicrotask(() => {
      this.flushPosted = false;
      this.flushLocal();
    });
  }

  /** Hands the keys local writes changed (since the last time) to the watchers. */
  private flushLocal(): void {
    if (this.closed || this.handle === 0 || this.watchers.size === 0) return;
    this.engine.check(this.engine.module._keepstate_store_take_changes(this.handle));
    this.watchers.deliver(readChanges(this.engine.outBytes()), this.version, 'local');
  }

  /** In a page, with autosave: commits pending work when the page is hidden, stashes it when
   * it is unloaded for good (leaving.ts). Returns the remover. */
  private commitWhenLeaving(): () => void {
    if (this.settings.autosaveMs <= 0) return () => undefined;
    return onLeavingPage({
      hidden: () => {
        if (this.closed || this.closing || !this.dirty) return;
        clearTimeout(this.autosaveTimer);
        this.autosaveTimer = undefined;
        this.enqueue(() => this.commitNow()).catch((e: unknown) => {
          if (e instanceof KeepstateError && !(e instanceof ConflictError)) this.emit('error', e);
        });
      },
      unloaded: () => this.stashNow(),
    });
  }

  /**
   * Captures the uncommitted state and stashes it as one record for the next open, in this
   * task (a page being unloaded has no other). The page commits nothing after that: the stash
   * holds its work, and a second write of it would apply it twice.
   */
  private stashNow(): void {
    if (this.closed || this.closing || this.leaving || this.inTransaction || !this.dirty) return;
    const m = this.engine.module;
    // A commit in flight has its plan: then that commit is the page's last chance, as before.
    if (m._keepstate_store_capture(this.handle, Date.now()) !== 0) return;
    try {
      const records = readPlan(this.engine, this.handle);
      this.backing.backend.stashCommit({ writer: this.writerId, baseVersion: this.version, records, at: Date.now() });
      this.leaving = true;
    } catch {
      // Nothing stashed: the state stays as it is (and dirty).
    } finally {
      m._keepstate_store_commit_done(this.handle, codeNumber('closed')); // not written: the pages are dirty again
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
