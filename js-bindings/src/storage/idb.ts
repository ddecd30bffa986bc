// The IndexedDB backend: one database per store, one object store per record
// kind (head, manifests, packs — names generated from persistence's
// RecordKind), keys are the persistence layer's string keys, values are
// Uint8Arrays holding exactly the record's bytes. A fourth object store,
// `meta`, holds what keepstate knows about the database itself: a data-loss
// marker (below), and commits stashed by pages as they were unloaded
// (`stash:<writer>`, backend.ts StashedCommit).
//
// Restore reads in ONE readonly transaction: head, manifests and the packs'
// keys, then the packs the engine asks for — once one arrives as a Blob, every
// pack of the version it restores is requested at once (a Blob value is only a
// handle), and their bytes are taken one after the other while the engine
// verifies (backend.ts feedPacks).
// A commit's packs of 64 KiB or more are stored as Blobs (written since issue
// 17; BLOB_PACKS below says which): IndexedDB keeps a Blob's
// bytes as they are, where a Uint8Array value is serialized (and, in Chromium,
// compressed) on put() and deserialized on get(), which took about twice as
// long for 8 MiB packs. Uint8Array packs written before still read. A commit is ONE
// readwrite transaction: read the head, let the engine compare it with the
// state's base (optimistic concurrency), then put and delete — all or
// nothing; any failure aborts the transaction so nothing is written.
//
// Data loss: Chromium deletes an origin's whole IndexedDB when it finds its
// LevelDB corrupt after a crash (docs/crash-safety.md) and says so only once,
// in the next `upgradeneeded` (`event.dataLoss`). That event recreates the
// database, so the marker is written in the same upgrade transaction: every
// later open still sees the loss until a recovery or the app clears it.
import { HEAD_KEY, RECORD_KINDS } from '../generated/abi.js';
import { errorFromIndexedDB, type KeepstateError } from '../errors.js';
import {
  RecordKind,
  feedPacks,
  packBytes,
  valueBytes,
  type BackendCapabilities,
  type BlobPolicy,
  type BrowserDataLoss,
  type CommitRecords,
  type PackRequest,
  type RestoreHint,
  type StashedCommit,
  type StorageBackend,
  type StoredRecord,
  type Timing,
} from './backend.js';

/** The schema version of the IndexedDB database (object stores), not of the snapshot format.
 * 2: the `meta` object store. */
const DATABASE_VERSION = 2;
const META = 'meta';
/** Keys of stashed commits in `meta`: the prefix, then the writer id (backend.ts, StashedCommit). */
const STASH_PREFIX = 'stash:';
const DATA_LOSS_KEY = 'data-loss';
/** The key of the probe whether Blob values can be stored (put and deleted in one transaction). */
const BLOB_PROBE_KEY = 'blob-probe';

/**
 * The packs this backend takes as Blobs, once the probe found it stores them.
 * minBytes: smaller packs stay Uint8Arrays, since Chromium keeps values under 64 KiB inside
 * its LevelDB, where a Blob always becomes a file of its own (a small commit's pack would
 * cost a file).
 * maxLiveBytes: a commit whose packs, with the Blobs of earlier commits not collected yet,
 * add up to more goes as Uint8Arrays, as before issue 17. A Blob's bytes stay in the
 * browser's blob storage until the Blob is collected, not when the transaction completes: in
 * Chromium 156, right after a 256 MiB state's first commit (347 MiB of Blobs), a raw put of
 * one 256 MiB value failed with "DataError: Failed to write blobs (InvalidBlob)" (twice;
 * never with Uint8Array packs), and so did keepstate's eleventh commit of 90 MiB in a row
 * when this bound was per commit (`node bench/browser/ceiling.mjs --every 65536`).
 */
const BLOB_PACKS: BlobPolicy = { minBytes: 64 << 10, maxLiveBytes: 128 << 20 };

export function databaseName(storeName: string): string {
  return `keepstate:${storeName}`;
}

function request<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

function transactionDone(tx: IDBTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onabort = () => reject(tx.error);
  });
}

/** Every manifest's key, and the bytes of those at or above `from` (RestoreHint). */
async function manifestsFrom(os: IDBObjectStore, from: string): Promise<StoredRecord[]> {
  const [keys, values] = await Promise.all([request(os.getAllKeys()), request(os.getAll(IDBKeyRange.lowerBound(from)))]);
  // Keys come in IndexedDB's order (string keys: by code unit, as JS compares them): the
  // values are those of the keys from the first at or above `from` on.
  const first = keys.length - values.length;
  return keys.map((k, i) =>
    i < first
      ? { kind: RecordKind.Manifest, key: String(k), bytes: new Uint8Array(0), unread: true }
      : { kind: RecordKind.Manifest, key: String(k), bytes: valueBytes(values[i - first]) },
  );
}

