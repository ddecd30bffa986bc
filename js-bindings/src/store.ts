// Store: the public face of one keepstate store — synchronous reads and
// writes against the wasm engine, asynchronous commits to IndexedDB.
//
// Invariants:
//  - Commits, reloads and close run one at a time, in request order (the
//    `queue` promise chain); a commit requested during another one runs after
//    it and takes everything dirtied meanwhile.
//  - After close() resolves, every method throws (or rejects with) ClosedError.
//  - A failed commit (conflict, quota, anything) leaves the state dirty and
//    the stored data exactly as it was (the IndexedDB transaction aborted).
import { Engine, loadEngine, type ModuleSource } from './engine.js';
import { postTask } from './driver.js';
import type { KeepstateModuleFactory } from './keepstate.js';
import {
  ClosedError,
  ConflictError,
  CorruptionError,
  InvalidArgumentError,
  KeepstateError,
  codeNumber,
  errorFromIndexedDB,
  type VersionFailure,
} from './errors.js';
import { databaseName } from './idb.js';
import type { CommitRecords, PackRequest, RestoreSource } from './backend.js';
import { StoreStorage, type DataLossEvent, type Restored } from './storage.js';
import type { MirrorDirectory } from './opfs.js';

export interface OpenOptions {
  /** Commit automatically this many ms after the first uncommitted change; false: never. Default 1000. */
  autosave?: number | false;
  /** Committed versions kept for fallback (the current one included). Default 2. */
  retain?: number;
  /** IndexedDB durability of every commit. Default 'strict'. */
  durability?: 'strict' | 'relaxed';
  /** Page size in bytes (power of two, 4096–65536); only used when the store is new. Default 4096. */
  pageSize?: number;
  /** The IndexedDB factory. Default globalThis.indexedDB (Node tests inject fake-indexeddb). */
  indexedDB?: IDBFactory;
  /** A custom wasm module (your C++ linked with keepstate_add_wasm_module). Default: the package's own. */
  module?: ModuleSource | KeepstateModuleFactory;
  /**
   * Keep a second copy of every commit in the Origin Private File System, from which a store
   * whose IndexedDB the browser lost is restored (docs/crash-safety.md). Default true where
   * OPFS can write files (there is no copy elsewhere).
   */
  mirror?: boolean;
  /** The OPFS directory for the copy and the marker. Default navigator.storage.getDirectory() (tests inject one). */
  opfs?: MirrorDirectory;
  /**
   * When stored data is known to be gone and no copy has it: 'reject' (default) rejects
   * openStore with DataLossError; 'open' opens what is left and emits 'data-loss'.
   */
  onDataLoss?: 'reject' | 'open';
}

export interface ScanOptions {
  /** Only keys starting with this prefix. */
  prefix?: string;
  /** First key (inclusive). */
  start?: string;
  /** Last key (exclusive). */
  end?: string;
  /** At most this many entries (0 or absent: all). */
  limit?: number;
  /** Descending key order. */
  reverse?: boolean;
}

export interface CommitResult {
  /** The committed version (unchanged if there was nothing to commit). */
  version: number;
  /** Bytes written to IndexedDB (0 if there was nothing to commit). */
  bytesWritten: number;
  /** Milliseconds from the request to IndexedDB's `complete`. */
  ms: number;
}

export interface CorruptionEvent {
  /** The version the store opened at (0: empty). */
  restoredVersion: number;
  /** Nothing verified: the store opened empty on a fresh version line and its first commit replaces the stored data. */
  fresh: boolean;
  /** Why each newer version was skipped, newest first. */
  failures: VersionFailure[];
  error: CorruptionError;
}

export interface RemoteCommitEvent {
  /** The version another store of the same name committed. */
  version: number;
}

export type { DataLossEvent } from './storage.js';

export interface StoreEvents {
  commit: CommitResult;
  'data-loss': DataLossEvent;
  conflict: ConflictError;
  corruption: CorruptionEvent;
  'remote-commit': RemoteCommitEvent;
  error: KeepstateError;
}

