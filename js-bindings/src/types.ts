// The public shapes of a store's API: scan options, commit results, events,
// and the read/write methods a Store and a transaction's `tx` share.
import type { ConflictError, CorruptionError, KeepstateError, VersionFailure } from './errors.js';
import type { ProgressListener } from './progress.js';

/** Why a store's stored data was found missing. */
export type DataLossReason =
  /** The browser reported it had to delete IndexedDB (Chromium: `dataLoss` on the upgrade). */
  | 'browser-reported'
  /** The storage holds an older version (or nothing) than the OPFS copy or marker knows existed. */
  | 'missing'
  /** The storage's newer versions failed verification; the copy held them intact. */
  | 'corrupt';

export interface DataLossEvent {
  reason: DataLossReason;
  /** What the browser said (`dataLossMessage`), '' if nothing. */
  browserMessage: string;
  /** The newest version known to have existed. */
  lastKnownVersion: number;
  /** The version the store opened at. */
  restoredVersion: number;
  /** true: restored from the OPFS copy and written back to the storage, nothing lost; false: opened
   * without the lost data because the app asked for it (`onDataLoss: 'open'`). */
  recovered: boolean;
  /** Why the storage's own versions did not restore (reason 'corrupt'), newest first. */
  failures: VersionFailure[];
}

/**
 * What guards a store's acknowledged commits beyond its storage (Store.lossProtection):
 * the OPFS copy, only the marker, or nothing.
 */
export type LossProtection =
  /** Every commit is also in the OPFS copy: a lost or damaged IndexedDB is restored from it. */
  | 'copy'
  /** The copy is off (`copy: false`); an OPFS marker still turns a lost IndexedDB into DataLossError. */
  | 'marker'
  /** No OPFS here (WebKitGTK, a realm that refuses it) or `storage: 'memory'`: a lost IndexedDB is
   * noticed only when the browser reports it; otherwise the store opens as it finds it. */
  | 'none';

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
  /** Milliseconds from the request until the commit is durable (IndexedDB and, if on, the OPFS copy). */
  ms: number;
  /**
   * What guards this version beyond IndexedDB now (Store.lossProtection): 'copy' when the OPFS
   * copy holds it; 'marker' when the copy could not take it (an 'error' event said why) and
   * only a record of its version is there, so its loss would be reported, not recovered.
   */
  lossProtection: LossProtection;
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

/** Keys a watch listens to: one key, a prefix, or [start, end) (either bound may be left out). */
export type WatchRange = { key: string } | { prefix: string } | { start?: string; end?: string };

export interface WatchChange {
  key: string;
  /** The key's value now; undefined: it was deleted. */
  value: Uint8Array | undefined;
}

/** What made the keys change: this store's writes, another tab's commit it caught up
 * with, a rebase of its pending work onto one, or reload(). */
export type WatchSource = 'local' | 'remote' | 'rebase' | 'reload' | 'sync';

export interface WatchEvent {
  /** The keys of the listener's range that changed, each once. */
  changes: WatchChange[];
  /** The committed version the state is based on. */
  version: number;
  source: WatchSource;
}

/** A pending operation that failed when it was replayed, and was dropped. */
export interface RebaseDrop {
  /** 'writes': puts and deletes (only a quota error fails them); 'transaction': its fn threw; 'call': the mutator failed. */
  kind: 'writes' | 'transaction' | 'call';
  /** The mutator's name (kind 'call'). */
  name?: string;
  error: unknown;
}

export interface RebaseEvent {
  /** The version the pending work was based on. */
  fromVersion: number;
  /** The newer stored version it was replayed on. */
  ontoVersion: number;
  /** Operations replayed (blind writes between two other operations count as one). */
  replayed: number;
  dropped: RebaseDrop[];
  /** Milliseconds from adopting the newer state to the end of the replay (watchers told). */
  ms: number;
}

/** A commit a page stashed as it was unloaded (docs/tabs.md, "Leaving a page"), written or dropped at this open. */
export interface StashedCommitEvent {
  /** 'committed': it is now the stored version `version`; 'dropped': another writer committed after
   * the version it was based on, so it could not be written (`error` says which). */
  outcome: 'committed' | 'dropped';
  /** The version it was committed as, or (dropped) the version it was based on. */
  version: number;
  /** When the page captured it (ms since the epoch). */
  capturedAt: number;
  error?: ConflictError;
}

/** Another tab (or an import) brought the stored data to a schema version newer than this code's. */
export interface SchemaNewerEvent {
  /** The schema version of the state now. */
  storedVersion: number;
  /** The newest this code writes (OpenOptions.schema.version, or the module's C++ migrations). */
  codeVersion: number;
}