function kindName(kind: number): string {
  const name = RECORD_KINDS[kind];
  if (name === undefined) throw new Error(`bad record kind ${kind}`);
  return name;
}

export class IndexedDBBackend implements StorageBackend {
  readonly label = 'IndexedDB';

  private constructor(
    private readonly db: IDBDatabase,
    /** The marker of a loss the browser reported (now or at an earlier open), or null. */
    private lossMarker: BrowserDataLoss | null,
    /** Where the phases of a commit's write go (OpenOptions.debugTimings), or null. */
    private readonly timing: Timing | null,
    /** This open created the database (it did not exist). */
    readonly created: boolean,
  ) {
    this.probeBlobs();
  }

  get capabilities(): BackendCapabilities {
    return { blobPacks: this.storesBlobs ? BLOB_PACKS : null };
  }

  /**
   * Whether this database stores Blob values: true once a probe put one (in `meta`, deleted in
   * the same transaction). Some cannot: WebKit's ephemeral sessions (Safari's private
   * browsing, WebKitWebDriver's automation) fail every such put with "Error preparing
   * Blob/File data to be stored in object store". Until the probe answers, commits use bytes.
   */
  private storesBlobs = false;

  private probeBlobs(): void {
    if (typeof Blob === 'undefined') return;
    try {
      const tx = this.db.transaction(META, 'readwrite', { durability: 'relaxed' });
      const os = tx.objectStore(META);
      const put = os.put(new Blob([new Uint8Array(1)]), BLOB_PROBE_KEY);
      os.delete(BLOB_PROBE_KEY);
      let stored = false;
      put.onsuccess = () => {
        stored = true;
      };
      // A failed put aborts the transaction (nothing is written); the answer stays false.
      tx.oncomplete = () => {
        this.storesBlobs = stored;
      };
    } catch {
      // Stays false: bytes, as every backend can store.
    }
  }

  static async open(factory: IDBFactory, storeName: string, timing: Timing | null = null): Promise<IndexedDBBackend> {
    try {
      const req = factory.open(databaseName(storeName), DATABASE_VERSION);
      let created = false;
      req.onupgradeneeded = (event) => {
        const db = req.result;
        created = event.oldVersion === 0;
        for (const kind of [...RECORD_KINDS, META]) {
          if (!db.objectStoreNames.contains(kind)) db.createObjectStore(kind);
        }
        const { dataLoss, dataLossMessage } = event as IDBVersionChangeEvent & { dataLoss?: string; dataLossMessage?: string };
        if (dataLoss !== undefined && dataLoss !== 'none') {
          const marker: BrowserDataLoss = { dataLoss, message: dataLossMessage ?? '', at: Date.now() };
          req.transaction!.objectStore(META).put(marker, DATA_LOSS_KEY);
        }
      };
      const db = await request(req);
      // Another connection wants to upgrade or delete the database: let it.
      db.onversionchange = () => db.close();
      const marker = (await request(db.transaction(META, 'readonly').objectStore(META).get(DATA_LOSS_KEY))) as
        | BrowserDataLoss
        | undefined;
      return new IndexedDBBackend(db, marker ?? null, timing, created && marker === undefined);
    } catch (e) {
      throw errorFromIndexedDB(e, `opening the database of store "${storeName}"`);
    }
  }

  /**
   * Deletes store `storeName`'s database (deleteStore). Open connections close themselves
   * (onversionchange), so the deletion is not blocked for long; resolves once it is done.
   */
  static async deleteDatabase(factory: IDBFactory, storeName: string): Promise<void> {
    try {
      await request(factory.deleteDatabase(databaseName(storeName)));
    } catch (e) {
      throw errorFromIndexedDB(e, `deleting the database of store "${storeName}"`);
    }
  }

  /** A loss the browser reported for this database and nobody has resolved yet. */
  get browserDataLoss(): BrowserDataLoss | null {
    return this.lossMarker;
  }