export type StoreEventName = keyof StoreEvents;

/** Reads and writes; both the Store and a transaction's `tx` have them. */
export interface ReadWrite {
  get(key: string): Uint8Array | undefined;
  getText(key: string): string | undefined;
  getJSON<T = unknown>(key: string): T | undefined;
  has(key: string): boolean;
  put(key: string, value: Uint8Array | string): void;
  putJSON(key: string, value: unknown): void;
  delete(key: string): boolean;
  scan(options?: ScanOptions): Array<[string, Uint8Array]>;
}

export type Transaction = ReadWrite;

interface OpenReport {
  restored: number;
  fresh: boolean;
  failures: VersionFailure[];
}

const NOT_FOUND = codeNumber('not-found');
const DEFAULT_AUTOSAVE_MS = 1000;

function randomWriterId(): number {
  const words = new Uint32Array(2);
  globalThis.crypto.getRandomValues(words);
  // 53 bits: exact as a double across the C ABI.
  return (words[0]! & 0x1fffff) * 2 ** 32 + words[1]!;
}

function validateOptions(name: unknown, options: OpenOptions): void {
  if (typeof name !== 'string' || name.length === 0) {
    throw new InvalidArgumentError('openStore: name must be a non-empty string');
  }
  const { autosave, retain, durability, pageSize, mirror, opfs, onDataLoss } = options;
  if (autosave !== undefined && autosave !== false && !(typeof autosave === 'number' && autosave >= 0)) {
    throw new InvalidArgumentError('openStore: autosave must be a number of ms >= 0 or false');
  }
  if (retain !== undefined && !(Number.isInteger(retain) && retain >= 1 && retain <= 1000)) {
    throw new InvalidArgumentError('openStore: retain must be an integer in [1, 1000]');
  }
  if (durability !== undefined && durability !== 'strict' && durability !== 'relaxed') {
    throw new InvalidArgumentError("openStore: durability must be 'strict' or 'relaxed'");
  }
  if (pageSize !== undefined && !(Number.isInteger(pageSize) && pageSize > 0 && pageSize < 2 ** 32)) {
    throw new InvalidArgumentError('openStore: pageSize must be a positive integer');
  }
  if (mirror !== undefined && typeof mirror !== 'boolean') {
    throw new InvalidArgumentError('openStore: mirror must be a boolean');
  }
  if (opfs !== undefined && !(typeof opfs === 'object' && opfs !== null && typeof opfs.getFileHandle === 'function')) {
    throw new InvalidArgumentError('openStore: opfs must be a directory handle');
  }
  if (onDataLoss !== undefined && onDataLoss !== 'reject' && onDataLoss !== 'open') {
    throw new InvalidArgumentError("openStore: onDataLoss must be 'reject' or 'open'");
  }
}

/** Opens (creating if needed) the store `name` and restores its newest verified version. */
export async function openStore(name: string, options: OpenOptions = {}): Promise<Store> {
  validateOptions(name, options);
  const factory = options.indexedDB ?? (globalThis as { indexedDB?: IDBFactory }).indexedDB;
  if (factory === undefined) {
    throw new InvalidArgumentError('openStore: no IndexedDB here; pass options.indexedDB');
  }
  const engine = await loadEngine(options.module);
  const storage = await StoreStorage.open(name, {
    indexedDB: factory,
    mirror: options.mirror ?? true,
    opfs: options.opfs,
    onDataLoss: options.onDataLoss ?? 'reject',
  });
  try {
    const store = new Store(engine, storage, name, options);
    await store.restore();
    return store;
  } catch (e) {
    storage.close();
    throw e;
  }
}

type Handler<E extends StoreEventName> = (event: StoreEvents[E]) => void;

