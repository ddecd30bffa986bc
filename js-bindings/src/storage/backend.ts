// The storage contract between a Store and where its records live.
//
// A store's committed state is a set of records (persistence's RecordKind:
// one head, manifests, packs), each exactly the bytes the engine produced,
// keyed by persistence's string keys. A backend stores them; it never
// interprets them beyond the head's version claim (the engine verifies every
// byte on restore).
//
// A StorageBackend is where a store's versions are decided: IndexedDB
// (idb.ts) in browsers, memory (memory.ts: Node tests, ephemeral stores), or
// the app's own. Its commit write is atomic and runs the engine's head check
// inside it. The OPFS copy (opfs.ts) is a second failure domain; guarded.ts
// is the backend that wraps an authority and that copy and holds the rules
// between them. Nothing here imports the store, the writer or the module:
// the head rule comes in as a function (checkHead).

import { KeepstateError } from '../errors.js';
import { MANIFEST_KEY_PATTERN, WIRE } from '../generated/abi.js';

/**
 * The one head rule (persistence's CheckStoredHead, through the module): null when the stored
 * head is exactly `expected` (both absent counts), else the error to abort with. Backends
 * that must check a head get it passed in; none compares head bytes or versions itself.
 */
export type HeadRule = (expected: Uint8Array | null, stored: Uint8Array | undefined) => KeepstateError | null;

/**
 * Receives how long one phase of a commit or a restore took (OpenOptions.debugTimings):
 * `phase` is a stable name (docs in bench/browser/README.md, "Where the time goes"),
 * `ms` its duration. Phases of one restore that repeat per pack are reported per pack.
 */
export type Timing = (phase: string, ms: number) => void;

/** Record kinds, as persistence's RecordKind numbers them (format.h). */
export enum RecordKind {
  Head = 0,
  Manifest = 1,
  Pack = 2,
}

export interface StoredRecord {
  kind: RecordKind;
  key: string;
  bytes: Uint8Array;
  /** Stored, but its bytes were not read (RestoreHint.manifestsFrom); `bytes` is empty. */
  unread?: true;
}

/**
 * What a restore can do without. `manifestsFrom`: the manifests with keys
 * below it are passed with their keys only (`unread`): a store catching up
 * holds them decoded already (keepstate_store_read_manifests_from). A
 * backend may ignore a hint and read everything.
 */
export interface RestoreHint {
  manifestsFrom?: string;
}

/** A record a commit writes: a pack may come as a Blob of its bytes (where the backend's
 * BlobPolicy says: both it and the OPFS copy take the Blob, so its bytes are copied out of
 * wasm memory once); every other kind is a Uint8Array. */
export interface CommitRecord {
  kind: RecordKind;
  key: string;
  bytes: Uint8Array | Blob;
}

/** The size in bytes of a record a commit writes. */
export function recordSize(record: CommitRecord): number {
  return record.bytes instanceof Uint8Array ? record.bytes.length : record.bytes.size;
}

/** The head record a commit writes, or undefined (a head is never a Blob). */
export function headOf(records: CommitRecords): Uint8Array | undefined {
  return records.puts.find((r) => r.kind === RecordKind.Head)?.bytes as Uint8Array | undefined;
}

export interface CommitRecords {
  /** Remove every stored record first (a fresh version line replaces unreadable data). */
  clearFirst: boolean;
  /** The exact stored head record this commit is based on (null: none stored); the engine's head check compares against it. */
  expectedHead: Uint8Array | null;
  puts: CommitRecord[];
  deletes: { kind: RecordKind; key: string }[];
}

/** What the engine asks for next during a restore: a pack, the one after it, and (`ahead`, from
 * `then` on) the packs it will ask for after this one, in order, which a backend reads meanwhile. */
export interface PackRequest {
  need: string;
  then?: string;
  ahead?: string[];
  /** Bytes of `need` and every pack after it that this restore reads (the manifest's sizes): a progress total. */
  bytes?: number;
}

