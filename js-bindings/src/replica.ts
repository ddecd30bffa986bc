// Replica: one in-memory copy of a stored state, in the wasm module — the
// TypeScript side of the native keepstate::replica::Replica, whose handle it
// holds. This is the only file that calls the module's per-store exports
// (`_keepstate_store_*`, export, import adoption, mutator calls), as
// wa-sqlite's sqlite-api.js is for its module: everything else calls a
// Replica. It marshals (wire.ts reads the layouts abi.h defines) and decides
// nothing: the rules are the native Replica's and the writer's.
//
// Memory: any call may grow the heap, so every read takes HEAPU8 afresh (the
// Wasm object's helpers do), and bytes that outlive the next call are copied.
//
// A Replica is created empty, restored once (restore), used, and destroyed;
// a catch-up makes a new one from an open one (restore with `base`).
import { Wasm } from './wasm.js';
import { ConflictError, KeepstateError, QuotaError, codeNumber, type VersionFailure } from './errors.js';
import { type BlobPolicy, type CommitRecords, type HeadRule, type PackRequest, type RestoreHint, type RestoreSource, type Timing } from './storage/backend.js';
import { decodePlan, readChanges, readScan, type RawChange } from './wire.js';
import { reportProgress, type ProgressListener } from './progress.js';
import type { ScanOptions } from './types.js';

const NOT_FOUND = codeNumber('not-found');
const BUSY = codeNumber('busy');

/** A synced state's meta (keepstate_sync_state). */
export interface SyncMeta {
  client: string;
  /** The server version the unmarked keys have. */
  version: number;
  /** The server processed this client's mutations up to here. */
  lastMutationId: number;
  nextMutationId: number;
}

/** A mutation in a synced state's journal. */
export interface JournaledMutation {
  id: number;
  name: string;
  args: Uint8Array;
}

/** What a restore reported (keepstate_store_open's JSON, abi.h). */
export interface OpenReport {
  restored: number;
  fresh: boolean;
  /** Opened in place from a base (staged): adoptInPlace completes it. */
  inPlace: boolean;
  failures: VersionFailure[];
}

/** How a new replica's state is made: page size and retained versions (0: defaults), writer id. */
export interface ReplicaSettings {
  pageSize: number;
  retain: number;
  /** This writer's id in pack keys and notices: a random 53-bit number. */
  writerId: number;
  /** Every retained version damaged: open empty on a fresh line (true), or refuse with CorruptionError. */
  openEmptyIfDamaged?: boolean;
}

/** Where a restore may take what it need not read. */
export interface RestoreFrom {
  /** An open replica of the same store: the pages it holds unchanged are taken from it. */
  base?: Replica;
  /** With base: stage only the changed pages, to apply to base's own arena (adoptInPlace). */
  inPlace?: boolean;
  hint?: RestoreHint;
  timing?: Timing | null;
  /** Told the bytes of each batch of records read (the head and manifests, then each pack) and
   * the bytes of packs still to read (ReadProgress.read). */
  onRead?: (bytes: number, left: number | undefined) => void;
}

export class Replica {
  private constructor(
    readonly wasm: Wasm,
    readonly handle: number,
  ) {}

  /** A new, empty replica; restore() opens it. */
  static create(wasm: Wasm, settings: ReplicaSettings): Replica {
    return new Replica(wasm, wasm.module._keepstate_store_new(settings.pageSize, settings.retain, settings.writerId, settings.openEmptyIfDamaged ? 1 : 0));
  }

  /** Releases the native replica; the handle is unknown from now on. */
  destroy(): void {
    this.wasm.module._keepstate_store_destroy(this.handle);
  }

  /** The committed version the state is based on (0: never committed). */
  get version(): number {
    return this.wasm.module._keepstate_store_version(this.handle);
  }

  /** Whether there are changes not yet committed (or a commit is in flight). */
  get dirty(): boolean {
    return this.wasm.module._keepstate_store_dirty(this.handle) !== 0;
  }

  // --- Opening ----------------------------------------------------------------

