// Writer: everything that changes what a store has committed — commits,
// rebases onto other tabs' commits, following them, autosave, and the stash
// of a page being unloaded — over one current Replica (replica.ts), one
// backend (storage/), the store's lock and its commit notices (notices/).
// store.ts is the public face over it (docs/architecture.md draws the path
// of a put, a commit, a restore, a follow and a rebase).
//
// Invariants:
//  - Commits, catch-ups, reloads and close run one at a time, in request
//    order (`enqueue`); a commit requested during another one runs after it
//    and takes everything dirtied meanwhile.
//  - Replaying the pending log on the state's base version gives the state
//    (pending.ts). A commit captures at a moment no mutator call is half done
//    (calls started meanwhile wait until the capture: holdCalls), so the
//    log's seal is exact.
//  - A rebase (catch up to the newer stored version, replay the log, commit)
//    runs under the store's lock, so tabs take turns and every turn commits.
//  - A failed commit (quota, anything but a conflict it could rebase) leaves
//    the state dirty and the stored data exactly as it was.
//  - At most one autosave timer is armed; it is armed by a write (from JS or
//    a mutator call) and re-armed after a commit only if that commit
//    succeeded and the state is dirty again, so a failure is not retried in
//    a loop.
//  - The phase (lifecycle.ts) says what is allowed; every entry point checks it.
import { Access, type AccessOwner } from './access.js';
import { WIRE } from './generated/abi.js';
import { runCallNow } from './calls.js';
import { ClosedError, ConflictError, CorruptionError, InvalidArgumentError, KeepstateError, codeNumber, errorFromIndexedDB } from './errors.js';
import type { StoreEmitter } from './events.js';
import { onLeavingPage } from './leaving.js';
import type { Lifecycle } from './lifecycle.js';
import type { CommitNotices } from './notices/notices.js';
import { PendingLog, type Replayer } from './pending.js';
import { Replica, headRule, type OpenReport, type RestoreFrom } from './replica.js';
import { ReadProgress, type ProgressListener } from './progress.js';
import { headOf, headVersionOf, recordSize, type CommitRecords, type RestoreHint, type RestoreSource } from './storage/backend.js';
import type { GuardedBackend, Restored } from './storage/guarded.js';
import type { Lock } from './storage/lock.js';
import type { CommitResult, DataLossEvent, StashedCommitEvent, Transaction, WatchEvent, WatchRange, WatchSource } from './types.js';
import type { Wasm } from './wasm.js';
import { StatusNotifier } from './status.js';
import { Watchers } from './watch.js';
import type { RawChange } from './wire.js';
import { postTask } from './driver.js';

/** What openStore resolved from the options. */
export interface WriterSettings {
  autosaveMs: number;
  retain: number;
  pageSize: number;
  durability: 'strict' | 'relaxed';
  /** What a commit that finds a newer stored version does: replay the pending work on it, or reject. */
  onConflict: 'rebase' | 'reject';
  /** Catch up with other tabs' commits as they are announced. */
  follow: boolean;
  /** OpenOptions.onAllDamaged === 'open': every retained version damaged opens empty instead of refusing. */
  openEmptyIfDamaged: boolean;
}

/** Where a store's writer keeps its versions and hears of others'. */
export interface WriterStorage {
  backend: GuardedBackend;
  lock: Lock;
  notices: CommitNotices;
}

/** A restored replica, with what its restore reported. */
type Adopted = Restored & { replica: Replica; report: OpenReport };

function randomWriterId(): number {
  const words = new Uint32Array(2);
  globalThis.crypto.getRandomValues(words);
  // 53 bits: exact as a double across the C ABI.
  return (words[0]! & 0x1fffff) * 2 ** 32 + words[1]!;
}

