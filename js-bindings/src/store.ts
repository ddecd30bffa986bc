// Store: the public face of one keepstate store — synchronous reads and
// writes, asynchronous commits, events, watch, export. It holds no rules of
// its own: the writer (writer.ts) commits, rebases, follows other tabs and
// autosaves over the store's current replica (replica.ts) and its storage
// (storage/); the phase (lifecycle.ts) says what is allowed; events.ts
// delivers events; migrations.ts brings old data to the code's schema.
//
// Invariant: after close() resolves, every method throws (or rejects with)
// ClosedError.
import type { StoreEmitter, Handler } from './events.js';
import { InvalidArgumentError } from './errors.js';
import type { Lifecycle } from './lifecycle.js';
import type { Replica } from './replica.js';
import type { StatusNotifier } from './status.js';
import type { Writer } from './writer.js';
import type { SyncClient } from './sync/client.js';
import type {
  CommitResult,
  ExportOptions,
  JSONInput,
  LossProtection,
  ReadWrite,
  ScanOptions,
  StorageHealth,
  StoreEventName,
  Synchronous,
  Transaction,
  WatchEvent,
  WatchRange,
  SyncStatus,
} from './types.js';

export type * from './types.js';

/** The parts of a store, made by openStore (open.ts). */
export interface StoreParts {
  writer: Writer;
  events: StoreEmitter;
  life: Lifecycle;
  /** The exchange with a server (openStore's `sync` option). */
  sync?: SyncClient;
}

/** An open store: openStore() and importStore() make one. */
export class Store implements ReadWrite {
  /** The store's name (its IndexedDB database is `keepstate:<name>`). */
  readonly name: string;
  readonly #writer: Writer;
  readonly #events: StoreEmitter;
  readonly #life: Lifecycle;
  readonly #sync: SyncClient | undefined;

  /** @internal openStore() and importStore() make stores. */
  static create(parts: StoreParts): Store {
    return new Store(parts);
  }

  private constructor(parts: StoreParts) {
    if (typeof parts !== 'object' || parts === null || parts.writer === undefined) {
      throw new InvalidArgumentError('new Store() is not supported: use openStore(name, options)');
    }
    this.#writer = parts.writer;
    this.#events = parts.events;
    this.#life = parts.life;
    this.#sync = parts.sync;
    this.name = parts.writer.name;
  }

  /** The committed version the state is based on (0: never committed). */
  get version(): number {
    return this.#writer.version;
  }

  /** The application's schema version of the state (0: never set); see OpenOptions.schema. */
  get schemaVersion(): number {
    return this.#life.usable ? this.#writer.replica.schemaVersion() : 0;
  }

  /**
   * What guards acknowledged commits beyond the store's storage, decided at open from what
   * this browser offers: 'copy' (the OPFS copy), 'marker' (the copy off: loss detection
   * only) or 'none' (no usable OPFS, e.g. WebKitGTK; or storage 'memory').
   */
  get lossProtection(): LossProtection {
    return this.#writer.lossProtection;
  }

  /** @internal The current replica (bench/browser's attribution of the C ABI's own cost). */
  get debugReplica(): Replica {
    return this.#writer.replica;
  }

  /** @internal Who hears of status changes (status.ts). */
  get statusNotifier(): StatusNotifier {
    return this.#writer.status;
  }

  /** Whether there are changes not yet committed. */
  get dirty(): boolean {
    return this.#writer.dirty;
  }

  // --- Reads and writes (synchronous) ------------------------------------------

  get(key: string): Uint8Array | undefined {
    return this.#writer.direct.get(key);
  }
  getText(key: string): string | undefined {
    return this.#writer.direct.getText(key);
  }
  getJSON<T = unknown>(key: string): T | undefined {
    return this.#writer.direct.getJSON<T>(key);
  }
  has(key: string): boolean {
    return this.#writer.direct.has(key);
  }
  put(key: string, value: Uint8Array | string): void {
    this.#writer.direct.put(key, value);
  }
  putJSON(key: string, value: JSONInput): void {
    this.#writer.direct.putJSON(key, value);
  }
  delete(key: string): boolean {
    return this.#writer.direct.delete(key);
  }
  scan(options: ScanOptions = {}): Array<[string, Uint8Array]> {
    return this.#writer.direct.scan(options);
  }