/**
 * Reading a stored state for a restore. `start` gets the head and every
 * manifest with their bytes and the packs with their keys only; then `start`
 * and `next` return the pack wanted next (and the one after it, which the
 * backend may fetch early), or null when the restore is done. A missing pack
 * is passed to `next` as undefined.
 */
export interface RestoreSource {
  /** For messages: "IndexedDB", "the OPFS copy". */
  readonly label: string;
  /** The stored head record (undefined: none). Not verified: restore verifies. */
  readHead(): Promise<Uint8Array | undefined>;
  readForRestore(
    start: (records: StoredRecord[]) => PackRequest | null,
    next: (pack: Uint8Array | undefined) => PackRequest | null,
    hint?: RestoreHint,
  ): Promise<void>;
  /** Every stored record with its bytes (to copy one backend into another). */
  readAll(): Promise<StoredRecord[]>;
  close(): void;
}

/** A stored pack as a backend read it: its bytes, a Blob of them (IndexedDB stores packs as
 * Blobs, idb.ts), or undefined when it is missing. */
export type PackValue = Uint8Array | Blob | undefined;

/** The bytes of a pack value (a Blob is read; anything else that is not bytes reads as empty,
 * which fails verification). */
export async function packBytes(value: unknown): Promise<Uint8Array | undefined> {
  if (value === undefined) return undefined;
  if (typeof Blob !== 'undefined' && value instanceof Blob) return new Uint8Array(await value.arrayBuffer());
  return valueBytes(value);
}

/**
 * The pack half of readForRestore, shared by every backend: hands `records` to
 * `start`, then reads each pack the engine asks for with `readPack`, until the
 * engine is done. With each pack it needs, the engine names the packs it will
 * need after it (`ahead`; `then` is the first). The next one is read at the
 * same time, so storage reads it while the engine verifies this one; and once
 * a read returns a Blob (IndexedDB stores large packs so: idb.ts), every pack
 * named is requested at once, in that callback, while an IndexedDB
 * transaction is still active (a Blob is only a handle; taking its bytes
 * awaits outside IndexedDB). Bytes of at most two packs are held besides the
 * engine's; while values arrive as bytes (older stores, OPFS, memory), at most
 * two reads are in flight, as before. A read the engine stops naming (it fell
 * back to another version) is dropped. `readPack` must issue its read
 * synchronously.
 */
export async function feedPacks(
  records: StoredRecord[],
  readPack: (key: string) => Promise<PackValue>,
  start: (records: StoredRecord[]) => PackRequest | null,
  next: (pack: Uint8Array | undefined) => PackRequest | null,
): Promise<void> {
  const reads = new Map<string, Promise<PackValue>>();
  const bytes = new Map<string, Promise<Uint8Array | undefined>>();
  let named: string[] = [];
  let all = false; // a Blob arrived: request every pack named
  const read = (key: string): Promise<PackValue> => {
    let r = reads.get(key);
    if (r === undefined) {
      r = readPack(key);
      r.then(
        (value) => {
          if (!all && typeof Blob !== 'undefined' && value instanceof Blob) {
            all = true;
            for (const k of named) void read(k);
          }
        },
        () => undefined, // a read nobody awaits any more must not go unhandled
      );
      reads.set(key, r);
    }
    return r;
  };
  const bytesOf = (key: string) => {
    let b = bytes.get(key);
    if (b === undefined) {
      b = read(key).then(packBytes);
      b.catch(() => undefined);
      bytes.set(key, b);
    }
    return b;
  };
  const aheadOf = (w: PackRequest) => w.ahead ?? (w.then === undefined ? [] : [w.then]);
  let wanted = start(records);
  while (wanted !== null) {
    named = aheadOf(wanted);
    const value = bytesOf(wanted.need);
    if (all) for (const key of named) void read(key);
    if (named.length > 0) void bytesOf(named[0]!);
    const got = await value;
    reads.delete(wanted.need);
    bytes.delete(wanted.need);
    wanted = next(got);
    if (wanted !== null && reads.size > 0) {
      const still = new Set([wanted.need, ...aheadOf(wanted)]);
      for (const key of [...reads.keys()]) {
        if (still.has(key)) continue;
        reads.delete(key);
        bytes.delete(key);
      }
    }
  }
}