export class Writer {
  /** Reads and writes straight on the store (a transaction's `tx` is another Access). */
  readonly direct: Access;
  /** Who hears that the store's status (version, dirty, closed) may have changed (status.ts). */
  readonly status = new StatusNotifier();
  private readonly writerId = randomWriterId();
  private readonly backend: GuardedBackend;
  private readonly lock: Lock;
  private readonly notices: CommitNotices;
  /** The replica the store reads and writes now; null before the first restore and after close. */
  private current: Replica | null = null;
  private closedVersion = 0;
  private queue: Promise<unknown> = Promise.resolve();
  private queued = 0;
  private autosaveTimer: ReturnType<typeof setTimeout> | undefined;
  private inTransaction = false;
  /** Mutator calls started by call() and not yet settled (close() lets them finish). */
  private readonly inFlight = new Set<Promise<unknown>>();
  /** While a commit waits to capture (or a catch-up to swap states): calls to start after it. */
  private heldCalls: Array<() => void> | null = null;
  /** This store's work since its base version, for a rebase (a lazy write's value is read from the state). */
  private readonly pending = new PendingLog((key) => this.replica.get(0, key));
  /** Whose writes a transaction's `tx` makes (one Access per transaction, one owner for all). */
  private readonly txOwner: AccessOwner;
  private readonly watchers = new Watchers();
  private flushPosted = false;
  /** Watchers are being told of changes: writes they make are told on a later task, not in a loop of microtasks. */
  private delivering = false;
  /** A catch-up with other tabs' commits is queued. */
  private followQueued = false;
  /** The newest version another writer of this store announced. */
  private heardVersion = 0;
  /** The newest schema version this code writes (set by openStore once migrated); null: not yet known. */
  private codeSchema: number | null = null;
  /** The state's schema is newer than the code's: commits are refused (see checkSchema). */
  private outdated = false;
  /** close() in progress (its promise), or null. */
  private closing: Promise<void> | null = null;
  /** Autosave commits that failed in a row (the next one waits longer: armAutosave). */
  private autosaveFailures = 0;
  private readonly stopHearing: () => void;
  private readonly stopSlices: () => void;
  private readonly stopLeaving: () => void;
  private readonly stopRetire: () => void;

  constructor(
    readonly wasm: Wasm,
    readonly name: string,
    storage: WriterStorage,
    private readonly settings: WriterSettings,
    private readonly events: StoreEmitter,
    private readonly life: Lifecycle,
  ) {
    ({ backend: this.backend, lock: this.lock, notices: this.notices } = storage);
    const directWrite = () => {
      if (this.inTransaction) throw new KeepstateError('busy', 'inside transaction(fn), write with tx.put / tx.delete (the store\'s own writes wait until fn returns)');
      this.pending.beforeWrite();
    };
    this.direct = new Access(this.accessOwner(() => life.assertUsable(), directWrite, (key, value) => {
      // While a mutator call is in flight it may write the same keys: the log keeps a copy.
      this.pending.write(key, value ?? null, this.inFlight.size === 0);
      this.wroteLocally();
    }), 0);
    this.txOwner = this.accessOwner(() => undefined, (key) => this.pending.beforeTransactionWrite(key), () => undefined);
    this.backend.onCopyError = (error) => this.background(Promise.reject(error));
    this.stopHearing = this.notices.listen((notice) => {
      if (!life.usable || notice.writer === this.writerId) return;
      if (notice.kind === 'deleted') return this.deleted();
      const { version } = notice;
      this.heardVersion = Math.max(this.heardVersion, version);
      // The catch-up is queued first, so that a listener can wait for it (settled()).
      if (this.settings.follow && version > this.version) this.follow();
      events.emit('remote-commit', { version });
    });
    // A mutator's transactions land while fibers run: their keys are taken after the slice.
    this.stopSlices = wasm.onSlice(() => {
      if (!life.usable) return;
      this.status.changed(); // a mutator's writes dirty the state
      if (this.watchers.size > 0) this.flushSoon();
    });
    this.stopLeaving = this.commitWhenLeaving();
    // The module aborted: this store is closed, with the reason; what was committed reopens.
    this.stopRetire = wasm.onRetire((error) => {
      if (this.life.phase === 'closed') return;
      this.release('aborted', error.message);
      this.events.emitSoon('error', error);
    });
    ++wasm.openStores;
  }

  /** The replica now. REQUIRES: the store restored and is not closed (the phase checks say so first). */
  get replica(): Replica {
    if (this.current === null) throw new ClosedError(`store "${this.name}" is closed`);
    return this.current;
  }

  get version(): number {
    return this.current === null ? this.closedVersion : this.current.version;
  }

  get dirty(): boolean {
    return this.current !== null && this.current.dirty;
  }

  get lossProtection(): GuardedBackend['lossProtection'] {
    return this.backend.lossProtection;
  }

  // --- Local work: transactions, mutator calls, watch ------------------------------

  /** Runs `fn` as one atomic write transaction and logs it for a rebase (Store.transaction). */
  transaction<T>(fn: (tx: Transaction) => T): T {
    this.life.assertUsable();
    if (typeof fn !== 'function') throw new InvalidArgumentError(`transaction(fn): fn must be a function, got ${fn === null ? 'null' : typeof fn}`);
    if (this.replica.syncState() !== undefined) {
      throw new KeepstateError(
        'unsupported',
        `store "${this.name}" is synced: a JS transaction cannot run on its server; write a C++ mutator and call() it (docs/sync.md)`,
      );
    }
    const result = this.runTransaction(fn);
    this.pending.transaction(fn);
    this.wroteLocally();
    return result;
  }