  /** Forgets the data-loss marker (after a recovery, or when the app accepted the loss). */
  async clearDataLoss(): Promise<void> {
    if (this.lossMarker === null) return;
    try {
      const tx = this.db.transaction(META, 'readwrite', { durability: 'strict' });
      tx.objectStore(META).delete(DATA_LOSS_KEY);
      await transactionDone(tx);
      this.lossMarker = null;
    } catch (e) {
      throw errorFromIndexedDB(e, 'clearing the data-loss marker');
    }
  }

  stashCommit(stash: StashedCommit): void {
    // Issued now, in this task; nothing awaits it (the page is going away).
    const tx = this.db.transaction(META, 'readwrite', { durability: 'strict' });
    tx.objectStore(META).put(stash, `${STASH_PREFIX}${stash.writer}`);
    tx.commit();
  }

  async readStashes(): Promise<StashedCommit[]> {
    try {
      // `meta` holds a few records: read them all (IDBKeyRange is a global of the page, not of an injected factory).
      const os = this.db.transaction(META, 'readonly').objectStore(META);
      const [keys, values] = await Promise.all([request(os.getAllKeys()), request(os.getAll())]);
      const stashes = values.filter((_, i) => String(keys[i]).startsWith(STASH_PREFIX)) as StashedCommit[];
      return stashes.sort((a, b) => a.at - b.at);
    } catch (e) {
      throw errorFromIndexedDB(e, 'reading stashed commits');
    }
  }

  async deleteStash(writer: number): Promise<void> {
    try {
      const tx = this.db.transaction(META, 'readwrite', { durability: 'strict' });
      tx.objectStore(META).delete(`${STASH_PREFIX}${writer}`);
      await transactionDone(tx);
    } catch (e) {
      throw errorFromIndexedDB(e, 'removing a stashed commit');
    }
  }

  async readHead(): Promise<Uint8Array | undefined> {
    try {
      const stored: unknown = await request(this.db.transaction(RECORD_KINDS[0], 'readonly').objectStore(RECORD_KINDS[0]).get(HEAD_KEY));
      return stored === undefined ? undefined : valueBytes(stored);
    } catch (e) {
      throw errorFromIndexedDB(e, 'reading the stored head');
    }
  }

  /**
   * Reads what a restore needs in ONE readonly transaction (RestoreSource); the packs as
   * feedPacks says (backend.ts): every pack named at once once one arrives as a Blob, else
   * at most two in flight. The engine stages one, never the whole database.
   */
  async readForRestore(
    start: (records: StoredRecord[]) => PackRequest | null,
    next: (pack: Uint8Array | undefined) => PackRequest | null,
    hint: RestoreHint = {},
  ): Promise<void> {
    try {
      const tx = this.db.transaction([...RECORD_KINDS], 'readonly');
      const done = transactionDone(tx);
      done.catch(() => undefined); // awaited below; an engine error may come first
      const [headStore, manifestStore, packStore] = [RecordKind.Head, RecordKind.Manifest, RecordKind.Pack].map((kind) =>
        tx.objectStore(kindName(kind)),
      );
      const withBytes = (kind: RecordKind, os: IDBObjectStore) =>
        Promise.all([request(os.getAllKeys()), request(os.getAll())]).then(([keys, values]) =>
          keys.map((key, i) => ({ kind, key: String(key), bytes: valueBytes(values[i]) })),
        );
      const [heads, manifests, packKeys] = await Promise.all([
        withBytes(RecordKind.Head, headStore!),
        // Without a global IDBKeyRange (an IDBFactory passed in, in Node), the hint is not taken.
        hint.manifestsFrom === undefined || typeof IDBKeyRange === 'undefined'
          ? withBytes(RecordKind.Manifest, manifestStore!)
          : manifestsFrom(manifestStore!, hint.manifestsFrom),
        request(packStore!.getAllKeys()),
      ]);
      const packs = packKeys.map((key) => ({ kind: RecordKind.Pack, key: String(key), bytes: new Uint8Array(0) }));
      // Each read is issued from the continuation of an earlier one, while the
      // transaction is still active.
      await feedPacks(
        [...heads, ...manifests, ...packs],
        (key) => request(this.packGet(packStore!, key)) as Promise<Uint8Array | Blob | undefined>,
        start,
        next,
      );
      await done;
    } catch (e) {
      throw errorFromIndexedDB(e, 'reading the stored versions');
    }
  }

