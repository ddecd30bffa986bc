// openStore: validates the options, loads the module, chooses the storage
// backend (IndexedDB, memory, or the app's own), the guard around it (the
// OPFS copy or marker, storage/guarded.ts), the lock and the commit notices,
// and restores the store.
import { loadWasm, type ModuleSource } from './wasm.js';
import { InvalidArgumentError } from './errors.js';
import { WIRE } from './generated/abi.js';
import type { KeepstateModuleFactory } from './keepstate.js';
import { StoreEmitter } from './events.js';
import { Lifecycle } from './lifecycle.js';
import { migrateTo, schemaTarget } from './migrations.js';
import { BroadcastNotices } from './notices/broadcast.js';
import { MemoryNotices, type CommitNotices } from './notices/notices.js';
import { headRule } from './replica.js';
import type { StorageBackend, Timing } from './storage/backend.js';
import { GuardedBackend } from './storage/guarded.js';
import { IndexedDBBackend } from './storage/idb.js';
import { storeLock } from './storage/lock.js';
import { MemoryBackend } from './storage/memory.js';
import { OpfsCopy, opfsRoot, type CopyDirectory } from './storage/opfs.js';
import { Store, type StoreParts } from './store.js';
import { recordOrigin } from './origins.js';
import type { SyncOptions, Synchronous, Transaction } from './types.js';
import { SyncClient } from './sync/client.js';
import type { ProgressListener } from './progress.js';
import type { Wasm } from './wasm.js';
import { Writer } from './writer.js';

export interface OpenOptions {
  /** Commit automatically this many ms after the first uncommitted change; false: never. Default 1000. */
  autosave?: number | false;
  /** Committed versions kept for fallback (the current one included). Default 2. */
  retain?: number;
  /** IndexedDB durability of every commit. Default 'strict'. */
  durability?: 'strict' | 'relaxed';
  /** Page size in bytes (power of two, 4096–65536); only used when the store is new. Default 4096. */
  pageSize?: number;
  /**
   * Where the store's versions live: 'indexeddb' (default), 'memory' (this realm only: tests,
   * state that need not persist), or a StorageBackend object of the app's own (docs/api.md,
   * "Your own storage"), for this store only.
   */
  storage?: 'indexeddb' | 'memory' | StorageBackend;
  /** The IndexedDB factory. Default globalThis.indexedDB (Node tests inject fake-indexeddb). */
  indexedDB?: IDBFactory;
  /** A custom wasm module (your C++ linked with keepstate_add_wasm_module). Default: the package's own. */
  module?: ModuleSource | KeepstateModuleFactory;
  /**
   * Keep a second copy of every commit in the Origin Private File System, from which a store
   * whose IndexedDB the browser lost is restored (docs/crash-safety.md). Default true where
   * OPFS can write files (there is no copy elsewhere).
   */
  copy?: boolean;
  /** @deprecated The former name of `copy`. */
  mirror?: boolean;
  /** The OPFS directory for the copy and the marker. Default navigator.storage.getDirectory() (tests inject one). */
  opfs?: CopyDirectory;
  /**
   * When stored data is known to be gone and no copy has it: 'reject' (default) rejects
   * openStore with DataLossError; 'open' opens what is left and emits 'data-loss'.
   */
  onDataLoss?: 'reject' | 'open';
  /**
   * When every retained version of the store fails verification and no copy has an intact one:
   * 'reject' (default) rejects openStore with CorruptionError listing what failed, and changes
   * nothing stored; 'open' opens empty on a fresh version line (a 'corruption' event says so),
   * whose first commit replaces the damaged records.
   */
  onAllDamaged?: 'reject' | 'open';
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
  /**
   * Called as the restore reads the stored state: bytes of records read (head, manifests,
   * then each pack, as it is verified and copied in) of the total the restore will read
   * (the packs' sizes, as the newest manifest records them; undefined until the manifests are
   * read). Ends with done === total. The total grows if a version fails verification and an
   * older one is read instead. A new store reports { done: 0, total: 0 }.
   */
  onProgress?: ProgressListener;
  /**
   * Sync this store with a server (docs/sync.md): every write is a mutation the server runs too
   * (put and delete as built-ins, call() by name; transaction(fn) is refused), pushed when the
   * server is reachable, and what others did is pulled. store.sync says where it stands.
   */
  sync?: SyncOptions;
}