  /** Starts mutator `name` (Store.call); resolves with the bytes it returns. */
  call(name: string, args: Uint8Array): Promise<Uint8Array> {
    this.life.assertUsable();
    if (typeof name !== 'string' || name.length === 0) throw new InvalidArgumentError('call: name must be a non-empty string');
    if (name.length > 256) throw new InvalidArgumentError(`call: name is longer than 256 characters`);
    if (!(args instanceof Uint8Array)) throw new InvalidArgumentError('call: args must be a Uint8Array');
    if (args.length > WIRE.MAX_ARGS_BYTES) throw new InvalidArgumentError(`call: args are ${args.length} bytes, more than ${WIRE.MAX_ARGS_BYTES}`);
    const start = () => {
      this.pending.materialize(); // the mutator writes keys the log cannot see
      const id = this.replica.startCall(name, args);
      this.pending.call(name, args);
      const result = new Promise<Uint8Array>((resolve, reject) => this.wasm.calls.set(id, { resolve, reject }));
      this.inFlight.add(result);
      // The mutator's writes made the state dirty: the autosave timer starts when it settles.
      const settled = () => {
        this.inFlight.delete(result);
        if (this.life.usable) this.armAutosave();
      };
      result.then(settled, settled);
      this.wasm.driver.wake();
      return result;
    };
    const held = this.heldCalls;
    if (held === null) return start();
    // A commit is about to capture: the call starts right after it.
    return new Promise<Uint8Array>((resolve, reject) =>
      held.push(() => {
        try {
          this.life.assertUsable();
          start().then(resolve, reject);
        } catch (e) {
          reject(e);
        }
      }),
    );
  }

  // --- Sync (sync/client.ts) ----------------------------------------------------------

  /**
   * Runs `adopt` (a pull's adoption and the replay of what is still pending) on the replica,
   * after the calls in flight and under the store's lock, with new calls held: no commit
   * captures a state with half of it, and no catch-up swaps the replica under it. Resolves
   * with what `adopt` returned.
   */
  adoptPull(adopt: (replica: Replica) => Promise<boolean>): Promise<boolean> {
    this.life.assertUsable();
    return this.enqueue(() =>
      this.lock(async () => {
        await this.holdCalls();
        this.flushLocal(); // what was written here before the pull is heard as 'local'
        const done = adopt(this.replica);
        this.inFlight.add(done);
        try {
          const adopted = await done;
          if (adopted) {
            this.status.changed();
            this.armAutosave();
            // The server's values and the replayed pending work: one 'sync' event.
            if (this.current !== null && this.watchers.size > 0) this.deliver(this.current.takeChanges(), 'sync');
          }
          return adopted;
        } finally {
          this.inFlight.delete(done);
          this.releaseCalls();
        }
      }),
    );
  }

  /** Replays journaled mutation `id` (adoptPull): settles when it finished, whatever its outcome. */
  replay(id: number): Promise<void> {
    const call = this.replica.syncReplay(id);
    const done = new Promise<void>((resolve) => this.wasm.calls.set(call, { resolve: () => resolve(), reject: () => resolve() }));
    this.wasm.driver.wake();
    return done;
  }

  /** Store.watch: calls `listener` when keys in `range` change; returns the stop function. */
  watch(range: WatchRange, listener: (event: WatchEvent) => void): () => void {
    this.life.assertUsable();
    const stop = this.watchers.add(range, listener);
    this.watchRanges();
    let stopped = false;
    return () => {
      if (stopped) return;
      stopped = true;
      stop();
      if (this.current !== null) this.watchRanges();
    };
  }

  /** Runs `fn` as one write transaction of the replica (no logging: transaction() and replays log or not). */
  runTransaction<T>(fn: (tx: Transaction) => T): T {
    if (this.inTransaction) throw new KeepstateError('busy', 'a transaction is already open');
    const replica = this.replica;
    replica.begin();
    this.inTransaction = true;
    const tx = new Access(this.txOwner, 1);
    let result: T;
    try {
      result = fn(tx);
      if (isThenable(result)) {
        // Its rejection (the rest of fn, failing on the ended tx) is this error's, not unhandled.
        (result as unknown as PromiseLike<unknown>).then(undefined, () => undefined);
        throw new InvalidArgumentError('transaction(fn): fn must be synchronous (it returned a promise); nothing was applied');
      }
    } catch (e) {
      this.endTransaction(tx, false);
      throw e;
    }
    this.wasm.check(this.endTransaction(tx, true));
    return result;
  }