  /**
   * Runs `fn` as one atomic write transaction with read-your-writes. If `fn` throws,
   * nothing is applied and the error is rethrown. `fn` must be synchronous, and
   * should depend only on what it reads through `tx`: a rebase runs it again on
   * a newer state (docs/tabs.md).
   */
  transaction<T extends Synchronous>(fn: (tx: Transaction) => T): T {
    return this.#writer.transaction(fn);
  }

  /**
   * Runs the C++ mutator `name` (registered in the module with KEEPSTATE_MUTATOR, see
   * docs/sdk.md) as a fiber in the module's scheduler, with a copy of `args`; resolves
   * with the bytes it returns. Rejects with InvalidArgumentError if the module has no
   * mutator of that name, and with the typed error of the mutator's error status
   * (its code and message) otherwise. Each of its write transactions is atomic; a
   * call does not commit (commit() or autosave does).
   */
  call(name: string, args: Uint8Array = new Uint8Array(0)): Promise<Uint8Array> {
    try {
      return this.#writer.call(name, args);
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
    return this.#writer.watch(range, listener);
  }

  // --- Persistence (asynchronous) --------------------------------------------

  /** Commits every uncommitted change; resolves once it is durable (IndexedDB and, if on, the OPFS copy). */
  commit(): Promise<CommitResult> {
    return this.#writer.commit();
  }

  /** Drops uncommitted changes and loads the newest committed version. */
  reload(): Promise<void> {
    return this.#writer.reload();
  }

  /**
   * Writes the committed state as one snapshot file (docs/snapshot-format.md, "Snapshot
   * file"): pending changes are committed first, so the file holds exactly version
   * `store.version`. The file is read out of the module in chunks into a Blob that grows
   * by reference, so no second copy of the state is held. importStore() reads it back.
   */
  export(options: ExportOptions = {}): Promise<Blob> {
    if (typeof options !== 'object' || options === null) throw new InvalidArgumentError('export: options must be an object');
    const { onProgress, ...rest } = options;
    const unknown = Object.keys(rest)[0];
    if (unknown !== undefined) throw new InvalidArgumentError(`export: unknown option "${unknown}"`);
    if (onProgress !== undefined && typeof onProgress !== 'function') throw new InvalidArgumentError('export: onProgress must be a function');
    return this.#writer.exportFile(onProgress);
  }

  /** What the browser keeps of this origin's storage: persisted or not, usage and quota (lossProtection says what guards it). */
  async storage(): Promise<StorageHealth> {
    this.#life.assertUsable();
    const manager = (globalThis as { navigator?: { storage?: StorageManager } }).navigator?.storage;
    const [persisted, estimate] = await Promise.all([
      manager?.persisted?.().catch(() => false) ?? Promise.resolve(false),
      manager?.estimate?.().catch(() => undefined) ?? Promise.resolve(undefined),
    ]);
    return { persisted, usage: estimate?.usage, quota: estimate?.quota };
  }

  /** Subscribes to an event; returns the unsubscribe function. */
  on<E extends StoreEventName>(event: E, handler: Handler<E>): () => void {
    return this.#events.on(event, handler);
  }

  /** Lets calls in flight finish, commits pending changes, then closes. If that commit fails, rejects and the store stays open. */
  async close(): Promise<void> {
    await this.#sync?.stop();
    return this.#writer.close();
  }

  /** Where a synced store stands with its server (openStore's `sync` option); undefined if it does not sync. */
  get sync(): SyncStatus | undefined {
    return this.#sync?.status;
  }

  /** A synced store: pushes what is pending and pulls now; resolves when that round ran (its error, if any, is in store.sync.error). */
  syncNow(): Promise<void> {
    this.#life.assertUsable();
    if (this.#sync === undefined) throw new InvalidArgumentError(`store "${this.name}" does not sync (openStore's sync option)`);
    return this.#sync.request();
  }
}
