// Marshalling between the Store and the wasm module: what crosses the C ABI
// for a restore, a commit and a scan, read with the layouts abi.h defines
// (WIRE, generated into ./generated/abi.ts): no offsets of its own.
//
// Memory: any call may grow the heap, so every read takes HEAPU8 afresh, and
// bytes that outlive the next call are copied out (slice()).
import { WIRE } from './generated/abi.js';
import { Engine } from './engine.js';
import { ConflictError, KeepstateError, type VersionFailure } from './errors.js';
import { BLOB_COMMIT_BYTES, BLOB_PACK_BYTES, RecordKind, type CommitRecords, type PackRequest, type RestoreHint, type RestoreSource, type Timing } from './backend.js';

/** What keepstate_store_open reports once it has restored (abi.h). */
export interface OpenReport {
  restored: number;
  fresh: boolean;
  /** Opened in place from a base (staged): keepstate_store_adopt_in_place completes it. */
  inPlace: boolean;
  failures: VersionFailure[];
}

/**
 * Restores `source`'s newest verified version into engine store `handle`
 * (new, not yet opened): feeds it the head, the manifests and the packs' keys,
 * then each pack it asks for. With `base` (an open engine store of the same
 * name), the pages base holds unchanged are taken from it and only the packs
 * of changed pages are read; with `inPlace` too, they are only staged, to be
 * applied to base's own arena (keepstate_store_adopt_in_place). Resolves with
 * its report.
 */
export async function restoreInto(
  engine: Engine,
  handle: number,
  source: RestoreSource,
  base = 0,
  inPlace = false,
  timing: Timing | null = null,
  hint?: RestoreHint,
): Promise<OpenReport> {
  const m = engine.module;
  let report: OpenReport | undefined;
  // With timing: what the engine's callbacks took, and the waits for storage between them.
  let since = performance.now();
  const waited = (phase: string) => {
    const now = performance.now();
    timing?.(phase, now - since);
    since = now;
  };
  // The engine answers {need, then?} until it has restored, then the report.
  const answer = (): PackRequest | null => {
    const out = JSON.parse(engine.outText()) as OpenReport | PackRequest;
    if ('need' in out) return out;
    report = out;
    return null;
  };
  await source.readForRestore(
    (records) => {
      waited('restore.read-records');
      for (const r of records) {
        const key = Engine.encode(r.key);
        const [kp, bp] = engine.stage(key, r.bytes);
        engine.check(
          r.unread
            ? m._keepstate_store_load_unread(handle, r.kind, kp!, key.length)
            : m._keepstate_store_load_record(handle, r.kind, kp!, key.length, bp!, r.bytes.length),
        );
      }
      engine.check(base === 0 ? m._keepstate_store_open(handle) : m._keepstate_store_open_from(handle, base, inPlace ? 1 : 0));
      waited('restore.resolve-manifests');
      return answer();
    },
    (pack) => {
      waited('restore.pack-wait');
      const bytes = pack ?? new Uint8Array(0);
      const [bp] = engine.stage(bytes);
      waited('restore.pack-copy-in');
      engine.check(m._keepstate_store_open_pack(handle, bp!, bytes.length, pack ? 1 : 0));
      waited('restore.pack-verify-copy');
      return answer();
    },
    hint,
  );
  if (report === undefined) throw new KeepstateError('internal', `restore from ${source.label} ended without a report`);
  return report;
}

/**
 * Copies the plan in flight out of wasm memory: exactly the records' bytes (WIRE.PLAN_*);
 * with `packsAsBlobs`, each pack of BLOB_PACK_BYTES or more as a Blob (the Blob constructor
 * copies the bytes of the view it is given, once: IndexedDB and the OPFS copy both take it
 * without copying again), unless the packs add up to more than BLOB_COMMIT_BYTES.
 */
export function readPlan(engine: Engine, handle: number, packsAsBlobs = false): CommitRecords {
  const m = engine.module;
  const ptr = m._keepstate_store_plan(handle);
  if (ptr === 0) throw new KeepstateError('internal', 'no commit plan in flight');
  const heap = m.HEAPU8;
  const words = new DataView(heap.buffer, ptr);
  const u32 = (i: number) => words.getUint32(i * 4, true);
  const text = (p: number, n: number) => Engine.decode(heap.subarray(p, p + n));
  const expectedHead = u32(WIRE.PLAN_HAS_EXPECTED_HEAD) === 0 ? null : heap.slice(u32(WIRE.PLAN_EXPECTED_HEAD_PTR), u32(WIRE.PLAN_EXPECTED_HEAD_PTR) + u32(WIRE.PLAN_EXPECTED_HEAD_LEN));
  const records: CommitRecords = { clearFirst: u32(WIRE.PLAN_CLEAR_FIRST) !== 0, expectedHead, puts: [], deletes: [] };
  let w = WIRE.PLAN_HEADER_WORDS as number;
  let packBytes = 0;
  for (let i = 0, at = w; i < u32(WIRE.PLAN_PUT_COUNT); ++i, at += WIRE.PLAN_PUT_WORDS) {
    if (u32(at) === RecordKind.Pack) packBytes += u32(at + 4);
  }
  const blobs = packsAsBlobs && packBytes <= BLOB_COMMIT_BYTES;
  for (let i = 0; i < u32(WIRE.PLAN_PUT_COUNT); ++i, w += WIRE.PLAN_PUT_WORDS) {
    const [kind, keyPtr, keyLen, bytesPtr, bytesLen] = [u32(w), u32(w + 1), u32(w + 2), u32(w + 3), u32(w + 4)];
    const bytes =
      blobs && kind === RecordKind.Pack && bytesLen >= BLOB_PACK_BYTES
        ? new Blob([heap.subarray(bytesPtr, bytesPtr + bytesLen) as Uint8Array<ArrayBuffer>])
        : heap.slice(bytesPtr, bytesPtr + bytesLen);
    records.puts.push({ kind, key: text(keyPtr, keyLen), bytes });
  }
  for (let i = 0; i < u32(WIRE.PLAN_DELETE_COUNT); ++i, w += WIRE.PLAN_DELETE_WORDS) {
    const [kind, keyPtr, keyLen] = [u32(w), u32(w + 1), u32(w + 2)];
    records.deletes.push({ kind, key: text(keyPtr, keyLen) });
  }
  return records;
}