  /**
   * From now on, a state whose schema version is above `version` (another tab migrated it,
   * and this one followed) is not written over: commits reject with 'unsupported', and a
   * 'schema-newer' event tells the app (which should ask the user to reload).
   */
  setCodeSchema(version: number): void {
    this.codeSchema = version;
    this.checkSchema();
  }

  /** Notes (once, with an event) that the state's schema is newer than the code's. */
  private checkSchema(): void {
    if (this.codeSchema === null || this.outdated || this.current === null) return;
    const stored = this.current.schemaVersion();
    if (stored <= this.codeSchema) return;
    this.outdated = true;
    this.events.emitSoon('schema-newer', { storedVersion: stored, codeVersion: this.codeSchema });
  }

  /** The pending log must see what C++ code is about to write (migrations, mutators). */
  materializePending(): void {
    this.pending.materialize();
  }

  /** Ends the open transaction (its `tx` throws ClosedError from now on); returns the module's status. */
  private endTransaction(tx: Access, commit: boolean): number {
    tx.end();
    this.inTransaction = false;
    return this.replica.end(commit);
  }

  /** An Access's view of this store: its current replica, and what runs around each write. */
  private accessOwner(check: () => void, writing: (key: string) => void, wrote: AccessOwner['wrote']): AccessOwner {
    const writer = this;
    return {
      get replica() {
        return writer.replica;
      },
      check,
      writing,
      wrote,
    };
  }

  /** A local write landed: autosave, and the watchers hear of it after this task. */
  private wroteLocally(): void {
    this.status.changed();
    this.armAutosave();
    if (this.watchers.size > 0) this.flushSoon();
  }

  /** Watchers hear local writes once the code that made them returns (a microtask): all of a
   * synchronous run of writes at once, and before the page paints again, so a UI bound to a
   * key (a React controlled input) never shows the value before the write. */
  private flushSoon(): void {
    if (this.flushPosted) return;
    this.flushPosted = true;
    const flush = () => {
      this.flushPosted = false;
      this.flushLocal();
    };
    // A listener writing into its own range must not starve the page: its writes go a task later.
    if (this.delivering) postTask(flush);
    else queueMicrotask(flush);
  }

  /** Hands the keys local writes changed (since the last time) to the watchers. */
  private flushLocal(): void {
    if (!this.life.usable || this.current === null || this.watchers.size === 0) return;
    this.deliver(this.current.takeChanges(), 'local');
  }

  /** Hands `changes` to the watchers, noting that they are being told (flushSoon). */
  private deliver(changes: RawChange[], source: WatchSource): void {
    this.delivering = true;
    try {
      this.watchers.deliver(changes, this.version, source);
    } finally {
      this.delivering = false;
    }
  }