  /**
   * A get of pack `key` in the restore's transaction (`os`), or — once that is no longer active (reading a Blob's bytes
   * awaits outside IndexedDB) — in a readonly transaction of its own. That happens only for
   * packs the engine did not name up front: those of an older version it falls back to.
   * Under the store's lock (restoreNewest) no commit deletes them meanwhile; a catch-up
   * without the lock that falls back discards what it read and restores again under the
   * lock (Store.catchUp), so a pack deleted in between costs time, not a wrong state.
   */
  private packGet(os: IDBObjectStore, key: string): IDBRequest {
    try {
      return os.get(key);
    } catch (e) {
      if ((e as { name?: string }).name !== 'TransactionInactiveError') throw e;
      return this.db.transaction(kindName(RecordKind.Pack), 'readonly').objectStore(kindName(RecordKind.Pack)).get(key);
    }
  }

  async readAll(): Promise<StoredRecord[]> {
    try {
      const tx = this.db.transaction([...RECORD_KINDS], 'readonly');
      const all = await Promise.all(
        RECORD_KINDS.map((name, kind) => {
          const os = tx.objectStore(name);
          return Promise.all([request(os.getAllKeys()), request(os.getAll())]).then(([keys, values]) => ({ kind, keys, values }));
        }),
      );
      // Blobs are read after the transaction: its requests are all done.
      const out: StoredRecord[] = [];
      for (const { kind, keys, values } of all) {
        for (let i = 0; i < keys.length; ++i) {
          out.push({ kind: kind as RecordKind, key: String(keys[i]), bytes: (await packBytes(values[i])) ?? new Uint8Array(0) });
        }
      }
      return out;
    } catch (e) {
      throw errorFromIndexedDB(e, 'reading every stored record');
    }
  }

  /**
   * Writes one commit in one readwrite transaction. `checkHead` sees the stored head
   * record (undefined: none) and returns an error to abort with, or null to go on.
   * Resolves when the transaction completes (durably, with durability 'strict').
   * With `clearFirst`, the data-loss marker goes too: the records written replace
   * everything the database held.
   */
  writeCommit(
    records: CommitRecords,
    durability: 'strict' | 'relaxed',
    checkHead: (head: Uint8Array | undefined) => KeepstateError | null,
  ): Promise<void> {
    return new Promise((resolve, reject) => {
      let failure: KeepstateError | null = null;
      let putsEnded = 0;
      let tx: IDBTransaction;
      try {
        tx = this.db.transaction([...RECORD_KINDS, META], 'readwrite', { durability });
      } catch (e) {
        reject(errorFromIndexedDB(e, 'starting the commit transaction'));
        return;
      }
      const abort = (error: KeepstateError) => {
        failure ??= error;
        try {
          tx.abort();
        } catch {
          // Already finished or aborting: onabort reports `failure`.
        }
      };
      tx.oncomplete = () => {
        if (failure !== null) return reject(failure);
        this.timing?.('commit.idb-after-puts', performance.now() - putsEnded);
        if (records.clearFirst) this.lossMarker = null;
        resolve();
      };
      tx.onabort = () => reject(failure ?? errorFromIndexedDB(tx.error, 'commit transaction aborted'));
      tx.onerror = (event) => {
        failure ??= errorFromIndexedDB((event.target as IDBRequest | null)?.error ?? tx.error, 'commit');
      };
      // The head is read first and the commit's writes are queued right behind it, not after
      // its answer: requests run in order, and the transaction cannot commit before the head's
      // success event has run, so a head that fails the check still aborts every write (and
      // the round trip to the head is not waited for).
      const headRequest = tx.objectStore(RECORD_KINDS[0]).get(HEAD_KEY);
      headRequest.onsuccess = () => {
        const stored: unknown = headRequest.result;
        const error = checkHead(stored === undefined ? undefined : valueBytes(stored));
        if (error !== null) abort(error);
      };
      const putsStarted = performance.now();
      try {
        if (records.clearFirst) {
          for (const name of RECORD_KINDS) tx.objectStore(name).clear();
          tx.objectStore(META).delete(DATA_LOSS_KEY);
        }
        for (const r of records.puts) tx.objectStore(kindName(r.kind)).put(r.bytes, r.key);
        for (const d of records.deletes) tx.objectStore(kindName(d.kind)).delete(d.key);
        // put() serializes (structured clone) its value before it returns.
        putsEnded = performance.now();
        this.timing?.('commit.idb-put-calls', putsEnded - putsStarted);
      } catch (e) {
        abort(errorFromIndexedDB(e, 'writing the commit'));
      }
    });
  }

  close(): void {
    this.db.close();
  }
}