  /**
   * Restores `source`'s newest verified version into this (new) replica: feeds it the head,
   * the manifests and the packs' keys, then each pack it asks for. Resolves with its report.
   */
  async restore(source: RestoreSource, from: RestoreFrom = {}): Promise<OpenReport> {
    const w = this.wasm;
    const m = w.module;
    const timing = from.timing ?? null;
    let report: OpenReport | undefined;
    // With timing: what the module's callbacks took, and the waits for storage between them.
    let since = performance.now();
    const waited = (phase: string) => {
      const now = performance.now();
      timing?.(phase, now - since);
      since = now;
    };
    // The module answers {need, then?, ahead?} until it has restored, then the report.
    const answer = (read: number): PackRequest | null => {
      const out = JSON.parse(w.outText()) as OpenReport | PackRequest;
      if ('need' in out) {
        from.onRead?.(read, out.bytes);
        return out;
      }
      from.onRead?.(read, 0);
      report = out;
      return null;
    };
    await source.readForRestore(
      (records) => {
        waited('restore.read-records');
        for (const r of records) {
          const key = Wasm.encode(r.key);
          const [kp, bp] = w.stage(key, r.bytes);
          w.check(
            r.unread
              ? m._keepstate_store_load_unread(this.handle, r.kind, kp!, key.length)
              : m._keepstate_store_load_record(this.handle, r.kind, kp!, key.length, bp!, r.bytes.length),
          );
        }
        const base = from.base;
        w.check(base === undefined ? m._keepstate_store_open(this.handle) : m._keepstate_store_open_from(this.handle, base.handle, from.inPlace ? 1 : 0));
        waited('restore.resolve-manifests');
        return answer(records.reduce((n, r) => n + r.bytes.length, 0));
      },
      (pack) => {
        waited('restore.pack-wait');
        const bytes = pack ?? new Uint8Array(0);
        const [bp] = w.stage(bytes);
        waited('restore.pack-copy-in');
        w.check(m._keepstate_store_open_pack(this.handle, bp!, bytes.length, pack ? 1 : 0));
        waited('restore.pack-verify-copy');
        return answer(bytes.length);
      },
      from.hint,
    );
    w.trimScratch();
    if (report === undefined) throw new KeepstateError('internal', `restore from ${source.label} ended without a report`);
    return report;
  }

  /**
   * Completes an in-place restore: applies the staged pages to the base's arena, which this
   * replica takes over (the base is left closed: destroy it). false: the base changed
   * meanwhile (nothing changed; restore again without inPlace).
   */
  adoptInPlace(): boolean {
    const status = this.wasm.module._keepstate_store_adopt_in_place(this.handle);
    if (status === BUSY) return false;
    this.wasm.check(status);
    return true;
  }

  /** The lowest manifest key a replica catching up from this one must read (RestoreHint). */
  manifestsFrom(): string {
    this.wasm.check(this.wasm.module._keepstate_store_read_manifests_from(this.handle));
    return this.wasm.outText();
  }

  // --- Reads and writes (in_txn 1: through the open transaction) ---------------

  /** The value of `key`, copied out; undefined if absent. */
  get(inTxn: 0 | 1, key: string): Uint8Array | undefined {
    return this.keyed(0, inTxn, key) ? this.wasm.outBytes() : undefined;
  }
  getText(inTxn: 0 | 1, key: string): string | undefined {
    return this.keyed(0, inTxn, key) ? this.wasm.outText() : undefined;
  }
  has(inTxn: 0 | 1, key: string): boolean {
    return this.keyed(1, inTxn, key);
  }
  /** Deletes `key`; whether it existed. */
  delete(inTxn: 0 | 1, key: string): boolean {
    return this.keyed(2, inTxn, key);
  }
  put(inTxn: 0 | 1, key: string, value: Uint8Array | string): void {
    const w = this.wasm;
    const keyLen = w.stageKey(key, Wasm.room(value));
    const valueLen = w.stageValue(keyLen, value);
    w.check(w.module._keepstate_store_put(this.handle, inTxn, w.scratch, keyLen, w.scratch + keyLen, valueLen));
    w.trimScratch();
  }
  scan(inTxn: 0 | 1, { prefix, start, end, limit, reverse }: ScanOptions): Array<[string, Uint8Array]> {
    const w = this.wasm;
    const [p, s, e] = [prefix, start, end].map((x) => Wasm.encode(x ?? '')) as [Uint8Array, Uint8Array, Uint8Array];
    const [pp, sp, ep] = w.stage(p, s, e);
    w.check(
      w.module._keepstate_store_scan(
        this.handle, inTxn, pp!, p.length, prefix === undefined ? 0 : 1, sp!, s.length, ep!, e.length,
        end === undefined ? 0 : 1, limit ?? 0, reverse ? 1 : 0,
      ),
    );
    return readScan(w.outBytes());
  }