  /** Tells the replica which keys' writes to record: those in some watcher's range. */
  private watchRanges(): void {
    this.replica.watch(this.watchers.encodeRanges());
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

  // --- Commits -----------------------------------------------------------------------

  /** Store.commit: commits every uncommitted change; resolves once it is durable. */
  commit(): Promise<CommitResult> {
    this.life.assertUsable();
    return this.enqueue(() => this.commitNow());
  }

  /** Commits, rebasing onto newer stored versions (unless onConflict is 'reject'), under the lock. */
  private async commitNow(): Promise<CommitResult> {
    const started = performance.now();
    this.life.assertCanCommit();
    if (!this.dirty) return this.nothingToCommit(started);
    // The commit holds the state of the moment it was requested (a call then in flight is let
    // finish first), unless another writer announced a newer version: then it rebases first,
    // under the lock, and captures after that.
    const rebaseFirst = this.settings.onConflict === 'rebase' && this.heardVersion > this.version;
    let captured = rebaseFirst ? null : await this.capture();
    const asked = performance.now();
    return this.lock(async () => {
      this.backend.timing?.('commit.lock', performance.now() - asked);
      if (rebaseFirst) await this.catchUp(false);
      for (;;) {
        if (captured === null) {
          if (!this.dirty) return this.nothingToCommit(started);
          captured = await this.capture();
        }
        try {
          return await this.write(captured, started);
        } catch (e) {
          captured = null;
          const rebase = e instanceof ConflictError && this.settings.onConflict === 'rebase';
          if (!rebase || !(await this.catchUp(true))) {
            if (e instanceof ConflictError) this.events.emit('conflict', e);
            throw e;
          }
        }
      }
    });
  }

  private nothingToCommit(started: number): CommitResult {
    return { version: this.version, bytesWritten: 0, ms: performance.now() - started, lossProtection: this.backend.lossProtection };
  }

  /** Captures the dirty pages into the commit plan, at a moment no call is half done (see the invariants). */
  private async capture(): Promise<{ replica: Replica; records: CommitRecords }> {
    if (this.inFlight.size > 0) await this.holdCalls();
    const replica = this.replica;
    const timing = this.backend.timing;
    const t0 = performance.now();
    try {
      replica.capture(Date.now());
      this.pending.seal();
    } finally {
      this.releaseCalls();
    }
    const t1 = performance.now();
    const records = replica.plan(this.backend.capabilities.blobPacks);
    timing?.('commit.capture', t1 - t0);
    timing?.('commit.copy-out', performance.now() - t1);
    return { replica, records };
  }

  /** Writes a captured plan (the head check inside the backend's atomic write) and completes it. */
  private async write({ replica, records }: { replica: Replica; records: CommitRecords }, started: number): Promise<CommitResult> {
    this.lock.assertHeld();
    if (this.outdated) {
      replica.abandonCommit(codeNumber('unsupported'));
      this.pending.unsealed();
      throw new KeepstateError(
        'unsupported',
        `store "${this.name}": the stored data has schema version ${this.replica.schemaVersion()}, newer than this code's ${this.codeSchema}: ` +
          'another tab migrated it; this one writes nothing over it (reload the page to run the newer code)',
      );
    }
    try {
      const bytesWritten = records.puts.reduce((n, r) => n + recordSize(r), 0);
      await this.backend.writeCommit(records, this.settings.durability, (head) => replica.checkHead(head));
      replica.commitDone(0);
      this.pending.landed();
      const result = { version: this.version, bytesWritten, ms: performance.now() - started, lossProtection: this.backend.lossProtection };
      this.notices.announce({ kind: 'commit', version: result.version, writer: this.writerId });
      this.events.emit('commit', result);
      this.status.changed();
      return result;
    } catch (e) {
      const error = errorFromIndexedDB(e, `commit of store "${this.name}"`);
      replica.abandonCommit(codeNumber(error.code)); // closed if nothing is in flight any more
      this.pending.unsealed();
      throw error;
    }
  }

  // --- Restore, catch-up, rebase ---------------------------------------------------------

  /** Store.reload: drops uncommitted changes and loads the newest committed version. */
  reload(): Promise<void> {
    this.life.assertUsable();
    return this.enqueue(() => this.restore());
  }

  /**
   * Restores the newest verified version (the backend decides from which copy); drops pending
   * work. `onProgress` (openStore's) hears the bytes of records read by every restore this runs.
   */
  async restore(onProgress?: ProgressListener): Promise<void> {
    const stashEvents: StashedCommitEvent[] = [];
    const onRead = onProgress === undefined ? undefined : new ReadProgress(onProgress).read;
    const restore = (source: RestoreSource) => this.restoreFrom(source, undefined, false, undefined, onRead);
    const { restored, loss } = await this.lock(async () => {
      const first = await this.backend.restoreNewest(restore);
      // Commits that pages stashed as they were unloaded go in now, then the newest is restored.
      if (!(await this.writeStashes(stashEvents))) return first;
      first.restored.discard();
      return this.backend.restoreNewest(restore);
    });
    for (const event of stashEvents) this.events.emitSoon('stashed-commit', event);
    this.flushLocal();
    const old = this.swapIn(restored as Adopted, loss);
    this.pending.clear();
    this.finishSwap(old, 'reload');
    this.checkSchema();
    if (this.life.phase === 'opening') this.life.to('open');
  }

  /**
   * Catches up with the newest stored version and replays the pending log on
   * it (a rebase when there is pending work). `conflict`: a commit found the
   * stored head moved, so the stored state is adopted even if it is not newer
   * (its head is what the next commit must find). Resolves whether it adopted
   * one. REQUIRES: this runs in the queue, and the lock is held if `locked`.
   */
  private async catchUp(conflict: boolean, locked = true): Promise<boolean> {
    if (locked) this.lock.assertHeld();
    // Only the pages that changed since this state's version are read (the rest come from it);
    // a store with nothing of its own pending takes them in place, copying nothing else.
    const inPlace = !conflict && !this.dirty && this.pending.length === 0;
    let adopted = await this.restoreChanges(inPlace);
    let loss: DataLossEvent | null = null;
    if (adopted.version < this.version || adopted.report.failures.length > 0) {
      // The backend holds less than this store knows, or a newer version did not verify: the
      // open rules decide (the OPFS copy, the data-loss report), under the lock.
      adopted.discard();
      const newest = () => this.backend.restoreNewest((source) => this.restoreFrom(source));
      const found = await (locked ? newest() : this.lock(newest));
      adopted = found.restored as Adopted;
      loss = found.loss;
    }
    if (!conflict && adopted.version <= this.version) {
      adopted.discard();
      return false;
    }
    await this.holdCalls();
    try {
      this.flushLocal();
      if (adopted.report.inPlace && !adopted.replica.adoptInPlace()) {
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
      this.checkSchema();
      const ms = performance.now() - started;
      if (work > 0) this.events.emit('rebase', { fromVersion, ontoVersion: adopted.version, replayed, dropped, ms });
    } finally {
      this.releaseCalls();
    }
    if (this.dirty) this.armAutosave();
    return true;
  }

  /**
   * Restores the stored state from this one: only the changed pages are read, and the
   * manifests this replica holds decoded are left unread. If the restore needed one of them
   * after all (the module says not-found: the stored record is not the one it holds), it
   * runs again reading every manifest.
   */
  private async restoreChanges(inPlace: boolean): Promise<Adopted> {
    const base = this.replica;
    const hint: RestoreHint = { manifestsFrom: base.manifestsFrom() };
    try {
      return await this.restoreFrom(this.backend, base, inPlace, hint);
    } catch (e) {
      if (!(e instanceof KeepstateError && e.code === 'not-found')) throw e;
      return this.restoreFrom(this.backend, base, inPlace);
    }
  }

  /** Restores `source` into a new replica (adopted, or discarded), taking unchanged pages from `base` if given. */
  private async restoreFrom(
    source: RestoreSource,
    base?: Replica,
    inPlace = false,
    hint?: RestoreHint,
    onRead?: RestoreFrom['onRead'],
  ): Promise<Adopted> {
    const { pageSize, retain, openEmptyIfDamaged } = this.settings;
    const replica = Replica.create(this.wasm, { pageSize, retain, writerId: this.writerId, openEmptyIfDamaged });
    try {
      const report = await replica.restore(source, { base, inPlace, hint, timing: this.backend.timing, onRead });
      return { replica, report, version: report.restored, failures: report.failures, discard: () => replica.destroy() };
    } catch (e) {
      replica.destroy();
      throw e;
    }
  }

  /** Makes `restored` the current replica; returns the previous one (null: none) for finishSwap. */
  private swapIn({ replica, report }: Adopted, loss: DataLossEvent | null): Replica | null {
    const old = this.current;
    this.current = replica;
    // Events go out on a later task so a handler attached right after openStore() hears them.
    if (loss !== null) this.events.emitSoon('data-loss', loss);
    if (report.failures.length > 0) {
      const what = report.fresh
        ? 'no stored version verified: the store opened empty on a fresh version line'
        : `fell back to version ${report.restored}`;
      const detail = report.failures.map((f) => `version ${f.version}: ${f.message}`).join('; ');
      const error = new CorruptionError(`store "${this.name}": ${what} (${detail})`, report.failures);
      this.events.emitSoon('corruption', { restoredVersion: report.restored, fresh: report.fresh, failures: report.failures, error });
    }
    return old;
  }

  /** Tells the watchers what differs from the previous state, then releases it. */
  private finishSwap(old: Replica | null, source: WatchSource): void {
    this.status.changed(); // a catch-up, rebase or reload: a new version, maybe clean
    if (old === null) return;
    if (this.watchers.size > 0) {
      const changes = this.replica.changesSince(old);
      this.watchRanges();
      this.deliver(changes, source);
    }
    old.destroy();
  }

  /** Another writer committed: catch up (once, however many notices arrive meanwhile). */
  private follow(): void {
    if (this.followQueued || !this.life.usable) return;
    this.followQueued = true;
    this.background(
      this.enqueue(() => {
        this.followQueued = false;
        // One readonly read of the backend gives a consistent state: no lock (catchUp takes
        // it if the open rules must decide).
        return this.life.usable ? this.catchUp(false, false) : Promise.resolve(false);
      }),
      'emit',
    );
  }

  /** How a rebase replays the log: on the new state, without logging again. */
  private replayer(): Replayer {
    const raw = new Access(this.accessOwner(() => this.life.assertUsable(), () => undefined, () => undefined), 0);
    return {
      put: (key, value) => raw.put(key, value),
      delete: (key) => void raw.delete(key),
      transaction: (fn) => void this.runTransaction(fn),
      call: (name, args) => runCallNow(this.replica, name, args),
    };
  }

  // --- Autosave, leaving the page, stashes -----------------------------------------------

  /**
   * A write landed (or an autosave failed): commit `autosaveMs` later, unless a commit is
   * already due. After failures in a row the delay doubles, up to a minute, while the
   * state stays dirty: a full disk is retried without a loop; a conflict the app chose to
   * see ('reject') is not retried (it would conflict again).
   */
  private armAutosave(): void {
    if (this.settings.autosaveMs <= 0 || this.autosaveTimer !== undefined || !this.life.usable) return;
    const delay = Math.min(this.settings.autosaveMs * 2 ** this.autosaveFailures, Math.max(this.settings.autosaveMs, AUTOSAVE_MAX_BACKOFF_MS));
    this.autosaveTimer = setTimeout(() => {
      this.autosaveTimer = undefined;
      if (!this.life.usable || !this.dirty) return;
      const commit = this.enqueue(() => this.commitNow()).then(
        () => {
          this.autosaveFailures = 0;
          if (this.dirty) this.armAutosave();
        },
        (e: unknown) => {
          if (!(e instanceof ConflictError)) {
            ++this.autosaveFailures;
            if (this.dirty) this.armAutosave();
          }
          throw e;
        },
      );
      this.background(commit);
    }, delay);
  }

  /** In a page, with autosave: commits pending work when the page is hidden, stashes it when
   * it is unloaded for good (leaving.ts). Returns the remover. */
  private commitWhenLeaving(): () => void {
    if (this.settings.autosaveMs <= 0) return () => undefined;
    return onLeavingPage({
      hidden: () => {
        if (!this.life.usable || !this.dirty) return;
        clearTimeout(this.autosaveTimer);
        this.autosaveTimer = undefined;
        this.background(this.enqueue(() => this.commitNow()));
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
    if (this.life.phase !== 'open' || this.inTransaction || !this.dirty) return;
    const replica = this.replica;
    // A commit in flight has its plan: then that commit is the page's last chance, as before.
    if (replica.tryCapture(Date.now()) !== 0) return;
    try {
      const records = replica.plan();
      this.backend.stashCommit({ writer: this.writerId, baseVersion: this.version, records, at: Date.now() });
      this.life.to('left');
    } catch {
      // Nothing stashed: the state stays as it is (and dirty).
    } finally {
      replica.abandonCommit(codeNumber('closed')); // not written: the pages are dirty again
    }
  }

  /**
   * Writes the commits pages stashed as they were unloaded (backend.ts StashedCommit), oldest
   * first, each with the head check it would have had (the head rule, replica.ts): dropped if
   * another writer committed after its base, skipped if it is the stored head already (a kill
   * between writing it and removing the stash). Adds what became of each to `events`;
   * resolves whether one was written. REQUIRES: the lock is held.
   */
  private async writeStashes(events: StashedCommitEvent[]): Promise<boolean> {
    this.lock.assertHeld();
    const rule = headRule(this.wasm);
    let wrote = false;
    for (const stash of await this.backend.readStashes()) {
      const { records } = stash;
      const ownHead = headOf(records) ?? null;
      const version = headVersionOf(ownHead ?? undefined);
      const alreadyWritten = new KeepstateError('internal', 'the stashed commit is the stored head');
      const check = (head: Uint8Array | undefined) => {
        const conflict = rule(records.expectedHead, head);
        if (conflict === null) return null;
        if (rule(ownHead, head) === null) return alreadyWritten;
        if (!(conflict instanceof ConflictError)) return conflict;
        return new ConflictError(
          `store "${this.name}": a page stashed a commit based on version ${stash.baseVersion}, but another writer committed after it`,
          stash.baseVersion,
          conflict.actualVersion,
        );
      };
      try {
        await this.backend.writeCommit(records, this.settings.durability, check);
        wrote = true;
        this.notices.announce({ kind: 'commit', version, writer: stash.writer });
        events.push({ outcome: 'committed', version, capturedAt: stash.at });
      } catch (e) {
        if (e === alreadyWritten) events.push({ outcome: 'committed', version, capturedAt: stash.at });
        else if (e instanceof ConflictError) events.push({ outcome: 'dropped', version: stash.baseVersion, capturedAt: stash.at, error: e });
        else throw e;
      }
      await this.backend.deleteStash(stash.writer);
    }
    return wrote;
  }

  // --- Snapshot files ---------------------------------------------------------------------

  /** Store.export: commits pending changes, then writes the committed state as a snapshot file. */
  exportFile(onProgress?: ProgressListener): Promise<Blob> {
    this.life.assertUsable();
    return this.enqueue(async () => {
      if (this.dirty) await this.commitNow();
      // Synchronous from here: no write can land between the chunks.
      return this.replica.exportFile(onProgress);
    });
  }

  /** importStore: makes the verified import `id` the state (not committed yet). */
  adoptImport(id: number): Promise<void> {
    return this.enqueue(async () => {
      await this.holdCalls();
      try {
        this.replica.adoptImport(id);
      } finally {
        this.releaseCalls();
      }
      this.pending.clear();
      this.watchRanges();
    });
  }

  // --- Closing ------------------------------------------------------------------------------

  /** Store.close: lets calls in flight finish, commits pending changes, then closes. */
  close(): Promise<void> {
    // Idempotent: a second call gets the first one's outcome; after it closed, it resolves.
    if (this.closing !== null) return this.closing;
    if (this.life.phase === 'closed') return Promise.resolve();
    this.life.to('closing');
    const closing = this.enqueue(async () => {
      try {
        // Calls already started finish first, so their effects are in the final commit.
        await Promise.allSettled([...this.inFlight]);
        // An outdated store's writes can never be written (checkSchema): it closes without them.
        if (this.dirty && !this.outdated) await this.commitNow();
      } catch (e) {
        this.life.reopen();
        throw e;
      }
      this.release();
    });
    this.closing = closing;
    const done = () => {
      this.closing = null;
    };
    closing.then(done, done);
    return closing;
  }

  /** Closes without committing (openStore gave up on this store). */
  discard(): void {
    if (this.life.phase === 'closed') return;
    this.release();
  }

  /** Another tab deleted the store (deleteStore): closed at once, its uncommitted work with it. */
  private deleted(): void {
    this.release('deleted');
    this.events.emitSoon('deleted', { name: this.name });
  }

  /** Lets go of everything: the replica, timers, listeners, storage. */
  private release(why: 'closed' | 'deleted' | 'aborted' = 'closed', detail = ''): void {
    this.life.to('closed', why, detail);
    this.closedVersion = this.version;
    clearTimeout(this.autosaveTimer);
    this.stopSlices();
    this.stopLeaving();
    this.stopHearing();
    this.stopRetire();
    this.releaseCalls();
    if (this.wasm.retired === null) this.current?.destroy(); // an aborted module is never called again
    this.current = null;
    --this.wasm.openStores;
    this.notices.close();
    this.backend.close();
    this.status.close();
  }

  // --- Order and failures of background work ---------------------------------------------------

  /** Runs `op` now if nothing is queued (so a commit captures the state of the moment it is
   * requested), else after everything queued before it. */
  /** Resolves once the work queued so far (a catch-up with another tab's commit, a commit) has run. */
  settled(): Promise<void> {
    return this.enqueue(async () => undefined);
  }

  private enqueue<T>(op: () => Promise<T>): Promise<T> {
    const run = this.queued === 0 ? op() : this.queue.then(op, op);
    ++this.queued;
    this.queue = run.then(
      () => void --this.queued,
      () => void --this.queued,
    );
    return run;
  }

  /**
   * Work nobody awaits (autosave, follow, a commit as the page is hidden): every failure
   * reaches the app as an 'error' event, a KeepstateError (anything else is wrapped as
   * 'internal', with the original as its cause) — except a commit's conflict, which the
   * commit reports as 'conflict'. With no 'error' listener, the console gets it instead.
   */
  private background(work: Promise<unknown>, conflicts: 'reported' | 'emit' = 'reported'): void {
    work.catch((e: unknown) => {
      if (e instanceof ConflictError && conflicts === 'reported') return;
      const error = e instanceof KeepstateError ? e : new KeepstateError('internal', `store "${this.name}": ${String((e as Error)?.message ?? e)}`, { cause: e });
      if (this.events.heard('error')) this.events.emit('error', error);
      else reportUnheard(error);
    });
  }
}

/** The longest an autosave waits after failures in a row (armAutosave). */
const AUTOSAVE_MAX_BACKOFF_MS = 60_000;

/**
 * An error nobody listens for goes to the console: visible, without turning a failure the
 * store survives (the copy missing a commit, an autosave it will retry) into an uncaught
 * exception that a framework's error overlay, or a Worker's `error` event, takes for a crash.
 */
function reportUnheard(error: KeepstateError): void {
  console.error(error);
}

function isThenable(value: unknown): boolean {
  return typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function';
}