/** The head check of the commit in flight (persistence's one rule) against the stored head; null: go on. */
export function checkHead(engine: Engine, handle: number, head: Uint8Array | undefined): KeepstateError | null {
  const m = engine.module;
  const bytes = head ?? new Uint8Array(0);
  // 8 bytes for the double the engine writes back, then the head record.
  const [actualPtr, headPtr] = engine.stage(new Uint8Array(8), bytes);
  const status = m._keepstate_store_check_head(handle, headPtr!, bytes.length, head ? 1 : 0, actualPtr!);
  if (status === 0) return null;
  const error = engine.error(status);
  if (!(error instanceof ConflictError)) return error;
  const actual = new DataView(m.HEAPU8.buffer).getFloat64(actualPtr!, true);
  return new ConflictError(error.message, m._keepstate_store_version(handle), actual);
}

/** The entries of a keepstate_store_scan result (WIRE.SCAN_*), values copied. */
export function readScan(out: Uint8Array): Array<[string, Uint8Array]> {
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  const count = view.getUint32(0, true);
  const entries: Array<[string, Uint8Array]> = [];
  let at = WIRE.SCAN_COUNT_BYTES as number;
  for (let i = 0; i < count; ++i) {
    const kl = view.getUint32(at, true);
    const vl = view.getUint32(at + 4, true);
    at += WIRE.SCAN_ENTRY_HEADER_BYTES;
    entries.push([Engine.decode(out.subarray(at, at + kl)), out.slice(at + kl, at + kl + vl)]);
    at += kl + vl;
  }
  return entries;
}

/** One entry of a change list (keepstate_store_take_changes, keepstate_store_diff). */
export interface RawChange {
  key: string;
  keyBytes: Uint8Array;
  /** The value now; undefined: the key no longer exists. */
  value: Uint8Array | undefined;
}

/** The entries of a change list (WIRE.SCAN_* with WIRE.CHANGE_DELETED), values copied. */
export function readChanges(out: Uint8Array): RawChange[] {
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  const count = view.getUint32(0, true);
  const changes: RawChange[] = [];
  let at = WIRE.SCAN_COUNT_BYTES as number;
  for (let i = 0; i < count; ++i) {
    const kl = view.getUint32(at, true);
    const vl = view.getUint32(at + 4, true);
    at += WIRE.SCAN_ENTRY_HEADER_BYTES;
    const keyBytes = out.slice(at, at + kl);
    at += kl;
    let value: Uint8Array | undefined;
    if (vl !== WIRE.CHANGE_DELETED) {
      value = out.slice(at, at + vl);
      at += vl;
    }
    changes.push({ key: Engine.decode(keyBytes), keyBytes, value });
  }
  return changes;
}

/** Bytes of a snapshot file moved between JS and the engine at a time (export and import). */
export const SNAPSHOT_CHUNK_BYTES = 4 << 20;

/**
 * The snapshot file of engine store `handle`, which must be clean (Store.export commits
 * first): read out of the engine in chunks into a Blob that grows by reference (new
 * Blob([blob, chunk])), so the state is never held twice.
 */
export function exportSnapshot(engine: Engine, handle: number): Blob {
  const m = engine.module;
  const [sizePtr] = engine.stage(new Uint8Array(8));
  engine.check(m._keepstate_export_begin(handle, Date.now(), sizePtr!));
  const buffer = m._malloc(SNAPSHOT_CHUNK_BYTES + 4);
  try {
    const countPtr = buffer + SNAPSHOT_CHUNK_BYTES;
    let blob = new Blob([], { type: 'application/octet-stream' });
    for (;;) {
      engine.check(m._keepstate_export_read(handle, buffer, SNAPSHOT_CHUNK_BYTES, countPtr));
      const n = new DataView(m.HEAPU8.buffer).getUint32(countPtr, true);
      if (n === 0) return blob;
      // The Blob constructor copies the bytes of its parts: a view of wasm memory is enough.
      // (wasm memory is not shared: no threads, so the view is of an ArrayBuffer).
      blob = new Blob([blob, m.HEAPU8.subarray(buffer, buffer + n) as Uint8Array<ArrayBuffer>], { type: 'application/octet-stream' });
    }
  } finally {
    m._free(buffer);
    m._keepstate_export_end(handle);
  }
}

