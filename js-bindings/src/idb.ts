// The IndexedDB adapter: one database per store, one object store per record
// kind (head, manifests, packs — names generated from persistence's
// RecordKind), keys are the persistence layer's string keys, values are
// Uint8Arrays holding exactly the record's bytes.
//
// Restore reads in ONE readonly transaction: head, manifests and the packs'
// keys, then only the packs the engine asks for, one at a time. A commit is ONE
// readwrite transaction: read the head, let the engine compare it with the
// state's base (optimistic concurrency), then put and delete — all or
// nothing; any failure aborts the transaction so nothing is written.
import { HEAD_KEY, RECORD_KINDS } from './generated/abi.js';
import { errorFromIndexedDB, type KeepstateError } from './errors.js';

/** The schema version of the IndexedDB database (object stores), not of the snapshot format. */
const DATABASE_VERSION = 1;

export function databaseName(storeName: string): string {
  return `keepstate:${storeName}`;
}

export interface StoredRecord {
  kind: number;
  key: string;
  bytes: Uint8Array;
}

export interface CommitRecords {
  /** Clear every object store first (a fresh version line replaces unreadable data). */
  clearFirst: boolean;
  puts: StoredRecord[];
  deletes: { kind: number; key: string }[];
}

function request<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

/** Bytes of a stored value; anything else (tampered data) reads as empty, which fails verification. */
export function valueBytes(value: unknown): Uint8Array {
  if (value instanceof Uint8Array) return value;
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  return new Uint8Array(0);
}

export async function openDatabase(factory: IDBFactory, storeName: string): Promise<IDBDatabase> {
  try {
    const req = factory.open(databaseName(storeName), DATABASE_VERSION);
    req.onupgradeneeded = () => {
      const db = req.result;
      for (const kind of RECORD_KINDS) {
        if (!db.objectStoreNames.contains(kind)) db.createObjectStore(kind);
      }
    };
    const db = await request(req);
    // Another connection wants to upgrade or delete the database: let it.
    db.onversionchange = () => db.close();
    return db;
  } catch (e) {
    throw errorFromIndexedDB(e, `opening the database of store "${storeName}"`);
  }
}

/** What the engine asks for next during a restore: a pack, and the one after it. */
export interface PackRequest {
  need: string;
  then?: string;
}

/**
 * Reads what a restore needs in ONE readonly transaction: the head and every
 * manifest with their bytes and the packs' keys only, handed to `start`; then
 * the packs the engine asks for: `start` and `next` return the pack wanted
 * next (and the one after it, requested at once so that IndexedDB reads it
 * while the engine verifies this one), or null when the restore is done. At
 * most two packs are in flight, and the engine stages one, never the whole
 * database. A missing pack is passed as undefined.
 */
export async function readForRestore(
  db: IDBDatabase,
  start: (records: StoredRecord[]) => PackRequest | null,
  next: (pack: Uint8Array | undefined) => PackRequest | null,
): Promise<void> {
  try {
    const tx = db.transaction([...RECORD_KINDS], 'readonly');
    const done = new Promise<void>((resolve, reject) => {
      tx.oncomplete = () => resolve();
      tx.onabort = () => reject(tx.error);
    });
    done.catch(() => undefined); // awaited below; an engine error may come first
    const [headStore, manifestStore, packStore] = [0, 1, 2].map((kind) => tx.objectStore(kindName(kind)));
    const withBytes = (kind: number, os: IDBObjectStore) =>
      Promise.all([request(os.getAllKeys()), request(os.getAll())]).then(([keys, values]) =>
        keys.map((key, i) => ({ kind, key: String(key), bytes: valueBytes(values[i]) })),
      );
    const [heads, manifests, packKeys] = await Promise.all([
      withBytes(0, headStore!),
      withBytes(1, manifestStore!),
      request(packStore!.getAllKeys()),
    ]);
    const packs = packKeys.map((key) => ({ kind: 2, key: String(key), bytes: new Uint8Array(0) }));
    // Each read is issued from the continuation of an earlier one, while the
    // transaction is still active.
    const reads = new Map<string, Promise<unknown>>();
    const read = (key: string) => {
      let r = reads.get(key);
      if (r === undefined) {
        r = request(packStore!.get(key));
        r.catch(() => undefined); // a read nobody awaits any more must not go unhandled
        reads.set(key, r);
      }
      return r;
    };
    let wanted = start([...heads, ...manifests, ...packs]);
    while (wanted !== null) {
      const value = read(wanted.need);
      if (wanted.then !== undefined) void read(wanted.then);
      const bytes: unknown = await value;
      reads.delete(wanted.need);
      wanted = next(bytes === undefined ? undefined : valueBytes(bytes));
    }
    await done;
  } catch (e) {
    throw errorFromIndexedDB(e, 'reading the stored versions');
  }
}

/**
 * Writes one commit in one readwrite transaction. `checkHead` sees the stored head
 * record (undefined: none) and returns an error to abort with, or null to go on.
 * Resolves when the transaction completes (durably, with durability 'strict').
 */
export function writeCommit(
  db: IDBDatabase,
  records: CommitRecords,
  durability: 'strict' | 'relaxed',
  checkHead: (head: Uint8Array | undefined) => KeepstateError | null,
): Promise<void> {
  return new Promise((resolve, reject) => {
    let failure: KeepstateError | null = null;
    let tx: IDBTransaction;
    try {
      tx = db.transaction([...RECORD_KINDS], 'readwrite', { durability });
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
    tx.oncomplete = () => (failure === null ? resolve() : reject(failure));
    tx.onabort = () => reject(failure ?? errorFromIndexedDB(tx.error, 'commit transaction aborted'));
    tx.onerror = (event) => {
      failure ??= errorFromIndexedDB((event.target as IDBRequest | null)?.error ?? tx.error, 'commit');
    };
    const headRequest = tx.objectStore(RECORD_KINDS[0]).get(HEAD_KEY);
    headRequest.onsuccess = () => {
      const stored: unknown = headRequest.result;
      const error = checkHead(stored === undefined ? undefined : valueBytes(stored));
      if (error !== null) {
        abort(error);
        return;
      }
      try {
        if (records.clearFirst) for (const name of RECORD_KINDS) tx.objectStore(name).clear();
        for (const r of records.puts) tx.objectStore(kindName(r.kind)).put(r.bytes, r.key);
        for (const d of records.deletes) tx.objectStore(kindName(d.kind)).delete(d.key);
      } catch (e) {
        abort(errorFromIndexedDB(e, 'writing the commit'));
      }
    };
  });
}

function kindName(kind: number): string {
  const name = RECORD_KINDS[kind];
  if (name === undefined) throw new Error(`bad record kind ${kind}`);
  return name;
}