export class Store implements ReadWrite {
  /** The store's name (its IndexedDB database is `keepstate:<name>`). */
  readonly name: string;
  private readonly engine: Engine;
  private readonly storage: StoreStorage;
  private readonly durability: 'strict' | 'relaxed';
  private readonly autosaveMs: number;
  private readonly retain: number;
  private readonly pageSize: number;
  private readonly writerId = randomWriterId();
  private readonly channel: BroadcastChannel | undefined;
  private readonly handlers = new Map<StoreEventName, Set<(event: never) => void>>();
  private handle = 0;
  private queue: Promise<unknown> = Promise.resolve();
  private queued = 0;
  private closing = false;
  private closed = false;
  private inTransaction = false;
  private closedVersion = 0;
  /** Mutator calls started by call() and not yet settled (close() lets them finish). */
  private readonly inFlight = new Set<Promise<Uint8Array>>();

  /** @internal Use openStore(). */
  constructor(engine: Engine, storage: StoreStorage, name: string, options: OpenOptions) {
    this.engine = engine;
    this.storage = storage;
    storage.onCopyError = (error) => this.emitSoon('error', error);
    this.name = name;
    this.durability = options.durability ?? 'strict';
    this.autosaveMs = options.autosave === false ? 0 : options.autosave ?? DEFAULT_AUTOSAVE_MS;
    this.retain = options.retain ?? 0;
    this.pageSize = options.pageSize ?? 0;
    if (typeof BroadcastChannel !== 'undefined') {
      this.channel = new BroadcastChannel(databaseName(name));
      (this.channel as unknown as { unref?(): void }).unref?.();
      this.channel.onmessage = (event: MessageEvent) => this.onBroadcast(event.data);
    }
  }

  /** The committed version the state is based on (0: never committed). */
  get version(): number {
    return this.handle === 0 ? this.closedVersion : this.engine.module._keepstate_store_version(this.handle);
  }

  /** Whether there are changes not yet committed. */
  get dirty(): boolean {
    return this.handle !== 0 && this.engine.module._keepstate_store_dirty(this.handle) !== 0;
  }

  // --- Reads and writes (synchronous) ---------------------------------------

  get(key: string): Uint8Array | undefined {
    this.assertUsable();
    return this.read(0, key);
  }
  getText(key: string): string | undefined {
    const v = this.get(key);
    return v === undefined ? undefined : Engine.decode(v);
  }
  getJSON<T = unknown>(key: string): T | undefined {
    const v = this.getText(key);
    return v === undefined ? undefined : (JSON.parse(v) as T);
  }
  has(key: string): boolean {
    this.assertUsable();
    return this.contains(0, key);
  }
  put(key: string, value: Uint8Array | string): void {
    this.assertUsable();
    this.write(0, key, value);
  }
  putJSON(key: string, value: unknown): void {
    this.put(key, jsonText(value));
  }
  delete(key: string): boolean {
    this.assertUsable();
    return this.remove(0, key);
  }
  scan(options: ScanOptions = {}): Array<[string, Uint8Array]> {
    this.assertUsable();
    return this.scanRange(0, options);
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
    const tx: Transaction = {
      get: (key) => (guard(), this.read(1, key)),
      getText: (key) => {
        const v = tx.get(key);
        return v === undefined ? undefined : Engine.decode(v);
      },
      getJSON: <U>(key: string) => {
        const v = tx.getText(key);
        return v === undefined ? undefined : (JSON.parse(v) as U);
      },
      has: (key) => (guard(), this.contains(1, key)),
      put: (key, value) => (guard(), this.write(1, key, value)),
      putJSON: (key, value) => tx.put(key, jsonText(value)),
      delete: (key) => (guard(), this.remove(1, key)),
      scan: (options = {}) => (guard(), this.scanRange(1, options)),
    };
    const finish = (commit: boolean) => {
      open = false;
      this.inTransaction = false;
      return this.engine.module._keepstate_store_end(this.handle, commit ? 1 : 0);
    };
    let result: T;
    try {
      result = fn(tx);
      if (isThenable(result)) {
        throw new InvalidArgumentError('transaction(fn): fn must be synchronous (it returned a promise)');
      }
    } catch (e) {
      finish(false);
      throw e;
    }
    this.engine.check(finish(true));
    this.afterWrite();
    return result;
  }

