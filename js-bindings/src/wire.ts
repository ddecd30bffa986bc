// The layouts of what the module writes into linear memory for JS — a commit
// plan, a scan, a change list — read with the offsets abi.h defines (WIRE,
// generated into ./generated/abi.ts): no offsets of its own, and no calls
// into the module (replica.ts makes them and hands the bytes here).
//
// Memory: bytes that outlive the next call into the module are copied out
// (slice()); a heap view given here is used before any call.
import { WIRE } from './generated/abi.js';
import { Wasm } from './wasm.js';
import { RecordKind, type BlobPolicy, type CommitRecords } from './storage/backend.js';

/**
 * Bytes of the Blobs decodePlan made that the garbage collector has not freed yet (the browser
 * keeps a Blob's bytes until then, not until the write that took it completes). Without a
 * FinalizationRegistry they are never known to be freed, and commits go as bytes once
 * BlobPolicy.maxLiveBytes is reached.
 */
let liveBlobBytes = 0;
const blobsFreed =
  typeof FinalizationRegistry === 'undefined' ? null : new FinalizationRegistry<number>((bytes) => (liveBlobBytes -= bytes));

/**
 * The plan at `ptr` (WIRE.PLAN_*) as records, exactly the records' bytes copied out of `heap`;
 * each pack `blobs` takes as a Blob made straight from the heap (the Blob constructor copies
 * the bytes of the view it is given, once: the backend and the OPFS copy both take it
 * without copying again), while the Blobs not yet collected leave room (BlobPolicy).
 */
export function decodePlan(heap: Uint8Array, ptr: number, blobs: BlobPolicy | null): CommitRecords {
  const words = new DataView(heap.buffer, ptr);
  const u32 = (i: number) => words.getUint32(i * 4, true);
  const text = (p: number, n: number) => Wasm.decode(heap.subarray(p, p + n));
  const expectedHead = u32(WIRE.PLAN_HAS_EXPECTED_HEAD) === 0 ? null : heap.slice(u32(WIRE.PLAN_EXPECTED_HEAD_PTR), u32(WIRE.PLAN_EXPECTED_HEAD_PTR) + u32(WIRE.PLAN_EXPECTED_HEAD_LEN));
  const records: CommitRecords = { clearFirst: u32(WIRE.PLAN_CLEAR_FIRST) !== 0, expectedHead, puts: [], deletes: [] };
  let w = WIRE.PLAN_HEADER_WORDS as number;
  let packBytes = 0;
  for (let i = 0, at = w; i < u32(WIRE.PLAN_PUT_COUNT); ++i, at += WIRE.PLAN_PUT_WORDS) {
    if (u32(at) === RecordKind.Pack) packBytes += u32(at + 4);
  }
  const minBlob = blobs !== null && liveBlobBytes + packBytes <= blobs.maxLiveBytes ? blobs.minBytes : Infinity;
  for (let i = 0; i < u32(WIRE.PLAN_PUT_COUNT); ++i, w += WIRE.PLAN_PUT_WORDS) {
    const [kind, keyPtr, keyLen, bytesPtr, bytesLen] = [u32(w), u32(w + 1), u32(w + 2), u32(w + 3), u32(w + 4)];
    let bytes: Uint8Array | Blob;
    if (kind === RecordKind.Pack && bytesLen >= minBlob) {
      bytes = new Blob([heap.subarray(bytesPtr, bytesPtr + bytesLen) as Uint8Array<ArrayBuffer>]);
      liveBlobBytes += bytesLen;
      blobsFreed?.register(bytes, bytesLen);
    } else {
      bytes = heap.slice(bytesPtr, bytesPtr + bytesLen);
    }
    records.puts.push({ kind, key: text(keyPtr, keyLen), bytes });
  }
  for (let i = 0; i < u32(WIRE.PLAN_DELETE_COUNT); ++i, w += WIRE.PLAN_DELETE_WORDS) {
    const [kind, keyPtr, keyLen] = [u32(w), u32(w + 1), u32(w + 2)];
    records.deletes.push({ kind, key: text(keyPtr, keyLen) });
  }
  return records;
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
    entries.push([Wasm.decode(out.subarray(at, at + kl)), out.slice(at + kl, at + kl + vl)]);
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
    changes.push({ key: Wasm.decode(keyBytes), keyBytes, value });
  }
  return changes;
}