export interface StoreEvents {
  commit: CommitResult;
  conflict: ConflictError;
  corruption: CorruptionEvent;
  'data-loss': DataLossEvent;
  'remote-commit': RemoteCommitEvent;
  rebase: RebaseEvent;
  'stashed-commit': StashedCommitEvent;
  'schema-newer': SchemaNewerEvent;
  /** deleteStore(name) ran elsewhere (another tab, or this realm): the store is closed, and its uncommitted work gone. */
  deleted: { name: string };
  /** A synced store's exchange with its server changed (status), or the server refused mutations (failed). */
  sync: SyncEvent;
  error: KeepstateError;
}

/** openStore's `sync` option: the server a store syncs with (docs/sync.md). */
export interface SyncOptions {
  /** The server's base URL, e.g. 'https://sync.example.com' (its endpoints are under /v1/spaces/<space>/). */
  url: string;
  /** The space (the unit of sharing): [A-Za-z0-9._-], 1 to 128 characters. */
  space: string;
  /** Sent as `Authorization: Bearer <token>` (and as the WebSocket's first message). */
  token?: string;
  /** Pull this often without a poke, in ms. Default 30000. */
  pullIntervalMs?: number;
  /** Listen for pokes on a WebSocket. Default true where WebSocket exists. */
  websocket?: boolean;
  /** The fetch to use (tests). Default globalThis.fetch. */
  fetch?: typeof fetch;
  /** The WebSocket class to use (Node before 22). Default globalThis.WebSocket. */
  WebSocket?: unknown;
}

/** Where a synced store stands with its server (store.sync). */
export interface SyncStatus {
  /** This tab talks to the server (one tab per store does; the others follow it locally). */
  leader: boolean;
  /** A WebSocket to the server is open (pokes arrive at once). */
  connected: boolean;
  /** Mutations made here that the server has not processed yet (as of the last round). */
  pending: number;
  /** The server version the state is based on. */
  serverVersion: number;
  /** The server processed this client's mutations up to this id. */
  lastMutationId: number;
  /** When the last round with the server succeeded (ms since the epoch); null: none yet. */
  lastSyncAt: number | null;
  /** Why the last round failed (the server unreachable, 401, ...); null if it succeeded. */
  error: KeepstateError | null;
}

/** A mutation the server refused: dropped here, its effects undone by the pull. */
export interface SyncFailure {
  id: number;
  /** The mutator's name, if this tab still knew it. */
  name: string | undefined;
  code: string;
  message: string;
}

export interface SyncEvent {
  status: SyncStatus;
  /** Mutations the server refused since the last event (empty for a status change). */
  failed: SyncFailure[];
}

export type StoreEventName = keyof StoreEvents;

/** What the browser keeps of this origin's storage (Store.storage()). */
/** Options of Store.export(). */
export interface ExportOptions {
  /**
   * Called with the bytes of the file written so far, of its size: once at 0, then after each
   * 4 MiB chunk, synchronously within the task that reads the file out of the engine (no write
   * may land between chunks; a listener must not write to the store).
   */
  onProgress?: ProgressListener;
}

export interface StorageHealth {
  /** The browser agreed not to evict this origin's storage under pressure (navigator.storage.persisted()). */
  persisted: boolean;
  /** Bytes this origin stores, and may store, as the browser estimates them (undefined where it does not say). */
  usage: number | undefined;
  quota: number | undefined;
}

/** The names of StoreEvents, for validating `on`. */
// A record, so that an event added to StoreEvents and left out here fails to compile.
const STORE_EVENT_SET: Record<StoreEventName, true> = {
  commit: true, conflict: true, corruption: true, 'data-loss': true, 'remote-commit': true, rebase: true,
  'stashed-commit': true, 'schema-newer': true, deleted: true, error: true, sync: true,
};
export const STORE_EVENTS: readonly StoreEventName[] = Object.keys(STORE_EVENT_SET) as StoreEventName[];

/**
 * What a callback that keepstate runs synchronously (transaction's fn, schema.migrate) may
 * return: anything but a promise or another thenable. keepstate refuses one at runtime
 * (InvalidArgumentError); this type refuses it when the code is compiled, so
 * `transaction(async (tx) => ...)` does not type-check.
 */
export type Synchronous =
  | void
  | null
  | undefined
  | string
  | number
  | boolean
  | bigint
  | symbol
  | { readonly then?: never; readonly [key: string]: any };

/** A value putJSON stores: anything JSON.stringify turns into JSON text (undefined does not). */
export type JSONInput = {} | null;

/** Reads and writes; both the Store and a transaction's `tx` have them. */
export interface ReadWrite {
  get(key: string): Uint8Array | undefined;
  getText(key: string): string | undefined;
  getJSON<T = unknown>(key: string): T | undefined;
  has(key: string): boolean;
  put(key: string, value: Uint8Array | string): void;
  /** Stores JSON.stringify(value). `undefined` (which has no JSON form) is refused: delete the key instead. */
  putJSON(key: string, value: JSONInput): void;
  delete(key: string): boolean;
  scan(options?: ScanOptions): Array<[string, Uint8Array]>;
}

export type Transaction = ReadWrite;