/** What a backend found it lost: the browser's report (Chromium's `dataLoss`). */
export interface BrowserDataLoss {
  /** `event.dataLoss` of the upgrade ('total' in Chromium). */
  dataLoss: string;
  /** `event.dataLossMessage`, e.g. 'IndexedDB (database was corrupt): checksum mismatch'. */
  message: string;
  /** When the browser reported it (ms since the epoch). */
  at: number;
}

/**
 * A commit a page captured as it was unloaded, when no later task could write
 * it: kept as one record, and written at the next open with the same head
 * check it would have had (docs/tabs.md, "Leaving a page").
 */
export interface StashedCommit {
  /** The writer (store) that captured it; one stash per writer. */
  writer: number;
  /** The version it is based on. */
  baseVersion: number;
  records: CommitRecords;
  /** When it was captured (ms since the epoch). */
  at: number;
}

/**
 * Which packs of a commit a backend takes as Blobs (wire.ts decodePlan makes them straight
 * from wasm memory, so their bytes are copied out once): each pack of at least `minBytes`,
 * unless the commit's packs and the Blobs of earlier commits that the garbage collector has
 * not freed yet add up to more than `maxLiveBytes`. A browser keeps a Blob's bytes until the
 * Blob is collected, not until the write that took it completes, and Chromium fails a write
 * once its blob storage is full (`DataError: Failed to write blobs (InvalidBlob)`).
 */
export interface BlobPolicy {
  readonly minBytes: number;
  readonly maxLiveBytes: number;
}

/** What a backend can do, declared instead of tested for (`instanceof`). Read at each commit. */
export interface BackendCapabilities {
  /** Packs it takes as Blobs (IndexedDB, where it was found to store them: idb.ts), or null: bytes only. */
  readonly blobPacks: BlobPolicy | null;
}

/**
 * The storage contract of a store (docs/api.md, "Your own storage"): where its versions are
 * decided. IndexedDB (idb.ts), memory (memory.ts), or an object the app passes as
 * `openStore(name, { storage: backend })`. Only the RestoreSource reads and `writeCommit`
 * are required; the rest have defaults (BackendWrapper):
 *  - no capabilities: records are always Uint8Arrays;
 *  - no `browserDataLoss`: the storage never reports a loss of its own;
 *  - no stash methods: a page unloaded with uncommitted work stashes nothing (its last
 *    autosave, run when the page was hidden, is what survives).
 */
export interface StorageBackend extends RestoreSource {
  readonly capabilities?: BackendCapabilities;
  /**
   * One atomic write: reads the stored head, hands it to `checkHead` (the
   * engine's rule: an error aborts and nothing is written), then clears (if
   * `clearFirst`), puts and deletes. Resolves once the write is durable as
   * `durability` says.
   */
  writeCommit(
    records: CommitRecords,
    durability: 'strict' | 'relaxed',
    checkHead: (head: Uint8Array | undefined) => KeepstateError | null,
  ): Promise<void>;
  /** A loss the storage itself reported and nobody has resolved yet, or null. */
  readonly browserDataLoss?: BrowserDataLoss | null;
  /** Forgets that report (after a recovery, or when the app accepted the loss). */
  clearDataLoss?(): Promise<void>;
  /** Keeps `stash` for the next open. Its write is issued before this returns: a page being
   * unloaded has no later task (IndexedDB completes a transaction issued in `pagehide`). */
  stashCommit?(stash: StashedCommit): void;
  /** Every stashed commit, oldest first. */
  readStashes?(): Promise<StashedCommit[]>;
  /** Removes the stash of `writer` (it was written, or could not be). */
  deleteStash?(writer: number): Promise<void>;
  /** Removes every record of the store, for good (deleteStore). Without it, deleteStore refuses this backend. */
  destroy?(): Promise<void>;
}