const DEFAULT_AUTOSAVE_MS = 1000;

/** Whether `value` has what a StorageBackend must have (storage/backend.ts). */
function isBackend(value: unknown): value is StorageBackend {
  if (typeof value !== 'object' || value === null) return false;
  const b = value as Record<string, unknown>;
  return (
    typeof b.label === 'string' &&
    ['readHead', 'readForRestore', 'readAll', 'writeCommit', 'close'].every((m) => typeof b[m] === 'function')
  );
}

/** Every option openStore takes: one it does not know is a mistake (a misspelling) and refused. */
const OPTION_NAMES: ReadonlySet<string> = new Set([
  'autosave', 'retain', 'durability', 'pageSize', 'storage', 'indexedDB', 'module', 'copy', 'mirror', 'opfs',
  'onDataLoss', 'onAllDamaged', 'onConflict', 'persist', 'follow', 'schema', 'debugTimings', 'onProgress', 'sync',
] satisfies Array<keyof OpenOptions>);

/** The longest autosave delay setTimeout keeps (a longer one fires at once). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** @internal `extra`: options of the caller's own (importStore's `replace`). */
export function validateOptions(name: unknown, options: OpenOptions, what = 'openStore', extra: readonly string[] = []): void {
  if (typeof name !== 'string' || name.length === 0) {
    throw new InvalidArgumentError(`${what}: name must be a non-empty string`);
  }
  // The name names an OPFS folder (encodeURIComponent keeps these as they are) and a database.
  if (name === '.' || name === '..') throw new InvalidArgumentError(`${what}: "${name}" is not a store name`);
  if (name.length > 1024) throw new InvalidArgumentError(`${what}: name is longer than 1024 characters`);
  if (typeof options !== 'object' || options === null) throw new InvalidArgumentError(`${what}: options must be an object`);
  for (const key of Object.keys(options)) {
    if (!OPTION_NAMES.has(key) && !extra.includes(key)) {
      const near = [...OPTION_NAMES, ...extra].find((k) => k.toLowerCase() === key.toLowerCase());
      throw new InvalidArgumentError(`${what}: unknown option "${key}"${near === undefined ? '' : ` (did you mean "${near}"?)`}`);
    }
  }
  const { autosave, retain, durability, pageSize, storage, copy, mirror, opfs, onDataLoss, onConflict, follow, schema, persist, debugTimings, onProgress } = options;
  const check = (ok: boolean, message: string) => {
    if (!ok) throw new InvalidArgumentError(`${what}: ${message}`);
  };
  check(
    autosave === undefined || autosave === false || (typeof autosave === 'number' && autosave >= 0 && autosave <= MAX_TIMER_MS),
    `autosave must be a number of ms in [0, ${MAX_TIMER_MS}], or false (never)`,
  );
  check(retain === undefined || (Number.isInteger(retain) && retain >= 1 && retain <= 1000), 'retain must be an integer in [1, 1000]');
  check(durability === undefined || durability === 'strict' || durability === 'relaxed', "durability must be 'strict' or 'relaxed'");
  check(
    pageSize === undefined || (Number.isInteger(pageSize) && pageSize >= WIRE.MIN_PAGE_SIZE && pageSize <= WIRE.MAX_PAGE_SIZE && (pageSize & (pageSize - 1)) === 0),
    `pageSize must be a power of two in [${WIRE.MIN_PAGE_SIZE}, ${WIRE.MAX_PAGE_SIZE}]`,
  );
  check(
    storage === undefined || storage === 'indexeddb' || storage === 'memory' || isBackend(storage),
    "storage must be 'indexeddb', 'memory' or a StorageBackend (label, readHead, readForRestore, readAll, writeCommit, close)",
  );
  check(copy === undefined || typeof copy === 'boolean', 'copy must be a boolean');
  check(mirror === undefined || typeof mirror === 'boolean', 'mirror must be a boolean');
  check(copy === undefined || mirror === undefined || copy === mirror, 'copy and its former name mirror disagree');
  check(opfs === undefined || (typeof opfs === 'object' && opfs !== null && typeof opfs.getFileHandle === 'function'), 'opfs must be a directory handle');
  check(onDataLoss === undefined || onDataLoss === 'reject' || onDataLoss === 'open', "onDataLoss must be 'reject' or 'open'");
  check(options.onAllDamaged === undefined || options.onAllDamaged === 'reject' || options.onAllDamaged === 'open', "onAllDamaged must be 'reject' or 'open'");
  check(onConflict === undefined || onConflict === 'rebase' || onConflict === 'reject', "onConflict must be 'rebase' or 'reject'");
  check(follow === undefined || typeof follow === 'boolean', 'follow must be a boolean');
  check(persist === undefined || typeof persist === 'boolean', 'persist must be a boolean');
  check(debugTimings === undefined || typeof debugTimings === 'function', 'debugTimings must be a function');
  check(onProgress === undefined || typeof onProgress === 'function', 'onProgress must be a function');
  check(schema === undefined || (typeof schema === 'object' && schema !== null), 'schema must be { version, migrate? }');
  if (schema !== undefined) {
    check(Number.isSafeInteger(schema.version) && schema.version >= 1, 'schema.version must be an integer >= 1');
    check(schema.migrate === undefined || typeof schema.migrate === 'function', 'schema.migrate must be a function');
  }
  const sync = options.sync;
  check(sync === undefined || (typeof sync === 'object' && sync !== null), 'sync must be { url, space, token? }');
  if (sync !== undefined) {
    check(typeof sync.url === 'string' && /^https?:\/\//.test(sync.url), 'sync.url must be an http:// or https:// URL');
    check(typeof sync.space === 'string' && /^[A-Za-z0-9._-]{1,128}$/.test(sync.space), 'sync.space must be 1 to 128 characters of [A-Za-z0-9._-]');
    check(sync.token === undefined || typeof sync.token === 'string', 'sync.token must be a string');
    check(
      sync.pullIntervalMs === undefined || (typeof sync.pullIntervalMs === 'number' && sync.pullIntervalMs >= 100 && sync.pullIntervalMs <= MAX_TIMER_MS),
      `sync.pullIntervalMs must be a number of ms in [100, ${MAX_TIMER_MS}]`,
    );
    check(sync.websocket === undefined || typeof sync.websocket === 'boolean', 'sync.websocket must be a boolean');
    check(sync.fetch === undefined || typeof sync.fetch === 'function', 'sync.fetch must be a function');
  }
}

/** Opens (creating if needed) the store `name` and restores its newest verified version. */
export async function openStore(name: string, options: OpenOptions = {}): Promise<Store> {
  validateOptions(name, options);
  const indexedDB = options.indexedDB ?? (globalThis as { indexedDB?: IDBFactory }).indexedDB;
  const parts = await openParts(name, options);
  try {
    const target = schemaTarget(parts.writer.wasm, options.schema?.version);
    await migrateTo(parts.writer, target, options.schema?.migrate);
    parts.writer.setCodeSchema(target);
    if (options.sync !== undefined) {
      parts.sync = new SyncClient(parts.writer, options.sync, parts.events);
      parts.sync.start();
    }
  } catch (e) {
    await parts.discard();
    throw e;
  }
  const store = Store.create(parts);
  recordOrigin(store, { storage: options.storage ?? 'indexeddb', module: options.module, indexedDB });
  return store;
}

/** @internal What openParts made: the store's parts, and how to give up on them. */
export interface OpenedParts extends StoreParts {
  /** Closes without committing, and removes what this open created if nothing was stored (a refused open keeps nothing). */
  discard(): Promise<void>;
}

/** @internal openStore up to the restore (no migration): importStore migrates what it imported. REQUIRES: valid options. */
export async function openParts(name: string, options: OpenOptions): Promise<OpenedParts> {
  const indexedDB = options.indexedDB ?? (globalThis as { indexedDB?: IDBFactory }).indexedDB;
  if (options.storage === undefined || options.storage === 'indexeddb') {
    if (indexedDB === undefined) throw new InvalidArgumentError("openStore: no IndexedDB here; pass options.indexedDB, or storage: 'memory'");
  }
  const wasm = await loadWasm(options.module);
  const { backend, notices, undo } = await openStorage(name, options, wasm, indexedDB);
  const life = new Lifecycle(name);
  const events = new StoreEmitter();
  let writer: Writer;
  try {
    writer = new Writer(
      wasm,
      name,
      { backend, lock: storeLock(name, () => backend.settled()), notices },
      {
        autosaveMs: options.autosave === false ? 0 : options.autosave ?? DEFAULT_AUTOSAVE_MS,
        retain: options.retain ?? 0,
        pageSize: options.pageSize ?? 0,
        durability: options.durability ?? 'strict',
        onConflict: options.onConflict ?? 'rebase',
        follow: options.follow ?? true,
        openEmptyIfDamaged: options.onAllDamaged === 'open',
      },
      events,
      life,
    );
  } catch (e) {
    await undo(() => {
      notices.close();
      backend.close();
    });
    throw e;
  }
  const discard = () => undo(() => writer.discard());
  try {
    if (options.persist === true) requestPersistence();
    await writer.restore(options.onProgress);
  } catch (e) {
    await discard();
    throw e;
  }
  return { writer, events, life, discard };
}

/**
 * The store's backend, guarded by the OPFS copy (or a marker) where OPFS can write files and
 * the storage persists, and its commit notices: a BroadcastChannel where the realm has one,
 * else (and for storage 'memory') between the stores of this realm.
 */
async function openStorage(
  name: string,
  options: OpenOptions,
  wasm: Wasm,
  indexedDB: IDBFactory | undefined,
): Promise<{ backend: GuardedBackend; notices: CommitNotices; undo: (close: () => void) => Promise<void> }> {
  const timing = options.debugTimings ?? null;
  const guard = { onDataLoss: options.onDataLoss ?? 'reject', headRule: headRule(wasm), timing } as const;
  if (options.storage === 'memory') {
    const backend = new GuardedBackend(new MemoryBackend(name), name, { ...guard, copy: null, marker: null });
    return { backend, notices: new MemoryNotices(name), undo: async (close) => close() };
  }
  const root = options.opfs ?? (await opfsRoot());
  const folder = root === undefined ? null : await OpfsCopy.open(root, name, options.opfs === undefined, timing);
  let authority: StorageBackend;
  let database: IndexedDBBackend | null = null; // the IndexedDB this open opened, if it did
  try {
    authority = typeof options.storage === 'object' ? options.storage : (database = await IndexedDBBackend.open(indexedDB!, name, timing));
  } catch (e) {
    if (folder?.created) await OpfsCopy.removeStore(root!, name).catch(() => undefined);
    throw e;
  }
  const withCopy = (options.copy ?? options.mirror ?? true) && folder !== null;
  const backend = new GuardedBackend(authority, name, { ...guard, copy: withCopy ? folder : null, marker: withCopy ? null : (folder?.asMarker() ?? null) });
  // Closes (`close`), and removes what this open created if the open was refused before
  // anything was stored — under the store's lock, so no other tab's commit lands in between.
  const undo = async (close: () => void) => {
    const createdDatabase = database?.created === true;
    if (!createdDatabase && !folder?.created) return close();
    await storeLock(name, () => Promise.resolve())(async () => {
      const head = await authority.readHead().then((h) => (h === undefined ? 'none' : 'some'), () => 'unknown');
      close();
      if (head !== 'none') return;
      if (folder?.created) await OpfsCopy.removeStore(root!, name).catch(() => undefined);
      if (createdDatabase) await IndexedDBBackend.deleteDatabase(indexedDB!, name).catch(() => undefined);
    });
  };
  return { backend, notices: BroadcastNotices.available() ? new BroadcastNotices(name) : new MemoryNotices(name), undo };
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