  /** Opens the write transaction (in_txn 1). */
  begin(): void {
    this.wasm.check(this.wasm.module._keepstate_store_begin(this.handle));
  }
  /** Ends it, applying (commit) or dropping its writes; returns the module's status. */
  end(commit: boolean): number {
    return this.wasm.module._keepstate_store_end(this.handle, commit ? 1 : 0);
  }

  /** A keyed export (0 get, 1 has, 2 delete) with the key staged; false if not found. */
  private keyed(op: 0 | 1 | 2, inTxn: 0 | 1, key: string): boolean {
    const w = this.wasm;
    const m = w.module;
    const keyLen = w.stageKey(key);
    const status =
      op === 0 ? m._keepstate_store_get(this.handle, inTxn, w.scratch, keyLen)
        : op === 1 ? m._keepstate_store_has(this.handle, inTxn, w.scratch, keyLen)
          : m._keepstate_store_delete(this.handle, inTxn, w.scratch, keyLen);
    if (status === NOT_FOUND) return false;
    w.check(status);
    return true;
  }

  // --- Schema versions and migrations ------------------------------------------

  schemaVersion(inTxn: 0 | 1 = 0): number {
    return this.wasm.module._keepstate_store_schema_version(this.handle, inTxn);
  }
  /** REQUIRES: the transaction is open. */
  setSchemaVersion(version: number): void {
    this.wasm.check(this.wasm.module._keepstate_store_set_schema_version(this.handle, version));
  }
  /** Runs the module's C++ migrations from `from` to `to`. REQUIRES: the transaction is open. */
  runMigrations(from: number, to: number): void {
    this.wasm.check(this.wasm.module._keepstate_store_run_migrations(this.handle, from, to));
  }

  // --- Mutator calls -----------------------------------------------------------

  /** Starts mutator `name` on this replica with a copy of `args`; returns the call id. */
  startCall(name: string, args: Uint8Array): number {
    return this.start('_keepstate_call', name, args);
  }

  /** Starts the read-only query `name` (KEEPSTATE_QUERY) with a copy of `args`; returns the
   * call id, settled like a mutator call's (Wasm.calls). */
  startQuery(name: string, args: Uint8Array): number {
    return this.start('_keepstate_query', name, args);
  }

  private start(exported: '_keepstate_call' | '_keepstate_query', name: string, args: Uint8Array): number {
    const w = this.wasm;
    const n = Wasm.encode(name);
    // 4 bytes for the call id the module writes back, then the name and the args.
    const [idPtr, namePtr, argsPtr] = w.stage(new Uint8Array(4), n, args);
    w.check(w.module[exported](this.handle, namePtr!, n.length, argsPtr!, args.length, idPtr!));
    const id = new DataView(w.module.HEAPU8.buffer).getUint32(idPtr!, true);
    w.trimScratch();
    return id;
  }

  // --- Sync (docs/sync.md): the journal a synced store keeps in its state ---------------

  /** Makes the state synced as client `client`, journaling what it holds (conflict: synced as another client). */
  syncInit(client: string): void {
    const w = this.wasm;
    const [p] = w.stage(Wasm.encode(client));
    w.check(w.module._keepstate_sync_init(this.handle, p!, Wasm.encode(client).length));
    w.trimScratch();
  }

  /** The sync meta; undefined if the state is not synced. */
  syncState(): SyncMeta | undefined {
    const status = this.wasm.module._keepstate_sync_state(this.handle);
    if (status === NOT_FOUND) return undefined;
    this.wasm.check(status);
    return JSON.parse(this.wasm.outText()) as SyncMeta;
  }

  /** The journaled mutations above `after`, ascending: at most `maxCount`, about `maxBytes` of args (at least one). */
  syncPending(after: number, maxCount: number, maxBytes: number): JournaledMutation[] {
    this.wasm.check(this.wasm.module._keepstate_sync_pending(this.handle, after, maxCount, maxBytes));
    return readScan(this.wasm.outBytes()).map(([key, args]) => {
      const space = key.indexOf(' ');
      return { id: Number(key.slice(0, space)), name: key.slice(space + 1), args };
    });
  }