  // --- C++ business logic (mutators) ---------------------------------------------

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
      if (typeof name !== 'string' || name.length === 0) {
        throw new InvalidArgumentError('call: name must be a non-empty string');
      }
      if (!(args instanceof Uint8Array)) throw new InvalidArgumentError('call: args must be a Uint8Array');
      const m = this.engine.module;
      const n = Engine.encode(name);
      // 4 bytes for the call id the engine writes back, then the name and the args.
      const [idPtr, namePtr, argsPtr] = this.engine.stage(new Uint8Array(4), n, args);
      this.engine.check(m._keepstate_call(this.handle, namePtr!, n.length, argsPtr!, args.length, idPtr!));
      const id = new DataView(m.HEAPU8.buffer).getUint32(idPtr!, true);
      const result = new Promise<Uint8Array>((resolve, reject) => this.engine.calls.set(id, { resolve, reject }));
      this.inFlight.add(result);
      const forget = () => void this.inFlight.delete(result);
      result.then(forget, forget);
      this.engine.driver.wake();
      return result;
    } catch (e) {
      return Promise.reject(e);
    }
  }

  // --- Persistence (asynchronous) --------------------------------------------

  /** Commits every uncommitted change; resolves after IndexedDB reports `complete`. */
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
    if (!['commit', 'conflict', 'corruption', 'data-loss', 'remote-commit', 'error'].includes(event)) {
      throw new InvalidArgumentError(`on: unknown event "${String(event)}"`);
    }
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
      this.engine.stores.delete(this.handle);
      this.engine.module._keepstate_store_destroy(this.handle);
      this.handle = 0;
      this.channel?.close();
      this.storage.close();
    });
  }

  // --- Internals ---------------------------------------------------------------

  /** @internal Restores the newest verified version (storage.ts decides from which copy). */
  async restore(): Promise<void> {
    const m = this.engine.module;
    const { restored, loss } = await this.storage.withLock(() =>
      this.storage.restoreNewest((source) => this.restoreFrom(source)),
    );
    const { handle, report } = restored as Restored & { handle: number; report: OpenReport };
    if (this.handle !== 0) {
      this.engine.stores.delete(this.handle);
      m._keepstate_store_destroy(this.handle);
    }
    this.handle = handle;
    m._keepstate_store_set_autosave(handle, this.autosaveMs);
    this.engine.stores.set(handle, { autosave: () => this.autosave() });
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

  /** Restores `source`'s newest verified version into a new engine store (not yet adopted). */
  private async restoreFrom(source: RestoreSource): Promise<Restored & { handle: number; report: OpenReport }> {
    const m = this.engine.module;
    const handle = m._keepstate_store_new(this.pageSize, this.retain, this.writerId);
    const result: { report?: OpenReport } = {};
    // The engine answers {need, then?} until it has restored, then the report.
    const answer = (): PackRequest | null => {
      const out = JSON.parse(this.engine.outText()) as OpenReport | PackRequest;
      if ('need' in out) return out;
      result.report = out;
      return null;
    };
    try {
      await source.readForRestore(
        (records) => {
          for (const r of records) {
            const key = Engine.encode(r.key);
            const [kp, bp] = this.engine.stage(key, r.bytes);
            this.engine.check(m._keepstate_store_load_record(handle, r.kind, kp!, key.length, bp!, r.bytes.length));
          }
          this.engine.check(m._keepstate_store_open(handle));
          return answer();
        },
        (pack) => {
          const bytes = pack ?? new Uint8Array(0);
          const [bp] = this.engine.stage(bytes);
          this.engine.check(m._keepstate_store_open_pack(handle, bp!, bytes.length, pack ? 1 : 0));
          return answer();
        },
      );
    } catch (e) {
      m._keepstate_store_destroy(handle);
      throw e;
    }
    const report = result.report;
    if (report === undefined) {
      m._keepstate_store_destroy(handle);
      throw new KeepstateError('internal', `store "${this.name}": restore from ${source.label} ended without a report`);
    }
    return { handle, report, version: report.restored, failures: report.failures, discard: () => m._keepstate_store_destroy(handle) };
  }

  private async commitNow(): Promise<CommitResult> {
    const started = performance.now();
    const m = this.engine.module;
    if (!this.dirty) return { version: this.version, bytesWritten: 0, ms: performance.now() - started };
    this.engine.check(m._keepstate_store_capture(this.handle, Date.now()));
    let records: CommitRecords;
    let bytesWritten = 0;
    try {
      records = this.planRecords();
      for (const r of records.puts) bytesWritten += r.bytes.length;
    } catch (e) {
      m._keepstate_store_commit_done(this.handle, codeNumber('internal'));
      throw e;
    }
    const handle = this.handle;
    try {
      await this.storage.commit(records, this.version, this.durability, (head) => this.checkHead(handle, head));
    } catch (e) {
      const error = errorFromIndexedDB(e, `commit of store "${this.name}"`);
      m._keepstate_store_commit_done(handle, codeNumber(error.code));
      if (error instanceof ConflictError) this.emit('conflict', error);
      throw error;
    }
    this.engine.check(m._keepstate_store_commit_done(handle, 0));
    const result = { version: this.version, bytesWritten, ms: performance.now() - started };
    this.channel?.postMessage({ version: result.version, writer: this.writerId });
    this.emit('commit', result);
    return result;
  }

  /** Copies the plan in flight out of wasm memory (exactly the records' bytes). */
  private planRecords(): CommitRecords {
    const m = this.engine.module;
    const ptr = m._keepstate_store_plan(this.handle);
    const heap = m.HEAPU8;
    const words = new DataView(heap.buffer, ptr);
    const u32 = (i: number) => words.getUint32(i * 4, true);
    const text = (p: number, n: number) => Engine.decode(heap.subarray(p, p + n));
    const putCount = u32(0);
    const deleteCount = u32(1);
    const records: CommitRecords = { clearFirst: u32(2) !== 0, puts: [], deletes: [] };
    let w = 10;
    for (let i = 0; i < putCount; ++i, w += 5) {
      const bytes = heap.slice(u32(w + 3), u32(w + 3) + u32(w + 4));
      records.puts.push({ kind: u32(w), key: text(u32(w + 1), u32(w + 2)), bytes });
    }
    for (let i = 0; i < deleteCount; ++i, w += 3) {
      records.deletes.push({ kind: u32(w), key: text(u32(w + 1), u32(w + 2)) });
    }
    return records;
  }

  private checkHead(handle: number, head: Uint8Array | undefined): KeepstateError | null {
    const m = this.engine.module;
    const bytes = head ?? new Uint8Array(0);
    // 8 bytes for the double the engine writes back, then the head record.
    const [actualPtr, headPtr] = this.engine.stage(new Uint8Array(8), bytes);
    const status = m._keepstate_store_check_head(handle, headPtr!, bytes.length, head ? 1 : 0, actualPtr!);
    if (status === 0) return null;
    const error = this.engine.error(status);
    if (error instanceof ConflictError) {
      const actual = new DataView(m.HEAPU8.buffer).getFloat64(actualPtr!, true);
      return new ConflictError(error.message, m._keepstate_store_version(handle), actual);
    }
    return error;
  }

  private async autosave(): Promise<void> {
    if (this.closed || this.closing) return;
    try {
      await this.enqueue(() => this.commitNow());
    } catch (e) {
      // Conflicts are reported as 'conflict' by the commit itself.
      if (e instanceof KeepstateError && !(e instanceof ConflictError)) this.emit('error', e);
      throw e;
    }
  }

  private onBroadcast(data: unknown): void {
    if (this.closed || typeof data !== 'object' || data === null) return;
    const { version, writer } = data as { version?: unknown; writer?: unknown };
    if (typeof version !== 'number' || writer === this.writerId) return;
    this.emit('remote-commit', { version });
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

  private key(key: unknown): Uint8Array {
    if (typeof key !== 'string') throw new InvalidArgumentError(`key must be a string, got ${typeof key}`);
    return Engine.encode(key);
  }

  private read(inTxn: number, key: string): Uint8Array | undefined {
    const k = this.key(key);
    const [kp] = this.engine.stage(k);
    const status = this.engine.module._keepstate_store_get(this.handle, inTxn, kp!, k.length);
    if (status === NOT_FOUND) return undefined;
    this.engine.check(status);
    return this.engine.outBytes();
  }

  private contains(inTxn: number, key: string): boolean {
    const k = this.key(key);
    const [kp] = this.engine.stage(k);
    const status = this.engine.module._keepstate_store_has(this.handle, inTxn, kp!, k.length);
    if (status === NOT_FOUND) return false;
    this.engine.check(status);
    return true;
  }

  private write(inTxn: number, key: string, value: Uint8Array | string): void {
    const k = this.key(key);
    let v: Uint8Array;
    if (typeof value === 'string') v = Engine.encode(value);
    else if (value instanceof Uint8Array) v = value;
    else throw new InvalidArgumentError('value must be a Uint8Array or a string');
    const [kp, vp] = this.engine.stage(k, v);
    this.engine.check(this.engine.module._keepstate_store_put(this.handle, inTxn, kp!, k.length, vp!, v.length));
    if (!inTxn) this.afterWrite();
  }

  private remove(inTxn: number, key: string): boolean {
    const k = this.key(key);
    const [kp] = this.engine.stage(k);
    const status = this.engine.module._keepstate_store_delete(this.handle, inTxn, kp!, k.length);
    if (status === NOT_FOUND) return false;
    this.engine.check(status);
    if (!inTxn) this.afterWrite();
    return true;
  }

  private scanRange(inTxn: number, options: ScanOptions): Array<[string, Uint8Array]> {
    if (typeof options !== 'object' || options === null) throw new InvalidArgumentError('scan: options must be an object');
    const { prefix, start, end, limit, reverse } = options;
    for (const [n, v] of Object.entries({ prefix, start, end })) {
      if (v !== undefined && typeof v !== 'string') throw new InvalidArgumentError(`scan: ${n} must be a string`);
    }
    if (limit !== undefined && !(Number.isInteger(limit) && limit >= 0)) {
      throw new InvalidArgumentError('scan: limit must be an integer >= 0');
    }
    const p = Engine.encode(prefix ?? '');
    const s = Engine.encode(start ?? '');
    const e = Engine.encode(end ?? '');
    const [pp, sp, ep] = this.engine.stage(p, s, e);
    this.engine.check(
      this.engine.module._keepstate_store_scan(
        this.handle, inTxn, pp!, p.length, prefix === undefined ? 0 : 1, sp!, s.length, ep!, e.length,
        end === undefined ? 0 : 1, limit ?? 0, reverse ? 1 : 0,
      ),
    );
    const out = this.engine.outBytes();
    const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
    const count = view.getUint32(0, true);
    const entries: Array<[string, Uint8Array]> = [];
    let at = 4;
    for (let i = 0; i < count; ++i) {
      const kl = view.getUint32(at, true);
      const vl = view.getUint32(at + 4, true);
      at += 8;
      const key = Engine.decode(out.subarray(at, at + kl));
      entries.push([key, out.slice(at + kl, at + kl + vl)]);
      at += kl + vl;
    }
    return entries;
  }

  /** A write landed: the engine may have armed the autosave fiber. */
  private afterWrite(): void {
    if (this.autosaveMs > 0) this.engine.driver.wake();
  }
}

function jsonText(value: unknown): string {
  const text = JSON.stringify(value);
  if (text === undefined) throw new InvalidArgumentError('putJSON: value is not representable as JSON');
  return text;
}

function isThenable(value: unknown): boolean {
  return typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function';
}

