// openStore: validates the options, loads the engine, picks the storage
// backend (IndexedDB, or memory) and the OPFS copy, and restores the store.
import { loadEngine, type ModuleSource } from './engine.js';
import { InvalidArgumentError } from './errors.js';
import type { KeepstateModuleFactory } from './keepstate.js';
import type { Timing } from './backend.js';
import type { MirrorDirectory } from './opfs.js';
import { StoreStorage } from './storage.js';
import { Store } from './store.js';
import type { Synchronous, Transaction } from './types.js';

export interface OpenOptions {
  /** Commit automatically this many ms after the first uncommitted change; false: never. Default 1000. */
  autosave?: number | false;
  /** Committed versions kept for fallback (the current one included). Default 2. */
  retain?: number;
  /** IndexedDB durability of every commit. Default 'strict'. */
  durability?: 'strict' | 'relaxed';
  /** Page size in bytes (power of two, 4096–65536); only used when the store is new. Default 4096. */
  pageSize?: number;
  /** Where the store's versions live: 'indexeddb' (default), or 'memory' (this realm only: tests, state that need not persist). */
  storage?: 'indexeddb' | 'memory';
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
  /**
   * When a commit finds that another tab committed first: 'rebase' (default) catches up
   * with that version, replays this store's pending work on it and commits; 'reject'
   * rejects the commit with ConflictError and leaves the state as it was (docs/tabs.md).
   */
  onConflict?: 'rebase' | 'reject';
  /**
   * Ask the browser not to evict this origin's storage under pressure (navigator.storage.persist(),
   * at open, not waited for: the browser may refuse, or ask the user). Default false.
   * store.storage() says what it decided.
   */
  persist?: boolean;
  /** Catch up with other tabs' commits as they are announced, replaying pending work on top. Default true. */
  follow?: boolean;
  /**
   * The app's schema version of its data (an integer >= 1), and how to bring older data to it:
   * when the stored version is lower, `migrate(tx, fromVersion)` runs once, as one transaction
   * (after the module's C++ migrations, KEEPSTATE_MIGRATION), and the store opens only after
   * that is committed. If it throws, openStore rejects with its error and the stored data stays
   * as it was. A stored version higher than this one rejects with KeepstateError 'unsupported'.
   */
  schema?: { version: number; migrate?: (tx: Transaction, fromVersion: number) => Synchronous };
  /**
   * For profiling: called with the milliseconds each phase of this store's commits and
   * restores took (`'commit.capture'`, `'commit.idb'`, `'restore.pack-wait'`, ...; the list is
   * in bench/browser/README.md, "Where the time goes"). Not a stable interface. Default none.
   */
  debugTimings?: Timing;
}

const DEFAULT_AUTOSAVE_MS = 1000;