  /** The keys local work changed since the server version (bytes: a mutator's keys need not be UTF-8). */
  syncMarked(): Uint8Array[] {
    this.wasm.check(this.wasm.module._keepstate_sync_marked(this.handle));
    return readScan(this.wasm.outBytes()).map(([, key]) => key);
  }

  /** Adopts a pull: the server's values at `version` (null: absent), marks dropped, mutations up to `lastMutationId` gone. */
  syncApply(version: number, lastMutationId: number, entries: ReadonlyArray<readonly [Uint8Array, Uint8Array | null]>): void {
    let size = 0;
    for (const [k, v] of entries) size += 8 + k.length + (v === null ? 0 : v.length);
    const buffer = new Uint8Array(size);
    const view = new DataView(buffer.buffer);
    let at = 0;
    for (const [k, v] of entries) {
      view.setUint32(at, k.length, true);
      buffer.set(k, at + 4);
      at += 4 + k.length;
      view.setUint32(at, v === null ? 0xffffffff : v.length, true);
      at += 4;
      if (v !== null) buffer.set(v, at), (at += v.length);
    }
    const w = this.wasm;
    const [p] = w.stage(buffer);
    w.check(w.module._keepstate_sync_apply(this.handle, version, lastMutationId, p!, size));
    w.trimScratch();
  }

  /** Starts journaled mutation `mutationId` again (a replay after a pull); the call id (Wasm.calls). */
  syncReplay(mutationId: number): number {
    const w = this.wasm;
    const [idPtr] = w.stage(new Uint8Array(4));
    w.check(w.module._keepstate_sync_replay(this.handle, mutationId, idPtr!));
    const id = new DataView(w.module.HEAPU8.buffer).getUint32(idPtr!, true);
    w.trimScratch();
    return id;
  }

  /** Makes the verified import `id` (the server's snapshot) this synced replica's state, keeping its journal. */
  syncAdopt(id: number): void {
    this.wasm.check(this.wasm.module._keepstate_sync_adopt(this.handle, id));
  }

  // --- Changes (watch) ---------------------------------------------------------

  /** Records, from now, the keys of writes in `ranges` (Watchers.encodeRanges). */
  watch(ranges: Uint8Array): void {
    const [p] = this.wasm.stage(ranges);
    this.wasm.check(this.wasm.module._keepstate_store_watch(this.handle, p!, ranges.length));
  }
  /** The keys written since the last take, with their values now. */
  takeChanges(): RawChange[] {
    this.wasm.check(this.wasm.module._keepstate_store_take_changes(this.handle));
    return readChanges(this.wasm.outBytes());
  }
  /** The keys whose values differ between `before` and this replica, with this one's values. */
  changesSince(before: Replica): RawChange[] {
    this.wasm.check(this.wasm.module._keepstate_store_diff(before.handle, this.handle));
    return readChanges(this.wasm.outBytes());
  }

  // --- Commits -------------------------------------------------------------------

  /** Captures the dirty pages into the commit plan (busy: one is in flight; not-found: nothing to commit). */
  capture(nowMs: number): void {
    this.wasm.check(this.wasm.module._keepstate_store_capture(this.handle, nowMs));
  }
  /** capture() that returns the status instead of throwing. */
  tryCapture(nowMs: number): number {
    return this.wasm.module._keepstate_store_capture(this.handle, nowMs);
  }
  /** The plan in flight as records, copied out of wasm memory (wire.ts decodePlan; packs as
   * Blobs where `blobs`, the backend's policy, says). */
  plan(blobs: BlobPolicy | null = null): CommitRecords {
    const ptr = this.wasm.module._keepstate_store_plan(this.handle);
    if (ptr === 0) throw new KeepstateError('internal', 'no commit plan in flight');
    return decodePlan(this.wasm.module.HEAPU8, ptr, blobs);
  }
  /** The head check of the commit in flight against the stored head; null: go on. */
  checkHead(stored: Uint8Array | undefined): KeepstateError | null {
    const w = this.wasm;
    const m = w.module;
    const bytes = stored ?? new Uint8Array(0);
    // 8 bytes for the double the module writes back, then the head record.
    const [actualPtr, headPtr] = w.stage(new Uint8Array(8), bytes);
    const status = m._keepstate_store_check_head(this.handle, headPtr!, bytes.length, stored ? 1 : 0, actualPtr!);
    if (status === 0) return null;
    const error = w.error(status);
    if (!(error instanceof ConflictError)) return error;
    const actual = new DataView(m.HEAPU8.buffer).getFloat64(actualPtr!, true);
    return new ConflictError(error.message, this.version, actual);
  }
  /** The outcome of the plan's write: 0 = it is committed, else the captured pages are dirty again. */
  commitDone(code: number): void {
    this.wasm.check(this.wasm.module._keepstate_store_commit_done(this.handle, code));
  }
  /** commitDone() that ignores the status (closed: nothing in flight any more). */
  abandonCommit(code: number): void {
    this.wasm.module._keepstate_store_commit_done(this.handle, code);
  }