/**
 * A backend that forwards every call to the one below it (`down`) and gives the contract's
 * defaults where `down` leaves a member out; a subclass overrides only what it changes
 * (LevelDB's EnvWrapper). Every backend a store uses is seen through one.
 */
export class BackendWrapper implements Required<Omit<StorageBackend, 'browserDataLoss'>> {
  constructor(protected readonly down: StorageBackend) {}

  get label(): string {
    return this.down.label;
  }
  get capabilities(): BackendCapabilities {
    return this.down.capabilities ?? { blobPacks: null };
  }
  get browserDataLoss(): BrowserDataLoss | null {
    return this.down.browserDataLoss ?? null;
  }
  readHead(): Promise<Uint8Array | undefined> {
    return this.down.readHead();
  }
  readForRestore(
    start: (records: StoredRecord[]) => PackRequest | null,
    next: (pack: Uint8Array | undefined) => PackRequest | null,
    hint?: RestoreHint,
  ): Promise<void> {
    return this.down.readForRestore(start, next, hint);
  }
  readAll(): Promise<StoredRecord[]> {
    return this.down.readAll();
  }
  writeCommit(
    records: CommitRecords,
    durability: 'strict' | 'relaxed',
    checkHead: (head: Uint8Array | undefined) => KeepstateError | null,
  ): Promise<void> {
    return this.down.writeCommit(records, durability, checkHead);
  }
  async clearDataLoss(): Promise<void> {
    await this.down.clearDataLoss?.();
  }
  stashCommit(stash: StashedCommit): void {
    this.down.stashCommit?.(stash);
  }
  async readStashes(): Promise<StashedCommit[]> {
    return (await this.down.readStashes?.()) ?? [];
  }
  async deleteStash(writer: number): Promise<void> {
    await this.down.deleteStash?.(writer);
  }
  async destroy(): Promise<void> {
    if (this.down.destroy === undefined) throw new KeepstateError('invalid-argument', `${this.label} cannot be destroyed (it has no destroy())`);
    await this.down.destroy();
  }
  close(): void {
    this.down.close();
  }
}

/** The size of a head record (WIRE.HEAD_*, generated from persistence's format). */
export const HEAD_RECORD_BYTES = WIRE.HEAD_RECORD_BYTES as number;

/** The version a head record claims (docs/snapshot-format.md), 0 if it is not a head record.
 * Not verified (restore verifies); the layout is abi.h's HEAD_*. */
export function headVersionOf(bytes: Uint8Array | undefined): number {
  if (bytes === undefined || bytes.length !== HEAD_RECORD_BYTES) return 0;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(WIRE.HEAD_MAGIC_OFFSET, true) !== WIRE.HEAD_MAGIC) return 0;
  return Number(view.getBigUint64(WIRE.HEAD_VERSION_OFFSET, true));
}

/** The key of version `version`'s manifest (persistence's ManifestKey; WIRE.MANIFEST_KEY_HEX_DIGITS). */
export function manifestKey(version: number): string {
  return version.toString(16).padStart(WIRE.MANIFEST_KEY_HEX_DIGITS, '0');
}

/** The version a manifest key names (persistence's ParseManifestKey), undefined if it is not one. */
export function manifestKeyVersion(key: string): number | undefined {
  return MANIFEST_KEY_PATTERN.test(key) ? parseInt(key, 16) : undefined;
}

/** Bytes of a stored value; anything else (tampered data) reads as empty, which fails verification. */
export function valueBytes(value: unknown): Uint8Array {
  if (value instanceof Uint8Array) return value;
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  return new Uint8Array(0);
}