/** @internal */
export function validateOptions(name: unknown, options: OpenOptions): void {
  if (typeof name !== 'string' || name.length === 0) {
    throw new InvalidArgumentError('openStore: name must be a non-empty string');
  }
  if (typeof options !== 'object' || options === null) throw new InvalidArgumentError('openStore: options must be an object');
  const { autosave, retain, durability, pageSize, storage, mirror, opfs, onDataLoss, onConflict, follow, schema, persist, debugTimings } = options;
  const check = (ok: boolean, message: string) => {
    if (!ok) throw new InvalidArgumentError(`openStore: ${message}`);
  };
  check(autosave === undefined || autosave === false || (typeof autosave === 'number' && autosave >= 0), 'autosave must be a number of ms >= 0 or false');
  check(retain === undefined || (Number.isInteger(retain) && retain >= 1 && retain <= 1000), 'retain must be an integer in [1, 1000]');
  check(durability === undefined || durability === 'strict' || durability === 'relaxed', "durability must be 'strict' or 'relaxed'");
  check(pageSize === undefined || (Number.isInteger(pageSize) && pageSize > 0 && pageSize < 2 ** 32), 'pageSize must be a positive integer');
  check(storage === undefined || storage === 'indexeddb' || storage === 'memory', "storage must be 'indexeddb' or 'memory'");
  check(mirror === undefined || typeof mirror === 'boolean', 'mirror must be a boolean');
  check(opfs === undefined || (typeof opfs === 'object' && opfs !== null && typeof opfs.getFileHandle === 'function'), 'opfs must be a directory handle');
  check(onDataLoss === undefined || onDataLoss === 'reject' || onDataLoss === 'open', "onDataLoss must be 'reject' or 'open'");
  check(onConflict === undefined || onConflict === 'rebase' || onConflict === 'reject', "onConflict must be 'rebase' or 'reject'");
  check(follow === undefined || typeof follow === 'boolean', 'follow must be a boolean');
  check(persist === undefined || typeof persist === 'boolean', 'persist must be a boolean');
  check(debugTimings === undefined || typeof debugTimings === 'function', 'debugTimings must be a function');
  check(schema === undefined || (typeof schema === 'object' && schema !== null), 'schema must be { version, migrate? }');
  if (schema !== undefined) {
    check(Number.isSafeInteger(schema.version) && schema.version >= 1, 'schema.version must be an integer >= 1');
    check(schema.migrate === undefined || typeof schema.migrate === 'function', 'schema.migrate must be a function');
  }
}

/** Opens (creating if needed) the store `name` and restores its newest verified version. */
export async function openStore(name: string, options: OpenOptions = {}): Promise<Store> {
  validateOptions(name, options);
  const store = await openRestored(name, options);
  try {
    await store.migrateTo(schemaTarget(store, options), options.schema?.migrate);
  } catch (e) {
    store.discard();
    throw e;
  }
  return store;
}

/** @internal The schema version code with these options writes: theirs, or the module's newest C++ migration. */
export function schemaTarget(store: Store, options: OpenOptions): number {
  return Math.max(options.schema?.version ?? 0, store.engineMigrationsNewest());
}

/** @internal openStore up to the restore (no migration): importStore migrates what it imported. REQUIRES: valid options. */
export async function openRestored(name: string, options: OpenOptions): Promise<Store> {
  let backend: { indexedDB: IDBFactory } | 'memory' = 'memory';
  if (options.storage !== 'memory') {
    const indexedDB = options.indexedDB ?? (globalThis as { indexedDB?: IDBFactory }).indexedDB;
    if (indexedDB === undefined) {
      throw new InvalidArgumentError("openStore: no IndexedDB here; pass options.indexedDB, or storage: 'memory'");
    }
    backend = { indexedDB };
  }
  const engine = await loadEngine(options.module);
  const storage = await StoreStorage.open(name, {
    backend,
    mirror: options.mirror ?? true,
    opfs: options.opfs,
    onDataLoss: options.onDataLoss ?? 'reject',
    ...(options.debugTimings === undefined ? {} : { timing: options.debugTimings }),
  });
  try {
    const store = Store.create(engine, storage, name, {
      autosaveMs: options.autosave === false ? 0 : options.autosave ?? DEFAULT_AUTOSAVE_MS,
      retain: options.retain ?? 0,
      pageSize: options.pageSize ?? 0,
      durability: options.durability ?? 'strict',
      onConflict: options.onConflict ?? 'rebase',
      follow: options.follow ?? true,
    });
    try {
      if (options.persist === true) requestPersistence();
      await store.restore();
    } catch (e) {
      store.discard();
      throw e;
    }
    return store;
  } catch (e) {
    storage.close();
    throw e;
  }
}

/**
 * navigator.storage.persist() where the browser has it, not waited for: Firefox asks the user
 * (a prompt that may never be answered; headless, it never is), and the store must open
 * regardless. A refusal (or no answer) is not an error: store.storage() reports what it is.
 */
function requestPersistence(): void {
  const manager = (globalThis as { navigator?: { storage?: { persist?: () => Promise<boolean> } } }).navigator?.storage;
  manager?.persist?.().catch(() => false);
}