  // --- Snapshot files --------------------------------------------------------------

  /**
   * The snapshot file of this replica, which must be clean: read out of the module in chunks
   * into a Blob that grows by reference (new Blob([blob, chunk])), so the state is never
   * held twice. `onProgress` hears the bytes written of the file's size after each chunk,
   * within this one synchronous call (no write may land between chunks).
   */
  exportFile(onProgress?: ProgressListener): Blob {
    const w = this.wasm;
    const m = w.module;
    const [sizePtr] = w.stage(new Uint8Array(8));
    w.check(m._keepstate_export_begin(this.handle, Date.now(), sizePtr!));
    const size = new DataView(m.HEAPU8.buffer).getFloat64(sizePtr!, true);
    const buffer = m._malloc(SNAPSHOT_CHUNK_BYTES + 4);
    if (buffer === 0) {
      m._keepstate_export_end(this.handle);
      throw new QuotaError(`cannot allocate the export's ${SNAPSHOT_CHUNK_BYTES} byte buffer in wasm memory`);
    }
    try {
      const countPtr = buffer + SNAPSHOT_CHUNK_BYTES;
      let blob = new Blob([], { type: 'application/octet-stream' });
      reportProgress(onProgress, 0, size);
      for (;;) {
        w.check(m._keepstate_export_read(this.handle, buffer, SNAPSHOT_CHUNK_BYTES, countPtr));
        const n = new DataView(m.HEAPU8.buffer).getUint32(countPtr, true);
        if (n === 0) return blob;
        // The Blob constructor copies the bytes of its parts: a view of wasm memory is enough
        // (wasm memory is not shared: no threads, so the view is of an ArrayBuffer).
        blob = new Blob([blob, m.HEAPU8.subarray(buffer, buffer + n) as Uint8Array<ArrayBuffer>], { type: 'application/octet-stream' });
        reportProgress(onProgress, blob.size, size);
      }
    } finally {
      m._free(buffer);
      m._keepstate_export_end(this.handle);
    }
  }

  /** Makes the verified import `id` (snapshot.ts) this replica's state, every page dirty. */
  adoptImport(id: number): void {
    this.wasm.check(this.wasm.module._keepstate_import_adopt(this.handle, id));
  }
}

/** Bytes of a snapshot file moved between JS and the module at a time (export and import). */
export const SNAPSHOT_CHUNK_BYTES = 4 << 20;

/**
 * The head rule (persistence's CheckStoredHead) as the storage layer takes it (backend.ts
 * HeadRule): whether the stored head is exactly `expected`, decided by the module.
 */
export function headRule(wasm: Wasm): HeadRule {
  return (expected, stored) => {
    const m = wasm.module;
    const e = expected ?? new Uint8Array(0);
    const s = stored ?? new Uint8Array(0);
    const [actualPtr, ep, sp] = wasm.stage(new Uint8Array(8), e, s);
    const status = m._keepstate_check_stored_head(ep!, e.length, expected ? 1 : 0, sp!, s.length, stored ? 1 : 0, actualPtr!);
    if (status === 0) return null;
    const error = wasm.error(status);
    if (!(error instanceof ConflictError)) return error;
    const actual = new DataView(m.HEAPU8.buffer).getFloat64(actualPtr!, true);
    return new ConflictError(error.message, -1, actual);
  };
}
